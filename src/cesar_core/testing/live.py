"""The contract for live jobs (:class:`~cesar_core.protocols.LiveStore`, optional): a
running job's segments kept in order while its owner holds it, gone when it ends, and a
wake-up for its followers. A store without ``publish`` skips these tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from ..protocols import JobStore, LiveStore
from ..transcript import Segment
from ._base import ERROR, TRANSCRIPT, ContractBase, Scenario, claimed, new_job


def _segments(first: int, count: int) -> list[Segment]:
    return [
        Segment(id=n, start=float(n), end=n + 1.0, text=f"Part {n}, é ✓.")
        for n in range(first, first + count)
    ]


def _live(store: JobStore) -> LiveStore:
    if not isinstance(store, LiveStore):
        pytest.skip("the store keeps no live segments (LiveStore is optional)")
    return store


class LiveContract(ContractBase):
    """Live segments: appended in order by the lease's owner, read from any point, shown
    by ``get`` while the job runs, dropped when it stops running; followers are woken."""

    def test_segments_are_kept_in_order_while_the_job_runs(
        self, run: Callable[[Scenario], Any]
    ) -> None:
        async def scenario(store: JobStore) -> None:
            live = _live(store)
            job = await claimed(store)
            token = job.lease.token  # type: ignore[union-attr]
            assert await live.live_segments(job.id) == []
            assert await live.publish(job.id, token, _segments(0, 2), progress=20)
            assert await live.publish(job.id, token, _segments(2, 3))
            assert await live.live_segments(job.id) == _segments(0, 5)
            assert await live.live_segments(job.id, 3) == _segments(3, 2)
            assert await live.live_segments(job.id, 9) == []
            current = await store.get(job.id)
            assert current is not None
            assert current.segments == tuple(_segments(0, 5))
            assert current.progress == 20
            # Without its result, a job is read without its segments too (listings).
            bare = await store.get(job.id, include_result=False)
            assert bare is not None
            assert bare.segments == ()

        run(scenario)

    def test_only_the_owner_publishes(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            live = _live(store)
            job = await claimed(store)
            assert not await live.publish(job.id, "not-the-token", _segments(0, 1))
            assert not await live.publish("0" * 32, "x", _segments(0, 1))
            assert await live.live_segments(job.id) == []

        run(scenario)

    @pytest.mark.parametrize("ending", ["complete", "fail", "retry", "release", "cancel"])
    def test_segments_go_when_the_job_stops_running(
        self, run: Callable[[Scenario], Any], ending: str
    ) -> None:
        async def scenario(store: JobStore) -> None:
            live = _live(store)
            job = await claimed(store)
            token = job.lease.token  # type: ignore[union-attr]
            assert await live.publish(job.id, token, _segments(0, 2))
            if ending == "complete":
                assert await store.complete(job.id, token, TRANSCRIPT)
            elif ending == "fail":
                assert await store.fail(job.id, token, ERROR)
            elif ending == "retry":
                assert await store.retry(job.id, token, ERROR, 0) is not None
            elif ending == "release":
                assert await store.release(job.id, token)
            else:
                assert await store.cancel(job.id) is not None
            assert await live.live_segments(job.id) == []
            current = await store.get(job.id)
            assert current is not None
            assert current.segments == ()
            assert not await live.publish(job.id, token, _segments(2, 1))
            if ending in ("retry", "release"):  # the next attempt starts afresh
                again = await store.claim("w2", 30)
                assert again is not None
                assert again.id == job.id
                assert await live.live_segments(job.id) == []

        run(scenario)

    def test_followers_are_woken_by_changes(self, run: Callable[[Scenario], Any]) -> None:
        async def scenario(store: JobStore) -> None:
            live = _live(store)
            job = await claimed(store)
            token = job.lease.token  # type: ignore[union-attr]
            loop = asyncio.get_running_loop()

            # The first wait starts what the store listens with (a connection of its own).
            await live.wait_for_change(job.id, 1.0)

            async def woken_by(change: Callable[[], Any], job_id: str | None) -> float:
                waiting = asyncio.create_task(live.wait_for_change(job_id, 30))
                await asyncio.sleep(0.3)
                assert not waiting.done(), "woken with nothing changed"
                started = loop.time()
                await change()
                await waiting
                return loop.time() - started

            # Generous for a store whose wake-ups cross a network; far below the timeout.
            limit = 5.0
            assert (
                await woken_by(lambda: live.publish(job.id, token, _segments(0, 1)), job.id) < limit
            )
            assert await woken_by(lambda: store.complete(job.id, token, TRANSCRIPT), job.id) < limit
            assert await woken_by(lambda: store.create(new_job()), None) < limit

        run(scenario)
