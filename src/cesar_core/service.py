"""JobService: the operations the CLI, the HTTP API and scripts share.

The service owns the pairing of a job record with its stored audio: a job never exists
without its file, and a file never outlives its job.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import aclosing
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pluggy
from attrs import field, frozen

from .chunks import audio_chunks, resume
from .errors import CesarError
from .events import JobEvent, JobEvents
from .following import Following
from .housekeeping import prune
from .ids import check_idempotency_key, check_job_id
from .jobs import DEFAULT_MAX_ATTEMPTS, Job, JobSource, JobState, NewJob, SourceKind, new_job_id
from .probing import probe_file, probe_upload
from .protocols import JobStore, Page, Storage
from .settings import DEFAULT_INLINE_AUDIO_BYTES, Settings
from .storage import open_storage
from .storage.keys import audio_key, check_size, key_job_id
from .storage.scratch import CopiesLocally
from .stores import open_store
from .transcript import TranscribeOptions
from .url_guard import FetchPolicy, check_url, url_filename

#: Finished jobs are kept this long by default before :meth:`JobService.prune` removes them.
DEFAULT_RETENTION = timedelta(hours=24)


@frozen
class StoredAudio:
    """Audio received for a job not created yet (:meth:`JobService.store_audio`).

    Either it is in storage under ``source.location``, or, for an inline source, its bytes
    are ``data``, held here until the job is created with them.
    """

    source: JobSource
    data: bytes | None = field(default=None, repr=False)


class JobNotFoundError(CesarError):
    """No job has this id (it never existed, or was deleted or pruned)."""

    code = "job_not_found"


class JobService(Following):
    """Submit, inspect, cancel and delete jobs, and follow them live (:class:`Following`)."""

    def __init__(
        self,
        store: JobStore,
        storage: Storage,
        fetch: FetchPolicy | None = None,
        events: JobEvents | None = None,
        *,
        inline_bytes: int = DEFAULT_INLINE_AUDIO_BYTES,
        keep_audio: bool = False,
    ) -> None:
        self.store = store
        self.storage = storage
        self.fetch = fetch or FetchPolicy()
        self.events = events or JobEvents(store)
        #: Uploads up to this size stay with their job in the store; 0 sends all to storage.
        self.inline_bytes = inline_bytes
        #: New jobs keep their audio once they end, until deleted or pruned.
        self.keep_audio = keep_audio

    @classmethod
    async def open(cls, settings: Settings, manager: pluggy.PluginManager) -> JobService:
        """The store and the storage the settings name (SQLite and files in the data
        directory by default), opened through ``manager``'s plugins, which are also told of
        the jobs' events."""
        storage = await open_storage(settings.storage_url, manager)
        if isinstance(storage, CopiesLocally):  # where a restart finds what a crash left
            storage.scratch_dir = settings.cache_dir / "scratch"
        try:
            store = await open_store(settings.store_url, manager)
        except BaseException:
            await storage.close()
            raise
        events = JobEvents(store, settings, manager)
        return cls(
            store,
            storage,
            FetchPolicy.from_settings(settings),
            events,
            inline_bytes=settings.inline_audio_bytes,
            keep_audio=settings.keep_audio,
        )

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
        ``check_audio``, a file that is not audio by its headers is refused now (an
        :class:`~cesar_core.errors.AudioError`); one cut short fails its job when decoded.

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
    ) -> StoredAudio:
        """The first half of :meth:`submit_file`, for callers that learn the job's options
        only after the audio (a multipart upload whose fields follow the file): receive the
        audio under a new job id. Pass the result to :meth:`submit_stored`, or to
        :meth:`discard` if the job will not be created.

        Audio that ends within :attr:`inline_bytes` is kept in memory, to be written with
        its job in one transaction of the store; a longer stream goes on to storage, so at
        most that much is ever held.
        """
        key = audio_key(new_job_id(), filename)
        async with aclosing(audio_chunks(audio)) as chunks:
            return await self._receive(chunks, key, filename, max_bytes, check_audio)

    async def _receive(
        self,
        chunks: AsyncIterator[bytes],
        key: str,
        filename: str | None,
        max_bytes: int | None,
        check_audio: bool,
    ) -> StoredAudio:
        head: builtins.list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            check_size(size, max_bytes)
            head.append(chunk)
            if size > self.inline_bytes:
                break
        else:
            data = b"".join(head)
            stored = StoredAudio(
                JobSource(
                    kind=SourceKind.UPLOAD,
                    location=key,
                    filename=filename,
                    size=size,
                    inline=True,
                    keep=self.keep_audio,
                ),
                data,
            )
            if check_audio:
                await probe_upload(data, filename)
            return stored
        size = await self.storage.save(key, resume(head, chunks), max_bytes=max_bytes)
        stored = StoredAudio(
            JobSource(
                kind=SourceKind.UPLOAD,
                location=key,
                filename=filename,
                size=size,
                keep=self.keep_audio,
            )
        )
        if check_audio:
            try:
                async with self.storage.local_path(key) as path:
                    await probe_file(path, filename)
            except BaseException:
                await self.discard(stored)
                raise
        return stored

    async def submit_stored(
        self,
        stored: StoredAudio,
        *,
        options: TranscribeOptions | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> tuple[Job, bool]:
        """Queue a job for audio :meth:`store_audio` received; on any failure (or an
        idempotency key already used) the audio is removed."""
        job_id = key_job_id(stored.source.location)
        try:
            check_idempotency_key(idempotency_key)
            await self._check_webhook(webhook_url)
            new = NewJob(
                id=job_id,
                source=stored.source,
                audio=stored.data,
                options=options or TranscribeOptions(),
                metadata=metadata or {},
                idempotency_key=idempotency_key,
                webhook_url=webhook_url,
                max_attempts=max_attempts,
            )
            job, created = await self.store.create(new)
        except BaseException:
            await self.discard(stored)
            raise
        if not created:  # another request with the same key won the race
            await self.discard(stored)
        return job, created

    async def discard(self, stored: StoredAudio) -> None:
        """Remove audio received for a job that was not created (inline audio needs
        nothing: it is only held in memory)."""
        if not stored.source.inline:
            await self.storage.delete_job(key_job_id(stored.source.location))

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
        check_idempotency_key(idempotency_key)
        await asyncio.to_thread(check_url, url, self.fetch)
        await self._check_webhook(webhook_url)
        new = NewJob(
            source=JobSource(
                kind=SourceKind.URL,
                location=url,
                filename=url_filename(url),
                keep=self.keep_audio,
            ),
            options=options or TranscribeOptions(),
            metadata=metadata or {},
            idempotency_key=idempotency_key,
            webhook_url=webhook_url,
            max_attempts=max_attempts,
        )
        return await self.store.create(new)

    async def get(self, job_id: str, *, include_result: bool = True) -> Job:
        """The job; raises :class:`JobNotFoundError` for an unknown id, and
        :class:`~cesar_core.errors.InvalidJobIdError` for one no job could have."""
        job = await self.store.get(check_job_id(job_id), include_result=include_result)
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
        job, _ = await self._cancel(job_id)
        return job

    async def _cancel(self, job_id: str) -> tuple[Job, bool]:
        """The job after cancelling it, and whether this call is what cancelled it."""
        before = await self.get(job_id, include_result=False)
        if before.state.terminal:
            return before, False
        job = await self.store.cancel(job_id)
        if job is None:
            raise JobNotFoundError(f"No job has the id {job_id!r}.")
        if job.state is not JobState.CANCELLED:  # it finished meanwhile
            return job, False
        if job.source.files_end_with_job:
            await self.storage.delete_job(job_id)
        self.events.emit(JobEvent.for_job(job, job.state))
        return job, True

    async def delete(self, job_id: str) -> bool:
        """Cancel the job if it is unfinished, then forget it and its files.

        Idempotent: deleting an unknown job returns False and touches nothing, storage
        included (only a job the store knows says which files are its own).
        """
        try:
            job, _ = await self._cancel(job_id)
        except JobNotFoundError:
            return False
        return await self._forget(job)

    async def cancel_or_delete(self, job_id: str) -> Job | None:
        """Stop an unfinished job, forget a finished one: the job API's ``DELETE``.

        A queued or running job is cancelled and kept (returned, so its owner sees it
        end); a finished one is deleted with its files (None), as is a job that finished
        while being cancelled. An unknown id is already gone (None).
        """
        try:
            job, cancelled = await self._cancel(job_id)
        except JobNotFoundError:
            return None
        if cancelled:
            return job
        await self._forget(job)
        return None

    async def _forget(self, job: Job) -> bool:
        deleted = await self.store.delete(job.id)
        if job.source.uses_storage:
            await self.storage.delete_job(job.id)
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
        """Delete jobs finished more than ``retention`` ago, and their files (what the
        housekeeping of every node does periodically: :mod:`cesar_core.housekeeping`)."""
        return await prune(self.store, self.storage, retention)
