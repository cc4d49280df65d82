"""Complete-and-claim for the PostgreSQL store: the calls of one worker's slots that arrive
together share one statement, so a worker with many slots pays one round trip and one commit
for several jobs. A lone call goes at once; nothing waits on a timer.

A retry after a lost answer finds the first try's effects (completions by ``last_token``,
claims by token) before doing anything, so nothing is done twice; a job claimed for a slot
that stopped waiting while its batch was in flight is released at once, not at lease expiry.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Awaitable, Callable
from functools import partial

from attrs import frozen
from psycopg.types.json import Json

from cesar_core.batch import Batcher
from cesar_core.convert import to_dict
from cesar_core.jobs import Job, JobState
from cesar_core.transcript import Transcript

from .database import Connection, Database
from .queries import (
    CLAIM_MANY,
    COMPLETE_AND_CLAIM_MANY,
    COMPLETE_AND_CLAIM_ONE,
    claimed_by,
    completed_by,
    job_of,
)


async def claim_batch(
    database: Database, worker: str, lease_seconds: float, limit: int
) -> builtins.list[Job]:
    """Claim up to ``limit`` jobs in one statement, each under a token of its own (the
    store's ``claim_batch``); a retry finds what a first try whose answer was lost took."""
    claims = [uuid.uuid4().hex for _ in range(max(0, limit))]
    params = {"claims": claims, "worker": worker, "seconds": lease_seconds}

    async def work(db: Connection, retried: bool) -> builtins.list[Job]:
        mine = await claimed_by(db, claims) if retried else {}
        if not mine:  # all or none of a first try's claims committed
            cursor = await db.execute(CLAIM_MANY, params)
            jobs = [job_of(row) for row in await cursor.fetchall()]
            mine = {job.lease.token: job for job in jobs if job.lease is not None}
        return [mine[token] for token in claims if token in mine]

    return await database.run(work) if claims else []


@frozen
class _Chained:
    """One slot's part of a batched complete-and-claim."""

    id: str
    token: str
    result: Json
    #: The token of the claim made for this slot.
    claim: str


class ChainedCompletions:
    """One batcher per (worker, lease length), each sending its batches as one statement."""

    def __init__(self, database: Database, release: Callable[[str, str], Awaitable[bool]]) -> None:
        self._db = database
        #: The store's release, for a job claimed for a slot that stopped waiting.
        self._release = release
        self._chains: dict[tuple[str, float], Batcher[_Chained, tuple[bool, Job | None]]] = {}

    async def complete_and_claim(
        self, job_id: str, token: str, result: Transcript, worker: str, lease_seconds: float
    ) -> tuple[bool, Job | None]:
        """Complete ``job_id`` and claim the next job for ``worker``; calls that arrive
        while a batch is on its way go together in the next (see :mod:`cesar_core.batch`)."""
        key = (worker, lease_seconds)
        batcher = self._chains.get(key)
        if batcher is None:
            batcher = self._chains[key] = Batcher(
                partial(self._run, worker, lease_seconds),
                max_size=64,
                abandoned=self._release_abandoned,
            )
        chained = _Chained(job_id, token, Json(to_dict(result)), uuid.uuid4().hex)
        return await batcher.call(chained)

    async def _run(
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
            sql = COMPLETE_AND_CLAIM_ONE
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
            sql = COMPLETE_AND_CLAIM_MANY
            params = {
                "ids": ids,
                "tokens": tokens,
                "results": [c.result for c in batch],
                "claims": claims,
                **common,
            }

        async def work(db: Connection, retried: bool) -> tuple[set[str], dict[str, Job]]:
            if retried:  # all or none of the first try's changes committed
                claimed = await claimed_by(db, claims)
                completed = await completed_by(db, ids, tokens)
                if claimed or completed:
                    return completed, claimed
            cursor = await db.execute(sql, params)
            rows = await cursor.fetchall()
            jobs = [job_of(row) for row in rows if row["id"] is not None]
            return set(rows[0]["completed"]), {job.lease.token: job for job in jobs if job.lease}

        completed, claimed = await self._db.run(work)
        return [(c.id in completed, claimed.get(c.claim)) for c in batch]

    async def _release_abandoned(self, chained: _Chained, outcome: tuple[bool, Job | None]) -> None:
        """A job claimed for a caller that stopped waiting goes back to the queue now,
        rather than when its lease expires."""
        job = outcome[1]
        if job is not None:
            await self._release(job.id, chained.claim)
