"""The contract for batch claims (optional): several jobs in one step, each its own lease."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from ..jobs import JobSource, JobState, SourceKind
from ..protocols import BatchClaimingStore, JobStore
from ._base import ERROR, TRANSCRIPT, ContractBase, Scenario, new_job


class BatchClaimsContract(ContractBase):
    """A batch claim takes the oldest runnable jobs once each, with one lease per job."""

    def test_claim_batch_takes_the_oldest_each_with_its_lease(
        self, run: Callable[[Scenario], Any]
    ) -> None:
        async def scenario(store: JobStore) -> None:
            if not isinstance(store, BatchClaimingStore):
                pytest.skip("the store does not offer claim_batch (it is optional)")
            assert await store.claim_batch("w1", 30, 4) == []
            source = JobSource(kind=SourceKind.UPLOAD, location="b/audio.wav", size=5, inline=True)
            created = [(await store.create(new_job()))[0] for _ in range(2)]
            created.append((await store.create(new_job(source=source, audio=b"RIFF!")))[0])
            created += [(await store.create(new_job()))[0] for _ in range(2)]
            batch = await store.claim_batch("w1", 30, 3)
            assert [job.id for job in batch] == [job.id for job in created[:3]]
            tokens = set()
            for job in batch:
                assert job.state is JobState.PROCESSING
                assert job.attempts == 1
                assert job.lease is not None
                assert job.lease.worker == "w1"
                tokens.add(job.lease.token)
            assert len(tokens) == 3
            assert batch[2].audio == b"RIFF!"
            # Each lease is the job's own: one ends, the others run on.
            first, second, third = batch
            assert first.lease is not None
            assert second.lease is not None
            assert third.lease is not None
            assert await store.complete(first.id, first.lease.token, TRANSCRIPT)
            assert not await store.complete(second.id, first.lease.token, TRANSCRIPT)
            assert await store.fail(second.id, second.lease.token, ERROR)
            await store.cancel(third.id)
            assert not await store.heartbeat(third.id, third.lease.token, 30)
            states = [(await store.get(job.id)) for job in batch]
            assert [job.state for job in states if job] == [
                JobState.COMPLETED,
                JobState.ERROR,
                JobState.CANCELLED,
            ]
            # Fewer left than asked for: the rest, then nothing.
            rest = await store.claim_batch("w2", 30, 5)
            assert [job.id for job in rest] == [job.id for job in created[3:]]
            assert await store.claim_batch("w2", 30, 5) == []
            assert await store.claim("w3", 30) is None

        run(scenario)

    def test_concurrent_batch_claims_never_share_a_job(
        self, run: Callable[[Scenario], Any]
    ) -> None:
        async def scenario(store: JobStore) -> None:
            if not isinstance(store, BatchClaimingStore):
                pytest.skip("the store does not offer claim_batch (it is optional)")
            for _ in range(12):
                await store.create(new_job())
            batches = await asyncio.gather(
                *(store.claim_batch(f"w{i}", 30, 3) for i in range(6)),
                *(store.claim(f"s{i}", 30) for i in range(3)),
            )
            ids = []
            for found in batches:
                if isinstance(found, list):
                    ids += [job.id for job in found]
                elif found is not None:
                    ids.append(found.id)
            assert len(ids) == 12 == len(set(ids))

        run(scenario)
