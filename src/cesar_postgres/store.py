"""The job store for many machines: one PostgreSQL database every node shares.

- A claim is one ``UPDATE`` of the oldest runnable job picked ``FOR UPDATE SKIP LOCKED``:
  workers racing for jobs never wait on each other's rows and never share one.
- Lease times come from the database's clock (``now()``), never a node's.
- The sweep of expired leases may run on every node, but only one at a time: it holds a
  transaction-scoped advisory lock and a node that cannot take it skips its turn.
- Queuing a job sends ``NOTIFY cesar_jobs`` in the same statement; idle workers
  ``LISTEN`` on a connection of their own and claim at once (polling stays as the fallback).
- A lost connection is retried (see :mod:`cesar_postgres.database`); writes a worker makes
  with its lease remember the token that ended the lease (``last_token``), so a retried
  complete whose first attempt committed is known to have succeeded, never done twice.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

from attrs import frozen
from psycopg.types.json import Json

from cesar_core.batch import Batcher
from cesar_core.convert import from_dict, to_dict
from cesar_core.jobs import Job, JobError, JobSource, JobState, Lease, NewJob, WebhookDelivery
from cesar_core.protocols import Page
from cesar_core.stores.common import decode_cursor, expired_error, page_of
from cesar_core.transcript import TranscribeOptions, Transcript

from . import CHANNEL
from .database import Connection, Database
from .listen import Listener

#: The sweep's advisory lock key.
SWEEP_LOCK = 0x63_65_73_61_72_00_00_02

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE cesar_jobs (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            source JSON NOT NULL,
            options JSON NOT NULL,
            metadata JSON NOT NULL,
            idempotency_key TEXT UNIQUE,
            webhook_url TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            started_at TIMESTAMPTZ,
            completed_at TIMESTAMPTZ,
            run_after TIMESTAMPTZ NOT NULL DEFAULT now(),
            progress INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            lease_token TEXT,
            lease_worker TEXT,
            lease_expires_at TIMESTAMPTZ,
            last_token TEXT,
            result JSON,
            error_code TEXT,
            error_message TEXT,
            webhook JSON
        )""",
        "CREATE INDEX cesar_jobs_queued ON cesar_jobs (seq) WHERE state = 'queued'",
        "CREATE INDEX cesar_jobs_leased ON cesar_jobs (lease_expires_at) "
        "WHERE state = 'processing'",
        "CREATE INDEX cesar_jobs_state ON cesar_jobs (state, seq)",
        "CREATE INDEX cesar_jobs_finished ON cesar_jobs (completed_at) "
        "WHERE state IN ('completed', 'error', 'cancelled')",
    ),
    (
        # Inline audio (small uploads): written with its job, dropped by the database itself
        # once the job ends (the trigger) or goes (the cascade).
        "CREATE TABLE cesar_job_audio (job_id TEXT PRIMARY KEY "
        "REFERENCES cesar_jobs (id) ON DELETE CASCADE, data BYTEA NOT NULL)",
        # Audio is compressed already, or is PCM that compresses poorly: skip the attempt.
        "ALTER TABLE cesar_job_audio ALTER COLUMN data SET STORAGE EXTERNAL",
        "CREATE FUNCTION cesar_job_audio_ended() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN DELETE FROM cesar_job_audio WHERE job_id = NEW.id; RETURN NULL; END $$",
        "CREATE TRIGGER cesar_job_audio_ended AFTER UPDATE OF state ON cesar_jobs "
        "FOR EACH ROW WHEN (NEW.state IN ('completed', 'error', 'cancelled')) "
        "EXECUTE FUNCTION cesar_job_audio_ended()",
    ),
)

