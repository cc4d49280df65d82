"""An in-memory job store: for tests, scripts and one-process experiments.

Nothing survives the process. It follows the same contract as the durable stores (the
contract suite runs against it), so code written against it behaves the same on SQLite.
"""

from __future__ import annotations

import builtins
import heapq
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from attrs import evolve

from ..jobs import TERMINAL_STATES, Job, JobError, JobState, Lease, NewJob, WebhookDelivery
from ..protocols import Page
from ..transcript import Segment, Transcript
from .common import Changes, Wakeup, decode_cursor, encode_cursor, expired_error


def _now() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)


class _Watched(dict[str, Job]):
    """The jobs by id: writing one wakes its followers, and a job leaving ``processing``
    drops its live segments (``live``), as the durable stores' triggers do."""

    def __init__(self, changes: Changes) -> None:
        super().__init__()
        self.changes = changes
        self.live: dict[str, builtins.list[Segment]] = {}

    def __setitem__(self, job_id: str, job: Job) -> None:
        super().__setitem__(job_id, job)
        if job.state is not JobState.PROCESSING:
            self.live.pop(job_id, None)
        self.changes.notify(job_id)

    def pop(self, job_id: str, default: Any = None) -> Any:
        self.live.pop(job_id, None)
        self.changes.notify(job_id)
        return super().pop(job_id, default)


