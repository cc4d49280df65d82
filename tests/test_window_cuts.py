"""Where long audio is cut into windows: in the longest pause near a window's end, so that
no word, nor the words either side of a short gap, is split between two windows. Real
speech read by espeak-ng (whose pauses are digital silence, like many recordings' gaps) and
a real tiny.en."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import ctranslate2
import jiwer
import numpy as np
import numpy.typing as npt
import pytest

from cesar_core import Settings, TranscribeOptions, WhisperTranscriber, evaluation
from cesar_core.transcription import windows
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio

from .conftest import REFERENCES

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox"
)

#: 10 ms frames quieter than -60 dBFS are silence, for these tests.
FRAME = SAMPLE_RATE // 100
SILENT = 10 ** (-60 / 20)


def spoken(text: str, voice: str, words_a_minute: int, directory: Path) -> Path:
    """``text`` read by espeak-ng ``voice``: a 16 kHz 16-bit WAV, dithered by sox as a
    recording has a noise floor, so that every pause is about as quiet as any other (the
    same dither every run: ``-R``)."""
    raw, path = (directory / f"{voice.replace('+', '_')}{end}" for end in (".raw.wav", ".wav"))
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_a_minute), "-w", str(raw), text], check=True
    )
    subprocess.run(
        ["sox", "-R", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(path)], check=True
    )
    return path


def pause_around(samples: npt.NDArray[np.float32], at: int) -> int:
    """How many silent frames run through sample ``at`` (0 when it is not silent)."""
    loudness = np.sqrt(np.mean(samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME) ** 2, 1))
    frame = min(at // FRAME, len(loudness) - 1)
    low = high = frame
    while low > 0 and loudness[low - 1] < SILENT:
        low -= 1
    while high < len(loudness) and loudness[high] < SILENT:
        high += 1
    return high - low


@pytest.mark.parametrize("voice", ["en-us", "en-gb-x-rp+m3"])
@pytest.mark.parametrize("seconds", [10, 15, 20])
def test_a_window_ends_in_the_longest_pause_it_searches(
    tmp_path: Path, voice: str, seconds: int
) -> None:
    """Cutting at the quietest 100 ms of the whole stretch took whichever gap the noise
    floor made quietest: in 20 s of en-us, a 320 ms gap where a 410 ms pause was there."""
    samples = load_audio(spoken(REFERENCES["long_en"], voice, 165, tmp_path))
    window = samples[: seconds * SAMPLE_RATE]
    cut = windows._cut(window)
    searched = range(max(0, len(window) - round(windows._CUT_SEARCH_S * SAMPLE_RATE)), len(window))
    longest = max(pause_around(window, at) for at in searched[::FRAME])
    assert 0 < cut < len(window)
    assert pause_around(window, cut) >= longest - 1, f"cut at {cut / SAMPLE_RATE:.2f} s"


def test_the_cut_is_the_end_when_nothing_can_be_searched() -> None:
    assert windows._cut(np.zeros(FRAME, dtype=np.float32)) == FRAME


def test_words_at_window_cuts_are_neither_lost_nor_doubled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """The British voice reading the meeting three times (78 s) in 20-second windows:
    every reference word is heard once; only misheard words differ (substitutions).
    CTranslate2's generator is seeded, so a fallback to sampling is the same every run."""
    ctranslate2.set_random_seed(0)
    text = " ".join([REFERENCES["long_en"]] * 3)
    path = spoken(text, "en-gb-x-rp+m3", 160, tmp_path)
    monkeypatch.setattr(windows, "WINDOW_S", 20.0)
    result = WhisperTranscriber(settings).transcribe(
        path, TranscribeOptions(compute_type="int8", cpu_threads=1)
    )
    assert result.duration > 60  # so at least three cuts were made
    reference = evaluation.normalise(text)
    heard = evaluation.normalise(result.text)
    alignment = jiwer.process_words(reference, heard)
    # Lost or doubled words at a cut are deletions or insertions (1 insertion here).
    assert alignment.deletions + alignment.insertions <= 2, (alignment.deletions, heard)
    assert alignment.wer < 0.15, heard
    assert heard.split().count("budget") == 6