_COLUMNS = (
    "seq, id, state, source, options, metadata, idempotency_key, webhook_url, created_at, "
    "started_at, completed_at, run_after, progress, attempts, max_attempts, lease_token, "
    "lease_worker, lease_expires_at, error_code, error_message, webhook"
)
#: The lease check of every write a worker makes with its token.
_OWNED = "id = %(id)s AND state = 'processing' AND lease_token = %(token)s"
_END_LEASE = (
    "last_token = lease_token, lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL"
)
_SECONDS = "make_interval(secs => %(seconds)s)"
_NOTIFY = f"pg_notify('{CHANNEL}', '')"
#: A claimed job's inline audio (NULL for audio in storage).
_AUDIO = "(SELECT data FROM cesar_job_audio WHERE job_id = cesar_jobs.id) AS audio"
#: Take the oldest runnable job (parameters: token, worker, seconds).
_CLAIM = (
    "UPDATE cesar_jobs SET state = 'processing', attempts = attempts + 1, "
    "progress = 0, started_at = now(), lease_token = %(token)s, "
    f"lease_worker = %(worker)s, lease_expires_at = now() + {_SECONDS} "
    "WHERE seq = (SELECT seq FROM cesar_jobs WHERE state = 'queued' "
    "AND run_after <= now() ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) "
    f"RETURNING {_COLUMNS}, NULL AS result, {_AUDIO}"
)
#: Finish a job the caller holds (parameters: id, token, state, result, code, message).
_FINISH = (
    "UPDATE cesar_jobs SET state = %(state)s, completed_at = now(), "
    "result = %(result)s, error_code = %(code)s, error_message = %(message)s, "
    "progress = CASE WHEN %(state)s = 'completed' THEN 100 ELSE progress END, "
    f"{_END_LEASE} WHERE {_OWNED}"
)


#: Complete one job and claim the next (parameters: those of ``_FINISH`` and ``_CLAIM``,
#: the claim's token as ``claim``). The row holds the claimed job (NULLs when none was) and,
#: in ``completed``, the id when the completion changed a row.
_COMPLETE_AND_CLAIM_ONE = (
    f"WITH done AS ({_FINISH} RETURNING id), "
    f"claimed AS ({_CLAIM.replace('%(token)s', '%(claim)s')}) "
    "SELECT ARRAY(SELECT id FROM done) AS completed, claimed.* "
    "FROM (SELECT) AS one LEFT JOIN claimed ON TRUE"
)
#: The same for several slots at once (parameters: arrays ``ids``, ``tokens``, ``results``
#: of the jobs done, and ``claims``, a new token per claim; ``worker``, ``seconds``): a row
#: per claimed job; the k-th oldest runnable job gets the k-th claim token.
#:
#: Rows are reached by ``= ANY`` through the unique indexes, never by a join: in the plan
#: PostgreSQL caches for a prepared statement, which knows no array's length, a join over
#: ``unnest`` can turn into a scan of the whole table. A lease token exists only while its
#: job runs (every way out of ``processing`` clears it) and names one job, so matching ids
#: and tokens as two sets is matching them in pairs.
_COMPLETE_AND_CLAIM_MANY = (
    "WITH done AS (UPDATE cesar_jobs SET state = 'completed', completed_at = now(), "
    "result = (%(results)s::json[])[array_position(%(ids)s::text[], id)], "
    f"error_code = NULL, error_message = NULL, progress = 100, {_END_LEASE} "
    "WHERE id = ANY(%(ids)s::text[]) AND lease_token = ANY(%(tokens)s::text[]) "
    "RETURNING id), "
    "picked AS MATERIALIZED (SELECT ARRAY(SELECT seq FROM cesar_jobs WHERE state = 'queued' "
    "AND run_after <= now() ORDER BY seq LIMIT cardinality(%(claims)s::text[]) "
    "FOR UPDATE SKIP LOCKED) AS seqs), "
    "claimed AS (UPDATE cesar_jobs SET state = 'processing', attempts = attempts + 1, "
    "progress = 0, started_at = now(), "
    "lease_token = (%(claims)s::text[])[array_position((SELECT seqs FROM picked), seq)], "
    f"lease_worker = %(worker)s, lease_expires_at = now() + {_SECONDS} "
    "WHERE seq = ANY((SELECT seqs FROM picked)::bigint[]) "
    f"RETURNING {_COLUMNS}, NULL AS result, {_AUDIO}) "
    "SELECT ARRAY(SELECT id FROM done) AS completed, claimed.* "
    "FROM (SELECT) AS one LEFT JOIN claimed ON TRUE"
)


@frozen
class _Chained:
    """One slot's part of a batched complete-and-claim."""

    id: str
    token: str
    result: Json
    #: The token of the claim made for this slot.
    claim: str


