"""A job's audio, as a worker reads it: from the job's claim, from storage, or from its URL.

Shared by the worker's slots and by :mod:`cesar_core.packing`, which reads several short
jobs' audio before it decides which of them share a window.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager

from .errors import AudioError, AudioNotFoundError
from .fetch import FetchPolicy, download
from .jobs import Job, SourceKind
from .protocols import AudioInput, Storage
from .storage.keys import audio_key


@asynccontextmanager
async def job_input(
    job: Job, storage: Storage, fetch: FetchPolicy, stop: Callable[[], bool]
) -> AsyncIterator[AudioInput]:
    """The job's audio: the bytes its claim brought (inline), or a local file; URL sources
    are downloaded into storage first (and removed with the job's other files when it
    ends). A download ends with :class:`~cesar_core.fetch.DownloadStopped` as soon as
    ``stop()`` turns true (the job was cancelled or deleted, or the worker's grace period is
    over): a slow server must not hold the slot."""
    if job.source.kind is SourceKind.UPLOAD and job.source.inline:
        if job.audio is None:
            raise AudioNotFoundError(
                f"The audio of job {job.id} is missing from the job store.",
                hint="Submit the audio again.",
            )
        held = io.BytesIO(job.audio)
        held.name = job.source.filename or "the uploaded audio"
        yield held
        return
    key = job.source.location
    if job.source.kind is SourceKind.URL:
        key = audio_key(job.id, job.source.filename)
        url = job.source.location
        async with aclosing(download(url, fetch, stop=stop)) as chunks:
            await storage.save(key, chunks, max_bytes=fetch.max_bytes)
    async with storage.local_path(key) as path:
        try:
            yield path
        except AudioError as exc:
            # Messages name the file they read: the client's name for it, not a server path.
            if job.source.filename:
                exc.message = exc.message.replace(str(path), job.source.filename)
            raise
