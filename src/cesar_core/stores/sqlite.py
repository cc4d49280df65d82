"""The default job store: one SQLite file, safe for several processes on one machine.

- WAL journal, ``busy_timeout`` on every connection, ``BEGIN IMMEDIATE`` for every write
  (a deferred transaction that upgrades to a write can fail with "database is locked"
  without waiting, which ``IMMEDIATE`` avoids).
- A claim is one ``UPDATE ... RETURNING`` on the oldest runnable job.
- Lease times come from SQLite's clock (``julianday('now')``), never the caller's.
- The schema is versioned: numbered migrations are applied when the store opens.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from attrs import evolve

from ..errors import CesarError
from ..jobs import Job, JobError, JobState, NewJob, WebhookDelivery
from ..protocols import Page
from ..transcript import Segment, Transcript
from . import sqlite_live as live
from . import sqlite_work as sql
from .common import Changes, Wakeup, decode_cursor, page_of
from .group_commit import GroupCommit

BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")


class SQLiteJobStore:
    """A :class:`~cesar_core.protocols.JobStore` in one SQLite file.

    aiosqlite runs every call on one thread per connection, in order. Each operation here
    is one plain function of a ``sqlite3.Connection`` sent to that thread whole: a write is
    ``BEGIN IMMEDIATE``, its statements and ``COMMIT`` (or ``ROLLBACK``) in a single hand-off
    rather than one per statement, and writes that arrive while the thread is busy share
    the next hand-off and transaction (:mod:`.group_commit`). Hand-offs and commits are most
    of what a no-op job costs. It also makes every transaction atomic with respect to the
    event loop: a caller cancelled while waiting cannot leave a transaction open.

    Reads have a connection (and thread) of their own, opened read-only once the schema is
    migrated: in WAL mode they never wait for a writer, so ``GET /jobs/{id}`` is not queued
    behind a burst of submissions' commits on the writer's thread. Each read is a statement
    in autocommit, so it sees every write committed before it started.
    """

    def __init__(self, path: Path, connection: aiosqlite.Connection) -> None:
        self.path = path
        self._db = connection
        self._reader: aiosqlite.Connection | None = None
        self._writes = GroupCommit(self._on_writer)
        # Other processes' submissions are found by polling; this process's at once.
        self._wakeup = Wakeup()
        self._changes = Changes()  # wakes this process's followers of jobs (live events)

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteJobStore:
        """Open (creating if needed) the database at ``path`` and migrate it."""
        path = Path(path).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = await _connect(path)
        except (OSError, aiosqlite.Error) as exc:
            raise CesarError(
                f"Cannot open the job database {path}: {exc}.",
                hint="Check that its directory exists and is writable, or choose another "
                "store (the store setting, CESAR_STORE).",
            ) from exc
        store = cls(path, connection)
        try:
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute("PRAGMA synchronous = NORMAL")
            await store._write(sql.migrate, path)
            store._reader = await _connect(path)
            await store._reader.execute("PRAGMA query_only = ON")
        except BaseException:
            await store.close()  # the connections' threads would keep the process alive
            raise
        return store

    def _on_writer(self, work: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Run ``work(connection, *args)`` on the writer's thread."""
        return _run(self._db, work, *args)

    def _read(self, work: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Run ``work(connection, *args)`` on the reader's thread."""
        return _run(self._reader or self._db, work, *args)

    def _write(self, work: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Run ``work(connection, *args)`` in a ``BEGIN IMMEDIATE`` transaction, shared
        with the writes that arrive at the same time (see :mod:`.group_commit`)."""
        return self._writes.write(work, *args)

    async def schema_version(self) -> int:
        """The newest migration applied to this database."""
        return await self._read(sql.schema_version)

    async def create(self, job: NewJob) -> tuple[Job, bool]:
        created = await self._write(sql.create, job)
        if created[1]:
            self._wakeup.notify()
            self._changes.notify(created[0].id)
        return created

    async def wait_for_jobs(self, timeout: float) -> None:
        await self._wakeup.wait(timeout)

    async def get(self, job_id: str, *, include_result: bool = True) -> Job | None:
        result = "result" if include_result else "NULL AS result"
        job = await self._read(
            sql.fetch_job, f"SELECT {sql.COLUMNS}, {result} FROM jobs WHERE id = ?", (job_id,)
        )
        if job is not None and include_result and job.state is JobState.PROCESSING:
            job = evolve(job, segments=tuple(await self.live_segments(job_id)))
        return job

    async def publish(
        self, job_id: str, token: str, segments: Sequence[Segment], progress: int | None = None
    ) -> bool:
        published = await self._write(live.publish, job_id, token, list(segments), progress)
        return self._told(published, job_id)

    async def live_segments(self, job_id: str, after: int = 0) -> builtins.list[Segment]:
        return await self._read(live.live_segments, job_id, after)

    async def wait_for_change(self, job_id: str | None, timeout: float) -> None:
        await self._changes.wait(job_id, timeout)

    def _told(self, value: T, *job_ids: str) -> T:
        """``value``, once the followers of ``job_ids`` are woken (this process's; other
        processes' followers find the change when they poll)."""
        for job_id in job_ids:
            self._changes.notify(job_id)
        return value

    async def list(
        self,
        *,
        state: JobState | None = None,
        limit: int = 50,
        cursor: str | None = None,
        include_result: bool = False,
    ) -> Page:
        before = decode_cursor(cursor)
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        if state is not None:
            clauses.append("state = ?")
            params.append(state.value)
        if before is not None:
            clauses.append("seq < ?")
            params.append(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        result = "result" if include_result else "NULL AS result"
        query = f"SELECT {sql.COLUMNS}, {result} FROM jobs {where} ORDER BY seq DESC LIMIT ?"
        rows = await self._read(sql.fetch_rows, query, (*params, limit + 1))
        return page_of(rows, limit, sql.job_of)

    async def claim(self, worker: str, lease_seconds: float) -> Job | None:
        job = await self._write(sql.claim, uuid.uuid4().hex, worker, lease_seconds)
        return job if job is None else self._told(job, job.id)

    async def claim_batch(
        self, worker: str, lease_seconds: float, limit: int
    ) -> builtins.list[Job]:
        tokens = [uuid.uuid4().hex for _ in range(max(0, limit))]
        jobs = await self._write(sql.claim_batch, tokens, worker, lease_seconds)
        return self._told(jobs, *(job.id for job in jobs))

    async def heartbeat(
        self, job_id: str, token: str, lease_seconds: float, progress: int | None = None
    ) -> bool:
        alive = await self._write(
            sql.changed,
            f"UPDATE jobs SET lease_expires_at = {sql.NOW} + ?, progress = COALESCE(?, progress) "
            f"WHERE {sql.OWNED}",
            (lease_seconds, progress, job_id, token),
        )
        return alive if progress is None else self._told(alive, job_id)

    async def _finish(
        self, job_id: str, token: str, state: JobState, result: str | None, error: JobError | None
    ) -> bool:
        finished = await self._write(sql.finish, job_id, token, state, result, error)
        return self._told(finished, job_id)

    async def complete(self, job_id: str, token: str, result: Transcript) -> bool:
        return await self._finish(job_id, token, JobState.COMPLETED, sql.dump(result), None)

    async def fail(self, job_id: str, token: str, error: JobError) -> bool:
        return await self._finish(job_id, token, JobState.ERROR, None, error)

    async def complete_and_claim(
        self, job_id: str, token: str, result: Transcript, worker: str, lease_seconds: float
    ) -> tuple[bool, Job | None]:
        done, claimed = await self._write(
            sql.complete_and_claim,
            (job_id, token, sql.dump(result)),
            (uuid.uuid4().hex, worker, lease_seconds),
        )
        return self._told((done, claimed), job_id, *([claimed.id] if claimed else []))

    async def retry(
        self, job_id: str, token: str, error: JobError, delay_seconds: float
    ) -> JobState | None:
        rows = await self._write(
            sql.fetch_rows,
            "UPDATE jobs SET "
            "state = CASE WHEN attempts >= max_attempts THEN 'error' ELSE 'queued' END, "
            f"completed_at = CASE WHEN attempts >= max_attempts THEN {sql.NOW} END, "
            f"run_after = {sql.NOW} + ?, error_code = ?, error_message = ?, {sql.NO_LEASE} "
            f"WHERE {sql.OWNED} RETURNING state",
            (delay_seconds, error.code, error.message, job_id, token),
        )
        return self._told(JobState(rows[0]["state"]) if rows else None, job_id)

    async def release(self, job_id: str, token: str) -> bool:
        released = await self._write(
            sql.changed,
            "UPDATE jobs SET state = 'queued', attempts = MAX(attempts - 1, 0), "
            f"{sql.NO_LEASE} WHERE {sql.OWNED}",
            (job_id, token),
        )
        if released:
            self._wakeup.notify()
        return self._told(released, job_id)

    async def release_expired(self) -> builtins.list[Job]:
        released = await self._write(sql.release_expired)
        if any(job.state is JobState.QUEUED for job in released):
            self._wakeup.notify()
        return self._told(released, *(job.id for job in released))

    async def record_webhook(self, job_id: str, delivery: WebhookDelivery) -> bool:
        return await self._write(
            sql.changed, "UPDATE jobs SET webhook = ? WHERE id = ?", (sql.dump(delivery), job_id)
        )

    async def replace_result(self, job_id: str, result: Transcript) -> bool:
        query = "UPDATE jobs SET result = ? WHERE id = ? AND state = 'completed'"
        return await self._write(sql.changed, query, (sql.dump(result), job_id))

    async def cancel(self, job_id: str) -> Job | None:
        return self._told(await self._write(sql.cancel, job_id), job_id)

    async def inline_audio(self, job_id: str) -> bytes | None:
        rows = await self._read(
            sql.fetch_rows, "SELECT data FROM job_audio WHERE job_id = ?", (job_id,)
        )
        return bytes(rows[0]["data"]) if rows else None

    async def delete(self, job_id: str) -> bool:
        deleted = await self._write(sql.changed, "DELETE FROM jobs WHERE id = ?", (job_id,))
        return self._told(deleted, job_id)

    async def prune(self, older_than: datetime) -> builtins.list[str]:
        rows = await self._write(
            sql.fetch_rows,
            "DELETE FROM jobs WHERE state IN ('completed', 'error', 'cancelled') "
            "AND completed_at < ? RETURNING id",
            (older_than.timestamp(),),
        )
        return [row["id"] for row in rows]

    async def counts(self) -> dict[JobState, int]:
        rows = await self._read(
            sql.fetch_rows, "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state", ()
        )
        counts = dict.fromkeys(JobState, 0)
        for row in rows:
            counts[JobState(row["state"])] = row["n"]
        return counts

    async def close(self) -> None:
        await self._writes.drain()
        await self._db.close()
        if self._reader is not None:
            await self._reader.close()


async def _connect(path: Path) -> aiosqlite.Connection:
    """A connection in autocommit (transactions are begun explicitly), rows by name, and
    waiting for a lock rather than failing at once."""
    connection = await aiosqlite.connect(path, isolation_level=None)
    connection.row_factory = aiosqlite.Row
    try:
        await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except BaseException:
        await connection.close()
        raise
    return connection


def _run(connection: aiosqlite.Connection, work: Callable[..., T], *args: Any) -> Awaitable[T]:
    """Run ``work(sqlite3_connection, *args)`` on ``connection``'s thread, in one hand-off."""
    # aiosqlite offers no public call for this; its _execute is what each of its own
    # methods uses, and the contract suite exercises every path through it.
    return connection._execute(work, connection._conn, *args)  # type: ignore[no-untyped-call]
