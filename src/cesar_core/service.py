"""JobService: the operations the CLI, the HTTP API and scripts share.

The service owns the pairing of a job record with its stored audio: a job never exists
without its file, and a file never outlives its job.
"""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from .errors import AudioNotFoundError, CesarError
from .events import JobEvent, JobEvents
from .fetch import FetchPolicy, check_url, url_filename
from .jobs import DEFAULT_MAX_ATTEMPTS, Job, JobSource, JobState, NewJob, SourceKind, new_job_id
from .protocols import JobStore, Page, Storage
from .settings import Settings
from .storage.local import audio_key, key_job_id
from .transcript import TranscribeOptions

CHUNK_BYTES = 1 << 20
#: Finished jobs are kept this long by default before :meth:`JobService.prune` removes them.
DEFAULT_RETENTION = timedelta(hours=24)


class JobNotFoundError(CesarError):
    """No job has this id (it never existed, or was deleted or pruned)."""

    code = "job_not_found"


class JobService:
    """Submit, inspect, cancel and delete jobs."""

    def __init__(
        self,
        store: JobStore,
        storage: Storage,
        fetch: FetchPolicy | None = None,
        events: JobEvents | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.fetch = fetch or FetchPolicy()
        self.events = events or JobEvents(store)

    @classmethod
    async def open(cls, settings: Settings | None = None) -> JobService:
        """The store and the storage the settings name (SQLite and files in the data
        directory by default)."""
        from .storage import open_storage
        from .stores import open_store

        settings = settings or Settings.load()
        storage = await open_storage(settings.storage_url)
        try:
            store = await open_store(settings.store_url)
        except BaseException:
            await storage.close()
            raise
        events = JobEvents(store, settings)
        return cls(store, storage, settings.fetch_policy, events)

    async def close(self) -> None:
        """Let announcements still running (webhooks) finish for a while, then close."""
        try:
            await self.events.drain()
        finally:
            await self.storage.close()
            await self.store.close()

    async def _check_webhook(self, webhook_url: str | None) -> None:
        if webhook_url is not None:
            await asyncio.to_thread(check_url, webhook_url, self.fetch)

    async def submit_file(
        self,
        audio: AsyncIterable[bytes] | BinaryIO | str | Path,
        *,
        filename: str | None = None,
        options: TranscribeOptions | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        max_bytes: int | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        check_audio: bool = False,
    ) -> tuple[Job, bool]:
        """Store the audio, then queue a job for it.

        ``audio`` is streamed in chunks: an async iterable of bytes (an HTTP upload), an
        open binary file, or a path. With an ``idempotency_key`` already used, the earlier
        job is returned and the audio just stored is removed again (the store decides,
        atomically, so concurrent submissions with one key still make one job). With
        ``check_audio``, a file that cannot be decoded is refused now (an
        :class:`~cesar_core.errors.AudioError`) instead of failing its job later.

        :return: the job, and whether it was created now.
        """
        if isinstance(audio, str | Path):
            filename = filename or Path(audio).name
        await self._check_webhook(webhook_url)
        stored = await self.store_audio(
            audio, filename=filename, max_bytes=max_bytes, check_audio=check_audio
        )
        return await self.submit_stored(
            stored,
            options=options,
            metadata=metadata,
            idempotency_key=idempotency_key,
            webhook_url=webhook_url,
            max_attempts=max_attempts,
        )

    async def store_audio(
        self,
        audio: AsyncIterable[bytes] | BinaryIO | str | Path,
        *,
        filename: str | None = None,
        max_bytes: int | None = None,
        check_audio: bool = False,
    ) -> JobSource:
        """The first half of :meth:`submit_file`, for callers that learn the job's options
        only after the audio (a multipart upload whose fields follow the file): stream the
        audio into storage under a new job id. Pass the result to :meth:`submit_stored`,
        or to :meth:`discard` if the job will not be created."""
        job_id = new_job_id()
        key = audio_key(job_id, filename)
        size = await self.storage.save(key, _chunks(audio), max_bytes=max_bytes)
        source = JobSource(kind=SourceKind.UPLOAD, location=key, filename=filename, size=size)
        if check_audio:
            try:
                async with self.storage.local_path(key) as path:
                    await asyncio.to_thread(_check_decodable, path, filename)
            except BaseException:
                await self.discard(source)
                raise
        return source

    async def submit_stored(
        self,
        source: JobSource,
        *,
        options: TranscribeOptions | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> tuple[Job, bool]:
        """Queue a job for audio :meth:`store_audio` stored; on any failure (or an
        idempotency key already used) the audio is removed."""
        job_id = key_job_id(source.location)
        try:
            await self._check_webhook(webhook_url)
            new = NewJob(
                id=job_id,
                source=source,
                options=options or TranscribeOptions(),
                metadata=metadata or {},
                idempotency_key=idempotency_key,
                webhook_url=webhook_url,
                max_attempts=max_attempts,
            )
            job, created = await self.store.create(new)
        except BaseException:
            await self.discard(source)
            raise
        if not created:  # another request with the same key won the race
            await self.discard(source)
        return job, created

    async def discard(self, source: JobSource) -> None:
        """Remove audio stored for a job that was not created."""
        await self.storage.delete_job(key_job_id(source.location))

    async def submit_url(
        self,
        url: str,
        *,
        options: TranscribeOptions | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> tuple[Job, bool]:
        """Queue a job whose audio a worker fetches from ``url`` when it runs.

        The URL is checked now (scheme, host resolves, not a private address unless
        allowed), so a bad URL is refused at once with :class:`UrlRefusedError`; the worker
        checks it again, with every redirect, when it downloads. ``webhook_url`` is checked
        the same way (by :meth:`submit_file` too).
        """
        await asyncio.to_thread(check_url, url, self.fetch)
        await self._check_webhook(webhook_url)
        new = NewJob(
            source=JobSource(kind=SourceKind.URL, location=url, filename=url_filename(url)),
            options=options or TranscribeOptions(),
            metadata=metadata or {},
            idempotency_key=idempotency_key,
            webhook_url=webhook_url,
            max_attempts=max_attempts,
        )
        return await self.store.create(new)

    async def get(self, job_id: str, *, include_result: bool = True) -> Job:
        """The job; raises :class:`JobNotFoundError` for an unknown id."""
        job = await self.store.get(job_id, include_result=include_result)
        if job is None:
            raise JobNotFoundError(
                f"No job has the id {job_id!r}.",
                hint="It may have been deleted, or pruned after its retention period.",
            )
        return job

    async def list(
        self, *, state: JobState | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page:
        """Jobs newest first, without their results."""
        return await self.store.list(state=state, limit=limit, cursor=cursor)

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job; a finished job is returned unchanged.

        A cancellation made here is announced (``job.cancelled``) by this service.
        """
        before = await self.get(job_id, include_result=False)
        if before.state.terminal:
            return before
        job = await self.store.cancel(job_id)
        if job is None:
            raise JobNotFoundError(f"No job has the id {job_id!r}.")
        if job.state is JobState.CANCELLED:
            await self.storage.delete_job(job_id)
            self.events.emit(JobEvent.for_job(job, job.state))
        return job

    async def delete(self, job_id: str) -> bool:
        """Cancel the job if it is unfinished, then forget it and its files.

        Idempotent: deleting an unknown job returns False.
        """
        with suppress(JobNotFoundError):
            await self.cancel(job_id)
        deleted = await self.store.delete(job_id)
        await self.storage.delete_job(job_id)
        return deleted

    async def wait(self, job_id: str, *, timeout: float | None = None, poll: float = 0.2) -> Job:
        """Wait until the job is finished and return it (``TimeoutError`` after ``timeout``)."""

        async def finished() -> Job:
            while True:
                job = await self.get(job_id)
                if job.state.terminal:
                    return job
                await asyncio.sleep(poll)

        return await asyncio.wait_for(finished(), timeout)

    async def prune(self, retention: timedelta = DEFAULT_RETENTION) -> builtins.list[str]:
        """Delete jobs finished more than ``retention`` ago, and their files."""
        ids = await self.store.prune(datetime.now(UTC) - retention)
        for job_id in ids:
            await self.storage.delete_job(job_id)
        return ids


def _check_decodable(path: Path, filename: str | None) -> None:
    from .transcription.audio import AudioStream

    AudioStream(path, name=filename).close()


async def _chunks(audio: AsyncIterable[bytes] | BinaryIO | str | Path) -> AsyncIterator[bytes]:
    if isinstance(audio, str | Path):
        if not os.path.isfile(audio):
            raise AudioNotFoundError(f"{audio} is not a file.", hint="Check the path.")
        with open(audio, "rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
    elif hasattr(audio, "read"):
        while chunk := await asyncio.to_thread(audio.read, CHUNK_BYTES):
            yield chunk
    else:
        async for chunk in audio:
            yield chunk
