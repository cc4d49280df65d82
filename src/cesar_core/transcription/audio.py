"""Decoding any file FFmpeg (through PyAV) can read into 16 kHz mono float32 samples.

This is where bad input is caught and explained: a missing path, a directory, an empty file,
bytes that are not media, a video without sound, a file cut short. Each becomes an
:class:`~cesar_core.errors.AudioError` subclass whose message names the file and the fix.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from attrs import frozen

from ..errors import (
    AudioError,
    AudioNotFoundError,
    EmptyAudioError,
    InvalidOptionsError,
    NoAudioStreamError,
    TruncatedAudioError,
)
from ..protocols import AudioInput

SAMPLE_RATE = 16_000

#: Audio shorter than announced by more than this (seconds, or fraction) counts as truncated.
_TRUNCATION_SLACK_S = 0.5
_TRUNCATION_SLACK_FRACTION = 0.02


@frozen
class DecodedAudio:
    """Samples of the requested clip, with where the clip starts in the original audio."""

    samples: npt.NDArray[np.float32]
    offset: float

    @property
    def duration(self) -> float:
        """Length of the decoded clip in seconds."""
        return len(self.samples) / SAMPLE_RATE


def describe(source: AudioInput) -> str:
    """A short name of the input for messages."""
    if isinstance(source, str | Path):
        return str(source)
    return str(getattr(source, "name", "the uploaded audio"))


def probe_duration(source: str | Path) -> float | None:
    """The duration a file announces, without decoding it (None when unknown or unreadable)."""
    try:
        with av.open(str(source), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                return None
            return _riff_duration(source) or _declared_duration(
                container, container.streams.audio[0]
            )
    except (av.error.FFmpegError, OSError, EOFError, UnicodeDecodeError):
        return None


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioNotFoundError(f"{path} does not exist.", hint="Check the path and try again.")
    if path.is_dir():
        raise AudioNotFoundError(
            f"{path} is a directory, not an audio file.",
            hint=f"Pass the files inside it, for example: cesar transcribe {path}/*.mp3",
        )
    if not os.access(path, os.R_OK):
        raise AudioNotFoundError(f"{path} cannot be read (permission denied).")
    if path.stat().st_size == 0:
        raise EmptyAudioError(f"{path} is empty (0 bytes).", hint="Check that it was fully copied.")


def load_audio(
    source: AudioInput, *, start: float | None = None, end: float | None = None
) -> DecodedAudio:
    """Decode ``source`` (from ``start`` to ``end`` seconds) to 16 kHz mono float32.

    Decoding stops at ``end``, so clipping a long file neither reads nor holds the rest.
    """
    name = describe(source)
    if isinstance(source, str | Path):
        _check_path(Path(source))
        opened: Any = str(source)
    else:
        opened = source
    try:
        container = av.open(opened, mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, EOFError, UnicodeDecodeError) as exc:
        raise AudioError(
            f"{name} is not an audio or video file that can be decoded, or it is damaged "
            f"({_reason(exc)}).",
            hint="Supported: wav, flac, mp3, m4a, ogg, opus, webm, mp4 and most other formats "
            "FFmpeg reads.",
        ) from None
    with container:
        if not container.streams.audio:
            kind = "a video with no audio track" if container.streams.video else "no audio track"
            raise NoAudioStreamError(
                f"{name} has {kind}; there is nothing to transcribe.",
                hint="Check that the file has sound (ffprobe shows its streams).",
            )
        stream = container.streams.audio[0]
        declared = _riff_duration(source) or _declared_duration(container, stream)
        samples, stopped_early, error = _decode(container, stream, start, end)
    offset = start or 0.0
    if samples.size == 0:
        if error is not None:
            raise AudioError(
                f"{name} could not be decoded ({_reason(error)}).",
                hint="The file may be damaged; try re-encoding it, for example with "
                "ffmpeg -i INPUT output.wav",
            )
        if start and declared and start >= declared:
            raise InvalidOptionsError(
                f"clip_start ({start:g} s) is beyond the end of {name} ({declared:.1f} s)."
            )
        raise EmptyAudioError(f"{name} contains no audio samples.")
    decoded_until = offset + len(samples) / SAMPLE_RATE
    if declared and not stopped_early:
        expected = declared if end is None else min(declared, end)
        slack = max(_TRUNCATION_SLACK_S, declared * _TRUNCATION_SLACK_FRACTION)
        if decoded_until < expected - slack:
            raise TruncatedAudioError(
                f"{name} is truncated: it announces {declared:.1f} s of audio but only "
                f"{decoded_until:.1f} s could be decoded.",
                hint="Copy or export the file again; to transcribe the part that is there, "
                f"pass clip_end {decoded_until:.1f} (--clip-end).",
            )
    return DecodedAudio(samples=samples, offset=offset)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.split(": '")[0]


def _riff_duration(source: AudioInput) -> float | None:
    """The duration a WAV header announces.

    FFmpeg trusts the file size over a WAV header, which hides truncation; the header's data
    size divided by its byte rate does not.
    """
    try:
        if isinstance(source, str | Path):
            with open(source, "rb") as handle:
                head = handle.read(4096)
        elif source.seekable():
            position = source.tell()
            head = source.read(4096)
            source.seek(position)
        else:
            return None
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    byte_rate = 0
    offset = 12
    while offset + 8 <= len(head):
        chunk_id, size = head[offset : offset + 4], struct.unpack_from("<I", head, offset + 4)[0]
        if chunk_id == b"fmt " and offset + 20 <= len(head):
            byte_rate = struct.unpack_from("<I", head, offset + 16)[0]
        if chunk_id == b"data":
            if not byte_rate or size in (0, 0xFFFFFFFF):  # streamed WAVs leave it unset
                return None
            return float(size / byte_rate)
        offset += 8 + size + (size & 1)
    return None


def _declared_duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return None


def _decode(
    container: Any, stream: Any, start: float | None, end: float | None
) -> tuple[npt.NDArray[np.float32], bool, Exception | None]:
    """Decode and resample; returns (samples, stopped at ``end``, error that ended decoding)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    skip = round((start or 0.0) * SAMPLE_RATE)
    limit = round(end * SAMPLE_RATE) if end is not None else None
    chunks: list[npt.NDArray[np.float32]] = []
    seen = 0  # resampled samples from the start of the file
    kept = 0
    stopped_early = False
    error: Exception | None = None

    def keep(frames: list[Any]) -> bool:
        nonlocal seen, kept
        for frame in frames:
            data = frame.to_ndarray().reshape(-1)
            lo, hi = seen, seen + len(data)
            seen = hi
            first = max(skip, lo) - lo
            last = len(data) if limit is None else min(limit, hi) - lo
            if last > first:
                chunks.append(np.ascontiguousarray(data[first:last], dtype=np.float32))
                kept += last - first
            if limit is not None and hi >= limit:
                return True
        return False

    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError as exc:  # one bad packet: skip it, as players do
                error = exc
                continue
            if keep([out for frame in frames for out in resampler.resample(frame)]):
                stopped_early = True
                break
        else:
            keep(resampler.resample(None))
    except (av.error.FFmpegError, EOFError) as exc:
        error = exc
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return samples, stopped_early, error
