"""faster-whisper's log-Mel features, computed 30 seconds of frames at a time.

faster-whisper computes the features of all the audio it is handed in one go, and its
short-time Fourier transform holds every frame's 400 samples and spectrum at once: about
4.5 KB of temporaries per 10 ms frame, 1.6 GB for an hour, though the features themselves
take 320 bytes a frame. That is why a raw call grows with the file's length, and why
Cesar's windows had to be short. :class:`BlockFeatures` gives the same features (the same
frames, window, filters and scaling, and the same range limit over the whole input) while
holding the temporaries of one block of frames only, so a window's memory is that of its
samples and features, and windows can be long enough that few are cut.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from faster_whisper.feature_extractor import FeatureExtractor

#: Frames transformed at once: 30 s, whisper's own window.
BLOCK_FRAMES = 3000


class BlockFeatures(FeatureExtractor):  # type: ignore[misc]  # faster-whisper is untyped
    """A drop-in for faster-whisper's ``FeatureExtractor`` that bounds its temporaries."""

    def __call__(
        self, waveform: npt.NDArray[Any], padding: int = 160, chunk_length: int | None = None
    ) -> npt.NDArray[np.float32]:
        if chunk_length is not None:  # as faster-whisper's: it changes the clip's size
            self.n_samples = chunk_length * self.sampling_rate
            self.nb_max_frames = self.n_samples // self.hop_length
        samples = np.asarray(waveform, dtype=np.float32)
        padded = len(samples) + padding + self.n_fft  # zeros after, reflections either side
        frames = 1 + (padded - self.n_fft) // self.hop_length
        window = np.hanning(self.n_fft + 1)[:-1].astype("float32")
        # faster-whisper drops the last frame.
        out = np.empty((self.mel_filters.shape[0], frames - 1), dtype=np.float32)
        for start in range(0, frames - 1, BLOCK_FRAMES):
            stop = min(start + BLOCK_FRAMES, frames - 1)
            piece = _centred(
                samples,
                padding,
                self.n_fft // 2,
                start * self.hop_length,
                (stop - 1) * self.hop_length + self.n_fft,
            )
            spectrum = self.stft(
                piece,
                self.n_fft,
                self.hop_length,
                window=window,
                center=False,
                return_complex=True,
            ).astype("complex64")
            power = np.abs(spectrum) ** 2
            out[:, start:stop] = np.log10(np.clip(self.mel_filters @ power, 1e-10, None))
        np.maximum(out, out.max() - 8.0, out=out)
        out += 4.0
        out /= 4.0
        return out


def _centred(
    samples: npt.NDArray[np.float32], padding: int, half: int, start: int, stop: int
) -> npt.NDArray[np.float32]:
    """``[start:stop]`` of ``samples`` followed by ``padding`` zeros and reflected ``half``
    samples beyond both ends (``np.pad``'s "reflect"), as faster-whisper's STFT centres its
    frames; without the padded copy of the whole input."""
    length = len(samples) + padding
    if length <= half:  # reflected more than once: leave it to NumPy (at most 200 samples)
        whole = np.pad(np.pad(samples, (0, padding)), (half, half), mode="reflect")
        return whole[start:stop]
    at = np.arange(start - half, stop - half)
    at = np.abs(at)  # reflected at the start: -k is k
    at = np.where(at >= length, 2 * (length - 1) - at, at)  # and at the end
    piece = np.zeros(len(at), dtype=np.float32)
    inside = at < len(samples)  # the rest falls in the zeros of the padding
    piece[inside] = samples[at[inside]]
    return piece


def use_block_features(model: Any) -> None:
    """Give a loaded ``WhisperModel`` (or its batched pipeline's) :class:`BlockFeatures`
    with the same settings as the extractor it came with."""
    current = model.feature_extractor
    replacement = BlockFeatures(
        feature_size=current.mel_filters.shape[0],
        sampling_rate=current.sampling_rate,
        hop_length=current.hop_length,
        chunk_length=current.chunk_length,
        n_fft=current.n_fft,
    )
    model.feature_extractor = replacement
