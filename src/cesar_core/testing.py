"""The job store contract, as pytest tests that every store must pass.

Our own stores run it, and so can a third-party store: subclass :class:`JobStoreContract`
in a test module and implement ``open_store``::

    from cesar_core.testing import JobStoreContract

    class TestMyStore(JobStoreContract):
        async def open_store(self, tmp_path):
            return await MyStore.open(...)

Every test gets a fresh, empty store (``tmp_path`` is a new directory for each).
Importing this module needs pytest; the rest of ``cesar_core`` never imports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .errors import InvalidOptionsError
from .jobs import (
    DeliveryStatus,
    Job,
    JobError,
    JobSource,
    JobState,
    NewJob,
    SourceKind,
    WebhookDelivery,
)
from .protocols import ChainingStore, JobStore
from .transcript import Segment, TranscribeOptions, Transcript

Scenario = Callable[[JobStore], Awaitable[Any]]

TRANSCRIPT = Transcript(
    text="Hello.",
    segments=(Segment(id=0, start=0.0, end=1.0, text="Hello."),),
    language="en",
    language_probability=0.9,
    duration=1.0,
    model="tiny.en",
)
ERROR = JobError(code="invalid_audio", message="not audio")


def new_job(**changes: Any) -> NewJob:
    """A queued job as a caller would submit it."""
    values: dict[str, Any] = {
        "source": JobSource(kind=SourceKind.UPLOAD, location="uploads/a.wav", filename="a.wav"),
        "options": TranscribeOptions(language="en", word_timestamps=True),
        "metadata": {"customer": "acme", "tags": ["x"]},
    }
    values.update(changes)
    return NewJob(**values)


async def claimed(store: JobStore, lease: float = 30.0, worker: str = "w1") -> Job:
    """Create a job and claim it; the contract's usual starting point."""
    await store.create(new_job())
    job = await store.claim(worker, lease)
    assert job is not None
    assert job.lease is not None
    return job


class JobStoreContract:
    """Behaviour every :class:`~cesar_core.protocols.JobStore` must have."""

    async def open_store(self, tmp_path: Path) -> JobStore:
        """Return a new, empty, open store."""
        raise NotImplementedError

    async def inline_audio_kept(self, store: JobStore) -> int | None:
        """How many jobs' inline audio the store still holds, or None when a subclass
        cannot tell: then the contract cannot check that ended jobs leave none behind."""
        return None

    @pytest.fixture
    def run(self, tmp_path: Path) -> Callable[[Scenario], Any]:
        def runner(scenario: Scenario) -> Any:
            async def main() -> Any:
                store = await self.open_store(tmp_path)
                try:
                    return await scenario(store)
                finally:
                    await store.close()

            return asyncio.run(main())

        return runner

    def test_create_and_get_round_trip(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            before = datetime.now(UTC) - timedelta(seconds=5)
            job, created = await store.create(new_job(webhook_url="http://hooks/x"))
            assert created
            assert job.state is JobState.QUEUED
            assert job.attempts == 0
            assert job.progress == 0
            assert job.lease is None
            assert before <= job.created_at <= datetime.now(UTC) + timedelta(seconds=5)
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
            assert 20 < remaining <= 31
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

    def test_retry_backs_off_then_gives_up(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            await store.create(new_job(max_attempts=2))
            job = await store.claim("w1", 30)
            assert job is not None
            state = await store.retry(job.id, job.lease.token, ERROR, 0.3)  # type: ignore[union-attr]
            assert state is JobState.QUEUED
            queued = await store.get(job.id)
            assert queued is not None
            assert queued.lease is None
            assert queued.error == ERROR
            assert await store.claim("w1", 30) is None  # not before the delay
            await asyncio.sleep(0.4)
            again = await store.claim("w1", 30)
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
            lost = await store.claim("dead-worker", 0.2)
            alive = await store.claim("live-worker", 60)
            assert lost is not None
            assert alive is not None
            assert await store.release_expired() == []
            await asyncio.sleep(0.3)
            released = await store.release_expired()
            assert [(job.id, job.state) for job in released] == [(lost.id, JobState.QUEUED)]
            requeued = await store.get(lost.id)
            assert requeued is not None
            assert requeued.state is JobState.QUEUED
            assert requeued.lease is None
            still = await store.get(alive.id)
            assert still is not None
            assert still.state is JobState.PROCESSING
            # The stale worker cannot finish what another worker now owns.
            retaken = await store.claim("w2", 0.2)
            assert retaken is not None
            assert retaken.id == lost.id
            assert retaken.attempts == 2
            assert not await store.complete(lost.id, lost.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
            assert not await store.heartbeat(lost.id, lost.lease.token, 30)  # type: ignore[union-attr]
            await asyncio.sleep(0.3)
            released = await store.release_expired()
            assert [(job.id, job.state) for job in released] == [(lost.id, JobState.ERROR)]
            assert released[0].error is not None
            dead = await store.get(lost.id)
            assert dead is not None
            assert dead.state is JobState.ERROR
            assert dead.error is not None
            assert dead.error.code == "worker_lost"

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

    def test_delete_and_prune(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            old = await claimed(store)
            assert await store.complete(old.id, old.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
            queued, _ = await store.create(new_job())
            running = await claimed(store)
            cutoff = datetime.now(UTC) + timedelta(seconds=1)
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

    def test_inline_audio_reaches_the_worker_with_its_claim(
        self, run: Callable[[Scenario], Any]
    ) -> None:
        async def scenario(store: JobStore) -> None:
            audio = bytes(range(256)) * 8 + b"\0end"  # every byte value, NULs included

            def inline(name: str) -> NewJob:
                source = JobSource(
                    kind=SourceKind.UPLOAD,
                    location=f"{name}/audio.wav",
                    filename="a.wav",
                    size=len(audio),
                    inline=True,
                )
                return new_job(source=source, audio=audio + name.encode())

            job, _ = await store.create(inline("one"))
            plain, _ = await store.create(new_job())
            assert job.audio is None  # only a claim brings the audio
            fetched = await store.get(job.id)
            assert fetched is not None
            assert fetched.source.inline
            assert fetched.audio is None
            assert all(j.audio is None for j in (await store.list(include_result=True)).jobs)
            first = await store.claim("w1", 30)
            assert first is not None
            assert first.id == job.id
            assert first.audio == audio + b"one"
            # A retried job brings its audio again.
            assert await store.retry(job.id, first.lease.token, ERROR, 0) is JobState.QUEUED  # type: ignore[union-attr]
            again = await store.claim("w2", 30)
            assert again is not None
            assert again.id == job.id
            assert again.audio == audio + b"one"
            other = await store.claim("w1", 30)
            assert other is not None
            assert other.id == plain.id
            assert other.audio is None
            # The audio goes once the job ends, whichever way it ends.
            assert await store.complete(job.id, again.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
            failed, _ = await store.create(inline("two"))
            cancelled, _ = await store.create(inline("three"))
            deleted, _ = await store.create(inline("four"))
            assert await self.inline_audio_kept(store) in (None, 3)
            running = await store.claim("w1", 30)
            assert running is not None
            assert running.id == failed.id
            assert await store.fail(failed.id, running.lease.token, ERROR)  # type: ignore[union-attr]
            await store.cancel(cancelled.id)
            assert await store.delete(deleted.id)
            assert await self.inline_audio_kept(store) in (None, 0)

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
