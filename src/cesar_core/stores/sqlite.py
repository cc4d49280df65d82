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
import json
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from attrs import evolve

from ..convert import from_dict, to_dict
from ..errors import CesarError
from ..jobs import Job, JobError, JobSource, JobState, Lease, NewJob, WebhookDelivery
from ..protocols import Page
from ..transcript import TranscribeOptions, Transcript
from .common import Wakeup, decode_cursor, expired_error, page_of
from .group_commit import GroupCommit

#: Seconds since the Unix epoch, from the database's clock.
NOW = "((julianday('now') - 2440587.5) * 86400.0)"
BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")

#: Numbered schema migrations; each is a list of statements applied in one transaction.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE jobs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            source TEXT NOT NULL,
            options TEXT NOT NULL,
            metadata TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            webhook_url TEXT,
            created_at REAL NOT NULL,
            started_at REAL,
            completed_at REAL,
            run_after REAL NOT NULL,
            progress INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            lease_token TEXT,
            lease_worker TEXT,
            lease_expires_at REAL,
            result TEXT,
            error_code TEXT,
            error_message TEXT
        )""",
        "CREATE INDEX jobs_queued ON jobs (run_after, seq) WHERE state = 'queued'",
        "CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE state = 'processing'",
        "CREATE INDEX jobs_state ON jobs (state, seq)",
        "CREATE INDEX jobs_finished ON jobs (completed_at) "
        "WHERE state IN ('completed', 'error', 'cancelled')",
    ),
    ("ALTER TABLE jobs ADD COLUMN webhook TEXT",),
    (
        # Inline audio (small uploads): written with its job, dropped by the database itself
        # once the job ends or goes, whichever statement ends it.
        "CREATE TABLE job_audio (job_id TEXT PRIMARY KEY, data BLOB NOT NULL)",
        "CREATE TRIGGER job_audio_ended AFTER UPDATE OF state ON jobs "
        "WHEN NEW.state IN ('completed', 'error', 'cancelled') "
        "BEGIN DELETE FROM job_audio WHERE job_id = NEW.id; END",
        "CREATE TRIGGER job_audio_deleted AFTER DELETE ON jobs "
        "BEGIN DELETE FROM job_audio WHERE job_id = OLD.id; END",
    ),
)

_COLUMNS = (
    "seq, id, state, source, options, metadata, idempotency_key, webhook_url, created_at, "
    "started_at, completed_at, run_after, progress, attempts, max_attempts, lease_token, "
    "lease_worker, lease_expires_at, error_code, error_message, webhook"
)


class SQLiteJobStore:
    """A :class:`~cesar_core.protocols.JobStore` in one SQLite file.

    aiosqlite runs every call on one thread per connection, in order. Each operation here
    is one plain function of a ``sqlite3.Connection`` sent to that thread whole: a write is
    ``BEGIN IMMEDIATE``, its statements and ``COMMIT`` (or ``ROLLBACK``) in a single hand-off
    rather than one per statement, and writes that arrive while the thread is busy share
    the next hand-off and transaction (:mod:`.group_commit`). Hand-offs and commits are most
    of what a no-op job costs. It also makes every transaction atomic with respect to the
    event loop: a caller cancelled while waiting cannot leave a transaction open.
    """

    def __init__(self, path: Path, connection: aiosqlite.Connection) -> None:
        self.path = path
        self._db = connection
        self._writes = GroupCommit(self._read)
        # Other processes' submissions are found by polling; this process's at once.
        self._wakeup = Wakeup()

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteJobStore:
        """Open (creating if needed) the database at ``path`` and migrate it."""
        path = Path(path).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, aiosqlite.Error) as exc:
            raise CesarError(
                f"Cannot open the job database {path}: {exc}.",
                hint="Check that its directory exists and is writable, or choose another "
                "store with --store / CESAR_STORE.",
            ) from exc
        store = cls(path, connection)
        try:
            connection.row_factory = aiosqlite.Row
            await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute("PRAGMA synchronous = NORMAL")
            await store._write(_migrate, path)
        except BaseException:
            await connection.close()  # its thread would otherwise keep the process alive
            raise
        return store

    def _read(self, work: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Run ``work(connection, *args)`` on the connection's thread."""
        # aiosqlite offers no public call for this; its _execute is what each of its own
        # methods uses, and the contract suite exercises every path through it.
        return self._db._execute(work, self._db._conn, *args)  # type: ignore[no-untyped-call]

    def _write(self, work: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Run ``work(connection, *args)`` in a ``BEGIN IMMEDIATE`` transaction, shared
        with the writes that arrive at the same time (see :mod:`.group_commit`)."""
        return self._writes.write(work, *args)

    async def schema_version(self) -> int:
        """The newest migration applied to this database."""
        return await self._read(_schema_version)

    async def create(self, job: NewJob) -> tuple[Job, bool]:
        created = await self._write(_create, job)
        if created[1]:
            self._wakeup.notify()
        return created

    async def wait_for_jobs(self, timeout: float) -> None:
        await self._wakeup.wait(timeout)

    async def get(self, job_id: str, *, include_result: bool = True) -> Job | None:
        result = "result" if include_result else "NULL AS result"
        return await self._read(
            _fetch_job, f"SELECT {_COLUMNS}, {result} FROM jobs WHERE id = ?", (job_id,)
        )

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
        sql = f"SELECT {_COLUMNS}, {result} FROM jobs {where} ORDER BY seq DESC LIMIT ?"
        rows = await self._read(_fetch_rows, sql, (*params, limit + 1))
        return page_of(rows, limit, _job)

    async def claim(self, worker: str, lease_seconds: float) -> Job | None:
        return await self._write(_claim, uuid.uuid4().hex, worker, lease_seconds)

    async def heartbeat(
        self, job_id: str, token: str, lease_seconds: float, progress: int | None = None
    ) -> bool:
        return await self._write(
            _changed,
            f"UPDATE jobs SET lease_expires_at = {NOW} + ?, progress = COALESCE(?, progress) "
            f"WHERE {_OWNED}",
            (lease_seconds, progress, job_id, token),
        )

    async def _finish(
        self, job_id: str, token: str, state: JobState, result: str | None, error: JobError | None
    ) -> bool:
        return await self._write(_finish, job_id, token, state, result, error)

    async def complete(self, job_id: str, token: str, result: Transcript) -> bool:
        return await self._finish(job_id, token, JobState.COMPLETED, _dump(result), None)

    async def fail(self, job_id: str, token: str, error: JobError) -> bool:
        return await self._finish(job_id, token, JobState.ERROR, None, error)

    async def complete_and_claim(
        self, job_id: str, token: str, result: Transcript, worker: str, lease_seconds: float
    ) -> tuple[bool, Job | None]:
        return await self._write(
            _complete_and_claim,
            (job_id, token, _dump(result)),
            (uuid.uuid4().hex, worker, lease_seconds),
        )

    async def retry(
        self, job_id: str, token: str, error: JobError, delay_seconds: float
    ) -> JobState | None:
        rows = await self._write(
            _fetch_rows,
            "UPDATE jobs SET "
            "state = CASE WHEN attempts >= max_attempts THEN 'error' ELSE 'queued' END, "
            f"completed_at = CASE WHEN attempts >= max_attempts THEN {NOW} END, "
            f"run_after = {NOW} + ?, error_code = ?, error_message = ?, {_NO_LEASE} "
            f"WHERE {_OWNED} RETURNING state",
            (delay_seconds, error.code, error.message, job_id, token),
        )
        return JobState(rows[0]["state"]) if rows else None

    async def release(self, job_id: str, token: str) -> bool:
        released = await self._write(
            _changed,
            "UPDATE jobs SET state = 'queued', attempts = MAX(attempts - 1, 0), "
            f"{_NO_LEASE} WHERE {_OWNED}",
            (job_id, token),
        )
        if released:
            self._wakeup.notify()
        return released

    async def release_expired(self) -> builtins.list[Job]:
        released = await self._write(_release_expired)
        if any(job.state is JobState.QUEUED for job in released):
            self._wakeup.notify()
        return released

    async def record_webhook(self, job_id: str, delivery: WebhookDelivery) -> bool:
        return await self._write(
            _changed, "UPDATE jobs SET webhook = ? WHERE id = ?", (_dump(delivery), job_id)
        )

    async def cancel(self, job_id: str) -> Job | None:
        return await self._write(_cancel, job_id)

    async def delete(self, job_id: str) -> bool:
        return await self._write(_changed, "DELETE FROM jobs WHERE id = ?", (job_id,))

    async def prune(self, older_than: datetime) -> builtins.list[str]:
        rows = await self._write(
            _fetch_rows,
            "DELETE FROM jobs WHERE state IN ('completed', 'error', 'cancelled') "
            "AND completed_at < ? RETURNING id",
            (older_than.timestamp(),),
        )
        return [row["id"] for row in rows]

    async def counts(self) -> dict[JobState, int]:
        rows = await self._read(
            _fetch_rows, "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state", ()
        )
        counts = dict.fromkeys(JobState, 0)
        for row in rows:
            counts[JobState(row["state"])] = row["n"]
        return counts

    async def close(self) -> None:
        await self._writes.drain()
        await self._db.close()


# What follows runs on the connection's thread.

#: The lease check of every write a worker makes with its token.
_OWNED = "id = ? AND state = 'processing' AND lease_token = ?"
_NO_LEASE = "lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL"


def _fetch_rows(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> builtins.list[Any]:
    # Reading every row also finishes a RETURNING statement, whose changes are only
    # complete once all rows are read.
    return db.execute(sql, params).fetchall()


def _fetch_job(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Job | None:
    rows = _fetch_rows(db, sql, params)
    return _job(rows[0]) if rows else None


def _changed(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> bool:
    return db.execute(sql, params).rowcount == 1


def _schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0])


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    current = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0
    if current > len(MIGRATIONS):
        raise CesarError(
            f"The job database {path} has schema version {current}, newer than this Cesar "
            f"knows ({len(MIGRATIONS)}).",
            hint="Upgrade Cesar on this machine, or use another database.",
        )
    for version, statements in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        for statement in statements:
            db.execute(statement)
        db.execute(
            f"INSERT INTO schema_migrations (version, applied_at) VALUES (?, {NOW})", (version,)
        )


def _create(db: sqlite3.Connection, job: NewJob) -> tuple[Job, bool]:
    if job.idempotency_key is not None:
        found = _fetch_job(
            db,
            f"SELECT {_COLUMNS}, result FROM jobs WHERE idempotency_key = ?",
            (job.idempotency_key,),
        )
        if found is not None:
            return found, False
    created = _fetch_job(
        db,
        "INSERT INTO jobs (id, state, source, options, metadata, idempotency_key, "
        "webhook_url, created_at, run_after, max_attempts) "
        f"VALUES (?, 'queued', ?, ?, ?, ?, ?, {NOW}, {NOW}, ?) "
        f"RETURNING {_COLUMNS}, result",
        (
            job.id,
            _dump(job.source),
            _dump(job.options),
            json.dumps(job.metadata),
            job.idempotency_key,
            job.webhook_url,
            job.max_attempts,
        ),
    )
    assert created is not None
    if job.audio is not None:
        db.execute("INSERT INTO job_audio (job_id, data) VALUES (?, ?)", (job.id, job.audio))
    return created, True


def _finish(
    db: sqlite3.Connection,
    job_id: str,
    token: str,
    state: JobState,
    result: str | None,
    error: JobError | None,
) -> bool:
    return _changed(
        db,
        f"UPDATE jobs SET state = ?, completed_at = {NOW}, result = ?, "
        "error_code = ?, error_message = ?, "
        "progress = CASE WHEN ? = 'completed' THEN 100 ELSE progress END, "
        f"{_NO_LEASE} WHERE {_OWNED}",
        (
            state.value,
            result,
            error and error.code,
            error and error.message,
            state.value,
            job_id,
            token,
        ),
    )


def _complete_and_claim(
    db: sqlite3.Connection, done: tuple[str, str, str], claim: tuple[str, str, float]
) -> tuple[bool, Job | None]:
    job_id, token, result = done
    completed = _finish(db, job_id, token, JobState.COMPLETED, result, None)
    return completed, _claim(db, *claim)


def _claim(db: sqlite3.Connection, token: str, worker: str, lease_seconds: float) -> Job | None:
    job = _fetch_job(
        db,
        "UPDATE jobs SET state = 'processing', attempts = attempts + 1, progress = 0, "
        f"started_at = {NOW}, lease_token = ?, lease_worker = ?, "
        f"lease_expires_at = {NOW} + ? "
        "WHERE seq = (SELECT seq FROM jobs WHERE state = 'queued' "
        f"AND run_after <= {NOW} ORDER BY seq LIMIT 1) "
        f"RETURNING {_COLUMNS}, NULL AS result",
        (token, worker, lease_seconds),
    )
    if job is None or not job.source.inline:
        return job
    row = db.execute("SELECT data FROM job_audio WHERE job_id = ?", (job.id,)).fetchone()
    return evolve(job, audio=None if row is None else bytes(row["data"]))


def _release_expired(db: sqlite3.Connection) -> builtins.list[Job]:
    expired = _fetch_rows(
        db,
        f"SELECT id, attempts FROM jobs WHERE state = 'processing' AND lease_expires_at < {NOW}",
        (),
    )
    released = []
    for row in expired:
        error = expired_error(row["attempts"])
        job = _fetch_job(
            db,
            "UPDATE jobs SET "
            "state = CASE WHEN attempts >= max_attempts THEN 'error' ELSE 'queued' END, "
            f"completed_at = CASE WHEN attempts >= max_attempts THEN {NOW} END, "
            "error_code = CASE WHEN attempts >= max_attempts THEN ? END, "
            "error_message = CASE WHEN attempts >= max_attempts THEN ? END, "
            f"{_NO_LEASE} WHERE id = ? RETURNING {_COLUMNS}, NULL AS result",
            (error.code, error.message, row["id"]),
        )
        assert job is not None
        released.append(job)
    return released


def _cancel(db: sqlite3.Connection, job_id: str) -> Job | None:
    db.execute(
        f"UPDATE jobs SET state = 'cancelled', completed_at = {NOW}, {_NO_LEASE} "
        "WHERE id = ? AND state IN ('queued', 'processing')",
        (job_id,),
    )
    return _fetch_job(db, f"SELECT {_COLUMNS}, result FROM jobs WHERE id = ?", (job_id,))


def _dump(value: Any) -> str:
    return json.dumps(to_dict(value), separators=(",", ":"))


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _job(row: Any) -> Job:
    lease = None
    if row["lease_token"] is not None:
        lease = Lease(
            token=row["lease_token"],
            worker=row["lease_worker"],
            expires_at=datetime.fromtimestamp(row["lease_expires_at"], UTC),
        )
    error = None
    if row["error_code"] is not None:
        error = JobError(code=row["error_code"], message=row["error_message"])
    result = row["result"]
    webhook = row["webhook"]
    return Job(
        id=row["id"],
        state=JobState(row["state"]),
        source=from_dict(json.loads(row["source"]), JobSource),
        options=from_dict(json.loads(row["options"]), TranscribeOptions),
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        started_at=_time(row["started_at"]),
        completed_at=_time(row["completed_at"]),
        run_after=_time(row["run_after"]),
        progress=row["progress"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        result=None if result is None else from_dict(json.loads(result), Transcript),
        error=error,
        metadata=json.loads(row["metadata"]),
        idempotency_key=row["idempotency_key"],
        webhook_url=row["webhook_url"],
        webhook=None if webhook is None else from_dict(json.loads(webhook), WebhookDelivery),
        lease=lease,
    )
