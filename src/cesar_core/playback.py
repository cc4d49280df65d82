"""A job's audio, to be played back beside its transcript (``GET /jobs/{id}/audio``).

The audio is wherever the job put it: inline in the job store (a small upload), or in
storage (a larger upload, or what the worker downloaded for a URL). Once the job ends it
is still there only if the job keeps it (``keep_audio``, recorded as ``source.keep``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from .jobs import Job, SourceKind
from .protocols import AudioStore, JobStore, Storage
from .service import JobNotFoundError
from .storage.keys import audio_key


class AudioNotKeptError(JobNotFoundError):
    """The job exists but its audio does not (any more, or not yet)."""

    code = "audio_not_found"


@asynccontextmanager
async def job_audio(store: JobStore, storage: Storage, job: Job) -> AsyncIterator[bytes | Path]:
    """The job's audio: its bytes when the store holds them, else a local file that
    exists until the context ends (a copy, for storage that is not a local directory)."""
    source = job.source
    if source.inline:
        data = await store.inline_audio(job.id) if isinstance(store, AudioStore) else None
        if data is None:
            raise _gone(job)
        yield data
        return
    key = (
        source.location if source.kind is SourceKind.UPLOAD else audio_key(job.id, source.filename)
    )
    if not await storage.exists(key):
        raise _gone(job)
    async with storage.local_path(key) as path:
        yield path


def _gone(job: Job) -> AudioNotKeptError:
    if job.source.kind is SourceKind.URL and not job.state.terminal:
        hint = "A URL's audio is here once a worker has downloaded it; try again later."
    elif job.state.terminal and not job.source.keep:
        hint = "The server removes audio when its job ends (keep_audio is off)."
    else:
        hint = "The audio was removed; submit it again to hear it."
    return AudioNotKeptError(f"Job {job.id} has no audio to play.", hint=hint)
