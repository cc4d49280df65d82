"""The statements of the PostgreSQL job store, and the reads that turn rows into jobs.

Kept apart from :mod:`cesar_postgres.store`, which decides *when* each runs (retries, batches,
leases): here is only *what* runs, so that a statement can be read, and ``EXPLAIN``-ed, as a
whole.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any

from cesar_core.convert import from_dict
from cesar_core.jobs import Job, JobError, JobSource, JobState, Lease, WebhookDelivery
from cesar_core.transcript import TranscribeOptions, Transcript

from . import CHANNEL
from .database import Connection

COLUMNS = (
    "seq, id, state, source, options, metadata, idempotency_key, webhook_url, created_at, "
    "started_at, completed_at, run_after, progress, attempts, max_attempts, lease_token, "
    "lease_worker, lease_expires_at, error_code, error_message, webhook"
)
#: The lease check of every write a worker makes with its token.
OWNED = "id = %(id)s AND state = 'processing' AND lease_token = %(token)s"
END_LEASE = (
    "last_token = lease_token, lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL"
)
SECONDS = "make_interval(secs => %(seconds)s)"
NOTIFY = f"pg_notify('{CHANNEL}', '')"
#: A claimed job's inline audio (NULL for audio in storage).
AUDIO = "(SELECT data FROM cesar_job_audio WHERE job_id = cesar_jobs.id) AS audio"
#: Take the oldest runnable job (parameters: token, worker, seconds).
CLAIM = (
    "UPDATE cesar_jobs SET state = 'processing', attempts = attempts + 1, "
    "progress = 0, started_at = now(), lease_token = %(token)s, "
    f"lease_worker = %(worker)s, lease_expires_at = now() + {SECONDS} "
    "WHERE seq = (SELECT seq FROM cesar_jobs WHERE state = 'queued' "
    "AND run_after <= now() ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) "
    f"RETURNING {COLUMNS}, NULL AS result, {AUDIO}"
)
#: Claim up to ``cardinality(claims)`` jobs (parameters: ``claims``, a new token per claim;
#: ``worker``, ``seconds``): the k-th oldest runnable job gets the k-th token.
CLAIM_MANY = (
    "WITH picked AS MATERIALIZED (SELECT ARRAY(SELECT seq FROM cesar_jobs "
    "WHERE state = 'queued' AND run_after <= now() ORDER BY seq "
    "LIMIT cardinality(%(claims)s::text[]) FOR UPDATE SKIP LOCKED) AS seqs) "
    "UPDATE cesar_jobs SET state = 'processing', attempts = attempts + 1, "
    "progress = 0, started_at = now(), "
    "lease_token = (%(claims)s::text[])[array_position((SELECT seqs FROM picked), seq)], "
    f"lease_worker = %(worker)s, lease_expires_at = now() + {SECONDS} "
    "WHERE seq = ANY((SELECT seqs FROM picked)::bigint[]) "
    f"RETURNING {COLUMNS}, NULL AS result, {AUDIO}"
)
#: Finish a job the caller holds (parameters: id, token, state, result, code, message).
FINISH = (
    "UPDATE cesar_jobs SET state = %(state)s, completed_at = now(), "
    "result = %(result)s, error_code = %(code)s, error_message = %(message)s, "
    "progress = CASE WHEN %(state)s = 'completed' THEN 100 ELSE progress END, "
    f"{END_LEASE} WHERE {OWNED}"
)


#: Complete one job and claim the next (parameters: those of ``FINISH`` and ``CLAIM``,
#: the claim's token as ``claim``). The row holds the claimed job (NULLs when none was) and,
#: in ``completed``, the id when the completion changed a row.
COMPLETE_AND_CLAIM_ONE = (
    f"WITH done AS ({FINISH} RETURNING id), "
    f"claimed AS ({CLAIM.replace('%(token)s', '%(claim)s')}) "
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
COMPLETE_AND_CLAIM_MANY = (
    "WITH done AS (UPDATE cesar_jobs SET state = 'completed', completed_at = now(), "
    "result = (%(results)s::json[])[array_position(%(ids)s::text[], id)], "
    f"error_code = NULL, error_message = NULL, progress = 100, {END_LEASE} "
    "WHERE id = ANY(%(ids)s::text[]) AND lease_token = ANY(%(tokens)s::text[]) "
    "RETURNING id), "
    "picked AS MATERIALIZED (SELECT ARRAY(SELECT seq FROM cesar_jobs WHERE state = 'queued' "
    "AND run_after <= now() ORDER BY seq LIMIT cardinality(%(claims)s::text[]) "
    "FOR UPDATE SKIP LOCKED) AS seqs), "
    "claimed AS (UPDATE cesar_jobs SET state = 'processing', attempts = attempts + 1, "
    "progress = 0, started_at = now(), "
    "lease_token = (%(claims)s::text[])[array_position((SELECT seqs FROM picked), seq)], "
    f"lease_worker = %(worker)s, lease_expires_at = now() + {SECONDS} "
    "WHERE seq = ANY((SELECT seqs FROM picked)::bigint[]) "
    f"RETURNING {COLUMNS}, NULL AS result, {AUDIO}) "
    "SELECT ARRAY(SELECT id FROM done) AS completed, claimed.* "
    "FROM (SELECT) AS one LEFT JOIN claimed ON TRUE"
)


async def select_job(
    db: Connection, where: str, params: dict[str, Any], *, include_result: bool = True
) -> Job | None:
    result = "result" if include_result else "NULL AS result"
    return await job_returning(
        db, f"SELECT {COLUMNS}, {result} FROM cesar_jobs WHERE {where}", params
    )


async def job_returning(db: Connection, sql: str, params: dict[str, Any]) -> Job | None:
    cursor = await db.execute(sql, params)
    row = await cursor.fetchone()
    return None if row is None else job_of(row)


async def claimed_by(db: Connection, tokens: builtins.list[str]) -> dict[str, Job]:
    """The jobs claims with ``tokens`` took that still run under them, by token: a retried
    claim whose first try committed."""
    cursor = await db.execute(
        f"SELECT {COLUMNS}, NULL AS result, {AUDIO} FROM cesar_jobs "
        "WHERE lease_token = ANY(%(tokens)s) AND state = 'processing'",
        {"tokens": tokens},
    )
    jobs = [job_of(row) for row in await cursor.fetchall()]
    return {job.lease.token: job for job in jobs if job.lease is not None}


async def completed_by(
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


async def ended_by(db: Connection, params: dict[str, Any], condition: str) -> bool:
    """Whether the lease ``params["token"]`` already ended the job's run (and ``condition``
    holds): a retried write whose first try committed."""
    cursor = await db.execute(
        f"SELECT 1 FROM cesar_jobs WHERE id = %(id)s AND last_token = %(token)s AND {condition}",
        params,
    )
    return await cursor.fetchone() is not None


def _time(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


async def replace_result_row(db: Connection, params: dict[str, Any]) -> bool:
    """Naming speakers: a completed job's transcript replaced, nothing else."""
    cursor = await db.execute(
        "UPDATE cesar_jobs SET result = %(result)s WHERE id = %(id)s AND state = 'completed'",
        params,
    )
    return cursor.rowcount == 1


def job_of(row: dict[str, Any]) -> Job:
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