class MemoryJobStore:
    """A :class:`~cesar_core.protocols.JobStore` kept in a dict, guarded by a lock.

    Queued jobs are also indexed, so that a claim costs the same with a million finished
    jobs as with none: ``_ready`` is a heap of (seq, id) of jobs runnable now, ``_delayed``
    one of (run_after, seq, id) of jobs backing off. Entries of jobs cancelled or deleted
    while queued are skipped when they surface.
    """

    def __init__(self) -> None:
        self._changes = Changes()
        self._jobs = _Watched(self._changes)
        self._seq: dict[str, int] = {}
        self._audio: dict[str, bytes] = {}
        self._ready: list[tuple[int, str]] = []
        self._delayed: list[tuple[float, int, str]] = []
        self._keys: dict[str, str] = {}
        self._next = 0
        self._lock = threading.RLock()
        self._wakeup = Wakeup()

    async def create(self, job: NewJob) -> tuple[Job, bool]:
        with self._lock:
            if job.idempotency_key is not None and job.idempotency_key in self._keys:
                return self._jobs[self._keys[job.idempotency_key]], False
            now = _now()
            stored = Job(
                id=job.id,
                state=JobState.QUEUED,
                source=job.source,
                options=job.options,
                created_at=now,
                run_after=now,
                max_attempts=job.max_attempts,
                metadata=dict(job.metadata),
                idempotency_key=job.idempotency_key,
                webhook_url=job.webhook_url,
            )
            self._next += 1
            self._jobs[job.id] = stored
            self._seq[job.id] = self._next
            self._queue(stored)
            if job.audio is not None:
                self._audio[job.id] = job.audio
            if job.idempotency_key is not None:
                self._keys[job.idempotency_key] = job.id
        self._wakeup.notify()
        return stored, True

    async def get(self, job_id: str, *, include_result: bool = True) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            live = tuple(self._jobs.live.get(job_id, ()))
        if job is not None and not include_result:
            job = evolve(job, result=None)
        elif job is not None and live:
            job = evolve(job, segments=live)
        return job

    async def publish(
        self, job_id: str, token: str, segments: Sequence[Segment], progress: int | None = None
    ) -> bool:
        with self._lock:
            job = self._owned(job_id, token)
            if job is None:
                return False
            self._jobs.live.setdefault(job_id, []).extend(segments)
            if progress is not None:
                job = evolve(job, progress=progress)
            self._jobs[job_id] = job  # wakes the followers
            return True

    async def live_segments(self, job_id: str, after: int = 0) -> builtins.list[Segment]:
        with self._lock:
            return list(self._jobs.live.get(job_id, ())[after:])

    async def wait_for_change(self, job_id: str | None, timeout: float) -> None:
        await self._changes.wait(job_id, timeout)

    async def list(
        self,
        *,
        state: JobState | None = None,
        limit: int = 50,
        cursor: str | None = None,
        include_result: bool = False,
    ) -> Page:
        before = decode_cursor(cursor)
        with self._lock:
            ordered = sorted(self._jobs.values(), key=lambda j: self._seq[j.id], reverse=True)
            selected = [
                job
                for job in ordered
                if (state is None or job.state is state)
                and (before is None or self._seq[job.id] < before)
            ][: limit + 1]
            more = len(selected) > limit
            selected = selected[:limit]
            next_cursor = encode_cursor(self._seq[selected[-1].id]) if more else None
        if not include_result:
            selected = [evolve(job, result=None) for job in selected]
        return Page(jobs=tuple(selected), next_cursor=next_cursor)

    def _queue(self, job: Job) -> None:
        """Index a job that just became ``queued`` (call with the lock held)."""
        seq = self._seq[job.id]
        if job.run_after is not None and job.run_after.timestamp() > time.time():
            heapq.heappush(self._delayed, (job.run_after.timestamp(), seq, job.id))
        else:
            heapq.heappush(self._ready, (seq, job.id))

    def _next_runnable(self) -> Job | None:
        """Pop the oldest queued job whose time has come (call with the lock held)."""
        now = time.time()
        while self._delayed and self._delayed[0][0] <= now:
            _, seq, job_id = heapq.heappop(self._delayed)
            heapq.heappush(self._ready, (seq, job_id))
        while self._ready:
            _, job_id = heapq.heappop(self._ready)
            job = self._jobs.get(job_id)
            if job is not None and job.state is JobState.QUEUED:
                return job
        return None

    async def claim(self, worker: str, lease_seconds: float) -> Job | None:
        with self._lock:
            job = self._next_runnable()
            if job is None:
                return None
            now = _now()
            claimed = evolve(
                job,
                state=JobState.PROCESSING,
                attempts=job.attempts + 1,
                started_at=now,
                progress=0,
                lease=Lease(
                    token=uuid.uuid4().hex,
                    worker=worker,
                    expires_at=datetime.fromtimestamp(now.timestamp() + lease_seconds, UTC),
                ),
            )
            self._jobs[job.id] = claimed
            return evolve(claimed, audio=self._audio.get(job.id))

    async def claim_batch(
        self, worker: str, lease_seconds: float, limit: int
    ) -> builtins.list[Job]:
        jobs: builtins.list[Job] = []
        with self._lock:  # re-entrant: one step for other threads, as in the durable stores
            while len(jobs) < limit:
                job = await self.claim(worker, lease_seconds)
                if job is None:
                    break
                jobs.append(job)
        return jobs

    def _owned(self, job_id: str, token: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None or job.state is not JobState.PROCESSING or job.lease is None:
            return None
        return job if job.lease.token == token else None

    async def heartbeat(
        self, job_id: str, token: str, lease_seconds: float, progress: int | None = None
    ) -> bool:
        with self._lock:
            job = self._owned(job_id, token)
            if job is None or job.lease is None:
                return False
            expires = datetime.fromtimestamp(time.time() + lease_seconds, UTC)
            self._jobs[job_id] = evolve(
                job,
                lease=evolve(job.lease, expires_at=expires),
                progress=job.progress if progress is None else progress,
            )
            return True

    def _finish(self, job: Job, **changes: object) -> None:
        if not job.source.keep:  # kept audio goes with the job (delete)
            self._audio.pop(job.id, None)
        self._jobs[job.id] = evolve(job, lease=None, completed_at=_now(), **changes)  # type: ignore[arg-type]

    async def complete(self, job_id: str, token: str, result: Transcript) -> bool:
        with self._lock:
            job = self._owned(job_id, token)
            if job is None:
                return False
            self._finish(job, state=JobState.COMPLETED, result=result, progress=100, error=None)
            return True

    async def complete_and_claim(
        self, job_id: str, token: str, result: Transcript, worker: str, lease_seconds: float
    ) -> tuple[bool, Job | None]:
        with self._lock:  # re-entrant: one step for other threads, as in the durable stores
            return (
                await self.complete(job_id, token, result),
                await self.claim(worker, lease_seconds),
            )

    async def fail(self, job_id: str, token: str, error: JobError) -> bool:
        with self._lock:
            job = self._owned(job_id, token)
            if job is None:
                return False
            self._finish(job, state=JobState.ERROR, error=error)
            return True

    async def retry(
        self, job_id: str, token: str, error: JobError, delay_seconds: float
    ) -> JobState | None:
        with self._lock:
            job = self._owned(job_id, token)
            if job is None:
                return None
            if job.attempts >= job.max_attempts:
                self._finish(job, state=JobState.ERROR, error=error)
                return JobState.ERROR
            run_after = datetime.fromtimestamp(time.time() + delay_seconds, UTC)
            self._jobs[job_id] = evolve(
                job, state=JobState.QUEUED, lease=None, error=error, run_after=run_after
            )
            self._queue(self._jobs[job_id])
            return JobState.QUEUED

    async def release(self, job_id: str, token: str) -> bool:
        with self._lock:
            job = self._owned(job_id, token)
            if job is None:
                return False
            self._jobs[job_id] = evolve(
                job, state=JobState.QUEUED, lease=None, attempts=max(0, job.attempts - 1)
            )
            self._queue(self._jobs[job_id])
        self._wakeup.notify()
        return True

    async def release_expired(self) -> builtins.list[Job]:
        with self._lock:
            now = _now()
            expired = [
                job
                for job in self._jobs.values()
                if job.state is JobState.PROCESSING
                and job.lease is not None
                and job.lease.expires_at < now
            ]
            for job in expired:
                if job.attempts >= job.max_attempts:
                    self._finish(job, state=JobState.ERROR, error=expired_error(job.attempts))
                else:
                    self._jobs[job.id] = evolve(job, state=JobState.QUEUED, lease=None)
                    self._queue(self._jobs[job.id])
            released = [evolve(self._jobs[job.id], result=None) for job in expired]
        if any(job.state is JobState.QUEUED for job in released):
            self._wakeup.notify()
        return released

    async def wait_for_jobs(self, timeout: float) -> None:
        await self._wakeup.wait(timeout)

    async def cancel(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state not in TERMINAL_STATES:
                self._finish(job, state=JobState.CANCELLED)
            return self._jobs[job_id]

    async def record_webhook(self, job_id: str, delivery: WebhookDelivery) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return False
            self._jobs[job_id] = evolve(job, webhook=delivery)
            return True

    async def replace_result(self, job_id: str, result: Transcript) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state is not JobState.COMPLETED:
                return False
            self._jobs[job_id] = evolve(job, result=result)
            return True

    async def inline_audio(self, job_id: str) -> bytes | None:
        with self._lock:
            return self._audio.get(job_id)

    async def delete(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.pop(job_id, None)
            if job is None:
                return False
            self._seq.pop(job_id, None)
            self._audio.pop(job_id, None)
            if job.idempotency_key is not None:
                self._keys.pop(job.idempotency_key, None)
            return True

    async def prune(self, older_than: datetime) -> builtins.list[str]:
        with self._lock:
            old = [
                job.id
                for job in self._jobs.values()
                if job.state in TERMINAL_STATES
                and job.completed_at is not None
                and job.completed_at < older_than
            ]
        for job_id in old:
            await self.delete(job_id)
        return old

    async def counts(self) -> dict[JobState, int]:
        with self._lock:
            counts = dict.fromkeys(JobState, 0)
            for job in self._jobs.values():
                counts[job.state] += 1
            return counts

    async def close(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._audio.clear()