class PostgresJobStore:
    """A :class:`~cesar_core.protocols.JobStore` (and
    :class:`~cesar_core.protocols.JobNotifier`) in PostgreSQL."""

    def __init__(self, url: str, database: Database) -> None:
        self._db = database
        self._listener = Listener(url, database.where)
        self._chains: dict[tuple[str, float], Batcher[_Chained, tuple[bool, Job | None]]] = {}

    @classmethod
    async def open(cls, url: str) -> PostgresJobStore:
        """Connect to ``url`` and bring the job tables up to date."""
        return cls(url, await Database.open(url, "jobs", MIGRATIONS))

    @property
    def database(self) -> Database:
        """The connection pool (tests reach the server through it)."""
        return self._db

    async def create(self, job: NewJob) -> tuple[Job, bool]:
        params = {
            "id": job.id,
            "source": Json(to_dict(job.source)),
            "options": Json(to_dict(job.options)),
            "metadata": Json(job.metadata),
            "key": job.idempotency_key,
            "webhook_url": job.webhook_url,
            "max_attempts": job.max_attempts,
            "audio": job.audio,
        }
        # Inline audio goes in with its job, in the same statement.
        audio = (
            ", audio AS (INSERT INTO cesar_job_audio (job_id, data) "
            "SELECT id, %(audio)s FROM created)"
            if job.audio is not None
            else ""
        )

        async def work(db: Connection, retried: bool) -> tuple[Job, bool]:
            while True:
                # ON CONFLICT covers both the id (a retry whose first try committed) and
                # the idempotency key; the notification goes out only for a new row.
                cursor = await db.execute(
                    "WITH created AS (INSERT INTO cesar_jobs (id, state, source, options, "
                    "metadata, idempotency_key, webhook_url, max_attempts) VALUES (%(id)s, "
                    "'queued', %(source)s, %(options)s, %(metadata)s, %(key)s, "
                    "%(webhook_url)s, %(max_attempts)s) ON CONFLICT DO NOTHING "
                    f"RETURNING {_COLUMNS}, result){audio} "
                    f"SELECT *, {_NOTIFY} FROM created",
                    params,
                )
                row = await cursor.fetchone()
                if row is not None:
                    return _job(row), True
                mine = await _one(db, "id = %(id)s", params)
                if mine is not None:
                    return mine, True
                earlier = await _one(db, "idempotency_key = %(key)s", params)
                if earlier is not None:
                    return earlier, False
                # The job holding the key was deleted in between: insert again.

        return await self._db.run(work)

    async def get(self, job_id: str, *, include_result: bool = True) -> Job | None:
        async def work(db: Connection, retried: bool) -> Job | None:
            return await _one(db, "id = %(id)s", {"id": job_id}, include_result=include_result)

        return await self._db.run(work)

    async def list(
        self,
        *,
        state: JobState | None = None,
        limit: int = 50,
        cursor: str | None = None,
        include_result: bool = False,
    ) -> Page:
        before = decode_cursor(cursor)
        clauses = ["TRUE"]
        params: dict[str, Any] = {"limit": limit + 1, "state": state, "before": before}
        if state is not None:
            clauses.append("state = %(state)s")
            params["state"] = state.value
        if before is not None:
            clauses.append("seq < %(before)s")
        result = "result" if include_result else "NULL AS result"
        sql = (
            f"SELECT {_COLUMNS}, {result} FROM cesar_jobs WHERE {' AND '.join(clauses)} "
            "ORDER BY seq DESC LIMIT %(limit)s"
        )

        async def work(db: Connection, retried: bool) -> builtins.list[dict[str, Any]]:
            return await (await db.execute(sql, params)).fetchall()

        rows = await self._db.run(work)
        return page_of(rows, limit, _job)

    async def claim(self, worker: str, lease_seconds: float) -> Job | None:
        token = uuid.uuid4().hex
        params = {"token": token, "worker": worker, "seconds": lease_seconds}

        async def work(db: Connection, retried: bool) -> Job | None:
            if retried:  # the first try may have claimed a job before its answer was lost
                mine = await _claimed_by(db, [token])
                if mine:
                    return mine[token]
            cursor = await db.execute(_CLAIM, params)
            row = await cursor.fetchone()
            return None if row is None else _job(row)

        return await self._db.run(work)

    async def heartbeat(
        self, job_id: str, token: str, lease_seconds: float, progress: int | None = None
    ) -> bool:
        params = {"id": job_id, "token": token, "seconds": lease_seconds, "progress": progress}

        async def work(db: Connection, retried: bool) -> bool:
            cursor = await db.execute(
                f"UPDATE cesar_jobs SET lease_expires_at = now() + {_SECONDS}, "
                f"progress = COALESCE(%(progress)s, progress) WHERE {_OWNED}",
                params,
            )
            return cursor.rowcount == 1

        return await self._db.run(work)

    async def _finish(
        self, job_id: str, token: str, state: JobState, result: Any, error: JobError | None
    ) -> bool:
        params = {
            "id": job_id,
            "token": token,
            "state": state.value,
            "result": result,
            "code": error and error.code,
            "message": error and error.message,
        }

        async def work(db: Connection, retried: bool) -> bool:
            cursor = await db.execute(_FINISH, params)
            if cursor.rowcount == 1:
                return True
            return retried and await _ended_by(db, params, "state = %(state)s")

        return await self._db.run(work)

    async def complete(self, job_id: str, token: str, result: Transcript) -> bool:
        return await self._finish(job_id, token, JobState.COMPLETED, Json(to_dict(result)), None)

    async def fail(self, job_id: str, token: str, error: JobError) -> bool:
        return await self._finish(job_id, token, JobState.ERROR, None, error)

    async def complete_and_claim(
        self, job_id: str, token: str, result: Transcript, worker: str, lease_seconds: float
    ) -> tuple[bool, Job | None]:
        """Complete and claim in one statement; calls of one worker that arrive together
        share it (see :mod:`cesar_core.batch`), so a worker with many slots pays one
        round trip and one commit for several jobs."""
        key = (worker, lease_seconds)
        batcher = self._chains.get(key)
        if batcher is None:
            batcher = self._chains[key] = Batcher(
                partial(self._complete_and_claim, worker, lease_seconds),
                max_size=64,
                abandoned=self._release_abandoned,
            )
        chained = _Chained(job_id, token, Json(to_dict(result)), uuid.uuid4().hex)
        return await batcher.call(chained)

    async def _complete_and_claim(
        self, worker: str, lease_seconds: float, batch: builtins.list[_Chained]
    ) -> builtins.list[tuple[bool, Job | None]]:
        """The statement behind :meth:`complete_and_claim`: two data-modifying CTEs, over
        arrays when the batch holds several."""
        ids, tokens, claims = (
            [c.id for c in batch],
            [c.token for c in batch],
            [c.claim for c in batch],
        )
        common = {"worker": worker, "seconds": lease_seconds}
        if len(batch) == 1:  # every call of a one-slot worker: plain parameters cost less
            sql = _COMPLETE_AND_CLAIM_ONE
            params = {
                "id": ids[0],
                "token": tokens[0],
                "state": JobState.COMPLETED.value,
                "result": batch[0].result,
                "code": None,
                "message": None,
                "claim": claims[0],
                **common,
            }
        else:
            sql = _COMPLETE_AND_CLAIM_MANY
            params = {
                "ids": ids,
                "tokens": tokens,
                "results": [c.result for c in batch],
                "claims": claims,
                **common,
            }

        async def work(db: Connection, retried: bool) -> tuple[set[str], dict[str, Job]]:
            if retried:  # all or none of the first try's changes committed
                claimed = await _claimed_by(db, claims)
                completed = await _completed_by(db, ids, tokens)
                if claimed or completed:
                    return completed, claimed
            cursor = await db.execute(sql, params)
            rows = await cursor.fetchall()
            jobs = [_job(row) for row in rows if row["id"] is not None]
            return set(rows[0]["completed"]), {job.lease.token: job for job in jobs if job.lease}

        completed, claimed = await self._db.run(work)
        return [(c.id in completed, claimed.get(c.claim)) for c in batch]

    async def _release_abandoned(self, chained: _Chained, outcome: tuple[bool, Job | None]) -> None:
        """A job claimed for a caller that stopped waiting goes back to the queue now,
        rather than when its lease expires."""
        job = outcome[1]
        if job is not None:
            await self.release(job.id, chained.claim)

    async def retry(
        self, job_id: str, token: str, error: JobError, delay_seconds: float
    ) -> JobState | None:
        params = {
            "id": job_id,
            "token": token,
            "seconds": delay_seconds,
            "code": error.code,
            "message": error.message,
        }

        async def work(db: Connection, retried: bool) -> JobState | None:
            cursor = await db.execute(
                "UPDATE cesar_jobs SET "
                "state = CASE WHEN attempts >= max_attempts THEN 'error' ELSE 'queued' END, "
                "completed_at = CASE WHEN attempts >= max_attempts THEN now() END, "
                f"run_after = now() + {_SECONDS}, error_code = %(code)s, "
                f"error_message = %(message)s, {_END_LEASE} WHERE {_OWNED} RETURNING state",
                params,
            )
            row = await cursor.fetchone()
            if row is None and retried and await _ended_by(db, params, "TRUE"):
                current = await _one(db, "id = %(id)s", params, include_result=False)
                failed = current is not None and current.state is JobState.ERROR
                return JobState.ERROR if failed else JobState.QUEUED
            return None if row is None else JobState(row["state"])

        return await self._db.run(work)

    async def release(self, job_id: str, token: str) -> bool:
        params = {"id": job_id, "token": token}

        async def work(db: Connection, retried: bool) -> bool:
            cursor = await db.execute(
                "WITH released AS (UPDATE cesar_jobs SET state = 'queued', "
                f"attempts = GREATEST(attempts - 1, 0), {_END_LEASE} WHERE {_OWNED} "
                f"RETURNING id) SELECT {_NOTIFY} FROM released",
                params,
            )
            if cursor.rowcount == 1:
                return True
            return retried and await _ended_by(db, params, "TRUE")

        return await self._db.run(work)

    async def release_expired(self) -> builtins.list[Job]:
        async def work(db: Connection, retried: bool) -> builtins.list[Job]:
            released: builtins.list[Job] = []
            async with db.transaction():
                cursor = await db.execute("SELECT pg_try_advisory_xact_lock(%s)", (SWEEP_LOCK,))
                locked = await cursor.fetchone()
                if locked is None or not next(iter(locked.values())):
                    return released  # another node is sweeping right now
                cursor = await db.execute(
                    "SELECT id, attempts FROM cesar_jobs WHERE state = 'processing' "
                    "AND lease_expires_at < now() ORDER BY seq"
                )
                for row in await cursor.fetchall():
                    error = expired_error(row["attempts"])
                    # The condition is checked again: a heartbeat may have come since.
                    job = await _one_returning(
                        db,
                        "UPDATE cesar_jobs SET "
                        "state = CASE WHEN attempts >= max_attempts THEN 'error' "
                        "ELSE 'queued' END, "
                        "completed_at = CASE WHEN attempts >= max_attempts THEN now() END, "
                        "error_code = CASE WHEN attempts >= max_attempts THEN %(code)s END, "
                        "error_message = CASE WHEN attempts >= max_attempts "
                        f"THEN %(message)s END, {_END_LEASE} WHERE id = %(id)s "
                        "AND state = 'processing' AND lease_expires_at < now() "
                        f"RETURNING {_COLUMNS}, NULL AS result",
                        {"id": row["id"], "code": error.code, "message": error.message},
                    )
                    if job is not None:
                        released.append(job)
                if any(job.state is JobState.QUEUED for job in released):
                    await db.execute(f"SELECT {_NOTIFY}")
            return released

        return await self._db.run(work)

    async def cancel(self, job_id: str) -> Job | None:
        params = {"id": job_id}

        async def work(db: Connection, retried: bool) -> Job | None:
            await db.execute(
                "UPDATE cesar_jobs SET state = 'cancelled', completed_at = now(), "
                "lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL "
                "WHERE id = %(id)s AND state IN ('queued', 'processing')",
                params,
            )
            return await _one(db, "id = %(id)s", params)

        return await self._db.run(work)

    async def record_webhook(self, job_id: str, delivery: WebhookDelivery) -> bool:
        params = {"id": job_id, "webhook": Json(to_dict(delivery))}

        async def work(db: Connection, retried: bool) -> bool:
            cursor = await db.execute(
                "UPDATE cesar_jobs SET webhook = %(webhook)s WHERE id = %(id)s", params
            )
            return cursor.rowcount == 1

        return await self._db.run(work)

    async def delete(self, job_id: str) -> bool:
        async def work(db: Connection, retried: bool) -> bool:
            cursor = await db.execute("DELETE FROM cesar_jobs WHERE id = %s", (job_id,))
            return cursor.rowcount == 1

        return await self._db.run(work)

    async def prune(self, older_than: datetime) -> builtins.list[str]:
        async def work(db: Connection, retried: bool) -> builtins.list[str]:
            cursor = await db.execute(
                "DELETE FROM cesar_jobs WHERE state IN ('completed', 'error', 'cancelled') "
                "AND completed_at < %s RETURNING id",
                (older_than,),
            )
            return [row["id"] for row in await cursor.fetchall()]

        return await self._db.run(work)

    async def counts(self) -> dict[JobState, int]:
        async def work(db: Connection, retried: bool) -> builtins.list[dict[str, Any]]:
            cursor = await db.execute("SELECT state, COUNT(*) AS n FROM cesar_jobs GROUP BY state")
            return await cursor.fetchall()

        counts = dict.fromkeys(JobState, 0)
        for row in await self._db.run(work):
            counts[JobState(row["state"])] = row["n"]
        return counts

    async def wait_for_jobs(self, timeout: float) -> None:
        """Sleep until a ``NOTIFY`` says a job was queued (by any node), or ``timeout``."""
        await self._listener.wait(timeout)

    async def schema_version(self) -> int:
        """The newest migration applied to the job tables."""

        async def work(db: Connection, retried: bool) -> int:
            cursor = await db.execute(
                "SELECT MAX(version) AS v FROM cesar_migrations WHERE component = 'jobs'"
            )
            row = await cursor.fetchone()
            return int(row["v"]) if row else 0

        return await self._db.run(work)

    async def close(self) -> None:
        await self._listener.close()
        await self._db.close()


