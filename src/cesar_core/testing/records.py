"""The contract for a store's records: creating, finding, listing, counting, pruning."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ..errors import InvalidOptionsError
from ..jobs import DeliveryStatus, JobState, WebhookDelivery
from ..protocols import JobStore
from ._base import ERROR, TRANSCRIPT, ContractBase, Scenario, claimed, new_job


class RecordsContract(ContractBase):
    """Jobs go in, come back as they went in, and leave when asked."""

    def test_create_and_get_round_trip(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            skew = timedelta(seconds=self.clock_tolerance)
            before = datetime.now(UTC) - skew
            job, created = await store.create(new_job(webhook_url="http://hooks/x"))
            assert created
            assert job.state is JobState.QUEUED
            assert job.attempts == 0
            assert job.progress == 0
            assert job.lease is None
            assert before <= job.created_at <= datetime.now(UTC) + skew
            assert job.created_at.tzinfo is not None
            fetched = await store.get(job.id)
            assert fetched == job
            assert fetched is not None
            assert fetched.options.word_timestamps is True
            assert fetched.metadata == {"customer": "acme", "tags": ["x"]}
            assert fetched.source.filename == "a.wav"
            assert fetched.webhook_url == "http://hooks/x"
            assert await store.get("no-such-job") is None

        run(scenario)

    def test_idempotency_key_returns_the_first_job(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            first, created = await store.create(new_job(idempotency_key="k1"))
            again, created_again = await store.create(new_job(idempotency_key="k1"))
            assert created
            assert not created_again
            assert again.id == first.id
            other, _ = await store.create(new_job(idempotency_key="k2"))
            assert other.id != first.id
            assert await store.delete(first.id)
            reused, created = await store.create(new_job(idempotency_key="k1"))
            assert created
            assert reused.id != first.id

        run(scenario)

    def test_list_is_newest_first_with_cursor_pages(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            ids = [(await store.create(new_job()))[0].id for _ in range(7)]
            job = await store.claim("w", 30)
            assert job is not None
            assert await store.complete(job.id, job.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
            seen: list[str] = []
            cursor = None
            while True:
                page = await store.list(limit=3, cursor=cursor)
                assert len(page.jobs) <= 3
                seen.extend(j.id for j in page.jobs)
                assert all(j.result is None for j in page.jobs)  # listings omit results
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert seen == list(reversed(ids))
            done = await store.list(state=JobState.COMPLETED)
            assert [j.id for j in done.jobs] == [ids[0]]
            assert done.next_cursor is None
            full = await store.list(state=JobState.COMPLETED, include_result=True)
            assert full.jobs[0].result == TRANSCRIPT
            with pytest.raises(InvalidOptionsError, match="Invalid cursor"):
                await store.list(cursor="not-a-cursor")

        run(scenario)

    def test_delete_and_prune(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            old = await claimed(store)
            assert await store.complete(old.id, old.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
            queued, _ = await store.create(new_job())
            running = await claimed(store)
            # Later than the store's clock could say the old job ended; the other two,
            # not ended, are never pruned whatever the cutoff.
            cutoff = datetime.now(UTC) + timedelta(seconds=max(1.0, self.clock_tolerance))
            await asyncio.sleep(0.05)
            assert await store.prune(datetime.now(UTC) - timedelta(hours=1)) == []
            assert await store.prune(cutoff) == [old.id]
            assert await store.get(old.id) is None
            assert await store.get(queued.id) is not None
            assert await store.get(running.id) is not None
            assert await store.delete(queued.id)
            assert not await store.delete(queued.id)
            assert await store.get(queued.id) is None

        run(scenario)

    def test_counts_every_state(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            assert await store.counts() == dict.fromkeys(JobState, 0)
            await store.create(new_job())
            job = await claimed(store)
            await store.create(new_job())
            assert await store.fail(job.id, job.lease.token, ERROR)  # type: ignore[union-attr]
            counts = await store.counts()
            assert counts[JobState.QUEUED] == 2
            assert counts[JobState.ERROR] == 1
            assert sum(counts.values()) == 3

        run(scenario)

    def test_webhook_outcome_is_recorded_without_touching_the_job(
        self, run: Callable[[Scenario], Any]
    ) -> None:
        async def scenario(store: JobStore) -> None:
            job = await claimed(store)
            assert await store.complete(job.id, job.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
            delivery = WebhookDelivery(
                event_id=f"{job.id}.completed",
                status=DeliveryStatus.FAILED,
                attempts=3,
                status_code=503,
                error="HTTP 503",
                finished_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            )
            assert await store.record_webhook(job.id, delivery)
            after = await store.get(job.id)
            assert after is not None
            assert after.webhook == delivery
            assert after.state is JobState.COMPLETED
            assert after.result == TRANSCRIPT
            listed = await store.list()
            assert listed.jobs[0].webhook == delivery
            assert not await store.record_webhook("no-such-job", delivery)

        run(scenario)
