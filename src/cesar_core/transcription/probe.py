"""The probe an upload meets at the door: what a file's start and headers tell, without
decoding it.

:func:`probe_audio` raises what :class:`~cesar_core.transcription.audio.AudioStream` would
for a missing, empty, non-media or silent-track file; :func:`looks_like_audio` is its
bounded first look, fit for an event loop (:mod:`cesar_core.probing` runs both).
"""

from __future__ import annotations

import io
from pathlib import Path

from ..errors import AudioError, AudioNotFoundError, EmptyAudioError
from ..protocols import AudioInput
from .audio import AudioStream

#: How much a probe reads to find the streams (FFmpeg's ``probesize``: its default, 5 MB,
#: reads 5 s of a WAV, 20 ms of work). Telling the format is not limited by it.
PROBE_BYTES = 4096
#: How much of an upload :func:`looks_like_audio` gives FFmpeg: telling the format of 1 MB
#: of noise took 25 to 46 ms, of 16 KB at most 1.3 ms.
QUICK_PROBE_BYTES = 16 * 1024


def probe_audio(source: AudioInput, name: str | None = None) -> None:
    """Raise the :class:`AudioError` that :class:`AudioStream` would, as far as the file's
    headers tell: missing, empty, not media, no audio track.

    This is the check an upload meets before its job is accepted. It reads the container's
    headers and the start of the streams: 0.15 ms for a short clip, against 20-30 ms for the
    decode near the end that detects truncation (and 20 ms for FFmpeg's default look at a
    WAV), so a burst of uploads is not held up. A file cut short behind a good header fails
    its job with ``truncated_audio`` when the worker opens it with :class:`AudioStream`,
    before any transcription.
    """
    at = None if isinstance(source, str | Path) else source.tell()
    try:
        _headers(source, name)
    except (AudioNotFoundError, EmptyAudioError):
        raise
    except AudioError:
        # A short read can miss a stream that comes later in the file (an MPEG-TS program
        # table, say): before refusing, look as far as decoding will.
        if at is not None:
            source.seek(at)  # type: ignore[union-attr]
        AudioStream(source, name=name, check_tail=False).close()


def looks_like_audio(data: bytes, name: str | None = None) -> bool:
    """Whether the first :data:`QUICK_PROBE_BYTES` of an upload show a container with an
    audio track, as :func:`probe_audio` would find.

    True is final: the upload passes. False refuses nothing: the start alone did not show
    it (noise, or an MP4 whose index comes last, or an MP3 behind a large cover image), and
    :func:`probe_audio` must look at the whole file. Reading no more than the start bounds
    the work (at most 1.3 ms, for noise), so this may run on an event loop.
    """
    try:
        _headers(io.BytesIO(data[:QUICK_PROBE_BYTES]), name)
    except Exception:  # whatever the start alone makes of it, the whole file decides
        return False
    return True


def _headers(source: AudioInput, name: str | None) -> None:
    """Open ``source`` as :class:`AudioStream` does, reading no further than
    :data:`PROBE_BYTES` for its streams, and close it: the short look of both probes."""
    AudioStream(source, name=name, check_tail=False, probe_bytes=PROBE_BYTES).close()
