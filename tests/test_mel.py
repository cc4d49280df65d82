"""The log-Mel features computed a block at a time are faster-whisper's own, at every length
(shorter than a block, a block, a block and a frame, several blocks and a part), on real
speech; and every model the transcriber loads computes them that way."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from cesar_core import TranscribeOptions, WhisperTranscriber
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio
from cesar_core.transcription.mel import BLOCK_FRAMES, BlockFeatures

from .conftest import DATA

HOP = 160


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    samples = load_audio(DATA / "long_en.opus")
    return np.concatenate([samples] * 3)  # about 100 s: several blocks


@pytest.mark.parametrize(
    "length",
    [
        10,  # reflected more than once
        41,  # with the padding, just longer than half an FFT
        100,  # shorter than one FFT
        7 * SAMPLE_RATE + 3,
        BLOCK_FRAMES * HOP - HOP,  # one block of frames exactly, after the padding
        BLOCK_FRAMES * HOP,  # a block and a frame
        BLOCK_FRAMES * HOP * 3 + 12_345,
    ],
)
def test_the_features_are_faster_whispers(speech: np.ndarray, length: int) -> None:
    samples = speech[:length]
    assert len(samples) == length
    expected = FeatureExtractor()(samples)
    got = BlockFeatures()(samples)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    # The same frames, filters and range limit: equal but for the last bit of a few values
    # (the Fourier transform and the filters' product summed in another order).
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_the_range_limit_is_over_the_whole_input(speech: np.ndarray) -> None:
    """A quiet block after a loud one is limited to 80 dB below the loudest frame of the
    input, not of its own block, as faster-whisper limits it."""
    loud = speech[: 40 * SAMPLE_RATE]
    quiet = np.concatenate([loud, loud * 1e-6])
    expected = FeatureExtractor()(quiet)
    got = BlockFeatures()(quiet)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert got.min() == pytest.approx(got.max() - 2.0)  # (max - 8 + 4) / 4 against (max + 4) / 4


def test_loaded_models_use_them(transcriber: WhisperTranscriber) -> None:
    _, model = transcriber.load(TranscribeOptions(model="tiny.en", compute_type="int8"))
    assert isinstance(model.feature_extractor, BlockFeatures)
    assert model.feature_extractor.n_fft == 400
    assert model.feature_extractor.mel_filters.shape == (80, 201)
