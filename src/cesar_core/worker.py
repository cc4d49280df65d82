"""The worker: claim a job, keep its lease alive, transcribe in a thread, finish it once.

Each of ``concurrency`` slots loops: claim the oldest runnable job with a lease, run the
transcriber in a dedicated thread (so the event loop stays free for heartbeats), and
finish the job only while still holding the lease. A heartbeat task renews the lease and
writes progress (at most once per ``heartbeat_seconds``); when the store refuses a
heartbeat, the job was cancelled or taken over, and the transcription is stopped at its
next progress report. Another task returns expired leases of dead workers to the queue.
With a store that offers it (:class:`~cesar_core.protocols.ChainingStore`), a slot
completes a job and claims its next in one step: one round trip per job, not two.

On :meth:`Worker.request_stop` (SIGTERM) the worker stops claiming, lets running jobs
finish for ``grace_seconds``, then hands the rest back to the queue without counting the
attempt.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, suppress
from typing import Any

from attrs import define, frozen

from . import live
from .errors import CesarError
from .events import JobEvent, JobEvents
from .fetch import DownloadStopped, FetchPolicy
from .housekeeping import Housekeeper, retention_of
from .inputs import job_input
from .jobs import Job, JobError, JobState
from .packing import Packer
from .protocols import (
    AudioInput,
    BatchClaimingStore,
    ChainingStore,
    JobNotifier,
    JobStore,
    LiveStore,
    Storage,
    Transcriber,
)
from .transcript import DetectedLanguage, Transcript

logger = logging.getLogger(__name__)


@frozen(kw_only=True)
class WorkerConfig:
    """How a worker paces itself. Defaults suit one machine and the SQLite store."""

    #: Jobs run at once, each in its own thread (they share one warm model).
    concurrency: int = 1
    #: How long a claim lasts without a heartbeat; a dead worker's job waits this long.
    lease_seconds: float = 30.0
    #: How often the lease is renewed and progress written.
    heartbeat_seconds: float = 2.0
    #: How long an idle slot waits before asking for work again. Stores that announce new
    #: jobs (in-process submissions, PostgreSQL's LISTEN/NOTIFY) wake it sooner.
    poll_seconds: float = 0.5
    #: How often expired leases are returned to the queue.
    sweep_seconds: float = 5.0
    #: Retry backoff: ``base * 2 ** (attempt - 1)``, capped, with jitter.
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    #: After a stop request, how long running jobs may go on before being handed back.
    grace_seconds: float = 30.0
    #: Then how long job-event handlers still running (webhooks) may go on.
    drain_seconds: float = 10.0
    #: Finished jobs older than this are pruned, with their files, while the worker runs;
    #: 0 keeps them (the default here; ``cesar serve`` and ``cesar worker`` pass the
    #: ``retention_hours`` setting).
    retention_hours: float = 0.0
    #: Short jobs per shared window of the model (1: none share; see
    #: :mod:`cesar_core.packing`), and how long a lone short job waits for company.
    pack_max_clips: int = 1
    pack_wait_seconds: float = 0.0


class JobAborted(Exception):
    """Raised inside the transcription thread to stop a job the worker gave up on."""


@define
class _Running:
    job: Job
    token: str
    abort: threading.Event
    progress: int = 0
    handback: bool = False
    #: The job claimed together with this one's completion, for the slot to run next.
    next: Job | None = None
    segments: live.LiveSegments | None = None  # published while it runs (a LiveStore)
    detected: DetectedLanguage | None = None  # found before it ran alone (packing): once


FinishedCallback = Callable[[Job], Awaitable[None]]


class _Unknown:
    """The job's fate after a lost lease: decided elsewhere, to be read from the store."""


_UNKNOWN = _Unknown()
#: What one attempt led to: a terminal state this worker set (and the error), None for
#: back in the queue, or ``_UNKNOWN``.
_Outcome = tuple[JobState, JobError | None] | None | _Unknown


