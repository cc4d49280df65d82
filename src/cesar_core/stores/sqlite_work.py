"""What each operation of the SQLite job store sends to the connection's thread.

Every function here takes a ``sqlite3.Connection`` and runs on aiosqlite's thread, inside
the transaction :class:`~cesar_core.stores.sqlite.SQLiteJobStore` opened for it (``BEGIN
IMMEDIATE`` for a write): the store decides when and in which transaction; this module says
what the statements are. The schema's numbered migrations are here too.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attrs import evolve

from ..convert import from_dict, to_dict
from ..errors import CesarError
from ..jobs import Job, JobError, JobSource, JobState, Lease, NewJob, WebhookDelivery
from ..transcript import TranscribeOptions, Transcript
from . import sqlite_live
from .common import expired_error

#: Seconds since the Unix epoch, from the database's clock.
NOW = "((julianday('now') - 2440587.5) * 86400.0)"

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
    (
        # Audio a job keeps for playback (source.keep, from keep_audio) outlives its end and
        # goes with the job (job_audio_deleted); older jobs have no "keep" and drop it.
        "DROP TRIGGER job_audio_ended",
        "CREATE TRIGGER job_audio_ended AFTER UPDATE OF state ON jobs "
        "WHEN NEW.state IN ('completed', 'error', 'cancelled') "
        "AND NOT coalesce(json_extract(NEW.source, '$.keep'), 0) "
        "BEGIN DELETE FROM job_audio WHERE job_id = NEW.id; END",
    ),
    sqlite_live.MIGRATION,
)

COLUMNS = (
    "seq, id, state, source, options, metadata, idempotency_key, webhook_url, created_at, "
    "started_at, completed_at, run_after, progress, attempts, max_attempts, lease_token, "
    "lease_worker, lease_expires_at, error_code, error_message, webhook"
)


#: The lease check of every write a worker makes with its token.
OWNED = "id = ? AND state = 'processing' AND lease_token = ?"
NO_LEASE = "lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL"


def fetch_rows(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> builtins.list[Any]:
    # Reading every row also finishes a RETURNING statement, whose changes are only
    # complete once all rows are read.
    return db.execute(sql, params).fetchall()


def fetch_job(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Job | None:
    rows = fetch_rows(db, sql, params)
    return job_of(rows[0]) if rows else None


def changed(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> bool:
    return db.execute(sql, params).rowcount == 1


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0])


def migrate(db: sqlite3.Connection, path: Path) -> None:
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


def create(db: sqlite3.Connection, job: NewJob) -> tuple[Job, bool]:
    if job.idempotency_key is not None:
        found = fetch_job(
            db,
            f"SELECT {COLUMNS}, result FROM jobs WHERE idempotency_key = ?",
            (job.idempotency_key,),
        )
        if found is not None:
            return found, False
    created = fetch_job(
        db,
        "INSERT INTO jobs (id, state, source, options, metadata, idempotency_key, "
        "webhook_url, created_at, run_after, max_attempts) "
        f"VALUES (?, 'queued', ?, ?, ?, ?, ?, {NOW}, {NOW}, ?) "
        f"RETURNING {COLUMNS}, result",
        (
            job.id,
            dump(job.source),
            dump(job.options),
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


def finish(
    db: sqlite3.Connection,
    job_id: str,
    token: str,
    state: JobState,
    result: str | None,
    error: JobError | None,
) -> bool:
    return changed(
        db,
        f"UPDATE jobs SET state = ?, completed_at = {NOW}, result = ?, "
        "error_code = ?, error_message = ?, "
        "progress = CASE WHEN ? = 'completed' THEN 100 ELSE progress END, "
        f"{NO_LEASE} WHERE {OWNED}",
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


def complete_and_claim(
    db: sqlite3.Connection, done: tuple[str, str, str], next_claim: tuple[str, str, float]
) -> tuple[bool, Job | None]:
    job_id, token, result = done
    completed = finish(db, job_id, token, JobState.COMPLETED, result, None)
    return completed, claim(db, *next_claim)


def claim(db: sqlite3.Connection, token: str, worker: str, lease_seconds: float) -> Job | None:
    job = fetch_job(
        db,
        "UPDATE jobs SET state = 'processing', attempts = attempts + 1, progress = 0, "
        f"started_at = {NOW}, lease_token = ?, lease_worker = ?, "
        f"lease_expires_at = {NOW} + ? "
        "WHERE seq = (SELECT seq FROM jobs WHERE state = 'queued' "
        f"AND run_after <= {NOW} ORDER BY seq LIMIT 1) "
        f"RETURNING {COLUMNS}, NULL AS result",
        (token, worker, lease_seconds),
    )
    if job is None or not job.source.inline:
        return job
    row = db.execute("SELECT data FROM job_audio WHERE job_id = ?", (job.id,)).fetchone()
    return evolve(job, audio=None if row is None else bytes(row["data"]))


def claim_batch(
    db: sqlite3.Connection, tokens: builtins.list[str], worker: str, lease_seconds: float
) -> builtins.list[Job]:
    """One claim per token, oldest job first, until the queue runs dry."""
    jobs = []
    for token in tokens:
        job = claim(db, token, worker, lease_seconds)
        if job is None:
            break
        jobs.append(job)
    return jobs


def release_expired(db: sqlite3.Connection) -> builtins.list[Job]:
    expired = fetch_rows(
        db,
        f"SELECT id, attempts FROM jobs WHERE state = 'processing' AND lease_expires_at < {NOW}",
        (),
    )
    released = []
    for row in expired:
        error = expired_error(row["attempts"])
        job = fetch_job(
            db,
            "UPDATE jobs SET "
            "state = CASE WHEN attempts >= max_attempts THEN 'error' ELSE 'queued' END, "
            f"completed_at = CASE WHEN attempts >= max_attempts THEN {NOW} END, "
            "error_code = CASE WHEN attempts >= max_attempts THEN ? END, "
            "error_message = CASE WHEN attempts >= max_attempts THEN ? END, "
            f"{NO_LEASE} WHERE id = ? RETURNING {COLUMNS}, NULL AS result",
            (error.code, error.message, row["id"]),
        )
        assert job is not None
        released.append(job)
    return released


def cancel(db: sqlite3.Connection, job_id: str) -> Job | None:
    db.execute(
        f"UPDATE jobs SET state = 'cancelled', completed_at = {NOW}, {NO_LEASE} "
        "WHERE id = ? AND state IN ('queued', 'processing')",
        (job_id,),
    )
    return fetch_job(db, f"SELECT {COLUMNS}, result FROM jobs WHERE id = ?", (job_id,))


def dump(value: Any) -> str:
    return json.dumps(to_dict(value), separators=(",", ":"))


def time_of(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def job_of(row: Any) -> Job:
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
        started_at=time_of(row["started_at"]),
        completed_at=time_of(row["completed_at"]),
        run_after=time_of(row["run_after"]),
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
