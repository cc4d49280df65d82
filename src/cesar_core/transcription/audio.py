"""Decoding any file FFmpeg (through PyAV) can read into 16 kHz mono float32 samples.

This is where bad input is caught and explained: a missing path, a directory, an empty file,
bytes that are not media, a video without sound, a file cut short. Each becomes an
:class:`~cesar_core.errors.AudioError` subclass whose message names the file and the fix.
"""

from __future__ import annotations

import io
import math
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

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


def describe(source: AudioInput) -> str:
    """A short name of the input for messages."""
    if isinstance(source, str | Path):
        return str(source)
    return str(getattr(source, "name", "the uploaded audio"))


def clip_length(declared: float | None, start: float, end: float | None) -> float | None:
    """Seconds from ``start`` to ``end`` (or the announced end), None when unknown."""
    if declared is None:
        return None if end is None else end - start
    until = declared if end is None else min(declared, end)
    return max(0.0, until - start)


def probe_duration(
    source: str | Path, start: float | None = None, end: float | None = None
) -> float | None:
    """The length of the clip ``start``..``end`` of a file, from what the file announces,
    without decoding it (None when unknown or unreadable)."""
    try:
        with av.open(str(source), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                return None
            declared = _riff_duration(source) or _declared_duration(
                container, container.streams.audio[0]
            )
    except (av.error.FFmpegError, OSError, EOFError, UnicodeDecodeError):
        return None
    return clip_length(declared, start or 0.0, end)


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


class AudioStream:
    """An audio file decoded block by block, so memory stays flat however long it is.

    Opening checks what can be checked up front (path, container, audio track, and with
    ``check_tail`` that the announced end decodes) and raises the matching
    :class:`AudioError`; ``probe_bytes`` limits how much FFmpeg reads to learn the streams
    (for :func:`probe_audio`, which needs no more). :meth:`blocks` yields float32
    samples of the clip ``start``..``end``; once it is exhausted, :meth:`finish` raises if
    the file turned out to be empty or truncated.
    """

    def __init__(
        self,
        source: AudioInput,
        *,
        start: float | None = None,
        end: float | None = None,
        name: str | None = None,
        check_tail: bool = True,
        probe_bytes: int | None = None,
    ) -> None:
        self.name = name or describe(source)
        if isinstance(source, str | Path):
            _check_path(Path(source))
            opened: Any = str(source)
        else:
            if isinstance(source, io.BytesIO) and not source.getvalue():
                # A path's emptiness is caught above; an upload's is caught here, not as
                # "cannot be decoded".
                raise EmptyAudioError(f"{self.name} is empty (0 bytes).")
            opened = source
        riff = _riff_duration(source)  # before PyAV moves a file object's position
        try:
            self._container = av.open(
                opened,
                mode="r",
                metadata_errors="ignore",
                options=None if probe_bytes is None else {"probesize": str(probe_bytes)},
            )
        except (av.error.FFmpegError, EOFError, UnicodeDecodeError) as exc:
            raise AudioError(
                f"{self.name} is not an audio or video file that can be decoded, or it is "
                f"damaged ({_reason(exc)}).",
                hint="Supported: wav, flac, mp3, m4a, ogg, opus, webm, mp4 and most other "
                "formats FFmpeg reads.",
            ) from None
        if not self._container.streams.audio:
            video = bool(self._container.streams.video)
            self._container.close()
            kind = "a video with no audio track" if video else "no audio track"
            raise NoAudioStreamError(
                f"{self.name} has {kind}; there is nothing to transcribe.",
                hint="Check that the file has sound (ffprobe shows its streams).",
            )
        self._stream = self._container.streams.audio[0]
        #: The duration the file announces, in seconds, or None when it does not say.
        self.declared = riff or _declared_duration(self._container, self._stream)
        self.start = start or 0.0
        self.end = end
        #: Samples yielded so far.
        self.samples = 0
        self._stopped_early = False
        self._error: Exception | None = None
        if not check_tail:
            return
        if isinstance(source, str | Path):
            self._check_tail(lambda: str(source))
        elif isinstance(source, io.BytesIO):  # audio held in memory (a small upload)
            held = source.getvalue()
            self._check_tail(lambda: io.BytesIO(held))

    @property
    def expected_duration(self) -> float | None:
        """How long the clip should be, when the file says how long it is."""
        return clip_length(self.declared, self.start, self.end)

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def blocks(self, seconds: float) -> Iterator[npt.NDArray[np.float32]]:
        """Yield the clip in blocks of about ``seconds`` (the last may be shorter)."""
        size = max(1, round(seconds * SAMPLE_RATE))
        pending: list[npt.NDArray[np.float32]] = []
        pending_len = 0
        for piece in self._pieces():
            pending.append(piece)
            pending_len += len(piece)
            if pending_len >= size:
                joined = np.concatenate(pending)
                for at in range(0, len(joined) - size + 1, size):
                    self.samples += size
                    yield joined[at : at + size]
                rest = joined[len(joined) - len(joined) % size :]
                pending, pending_len = ([rest], len(rest)) if len(rest) else ([], 0)
        if pending_len:
            self.samples += pending_len
            yield np.concatenate(pending)

    def finish(self) -> None:
        """Raise when decoding ended with nothing, or well before the announced end."""
        name = self.name
        if self.samples == 0:
            if self._error is not None:
                raise AudioError(
                    f"{name} could not be decoded ({_reason(self._error)}).",
                    hint="The file may be damaged; try re-encoding it, for example with "
                    "ffmpeg -i INPUT output.wav",
                )
            if self.start and self.declared and self.start >= self.declared:
                raise InvalidOptionsError(
                    f"clip_start ({self.start:g} s) is beyond the end of {name} "
                    f"({self.declared:.1f} s)."
                )
            raise EmptyAudioError(f"{name} contains no audio samples.")
        expected = self.expected_duration
        if self.declared and expected is not None and not self._stopped_early:
            decoded_until = self.start + self.samples / SAMPLE_RATE
            slack = max(_TRUNCATION_SLACK_S, self.declared * _TRUNCATION_SLACK_FRACTION)
            if decoded_until < self.start + expected - slack:
                raise self._truncated(decoded_until)

    def _check_tail(self, reopen: Callable[[], Any]) -> None:
        """Fail before any transcription when the end the file announces is not there.

        Seeks a second decoder (on what ``reopen`` returns: the path, or a second view of
        the bytes) to just before the announced end of the clip; if no audio decodes there,
        the whole file is decoded (without keeping samples) to say how much is really
        there. Truncation is then reported in seconds instead of after the work.
        """
        if not self.declared:
            return
        if self.start >= self.declared:
            self.close()
            raise InvalidOptionsError(
                f"clip_start ({self.start:g} s) is beyond the end of {self.name} "
                f"({self.declared:.1f} s)."
            )
        until = self.declared if self.end is None else min(self.declared, self.end)
        slack = max(_TRUNCATION_SLACK_S, self.declared * _TRUNCATION_SLACK_FRACTION)
        end = _decodable_end(reopen(), max(0.0, until - 2 * slack - 1.0))
        if end is not None and end >= until - slack:
            return
        end = _decodable_end(reopen(), 0.0) or 0.0
        if end < until - slack:
            self.close()
            raise self._truncated(end)

    def _truncated(self, decoded_until: float) -> TruncatedAudioError:
        return TruncatedAudioError(
            f"{self.name} is truncated: it announces {self.declared:.1f} s of audio but only "
            f"{decoded_until:.1f} s could be decoded.",
            hint="Copy or export the file again; to transcribe the part that is there, pass "
            f"clip_end {math.floor(decoded_until * 10) / 10:.1f}.",
        )

    def close(self) -> None:
        """Release the decoder; also done on leaving the ``with`` block."""
        self._container.close()

    def _pieces(self) -> Iterator[npt.NDArray[np.float32]]:
        """Resampled samples of the clip, in whatever sizes the decoder produces."""
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        skip = round(self.start * SAMPLE_RATE)
        limit = round(self.end * SAMPLE_RATE) if self.end is not None else None
        seen = 0  # resampled samples from the start of the file

        def clip(frames: list[Any]) -> Iterator[npt.NDArray[np.float32]]:
            nonlocal seen
            for frame in frames:
                data = frame.to_ndarray().reshape(-1)
                lo, hi = seen, seen + len(data)
                seen = hi
                first = max(skip, lo) - lo
                last = len(data) if limit is None else min(limit, hi) - lo
                if last > first:
                    yield np.array(data[first:last], dtype=np.float32)

        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as exc:  # a bad packet: skip it, as players do
                    self._error = exc
                    continue
                yield from clip([out for frame in frames for out in resampler.resample(frame)])
                if limit is not None and seen >= limit:
                    self._stopped_early = True
                    return
            yield from clip(resampler.resample(None))
        except (av.error.FFmpegError, EOFError) as exc:
            self._error = exc


def load_audio(
    source: AudioInput, *, start: float | None = None, end: float | None = None
) -> npt.NDArray[np.float32]:
    """Decode all of ``source`` (from ``start`` to ``end`` seconds) to 16 kHz mono float32.

    For short clips and tests; transcription itself streams with :class:`AudioStream`.
    """
    with AudioStream(source, start=start, end=end) as stream:
        blocks = list(stream.blocks(60.0))
        stream.finish()
    return np.concatenate(blocks)


def _decodable_end(path: str | io.BytesIO, after: float) -> float | None:
    """The time at which decodable audio ends, looking from ``after`` seconds on.

    None when nothing decodes past ``after``. Decodes without resampling or keeping samples.
    """
    last: float | None = None
    try:
        with av.open(path, mode="r", metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            base = stream.time_base
            if base is None:
                return None
            if after > 0:
                container.seek(int(after / base), stream=stream, backward=True)
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue
                for frame in frames:
                    if frame.pts is not None and frame.sample_rate:
                        end = float(frame.pts * base) + frame.samples / frame.sample_rate
                        last = end if last is None else max(last, end)
    except (av.error.FFmpegError, EOFError):
        pass
    return last


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
