"""Live jobs: segments published while a job runs, and one stream of a job's events.

A worker's transcriber reports each segment as soon as it is transcribed
(:data:`~cesar_core.protocols.SegmentsCallback`); :class:`LiveSegments` collects them in the
transcription thread and publishes them through the store
(:class:`~cesar_core.protocols.LiveStore`) at most every :data:`PUBLISH_SECONDS`, without
their words and with their text bounded, so that followers on any node see them, and a long
job cannot grow its record without limit while it runs.

:func:`follow` is what the service offers its adapters: the events of one job, in order, from
a point a reconnecting client names (the number of segments it has seen), to its end. The HTTP
adapter frames them as Server-Sent Events, the CLI prints them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress
from typing import Any

from attrs import evolve, frozen

from .convert import to_dict
from .jobs import Job, JobState
from .protocols import (
    AudioInput,
    JobStore,
    LiveStore,
    ProgressCallback,
    Transcriber,
    transcribe_with_segments,
)
from .transcript import Segment, TranscribeOptions, Transcript

logger = logging.getLogger(__name__)

#: A running job's new segments are written at most this often (the throttle).
PUBLISH_SECONDS = 0.5
#: A live segment's text is cut to this many characters (the final result keeps it whole).
MAX_SEGMENT_TEXT = 2000
#: Segments published per job at most; later ones appear with the result.
MAX_LIVE_SEGMENTS = 20_000
#: A follower of all jobs lists them at most this often, however fast jobs change.
LIST_SECONDS = 0.25
#: How often a follower reads the job when no wake-up comes (another process's writes on
#: SQLite, a store without :class:`LiveStore`).
POLL_SECONDS = 1.0


def _live(segment: Segment) -> Segment:
    """What is published of a segment: no words nor tokens, a bounded text."""
    return evolve(segment, words=(), tokens=(), text=segment.text[:MAX_SEGMENT_TEXT])


class LiveSegments:
    """The segments of one running job on their way to the store."""

    def __init__(self, store: LiveStore, job_id: str, token: str) -> None:
        self.store = store
        self.job_id = job_id
        self.token = token
        self._pending: list[Segment] = []
        self._count = 0
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, store: object, job: Job, token: str) -> LiveSegments | None:
        """Publish ``job``'s segments while it runs, when ``store`` keeps them."""
        if not isinstance(store, LiveStore):
            return None
        live = cls(store, job.id, token)
        live._task = asyncio.create_task(live._run(), name=f"cesar-live-{job.id}")
        return live

    def add(self, segments: Sequence[Segment]) -> None:
        """Take new segments (from the transcription thread)."""
        with self._lock:
            room = MAX_LIVE_SEGMENTS - self._count
            taken = [_live(segment) for segment in segments[: max(0, room)]]
            self._pending.extend(taken)
            self._count += len(taken)

    async def flush(self) -> None:
        """Write what is pending now."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending and not await self.store.publish(self.job_id, self.token, pending):
            logger.debug("job %s: live segments not kept (lease lost)", self.job_id)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_SECONDS)
            try:
                await self.flush()
            except Exception:
                logger.exception("job %s: publishing live segments failed", self.job_id)

    async def stop(self) -> None:
        """Stop publishing (the job ended: its result holds every segment)."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task


async def stop(live: LiveSegments | None) -> None:
    """Stop ``live`` (None: nothing was published)."""
    if live is not None:
        await live.stop()


def run(
    transcriber: Transcriber,
    audio: AudioInput,
    options: TranscribeOptions,
    progress: ProgressCallback,
    live: LiveSegments | None,
) -> Transcript:
    """Run ``transcriber``, handing it ``live``'s callback when it takes one (a
    third-party transcriber without ``on_segments`` is called as before)."""
    return transcribe_with_segments(
        transcriber, audio, options, progress, None if live is None else live.add
    )


@frozen(kw_only=True)
class LiveEvent:
    """One event of a job's stream: ``status``, ``progress``, ``segment``, then one of
    ``completed``, ``error`` or ``cancelled``.

    ``id`` is set on segments only: the number of segments seen with this one, which a
    client that reconnects names (``Last-Event-ID``) to get only what it missed.
    """

    event: str
    data: dict[str, Any]
    id: str | None = None


