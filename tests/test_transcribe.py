"""Real transcriptions with the real tiny.en and base models on committed speech."""

from __future__ import annotations

import itertools
import threading
import wave
from pathlib import Path

import pytest

import cesar_core
from cesar_core import Settings, TranscribeOptions, WhisperTranscriber
from cesar_core.transcription import windows

from .conftest import REFERENCES, wer

EN = REFERENCES["speech_en"]
#: Short robotic speech through the tiny model: a working pipeline stays well under this,
#: a broken one (wrong samples, wrong rate, wrong model) lands near 1.0.
MAX_WER = 0.5


def wav_duration(path: Path) -> float:
    with wave.open(str(path)) as audio:
        return audio.getnframes() / audio.getframerate()


@pytest.mark.parametrize("suffix", ["wav", "flac", "mp3", "m4a", "ogg", "opus", "mp4"])
def test_every_container_format_transcribes(
    transcriber: WhisperTranscriber, data: Path, suffix: str
) -> None:
    result = transcriber.transcribe(data / f"speech_en.{suffix}", TranscribeOptions())
    assert wer(EN, result.text) < MAX_WER, result.text
    assert result.language == "en"
    assert result.model == "tiny.en"
    assert result.duration == pytest.approx(wav_duration(data / "speech_en.wav"), abs=0.1)
    assert result.warnings == ()


def test_library_call_with_word_timestamps_and_progress(data: Path) -> None:
    seen: list[float] = []
    result = cesar_core.transcribe(
        data / "long_en.opus", word_timestamps=True, progress=seen.append
    )
    assert wer(REFERENCES["long_en"], result.text) < 0.3, result.text
    assert len(result.segments) >= 3
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert len(seen) >= 3
    words = result.words
    assert len(words) >= 60
    assert all(w.start <= w.end for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert all(0.0 <= w.probability <= 1.0 for w in words)
    first = result.segments[0]
    assert first.words[0].start >= first.start - 0.5
    assert result.segments[-1].end <= result.duration + 0.5


def test_open_binary_file_is_accepted(data: Path) -> None:
    with (data / "speech_en.flac").open("rb") as handle:
        result = cesar_core.transcribe(handle, beam_size=1, temperature=0.0)
    assert wer(EN, result.text) < MAX_WER


def test_clip_start_and_end_keep_original_timeline(
    transcriber: WhisperTranscriber, data: Path
) -> None:
    full = transcriber.transcribe(data / "long_en.opus", TranscribeOptions())
    clip = transcriber.transcribe(
        data / "long_en.opus", TranscribeOptions(clip_start=10.0, clip_end=20.0)
    )
    assert clip.duration == pytest.approx(10.0, abs=0.05)
    assert clip.segments[0].start >= 10.0
    assert clip.segments[-1].end <= 20.5
    assert len(clip.text.split()) < len(full.text.split()) / 2


def test_batched_mode_over_more_than_one_window(
    transcriber: WhisperTranscriber, data: Path
) -> None:
    seen: list[float] = []
    result = transcriber.transcribe(
        data / "long_en.opus", TranscribeOptions(batched=True, batch_size=4), progress=seen.append
    )
    assert result.duration > 30  # the audio spans two fixed windows
    assert wer(REFERENCES["long_en"], result.text) < MAX_WER, result.text
    assert seen[-1] == 1.0


def test_vad_filter_and_initial_prompt(transcriber: WhisperTranscriber, data: Path) -> None:
    result = transcriber.transcribe(
        data / "speech_en.wav",
        TranscribeOptions(vad_filter=True, initial_prompt="A pangram about a brown fox."),
    )
    assert wer(EN, result.text) < MAX_WER


def test_multilingual_base_detects_spanish(transcriber: WhisperTranscriber, data: Path) -> None:
    # A fixed temperature: whisper's fallback samples at random when a decode looks poor.
    options = TranscribeOptions(model="base", temperature=0.0)
    result = transcriber.transcribe(data / "speech_es.opus", options)
    assert result.language == "es"
    assert result.language_probability > 0.5
    assert wer(REFERENCES["speech_es"], result.text) < 0.5, result.text


def test_base_translates_to_english(transcriber: WhisperTranscriber, data: Path) -> None:
    result = transcriber.transcribe(
        data / "speech_es.opus",
        TranscribeOptions(model="base", task="translate", language="es", temperature=0.0),
    )
    assert result.task == "translate"
    words = set(result.text.lower().replace(".", " ").replace(",", " ").split())
    assert words & {"hello", "hi", "everyone", "all", "dog", "kitchen", "every", "day"}, result.text


def test_model_is_loaded_once_and_shared_between_threads(data: Path, settings: Settings) -> None:
    transcriber = WhisperTranscriber(settings)
    results: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(transcriber.transcribe(data / "speech_en.ogg", TranscribeOptions()).text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(transcriber.models) == 1
    assert all(wer(EN, text) < MAX_WER for text in results)


def test_cpu_threads_and_compute_type_pick_separate_cache_entries(
    data: Path, settings: Settings
) -> None:
    transcriber = WhisperTranscriber(settings)
    for options in (
        TranscribeOptions(cpu_threads=1, compute_type="int8"),
        TranscribeOptions(cpu_threads=2, compute_type="float32", device="cpu"),
    ):
        assert wer(EN, transcriber.transcribe(data / "speech_en.wav", options).text) < MAX_WER
    assert len(transcriber.models) == 2


def test_progress_callback_can_stop_a_transcription(
    transcriber: WhisperTranscriber, data: Path
) -> None:
    class Stop(Exception):
        pass

    def stop(_: float) -> None:
        raise Stop

    with pytest.raises(Stop):
        transcriber.transcribe(data / "long_en.opus", TranscribeOptions(), progress=stop)


@pytest.mark.parametrize("window", [10.0, 15.0])
def test_long_audio_is_transcribed_window_by_window(
    data: Path, monkeypatch: pytest.MonkeyPatch, window: float, settings: Settings
) -> None:
    """Windows a few seconds long stand in for the 1-minute windows of long recordings."""
    transcriber = WhisperTranscriber(settings)
    whole = transcriber.transcribe(data / "long_en.opus", TranscribeOptions(word_timestamps=True))
    monkeypatch.setattr(windows, "WINDOW_S", window)
    seen: list[float] = []
    windowed = transcriber.transcribe(
        data / "long_en.opus", TranscribeOptions(word_timestamps=True), progress=seen.append
    )
    assert windowed.duration == pytest.approx(whole.duration)
    assert wer(REFERENCES["long_en"], windowed.text) < wer(REFERENCES["long_en"], whole.text) + 0.1
    starts = [s.start for s in windowed.segments]
    assert starts == sorted(starts)
    assert [s.id for s in windowed.segments] == list(range(len(windowed.segments)))
    assert all(a.end <= b.start + 0.5 for a, b in itertools.pairwise(windowed.segments))
    assert windowed.segments[-1].end > whole.duration - 5
    words = [w.word.strip(" ,.").lower() for w in windowed.words]
    assert words.count("budget") == 2  # nothing lost or repeated at window edges
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
