"""Timestamps stay inside the audio: no segment or word ends after the recording (or the
clip of it that was asked for), so subtitles never outlast the sound.

Whisper predicts times on a 30-second grid padded with silence; near the end of a window
it can place the last segment's end past the last sample (seen: 27.6 s on a 27.2 s file,
39.9 s for a clip ending at 26 s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cesar_core import TranscribeOptions, Transcript, WhisperTranscriber
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio
from cesar_core.transcription.formats import to_srt, to_vtt

from .conftest import DATA
from .test_bad_input import write_wav

#: The first 27.2 s of long_en.opus end inside a sentence.
RECORDING_S = 27.2
#: (batched, word timestamps): the ways a transcript is made, each timed differently.
MODES = [(False, False), (False, True), (True, False), (True, True)]


def assert_inside(result: Transcript, start: float, end: float) -> None:
    assert result.segments, "no speech recognised"
    for segment in result.segments:
        assert start <= segment.start <= segment.end <= end, segment
        for word in segment.words:
            assert start <= word.start <= word.end <= end, word


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    speech = load_audio(DATA / "long_en.opus")[: round(RECORDING_S * SAMPLE_RATE)]
    path = tmp_path_factory.mktemp("clamp") / "cut_27.2s.wav"
    return write_wav(path, np.clip(speech, -1, 1))


@pytest.mark.parametrize(("batched", "word_timestamps"), MODES)
def test_nothing_ends_after_the_recording(
    transcriber: WhisperTranscriber, recording: Path, batched: bool, word_timestamps: bool
) -> None:
    options = TranscribeOptions(batched=batched, word_timestamps=word_timestamps)
    result = transcriber.transcribe(recording, options)
    assert result.duration == pytest.approx(RECORDING_S, abs=0.001)
    assert_inside(result, 0.0, result.duration)


def test_the_last_subtitle_ends_with_the_recording(
    transcriber: WhisperTranscriber, recording: Path
) -> None:
    result = transcriber.transcribe(recording, TranscribeOptions())
    last_srt = to_srt(result).strip().split("\n\n")[-1].splitlines()[1]
    last_vtt = to_vtt(result).strip().split("\n\n")[-1].splitlines()[0]
    assert last_srt.split(" --> ")[1] <= "00:00:27,200", last_srt
    assert last_vtt.split(" --> ")[1] <= "00:00:27.200", last_vtt


@pytest.mark.parametrize("clip", [(2.0, 26.0), (4.5, 15.0)])
@pytest.mark.parametrize(("batched", "word_timestamps"), [(False, False), (True, True)])
def test_nothing_leaves_the_clip(
    transcriber: WhisperTranscriber,
    data: Path,
    clip: tuple[float, float],
    batched: bool,
    word_timestamps: bool,
) -> None:
    start, end = clip
    options = TranscribeOptions(
        clip_start=start, clip_end=end, batched=batched, word_timestamps=word_timestamps
    )
    result = transcriber.transcribe(data / "long_en.opus", options)
    assert_inside(result, start, end)