async def _one(
    db: Connection, where: str, params: dict[str, Any], *, include_result: bool = True
) -> Job | None:
    result = "result" if include_result else "NULL AS result"
    return await _one_returning(
        db, f"SELECT {_COLUMNS}, {result} FROM cesar_jobs WHERE {where}", params
    )


async def _one_returning(db: Connection, sql: str, params: dict[str, Any]) -> Job | None:
    cursor = await db.execute(sql, params)
    row = await cursor.fetchone()
    return None if row is None else _job(row)


async def _claimed_by(db: Connection, tokens: builtins.list[str]) -> dict[str, Job]:
    """The jobs claims with ``tokens`` took that still run under them, by token: a retried
    claim whose first try committed."""
    cursor = await db.execute(
        f"SELECT {_COLUMNS}, NULL AS result, {_AUDIO} FROM cesar_jobs "
        "WHERE lease_token = ANY(%(tokens)s) AND state = 'processing'",
        {"tokens": tokens},
    )
    jobs = [_job(row) for row in await cursor.fetchall()]
    return {job.lease.token: job for job in jobs if job.lease is not None}


async def _completed_by(
    db: Connection, ids: builtins.list[str], tokens: builtins.list[str]
) -> set[str]:
    """Which of the jobs ``ids`` their leases ``tokens`` completed: a retried
    complete-and-claim whose first try committed."""
    cursor = await db.execute(
        "SELECT id FROM cesar_jobs JOIN unnest(%(ids)s::text[], %(tokens)s::text[]) "
        "AS f (f_id, f_token) ON id = f_id AND last_token = f_token WHERE state = 'completed'",
        {"ids": ids, "tokens": tokens},
    )
    return {row["id"] for row in await cursor.fetchall()}


