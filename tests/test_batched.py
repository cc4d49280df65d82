"""Batched decoding (faster-whisper's BatchedInferencePipeline) on long, real speech.

Batched mode decodes several clips of a window at once. Where those clips are cut decides
what survives: a clip that starts or ends inside a sentence loses that sentence, so these
tests use speech whose sentences straddle fixed 30-second marks and compare the batched
text with the unbatched one on the same file.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from cesar_core import TranscribeOptions, WhisperTranscriber
from cesar_core.transcription import windows
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio
from cesar_core.transcription.windows import SHORT_WINDOW_S

from .conftest import DATA, REFERENCES, normalise, wer
from .test_bad_input import write_wav

#: Leading silence that puts sentences across the 30-second marks of every window: with
#: fixed 30-second clips, 8 s made batched decoding drop a quarter of the words (WER 0.27
#: against 0.04 unbatched; 0 s happens to cut only in pauses).
LEAD_S = 8.0
REPEATS = 3  # about 113 s of speech: two windows of long audio
#: How much worse than unbatched decoding batched decoding may be on the same file.
WER_SLACK = 0.03


def repeated_speech(directory: Path, lead_s: float, repeats: int) -> Path:
    """``lead_s`` of silence, then long_en.opus ``repeats`` times, each followed by 1 s of
    silence: real speech whose text is known exactly."""
    speech = load_audio(DATA / "long_en.opus")
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    lead = np.zeros(round(lead_s * SAMPLE_RATE), dtype=np.float32)
    samples = np.concatenate([lead] + [speech, pause] * repeats)
    return write_wav(directory / f"speech_{lead_s:g}_{repeats}.wav", np.clip(samples, -1, 1))


def test_batched_keeps_the_words_of_long_speech(
    transcriber: WhisperTranscriber, tmp_path: Path
) -> None:
    audio = repeated_speech(tmp_path, LEAD_S, REPEATS)
    reference = " ".join([REFERENCES["long_en"]] * REPEATS)
    # One thread: the comparison is of words, not speed, and the CPU is shared.
    plain = transcriber.transcribe(audio, TranscribeOptions(cpu_threads=1))
    batched = transcriber.transcribe(audio, TranscribeOptions(batched=True, cpu_threads=1))
    plain_wer, batched_wer = wer(reference, plain.text), wer(reference, batched.text)
    plain_words = len(normalise(plain.text).split())
    batched_words = len(normalise(batched.text).split())
    summary = (
        f"batched WER {batched_wer:.3f}, {batched_words} words; "
        f"unbatched WER {plain_wer:.3f}, {plain_words} words"
    )
    assert batched_wer <= plain_wer + WER_SLACK, summary
    assert batched_words >= 0.97 * plain_words, summary


def test_batched_audio_of_exactly_one_clip(transcriber: WhisperTranscriber, tmp_path: Path) -> None:
    """faster-whisper refuses audio of exactly 30 s without VAD or clips: pass clips always."""
    audio = repeated_speech(tmp_path, 0.0, 2)
    result = transcriber.transcribe(
        audio, TranscribeOptions(batched=True, clip_end=30.0, cpu_threads=1)
    )
    assert result.duration == pytest.approx(30.0, abs=0.001)
    assert result.segments[-1].end <= 30.0
    assert len(normalise(result.text).split()) > 45  # about 2.2 words a second


def test_batched_clips_cover_the_window_and_end_in_pauses(tmp_path: Path) -> None:
    samples = load_audio(repeated_speech(tmp_path, LEAD_S, 2))[
        : round(SHORT_WINDOW_S * SAMPLE_RATE)
    ]
    clips = windows._clips(samples)
    assert clips[0]["start"] == 0.0
    assert clips[-1]["end"] == pytest.approx(len(samples) / SAMPLE_RATE)
    for before, after in itertools.pairwise(clips):
        assert before["end"] == after["start"]
    for clip in clips:
        assert clip["end"] - clip["start"] <= windows.BATCH_WINDOW_S
    loudness = np.sqrt(np.mean(samples**2))
    for clip in clips[:-1]:
        cut = round(clip["end"] * SAMPLE_RATE)
        around = samples[cut - SAMPLE_RATE // 20 : cut + SAMPLE_RATE // 20]
        assert np.sqrt(np.mean(around**2)) < loudness / 10, f"cut at {clip['end']:.2f} s"
