"""The contract for how jobs end when things go wrong: retries with a delay, leases that
run out, cancellation, even while a worker is completing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..jobs import JobState
from ..protocols import JobStore
from ._base import ERROR, TRANSCRIPT, ContractBase, Scenario, claimed, new_job


class EndingsContract(ContractBase):
    """Retries wait their delay, lost workers' jobs come back, cancelling ends a job once."""

    def test_retry_backs_off_then_gives_up(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            await store.create(new_job(max_attempts=2))
            job = await store.claim("w1", 30)
            assert job is not None
            state = await store.retry(job.id, job.lease.token, ERROR, self.retry_delay)  # type: ignore[union-attr]
            assert state is JobState.QUEUED
            queued = await store.get(job.id)
            assert queued is not None
            assert queued.lease is None
            assert queued.error == ERROR
            assert await store.claim("w1", 30) is None  # not before the delay
            again = await self.eventually(
                lambda: store.claim("w1", 30),
                self.retry_delay,
                "the job retried with a delay never came back to the queue",
            )
            assert again is not None
            assert again.id == job.id
            assert again.attempts == 2
            assert not await store.retry(job.id, "stale", ERROR, 0)
            final = await store.retry(job.id, again.lease.token, ERROR, 0)  # type: ignore[union-attr]
            assert final is JobState.ERROR
            assert (await store.get(job.id)).state is JobState.ERROR  # type: ignore[union-attr]

        run(scenario)

    def test_expired_leases_are_released(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            await store.create(new_job(max_attempts=2))
            await store.create(new_job())
            lost = await store.claim("dead-worker", self.short_lease)
            alive = await store.claim("live-worker", 60)
            assert lost is not None
            assert alive is not None
            assert await store.release_expired() == []
            released = await self.eventually(
                store.release_expired, self.short_lease, "the expired lease was never released"
            )
            assert [(job.id, job.state) for job in released] == [(lost.id, JobState.QUEUED)]
            requeued = await store.get(lost.id)
            assert requeued is not None
            assert requeued.state is JobState.QUEUED
            assert requeued.lease is None
            still = await store.get(alive.id)
            assert still is not None
            assert still.state is JobState.PROCESSING
            # The stale worker cannot finish what another worker now owns.
            retaken = await store.claim("w2", self.short_lease)
            assert retaken is not None
            assert retaken.id == lost.id
            assert retaken.attempts == 2
            assert not await store.complete(lost.id, lost.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
            assert not await store.heartbeat(lost.id, lost.lease.token, 30)  # type: ignore[union-attr]
            released = await self.eventually(
                store.release_expired, self.short_lease, "the second lease was never released"
            )
            assert [(job.id, job.state) for job in released] == [(lost.id, JobState.ERROR)]
            assert released[0].error is not None
            dead = await store.get(lost.id)
            assert dead is not None
            assert dead.state is JobState.ERROR
            assert dead.error is not None
            assert dead.error.code == "worker_lost"

        run(scenario)

    def test_cancel_ends_in_one_terminal_state(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            queued, _ = await store.create(new_job())
            running = await claimed(store)
            cancelled = await store.cancel(queued.id)
            assert cancelled is not None
            assert cancelled.state is JobState.CANCELLED
            stopped = await store.cancel(running.id)
            assert stopped is not None
            assert stopped.state is JobState.CANCELLED
            assert stopped.lease is None
            assert not await store.complete(running.id, running.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
            assert not await store.heartbeat(running.id, running.lease.token, 30)  # type: ignore[union-attr]
            finished = await claimed(store)
            assert await store.complete(finished.id, finished.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
            unchanged = await store.cancel(finished.id)
            assert unchanged is not None
            assert unchanged.state is JobState.COMPLETED
            assert await store.cancel("no-such-job") is None

        run(scenario)

    def test_cancel_racing_completion(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            for _ in range(20):
                job = await claimed(store)
                token = job.lease.token  # type: ignore[union-attr]
                completed, cancelled = await asyncio.gather(
                    store.complete(job.id, token, TRANSCRIPT), store.cancel(job.id)
                )
                final = await store.get(job.id)
                assert final is not None
                assert cancelled is not None
                assert final.state in (JobState.COMPLETED, JobState.CANCELLED)
                assert completed == (final.state is JobState.COMPLETED)
                assert cancelled.state is final.state

        run(scenario)