async def _ended_by(db: Connection, params: dict[str, Any], condition: str) -> bool:
    """Whether the lease ``params["token"]`` already ended the job's run (and ``condition``
    holds): a retried write whose first try committed."""
    cursor = await db.execute(
        f"SELECT 1 FROM cesar_jobs WHERE id = %(id)s AND last_token = %(token)s AND {condition}",
        params,
    )
    return await cursor.fetchone() is not None


def _time(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _job(row: dict[str, Any]) -> Job:
    lease = None
    if row["lease_token"] is not None:
        lease = Lease(
            token=row["lease_token"],
            worker=row["lease_worker"],
            expires_at=row["lease_expires_at"].astimezone(UTC),
        )
    error = None
    if row["error_code"] is not None:
        error = JobError(code=row["error_code"], message=row["error_message"])
    result, webhook = row["result"], row["webhook"]
    return Job(
        id=row["id"],
        state=JobState(row["state"]),
        source=from_dict(row["source"], JobSource),
        options=from_dict(row["options"], TranscribeOptions),
        created_at=row["created_at"].astimezone(UTC),
        started_at=_time(row["started_at"]),
        completed_at=_time(row["completed_at"]),
        run_after=_time(row["run_after"]),
        progress=row["progress"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        result=None if result is None else from_dict(result, Transcript),
        error=error,
        metadata=row["metadata"],
        idempotency_key=row["idempotency_key"],
        webhook_url=row["webhook_url"],
        webhook=None if webhook is None else from_dict(webhook, WebhookDelivery),
        lease=lease,
        audio=row.get("audio"),
    )
