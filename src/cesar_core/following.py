"""Following jobs: the events of one job, and the state changes of the newest jobs.

:func:`follow` is what the service offers its adapters: the events of one job, in order, from
a point a reconnecting client names (the number of segments it has seen), to its end; and
:func:`follow_all` the changes of the newest jobs, for lists. The HTTP adapter frames them as
Server-Sent Events, the CLI prints them.

However many clients follow in one process, the store is read as for one: a job's followers
share a :class:`JobWatch`, the list's followers a :class:`ListWatch` (one per page size).
Each reads at every wake-up of the store (or poll) and keeps what it read; every follower
works out its own events from that shared state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from .convert import to_dict
from .jobs import Job, JobState
from .live import LIST_SECONDS, POLL_SECONDS, LiveEvent, segment_data, wait_for_change
from .protocols import JobStore, LiveStore
from .transcript import Segment

logger = logging.getLogger(__name__)

K = TypeVar("K")
W = TypeVar("W", bound="SharedRead")


def _status(job: Job) -> LiveEvent:
    return LiveEvent(
        event="status",
        data={"id": job.id, "status": job.state.value, "attempts": job.attempts},
    )


def _ending(job: Job) -> LiveEvent:
    data: dict[str, Any] = {"id": job.id, "status": job.state.value}
    if job.state is JobState.COMPLETED and job.result is not None:
        data.update(text=job.result.text, language=job.result.language)
        data.update(duration=job.result.duration)
    if job.error is not None:
        data["error"] = to_dict(job.error)
    return LiveEvent(event=job.state.value, data=data)


class SharedRead:
    """A task that reads something from the store at each change, for any number of
    followers in this process; ``version`` counts its reads, and followers wait with
    :meth:`newer_than` for one they have not seen."""

    def __init__(self, store: Any, name: str, poll: float = POLL_SECONDS) -> None:
        self.store = store
        self.poll = poll
        self.version = 0
        self.followers = 0
        self._name = name
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    def stop(self) -> None:
        """Stop reading (without waiting: a follower's stream may be cancelled already,
        and could not wait)."""
        if self._task is not None:
            self._task.cancel()

    @property
    def ended(self) -> bool:
        """Whether nothing more will change (never, for a list)."""
        return False

    async def _run(self) -> None:
        while True:
            try:
                await self._read()
            except Exception:  # a store that fails now may answer at the next turn
                logger.exception("%s: reading the store for followers failed", self._name)
            if self.ended:
                return
            await self._wait()

    async def _read(self) -> None:
        raise NotImplementedError

    async def _wait(self) -> None:
        raise NotImplementedError

    def _bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def newer_than(self, version: int) -> None:
        """Return once the state read is newer than ``version``."""
        while self.version <= version:
            await self._changed.wait()


class JobWatch(SharedRead):
    """One job as this process last read it, shared by all of its followers here.

    ``segments`` are the live segments read so far, from the first (a new attempt starts
    them afresh).
    """

    def __init__(self, store: Any, job_id: str, poll: float = POLL_SECONDS) -> None:
        super().__init__(store, f"cesar-watch-{job_id}", poll)
        self.job_id = job_id
        self.job: Job | None = None
        self.segments: list[Segment] = []

    @property
    def ended(self) -> bool:
        """Whether the last read found the job ended (or gone): nothing more will change."""
        return self.version > 0 and (self.job is None or self.job.state.terminal)

    async def _wait(self) -> None:
        await wait_for_change(self.store, self.job_id, self.poll)

    async def _read(self) -> None:
        live = self.store if isinstance(self.store, LiveStore) else None
        job = await self.store.get(self.job_id, include_result=False)
        if job is not None and self.job is not None and job.attempts != self.job.attempts:
            self.segments = []  # a new attempt: its segments start again
        if job is not None and job.state is JobState.PROCESSING and live is not None:
            self.segments += await live.live_segments(self.job_id, len(self.segments))
        if job is not None and job.state is JobState.COMPLETED:
            job = await self.store.get(self.job_id) or job
        self.job = job
        self._bump()


class ListWatch(SharedRead):
    """The newest ``limit`` jobs as this process last listed them, shared by every list
    follower here (each open web page is one). Changes within :data:`LIST_SECONDS` of each
    other make one read: a worker running many short jobs would otherwise have the list
    read for each."""

    def __init__(self, store: Any, limit: int, poll: float = POLL_SECONDS) -> None:
        super().__init__(store, f"cesar-list-{limit}", poll)
        self.limit = limit
        self.jobs: list[Job] = []

    async def _wait(self) -> None:
        await wait_for_change(self.store, None, self.poll)
        await asyncio.sleep(LIST_SECONDS)

    async def _read(self) -> None:
        self.jobs = list((await self.store.list(limit=self.limit)).jobs)
        self._bump()


async def follow(
    store: Any, job_id: str, *, after: int = 0, poll: float = POLL_SECONDS
) -> AsyncIterator[LiveEvent]:
    """The events of job ``job_id`` from its ``after``-th segment on, until it ends.

    A status event comes first (and at each change of state), progress at each change,
    each segment once, and the ending last: a completed job's remaining segments come from
    its result, so the segments a client sees, in order, are the transcript's. A job
    deleted meanwhile ends the stream with an ``error`` (``job_not_found``). A job that
    ended already gets no status event: its remaining segments, progress, and ending.
    """
    watch = JobWatch(store, job_id, poll)
    watch.start()
    try:
        async for event in follow_watch(watch, after):
            yield event
    finally:
        watch.stop()


async def follow_watch(watch: JobWatch, after: int = 0) -> AsyncIterator[LiveEvent]:
    """:func:`follow`, from a :class:`JobWatch` that may be shared."""
    state: JobState | None = None
    progress: int | None = None
    sent = after
    version = 0
    while True:
        await watch.newer_than(version)
        version, job = watch.version, watch.job
        if job is None:
            error = {"code": "job_not_found", "message": f"Job {watch.job_id} was deleted."}
            data = {"id": watch.job_id, "status": "error", "error": error}
            yield LiveEvent(event="error", data=data)
            return
        if job.state is not state and not job.state.terminal:  # the ending says it
            state = job.state
            yield _status(job)
        if job.state is JobState.PROCESSING:
            for segment in watch.segments[sent:]:
                sent += 1
                yield LiveEvent(event="segment", data=segment_data(segment), id=str(sent))
        if job.state is JobState.COMPLETED:
            for segment in job.result.segments[sent:] if job.result else ():
                sent += 1
                yield LiveEvent(event="segment", data=segment_data(segment), id=str(sent))
        if job.progress != progress:
            progress = job.progress
            yield LiveEvent(event="progress", data={"id": job.id, "progress": job.progress})
        if job.state.terminal:
            yield _ending(job)
            return


async def follow_all(
    store: Any, *, limit: int = 100, poll: float = POLL_SECONDS
) -> AsyncIterator[LiveEvent]:
    """State changes of the newest ``limit`` jobs, for lists: a ``job`` event (id, status,
    progress) for each job as first seen, then at each change of its status or progress."""
    watch = ListWatch(store, limit, poll)
    watch.start()
    try:
        async for event in follow_list(watch):
            yield event
    finally:
        watch.stop()


async def follow_list(watch: ListWatch) -> AsyncIterator[LiveEvent]:
    """:func:`follow_all`, from a :class:`ListWatch` that may be shared."""
    seen: dict[str, tuple[JobState, int]] = {}
    version = 0
    while True:
        await watch.newer_than(version)
        version, jobs = watch.version, watch.jobs
        for job in reversed(jobs):
            now = (job.state, job.progress)
            if seen.get(job.id) != now:
                seen[job.id] = now
                yield LiveEvent(
                    event="job",
                    data={"id": job.id, "status": job.state.value, "progress": job.progress},
                )
        current = {job.id for job in jobs}
        for gone in [job_id for job_id in seen if job_id not in current]:
            del seen[gone]


class Following:
    """The service's side of live jobs (mixed into :class:`~cesar_core.service.JobService`):
    followers in this process share one reader per job, and one per list size."""

    store: JobStore

    async def get(self, job_id: str, *, include_result: bool = True) -> Job:
        raise NotImplementedError

    async def follow(self, job_id: str, *, after: int = 0) -> AsyncIterator[LiveEvent]:
        """The events of a job (:func:`follow`); an unknown job is refused now (the
        service's ``JobNotFoundError``), before any event is sent."""
        await self.get(job_id, include_result=False)
        watches: dict[str, JobWatch] = self.__dict__.setdefault("_live_watches", {})
        return _shared(
            watches,
            job_id,
            lambda: JobWatch(self.store, job_id),
            lambda watch: follow_watch(watch, after),
        )

    def follow_all(self, *, limit: int = 100) -> AsyncIterator[LiveEvent]:
        """State changes of the newest ``limit`` jobs (:func:`follow_all`)."""
        watches: dict[int, ListWatch] = self.__dict__.setdefault("_list_watches", {})
        return _shared(watches, limit, lambda: ListWatch(self.store, limit), follow_list)


async def _shared(
    watches: dict[K, W],
    key: K,
    make: Callable[[], W],
    events_of: Callable[[W], AsyncIterator[LiveEvent]],
) -> AsyncIterator[LiveEvent]:
    """``events_of`` the watch of ``key`` in ``watches``: made and started by the first
    follower, stopped by the last."""
    watch = watches.get(key)
    if watch is None or watch.ended:
        watch = watches[key] = make()
        watch.start()
    watch.followers += 1
    try:
        async for event in events_of(watch):
            yield event
    finally:
        watch.followers -= 1
        if watch.followers == 0:
            if watches.get(key) is watch:
                del watches[key]
            watch.stop()
