"""Completions of one worker that arrive together share one statement: the PostgreSQL
store's batched complete-and-claim against the real server (results per slot, stale
leases, an empty queue, a lost answer, a caller that stops waiting). The batcher itself is
tested in ``test_batch.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cesar_core.jobs import Job, JobState
from cesar_core.testing import TRANSCRIPT, new_job
from cesar_postgres.store import PostgresJobStore

from .test_postgres import LostAnswers, run


async def running(store: PostgresJobStore, count: int, queued: int) -> list[Job]:
    """``count`` claimed jobs, and ``queued`` more waiting behind them."""
    for _ in range(count + queued):
        await store.create(new_job())
    jobs = [await store.claim("w", 30) for _ in range(count)]
    assert all(job is not None for job in jobs)
    return [job for job in jobs if job is not None]


def counting(store: PostgresJobStore) -> list[int]:
    """Count the operations the store sends to the server."""
    calls: list[int] = []
    real_run = store.database.run

    async def counted(work: Any) -> Any:
        calls.append(1)
        return await real_run(work)

    store.database.run = counted  # type: ignore[method-assign]
    return calls


async def finish_together(
    store: PostgresJobStore, jobs: list[Job], tokens: list[str] | None = None
) -> list[tuple[bool, Job | None]]:
    tokens = tokens or [job.lease.token for job in jobs if job.lease]
    return await asyncio.gather(
        *(
            store.complete_and_claim(job.id, token, TRANSCRIPT, "w", 30)
            for job, token in zip(jobs, tokens, strict=True)
        )
    )


def test_slots_finishing_together_share_one_statement(empty_postgres: str) -> None:
    async def scenario() -> None:
        store = await PostgresJobStore.open(empty_postgres)
        jobs = await running(store, 6, queued=4)
        calls = counting(store)
        tokens = [job.lease.token for job in jobs if job.lease]
        tokens[2] = "stale"  # this slot lost its lease: its completion must not land
        outcomes = await finish_together(store, jobs, tokens)
        assert len(calls) == 1
        assert [done for done, _ in outcomes] == [True, True, False, True, True, True]
        following = [job for _, job in outcomes if job is not None]
        assert len(following) == 4  # as many as were queued; the other slots get none
        assert len({job.id for job in following}) == 4
        assert not {job.id for job in following} & {job.id for job in jobs}
        for job in following:
            assert job.state is JobState.PROCESSING
            assert job.attempts == 1
            assert job.lease is not None
            assert job.lease.worker == "w"
        # Each slot holds the lease of the job it was given: it can complete it.
        for _, job in outcomes:
            if job is not None:
                assert job.lease is not None
                assert await store.complete(job.id, job.lease.token, TRANSCRIPT)
        counts = await store.counts()
        assert counts[JobState.COMPLETED] == 9
        assert counts[JobState.PROCESSING] == 1  # the stale slot's job, still leased
        finished = await store.get(jobs[0].id)
        assert finished is not None
        assert finished.result == TRANSCRIPT
        await store.close()

    run(scenario())


def test_a_batch_whose_answer_was_lost_is_not_done_twice(empty_postgres: str) -> None:
    async def scenario() -> None:
        store = await PostgresJobStore.open(empty_postgres)
        jobs = await running(store, 4, queued=6)
        store.database.run = LostAnswers(store).run  # type: ignore[method-assign]
        outcomes = await finish_together(store, jobs)
        assert all(done for done, _ in outcomes)
        following = [job for _, job in outcomes if job is not None]
        assert len(following) == 4
        assert all(job.attempts == 1 for job in following)
        counts = await store.counts()
        assert counts[JobState.COMPLETED] == 4
        assert counts[JobState.PROCESSING] == 4  # the retry claimed nothing more
        assert counts[JobState.QUEUED] == 2
        await store.close()

    run(scenario())


def test_a_job_claimed_for_a_slot_that_stopped_waiting_goes_back(empty_postgres: str) -> None:
    async def scenario() -> None:
        store = await PostgresJobStore.open(empty_postgres)
        [job] = await running(store, 1, queued=1)
        assert job.lease is not None
        real_run = store.database.run

        async def slow(work: Any) -> Any:
            await asyncio.sleep(0.2)
            return await real_run(work)

        store.database.run = slow  # type: ignore[method-assign]
        slot = asyncio.create_task(
            store.complete_and_claim(job.id, job.lease.token, TRANSCRIPT, "w", 30)
        )
        await asyncio.sleep(0.05)
        slot.cancel()  # as a worker cancelled at shutdown
        with pytest.raises(asyncio.CancelledError):
            await slot

        async def settled() -> dict[JobState, int]:
            for _ in range(100):
                counts = await store.counts()
                if counts[JobState.PROCESSING] == 0:
                    return counts
                await asyncio.sleep(0.05)
            return await store.counts()

        counts = await settled()
        assert counts[JobState.COMPLETED] == 1  # the completion was carried out
        assert counts[JobState.QUEUED] == 1  # the claimed job went straight back
        [waiting] = (await store.list(state=JobState.QUEUED)).jobs
        assert waiting.attempts == 0
        await store.close()

    run(scenario())
