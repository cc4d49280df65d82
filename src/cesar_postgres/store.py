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
from datetime import datetime
from typing import Any

from psycopg.types.json import Json

from cesar_core.convert import to_dict
from cesar_core.jobs import Job, JobError, JobState, NewJob, WebhookDelivery
from cesar_core.protocols import Page
from cesar_core.stores.common import decode_cursor, expired_error, page_of
from cesar_core.transcript import Transcript

from .chaining import ChainedCompletions, claim_batch
from .database import Connection, Database
from .listen import Listener
from .live import LiveJobs
from .queries import (
    CLAIM,
    COLUMNS,
    END_LEASE,
    FINISH,
    NOTIFY,
    OWNED,
    SECONDS,
    claimed_by,
    ended_by,
    job_of,
    job_returning,
    replace_result_row,
    select_job,
)
from .schema import MIGRATIONS

#: The sweep's advisory lock key.
SWEEP_LOCK = 0x63_65_73_61_72_00_00_02
#: Pruning's advisory lock key: one node prunes at a time, the others skip their turn.
PRUNE_LOCK = 0x63_65_73_61_72_00_00_03


class PostgresJobStore(LiveJobs):
    """A :class:`~cesar_core.protocols.JobStore` (and
    :class:`~cesar_core.protocols.JobNotifier`) in PostgreSQL."""

    def __init__(self, url: str, database: Database) -> None:
        self._db = database
        self._listener = Listener(url, database.where)
        self._follow_changes(url, database.where)  # live jobs: LISTEN cesar_job_events
        self._chains = ChainedCompletions(database, self.release)

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
                    f"RETURNING {COLUMNS}, result){audio} "
                    f"SELECT *, {NOTIFY} FROM created",
                    params,
                )
                row = await cursor.fetchone()
                if row is not None:
                    return job_of(row), True
                mine = await select_job(db, "id = %(id)s", params)
                if mine is not None:
                    return mine, True
                earlier = await select_job(db, "idempotency_key = %(key)s", params)
                if earlier is not None:
                    return earlier, False
                # The job holding the key was deleted in between: insert again.

        return await self._db.run(work)

    async def get(self, job_id: str, *, include_result: bool = True) -> Job | None:
        async def work(db: Connection, retried: bool) -> Job | None:
            return await select_job(
                db, "id = %(id)s", {"id": job_id}, include_result=include_result
            )

        return await self._with_segments(await self._db.run(work), include_result)

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
            f"SELECT {COLUMNS}, {result} FROM cesar_jobs WHERE {' AND '.join(clauses)} "
            "ORDER BY seq DESC LIMIT %(limit)s"
        )

        async def work(db: Connection, retried: bool) -> builtins.list[dict[str, Any]]:
            return await (await db.execute(sql, params)).fetchall()

        rows = await self._db.run(work)
        return page_of(rows, limit, job_of)

    async def claim(self, worker: str, lease_seconds: float) -> Job | None:
        token = uuid.uuid4().hex
        params = {"token": token, "worker": worker, "seconds": lease_seconds}

        async def work(db: Connection, retried: bool) -> Job | None:
            if retried:  # the first try may have claimed a job before its answer was lost
                mine = await claimed_by(db, [token])
                if mine:
                    return mine[token]
            cursor = await db.execute(CLAIM, params)
            row = await cursor.fetchone()
            return None if row is None else job_of(row)

        return await self._db.run(work)

    async def claim_batch(
        self, worker: str, lease_seconds: float, limit: int
    ) -> builtins.list[Job]:
        return await claim_batch(self._db, worker, lease_seconds, limit)

    async def heartbeat(
        self, job_id: str, token: str, lease_seconds: float, progress: int | None = None
    ) -> bool:
        params = {"id": job_id, "token": token, "seconds": lease_seconds, "progress": progress}

        async def work(db: Connection, retried: bool) -> bool:
            cursor = await db.execute(
                f"UPDATE cesar_jobs SET lease_expires_at = now() + {SECONDS}, "
                f"progress = COALESCE(%(progress)s, progress) WHERE {OWNED}",
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
            cursor = await db.execute(FINISH, params)
            if cursor.rowcount == 1:
                return True
            return retried and await ended_by(db, params, "state = %(state)s")

        return await self._db.run(work)

    async def complete(self, job_id: str, token: str, result: Transcript) -> bool:
        return await self._finish(job_id, token, JobState.COMPLETED, Json(to_dict(result)), None)

    async def fail(self, job_id: str, token: str, error: JobError) -> bool:
        return await self._finish(job_id, token, JobState.ERROR, None, error)

    async def complete_and_claim(
        self, job_id: str, token: str, result: Transcript, worker: str, lease_seconds: float
    ) -> tuple[bool, Job | None]:
        """Complete and claim in one statement; calls of one worker that arrive together
        share it (see :mod:`cesar_postgres.chaining`)."""
        return await self._chains.complete_and_claim(job_id, token, result, worker, lease_seconds)

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
                f"run_after = now() + {SECONDS}, error_code = %(code)s, "
                f"error_message = %(message)s, {END_LEASE} WHERE {OWNED} RETURNING state",
                params,
            )
            row = await cursor.fetchone()
            if row is None and retried and await ended_by(db, params, "TRUE"):
                current = await select_job(db, "id = %(id)s", params, include_result=False)
                failed = current is not None and current.state is JobState.ERROR
                return JobState.ERROR if failed else JobState.QUEUED
            return None if row is None else JobState(row["state"])

        return await self._db.run(work)

    async def release(self, job_id: str, token: str) -> bool:
        params = {"id": job_id, "token": token}

        async def work(db: Connection, retried: bool) -> bool:
            cursor = await db.execute(
                "WITH released AS (UPDATE cesar_jobs SET state = 'queued', "
                f"attempts = GREATEST(attempts - 1, 0), {END_LEASE} WHERE {OWNED} "
                f"RETURNING id) SELECT {NOTIFY} FROM released",
                params,
            )
            if cursor.rowcount == 1:
                return True
            return retried and await ended_by(db, params, "TRUE")

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
                    job = await job_returning(
                        db,
                        "UPDATE cesar_jobs SET "
                        "state = CASE WHEN attempts >= max_attempts THEN 'error' "
                        "ELSE 'queued' END, "
                        "completed_at = CASE WHEN attempts >= max_attempts THEN now() END, "
                        "error_code = CASE WHEN attempts >= max_attempts THEN %(code)s END, "
                        "error_message = CASE WHEN attempts >= max_attempts "
                        f"THEN %(message)s END, {END_LEASE} WHERE id = %(id)s "
                        "AND state = 'processing' AND lease_expires_at < now() "
                        f"RETURNING {COLUMNS}, NULL AS result",
                        {"id": row["id"], "code": error.code, "message": error.message},
                    )
                    if job is not None:
                        released.append(job)
                if any(job.state is JobState.QUEUED for job in released):
                    await db.execute(f"SELECT {NOTIFY}")
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
            return await select_job(db, "id = %(id)s", params)

        return await self._db.run(work)

    async def record_webhook(self, job_id: str, delivery: WebhookDelivery) -> bool:
        params = {"id": job_id, "webhook": Json(to_dict(delivery))}

        async def work(db: Connection, retried: bool) -> bool:
            cursor = await db.execute(
                "UPDATE cesar_jobs SET webhook = %(webhook)s WHERE id = %(id)s", params
            )
            return cursor.rowcount == 1

        return await self._db.run(work)

    async def replace_result(self, job_id: str, result: Transcript) -> bool:
        params = {"id": job_id, "result": Json(to_dict(result))}
        return await self._db.run(lambda db, _: replace_result_row(db, params))

    async def inline_audio(self, job_id: str) -> bytes | None:
        async def work(db: Connection, retried: bool) -> bytes | None:
            cursor = await db.execute(
                "SELECT data FROM cesar_job_audio WHERE job_id = %s", (job_id,)
            )
            row = await cursor.fetchone()
            return None if row is None else bytes(row["data"])

        return await self._db.run(work)

    async def delete(self, job_id: str) -> bool:
        async def work(db: Connection, retried: bool) -> bool:
            cursor = await db.execute("DELETE FROM cesar_jobs WHERE id = %s", (job_id,))
            return cursor.rowcount == 1

        return await self._db.run(work)

    async def prune(self, older_than: datetime) -> builtins.list[str]:
        async def work(db: Connection, retried: bool) -> builtins.list[str]:
            async with db.transaction():
                cursor = await db.execute("SELECT pg_try_advisory_xact_lock(%s)", (PRUNE_LOCK,))
                locked = await cursor.fetchone()
                if locked is None or not next(iter(locked.values())):
                    return []  # another node is pruning right now
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
        await self._stop_following()
        await self._db.close()
