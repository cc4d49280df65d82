"""The probe an upload meets before its job is accepted, with the event loop's time in mind.

A probe (:func:`~cesar_core.transcription.probe.probe_audio`) tells a missing, empty or
non-audio file from one to queue. For an upload held in memory, the start of it is looked
at on the event loop first (:func:`~cesar_core.transcription.probe.looks_like_audio`, at
most 1.3 ms); only what that does not pass, and every file in storage, is probed in a
thread. A hand-off to a thread cost more than a short clip's probe itself: 0.28 to 0.31 ms
of CPU against 0.15 ms (``docs/performance.md``, "A burst of short uploads").

The upload steps aside for the event loop before and after its look, so that a request
waiting meanwhile (a ``GET /jobs/{id}``) is answered between uploads. Without that, a burst
of uploads ran their steps back to back and polls waited 83 to 97 ms at the 99th
percentile, against 25 ms with the probe in a thread (medians).
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path


async def probe_upload(data: bytes, filename: str | None) -> None:
    """Raise the :class:`~cesar_core.transcription.audio.AudioError` an upload's bytes
    earn, or return: they can be queued."""
    from .transcription.probe import looks_like_audio, probe_audio  # PyAV, where probed

    await asyncio.sleep(0)
    if not looks_like_audio(data, filename):
        await asyncio.to_thread(probe_audio, io.BytesIO(data), filename)
    await asyncio.sleep(0)


async def probe_file(path: Path, filename: str | None) -> None:
    """The same for a file in storage (an upload too large to hold), in a thread."""
    from .transcription.probe import probe_audio

    await asyncio.to_thread(probe_audio, path, filename)