def segment_data(segment: Segment) -> dict[str, Any]:
    """A segment as an event carries it: id, times, text, and the speaker when known."""
    data: dict[str, Any] = {
        "id": segment.id,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
    }
    speaker = getattr(segment, "speaker", None)
    if speaker is not None:
        data["speaker"] = speaker
    return data


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


async def wait_for_change(store: object, job_id: str | None, timeout: float) -> None:
    """Wait for the store's wake-up where it has one, else for ``timeout``."""
    if isinstance(store, LiveStore):
        await store.wait_for_change(job_id, timeout)
    else:
        await asyncio.sleep(timeout)


class JobWatch:
    """One job as this process last read it, shared by all of its followers here.

    However many clients follow a job, one task reads it from the store at each wake-up
    (or poll), so fifty followers cost the store what one does; each follower then works
    out its own events from the shared state. ``segments`` are the live segments read so
    far, from the first (a new attempt starts them afresh).
    """

    def __init__(self, store: Any, job_id: str, poll: float = POLL_SECONDS) -> None:
        self.store = store
        self.job_id = job_id
        self.poll = poll
        self.job: Job | None = None
        self.segments: list[Segment] = []
        self.version = 0
        self.followers = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def ended(self) -> bool:
        """Whether the last read found the job ended (or gone): nothing more will change."""
        return self.version > 0 and (self.job is None or self.job.state.terminal)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"cesar-watch-{self.job_id}")

    def stop(self) -> None:
        """Stop reading (without waiting: a follower's stream may be cancelled already,
        and could not wait)."""
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            try:
                await self._read()
            except Exception:  # a store that fails now may answer at the next turn
                logger.exception("reading job %s for its followers failed", self.job_id)
            if self.ended:
                return
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
        self._publish(job)

    def _publish(self, job: Job | None) -> None:
        self.job = job
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def newer_than(self, version: int) -> None:
        """Return once the state read is newer than ``version``."""
        while self.version <= version:
            await self._changed.wait()


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
    progress) for each job as first seen, then at each change of its status or progress.
    Changes within :data:`LIST_SECONDS` of each other come together (a worker running many
    short jobs would otherwise have every follower list the jobs for each)."""
    seen: dict[str, tuple[JobState, int]] = {}
    while True:
        page = await store.list(limit=limit)
        for job in reversed(page.jobs):
            now = (job.state, job.progress)
            if seen.get(job.id) != now:
                seen[job.id] = now
                yield LiveEvent(
                    event="job",
                    data={"id": job.id, "status": job.state.value, "progress": job.progress},
                )
        current = {job.id for job in page.jobs}
        for gone in [job_id for job_id in seen if job_id not in current]:
            del seen[gone]
        await wait_for_change(store, None, poll)
        await asyncio.sleep(LIST_SECONDS)  # a burst of changes (short jobs) makes one read


class Following:
    """The service's side of live jobs (mixed into :class:`~cesar_core.service.JobService`)."""

    store: JobStore

    async def get(self, job_id: str, *, include_result: bool = True) -> Job:
        raise NotImplementedError

    async def follow(self, job_id: str, *, after: int = 0) -> AsyncIterator[LiveEvent]:
        """The events of a job (:func:`follow`); an unknown job is refused now (the
        service's ``JobNotFoundError``), before any event is sent. Followers of one job in
        this process share one :class:`JobWatch`."""
        await self.get(job_id, include_result=False)
        return self._follow(job_id, after)

    async def _follow(self, job_id: str, after: int) -> AsyncIterator[LiveEvent]:
        watches: dict[str, JobWatch] = self.__dict__.setdefault("_live_watches", {})
        watch = watches.get(job_id)
        if watch is None or watch.ended:
            watch = watches[job_id] = JobWatch(self.store, job_id)
            watch.start()
        watch.followers += 1
        try:
            async for event in follow_watch(watch, after):
                yield event
        finally:
            watch.followers -= 1
            if watch.followers == 0:
                if watches.get(job_id) is watch:
                    del watches[job_id]
                watch.stop()

    def follow_all(self, *, limit: int = 100) -> AsyncIterator[LiveEvent]:
        """State changes of the newest ``limit`` jobs (:func:`follow_all`)."""
        return follow_all(self.store, limit=limit)