def default_worker_name() -> str:
    """Host, process and a random suffix: unique, and readable in ``cesar jobs show``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs jobs from ``store`` with ``transcriber``, reading uploads from ``storage``."""

    def __init__(
        self,
        store: JobStore,
        storage: Storage,
        transcriber: Transcriber,
        config: WorkerConfig | None = None,
        *,
        name: str | None = None,
        on_finished: FinishedCallback | None = None,
        fetch: FetchPolicy | None = None,
        events: JobEvents | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.transcriber = transcriber
        self.config = config or WorkerConfig()
        self.name = name or default_worker_name()
        self.on_finished = on_finished
        self.fetch = fetch or FetchPolicy()
        self.events = events or JobEvents(store)
        self.completed = 0
        # What the store also offers, found once: a runtime protocol check is slow enough
        # to show in the cost of a short job.
        self._notifier = store if isinstance(store, JobNotifier) else None
        self._chaining = store if isinstance(store, ChainingStore) else None
        self._live = store if isinstance(store, LiveStore) else None
        self._packer: Packer | None = None
        if self.config.pack_max_clips > 1 and isinstance(store, BatchClaimingStore):
            config = self.config
            self._packer = Packer(
                self,
                store,
                _Running,
                _UNKNOWN,
                max_clips=config.pack_max_clips,
                wait_seconds=config.pack_wait_seconds,
            )
        self._running: dict[str, _Running] = {}
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=self.config.concurrency, thread_name_prefix="cesar-job"
        )

    def request_stop(self) -> None:
        """Stop claiming; running jobs get ``grace_seconds`` to finish. Thread-safe."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def run(self, *, until_idle: bool = False) -> None:
        """Work until :meth:`request_stop` (or, with ``until_idle``, until no job is left)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        sweeper = asyncio.create_task(self._sweep())
        watchdog = asyncio.create_task(self._grace())
        # Start-up clean-up of what crashed processes left, then pruning by retention.
        upkeep = Housekeeper(self.store, self.storage, retention_of(self.config.retention_hours))
        housekeeping = asyncio.create_task(upkeep.run())
        logger.info("worker %s started with %d slot(s)", self.name, self.config.concurrency)
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.config.concurrency):
                    group.create_task(self._slot(until_idle))
        finally:
            for task in (sweeper, watchdog, housekeeping):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await self.events.drain(self.config.drain_seconds)
            self._executor.shutdown(wait=False, cancel_futures=True)
            logger.info("worker %s stopped after %d job(s)", self.name, self.completed)

    async def _slot(self, until_idle: bool) -> None:
        assert self._stop is not None
        job: Job | None = None
        while not self._stop.is_set():
            if job is None:
                try:
                    job = await self.store.claim(self.name, self.config.lease_seconds)
                except Exception:
                    logger.exception("claiming a job failed; retrying")
                if job is None:
                    if until_idle:
                        return
                    await self._idle()
                    continue
            # The next job, when the store claimed one with it.
            job = await (self._packer.run(job) if self._packer else self._run(job))
        if job is not None:  # claimed with the last completion, just before the stop
            await self._hand_back(job)

    async def _hand_back(self, job: Job) -> None:
        assert job.lease is not None
        try:
            if await self.store.release(job.id, job.lease.token):
                logger.info("job %s handed back to the queue unstarted", job.id)
        except Exception:
            logger.exception("job %s: handing it back failed; its lease will expire", job.id)

    async def _idle(self) -> None:
        """Wait ``poll_seconds`` for work, less when the store says a job arrived (a
        :class:`~cesar_core.protocols.JobNotifier`) or the worker is asked to stop."""
        assert self._stop is not None
        waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._stop.wait())}
        if self._notifier is not None:
            waits.add(asyncio.ensure_future(self._notifier.wait_for_jobs(self.config.poll_seconds)))
        try:
            await asyncio.wait(
                waits, timeout=self.config.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for wait in waits:
                wait.cancel()

    async def _run(self, job: Job) -> Job | None:
        """Run ``job`` to its end; return the job claimed along with its completion."""
        assert job.lease is not None
        running = _Running(job=job, token=job.lease.token, abort=threading.Event())
        running.segments = live.LiveSegments.start(self._live, job, running.token)
        self._running[job.id] = running
        beat = asyncio.create_task(self._heartbeat(running))
        outcome: _Outcome = _UNKNOWN
        try:
            outcome = await self._attempt(running)
        except Exception:
            logger.exception("job %s: the worker failed while finishing it", job.id)
        finally:
            beat.cancel()
            with suppress(asyncio.CancelledError):
                await beat
            await live.stop(running.segments)
            del self._running[job.id]
        await self._after(job, outcome)
        return running.next

    async def _attempt(self, running: _Running) -> _Outcome:
        """Run the job once; return the terminal state this worker put it in (with the
        error), None when it went back to the queue, or ``_UNKNOWN`` when the lease was
        lost (someone else decided)."""
        job, token, store = running.job, running.token, self.store
        loop = asyncio.get_running_loop()
        try:
            async with self._audio(job, running.abort.is_set) as audio:
                result: Transcript = await loop.run_in_executor(
                    self._executor, self._transcribe, audio, running
                )
        except (JobAborted, DownloadStopped):
            if running.handback and await store.release(job.id, token):
                logger.info("job %s handed back to the queue", job.id)
                return None
            return _UNKNOWN
        except CesarError as exc:
            error = JobError(code=exc.code, message=str(exc))
            if exc.permanent:
                logger.warning("job %s failed: %s", job.id, exc)
                return (
                    (JobState.ERROR, error) if await store.fail(job.id, token, error) else _UNKNOWN
                )
            return await self._retry(job, token, error)
        except Exception as exc:
            logger.exception("job %s: unexpected error", job.id)
            error = JobError(code="internal_error", message=f"{type(exc).__name__}: {exc}")
            return await self._retry(job, token, error)
        if await self._complete(running, result):
            self.completed += 1
            return (JobState.COMPLETED, None)
        logger.warning("job %s finished after its lease was lost; result dropped", job.id)
        return _UNKNOWN

    async def _complete(self, running: _Running, result: Transcript) -> bool:
        """Complete the job; a store that can also claims the slot's next job in the same
        step, unless the worker is stopping."""
        assert self._stop is not None
        job, token = running.job, running.token
        if self._chaining is None or self._stop.is_set():
            return await self.store.complete(job.id, token, result)
        completed, running.next = await self._chaining.complete_and_claim(
            job.id, token, result, self.name, self.config.lease_seconds
        )
        return completed

    async def _retry(self, job: Job, token: str, error: JobError) -> _Outcome:
        base = self.config.retry_base_seconds * 2 ** max(0, job.attempts - 1)
        delay = min(self.config.retry_max_seconds, base) * random.uniform(0.5, 1.0)
        state = await self.store.retry(job.id, token, error, delay)
        if state is None:
            return _UNKNOWN
        if state is JobState.ERROR:
            logger.warning("job %s failed for good: %s", job.id, error.message)
            return (state, error)
        logger.warning("job %s: %s (retry in %.1f s)", job.id, error.message, delay)
        return None

    def _transcribe(self, audio: AudioInput, running: _Running) -> Transcript:
        def progress(fraction: float) -> None:
            if running.abort.is_set():
                raise JobAborted
            running.progress = max(running.progress, min(99, int(fraction * 100)))

        if running.abort.is_set():
            raise JobAborted
        options, segments = running.job.options, running.segments
        return live.run(self.transcriber, audio, options, progress, segments, running.detected)

    def _audio(self, job: Job, stop: Callable[[], bool]) -> AbstractAsyncContextManager[AudioInput]:
        """The job's audio (:func:`~cesar_core.inputs.job_input`); a download stops with
        :class:`~cesar_core.fetch.DownloadStopped` once ``stop()`` turns true."""
        return job_input(job, self.storage, self.fetch, stop)

    async def _heartbeat(self, running: _Running) -> None:
        sent = 0
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            progress = running.progress if running.progress != sent else None
            try:
                alive = await self.store.heartbeat(
                    running.job.id, running.token, self.config.lease_seconds, progress
                )
            except Exception:
                logger.exception("job %s: heartbeat failed; trying again", running.job.id)
                continue
            if not alive:
                logger.info("job %s was cancelled or taken over; stopping it", running.job.id)
                running.abort.set()
                return
            sent = progress if progress is not None else sent

    async def _after(self, job: Job, outcome: _Outcome) -> None:
        """Announce what this worker decided, then remove the files of a finished job.

        When the lease was lost the job's fate is only known to the store: its files go
        if it ended (cancelled, deleted), and stay if another worker runs it. Audio kept
        for playback (``source.keep``) goes only with its job."""
        try:
            finished = isinstance(outcome, tuple)
            final = None
            if outcome is _UNKNOWN or self.on_finished is not None or job.source.keep:
                final = await self.store.get(job.id, include_result=self.on_finished is not None)
                finished = finished or final is None or final.state.terminal
            if isinstance(outcome, tuple):
                self.events.emit(JobEvent.for_job(job, *outcome))
            if finished and job.source.uses_storage and (final is None or not job.source.keep):
                await self.storage.delete_job(job.id)
            if final is not None and final.state.terminal and self.on_finished is not None:
                await self.on_finished(final)
        except Exception:
            logger.exception("job %s: cleaning up after it failed", job.id)

    async def _sweep(self) -> None:
        while True:
            try:
                released = await self.store.release_expired()
                if released:
                    logger.info("returned %d job(s) with expired leases", len(released))
                for job in released:
                    if job.state is JobState.ERROR:
                        self.events.emit(JobEvent.for_job(job, job.state, job.error))
                for job in released:
                    if job.state is JobState.ERROR and job.source.files_end_with_job:
                        await self.storage.delete_job(job.id)
            except Exception:
                logger.exception("sweeping expired leases failed")
            await asyncio.sleep(self.config.sweep_seconds)

    async def _grace(self) -> None:
        assert self._stop is not None
        await self._stop.wait()
        await asyncio.sleep(self.config.grace_seconds)
        for running in list(self._running.values()):
            logger.info("job %s: grace period over, handing it back", running.job.id)
            running.handback = True
            running.abort.set()
