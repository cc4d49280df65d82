"""``cesar transcribe`` and subtitles: presets, every format in one run, output names."""

from __future__ import annotations

import io
import json
from pathlib import Path

import srt
import webvtt

from cesar_core.transcription.subtitles import SubtitleOptions

from .test_cli import cesar
from .test_subtitles import _assert_limits, _seconds, _vtt_seconds


def test_an_unknown_output_extension_is_refused(data: Path, tmp_path: Path) -> None:
    target = tmp_path / "talk.docx"
    result = cesar("transcribe", data / "speech_en.wav", "-o", target)
    assert result.returncode == 2, result.stderr
    assert "unknown output extension '.docx'" in result.stderr
    assert "-f" in result.stderr
    assert not target.exists()


def test_every_format_in_one_run_with_a_preset(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "subs"
    result = cesar(
        "transcribe", data / "long_en.opus", "-f", "all", "-o", out, "--subtitle-preset", "bbc"
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "long_en.json",
        "long_en.srt",
        "long_en.tsv",
        "long_en.txt",
        "long_en.vtt",
    ]
    bbc = SubtitleOptions.preset("bbc")
    cues = list(srt.parse((out / "long_en.srt").read_text()))
    _assert_limits([(_seconds(c.start), _seconds(c.end), c.content) for c in cues], bbc)
    captions = webvtt.read(str(out / "long_en.vtt"))
    _assert_limits([(_vtt_seconds(c.start), _vtt_seconds(c.end), c.text) for c in captions], bbc)
    # The preset turned word timestamps on; the text formats are not re-flowed.
    assert json.loads((out / "long_en.json").read_text())["segments"][0]["words"]
    assert len((out / "long_en.txt").read_text().splitlines()) < len(cues)


def test_several_formats_and_options_to_stdout_need_a_directory(data: Path) -> None:
    result = cesar("transcribe", data / "speech_en.wav", "-f", "srt", "-f", "vtt")
    assert result.returncode == 2
    assert "several formats are written to files: add -o DIR" in result.stderr
    one_file = cesar("transcribe", data / "speech_en.wav", "-f", "all", "-o", "talk.srt")
    assert one_file.returncode == 2
    assert "-o talk.srt names one file, but several formats are written" in one_file.stderr
    bad = cesar("transcribe", data / "speech_en.wav", "-f", "srt", "--subtitle-preset", "tv")
    assert bad.returncode == 2
    assert "netflix" in bad.stderr


def test_highlighted_words_to_stdout(data: Path) -> None:
    result = cesar(
        "transcribe", data / "speech_en.wav", "-f", "vtt", "--highlight-words",
        "--max-line-width", "30",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    captions = list(webvtt.from_buffer(io.StringIO(result.stdout)))
    assert sum("<u>" in c.raw_text for c in captions) >= 10
    assert all(len(line) <= 30 for c in captions for line in c.text.split("\n"))
