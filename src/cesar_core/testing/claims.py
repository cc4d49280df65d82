"""The contract for claims and leases: one owner per job, and only the owner decides."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ..jobs import JobSource, JobState, SourceKind
from ..protocols import ChainingStore, JobStore
from ._base import ERROR, TRANSCRIPT, ContractBase, Scenario, claimed, new_job


class ClaimsContract(ContractBase):
    """Claims take the oldest job once; completing, failing and heartbeating need the lease."""

    def test_claim_takes_the_oldest_once(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            assert await store.claim("w1", 30) is None
            first, _ = await store.create(new_job())
            second, _ = await store.create(new_job())
            job = await store.claim("w1", 30)
            assert job is not None
            assert job.id == first.id
            assert job.state is JobState.PROCESSING
            assert job.attempts == 1
            assert job.started_at is not None
            assert job.lease is not None
            assert job.lease.worker == "w1"
            remaining = (job.lease.expires_at - datetime.now(UTC)).total_seconds()
            assert 20 < remaining <= 30 + max(1.0, self.clock_tolerance)
            other = await store.claim("w2", 30)
            assert other is not None
            assert other.id == second.id
            assert await store.claim("w3", 30) is None

        run(scenario)

    def test_concurrent_claims_never_share_a_job(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            for _ in range(10):
                await store.create(new_job())
            results = await asyncio.gather(*(store.claim(f"w{i}", 30) for i in range(25)))
            ids = [job.id for job in results if job is not None]
            assert len(ids) == 10 == len(set(ids))

        run(scenario)

    def test_heartbeat_extends_the_lease_and_records_progress(
        self, run: Callable[[Scenario], Any]
    ) -> None:
        async def scenario(store: JobStore) -> None:
            job = await claimed(store, lease=5)
            token = job.lease.token  # type: ignore[union-attr]
            assert await store.heartbeat(job.id, token, 60, progress=40)
            current = await store.get(job.id)
            assert current is not None
            assert current.progress == 40
            assert current.lease is not None
            assert (current.lease.expires_at - datetime.now(UTC)).total_seconds() > 50
            assert await store.heartbeat(job.id, token, 60)  # progress unchanged
            assert (await store.get(job.id)).progress == 40  # type: ignore[union-attr]
            assert not await store.heartbeat(job.id, "wrong-token", 60)
            assert not await store.heartbeat("no-such-job", token, 60)

        run(scenario)

    def test_complete_needs_the_lease(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            job = await claimed(store)
            token = job.lease.token  # type: ignore[union-attr]
            assert not await store.complete(job.id, "stale", TRANSCRIPT)
            assert await store.complete(job.id, token, TRANSCRIPT)
            done = await store.get(job.id)
            assert done is not None
            assert done.state is JobState.COMPLETED
            assert done.result == TRANSCRIPT
            assert done.progress == 100
            assert done.lease is None
            assert done.completed_at is not None
            assert not await store.complete(job.id, token, TRANSCRIPT)  # only once
            assert not await store.fail(job.id, token, ERROR)
            assert (await store.get(job.id)).state is JobState.COMPLETED  # type: ignore[union-attr]

        run(scenario)

    def test_fail_is_final(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            job = await claimed(store)
            assert await store.fail(job.id, job.lease.token, ERROR)  # type: ignore[union-attr]
            failed = await store.get(job.id)
            assert failed is not None
            assert failed.state is JobState.ERROR
            assert failed.error == ERROR
            assert failed.completed_at is not None
            assert await store.claim("w2", 30) is None

        run(scenario)

    def test_release_hands_a_job_back_without_counting(
        self, run: Callable[[Scenario], Any]
    ) -> None:
        async def scenario(store: JobStore) -> None:
            job = await claimed(store)
            token = job.lease.token  # type: ignore[union-attr]
            assert not await store.release(job.id, "stale")
            assert await store.release(job.id, token)
            back = await store.get(job.id)
            assert back is not None
            assert back.state is JobState.QUEUED
            assert back.attempts == 0
            assert back.lease is None
            assert not await store.complete(job.id, token, TRANSCRIPT)
            again = await store.claim("w2", 30)
            assert again is not None
            assert again.attempts == 1

        run(scenario)

    def test_complete_and_claim_is_one_step(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            if not isinstance(store, ChainingStore):
                pytest.skip("the store does not offer complete_and_claim (it is optional)")
            first = await claimed(store)
            assert first.lease is not None
            source = JobSource(kind=SourceKind.UPLOAD, location="b/audio.wav", size=5, inline=True)
            second, _ = await store.create(new_job(source=source, audio=b"RIFF!"))
            done, following = await store.complete_and_claim(
                first.id, first.lease.token, TRANSCRIPT, "w2", 30
            )
            assert done
            assert following is not None
            assert following.id == second.id
            assert following.state is JobState.PROCESSING
            assert following.attempts == 1
            assert following.lease is not None
            assert following.lease.worker == "w2"
            assert following.audio == b"RIFF!"
            finished = await store.get(first.id)
            assert finished is not None
            assert finished.state is JobState.COMPLETED
            assert finished.result == TRANSCRIPT
            assert finished.progress == 100
            # A lost lease completes nothing, and the claim is made all the same.
            third, _ = await store.create(new_job())
            stale, taken = await store.complete_and_claim(
                first.id, first.lease.token, TRANSCRIPT, "w3", 30
            )
            assert not stale
            assert taken is not None
            assert taken.id == third.id
            # With nothing left to claim, the completion still happens.
            done, nothing = await store.complete_and_claim(
                second.id, following.lease.token, TRANSCRIPT, "w2", 30
            )
            assert done
            assert nothing is None
            assert (await store.counts())[JobState.COMPLETED] == 2
            assert await self.inline_audio_kept(store) in (None, 0)

        run(scenario)
