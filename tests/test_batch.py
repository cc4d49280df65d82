"""The batcher behind both stores' batches: a lone call goes at once, calls that arrive
while a batch is on its way share the next, a failure stays in its batch, and a caller that
stops waiting has its result handed back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from cesar_core.batch import Batcher

from .queue_helpers import run


class Recorder:
    """A flush that records each batch and doubles its items, after a pause."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.abandoned: list[tuple[int, int]] = []

    async def flush(self, items: list[int]) -> Sequence[int]:
        self.batches.append(items)
        await asyncio.sleep(0.01)
        if self.fail_on in items:
            raise RuntimeError(f"batch with {self.fail_on} failed")
        return [item * 2 for item in items]

    async def give_back(self, item: int, result: int) -> None:
        self.abandoned.append((item, result))


def test_a_lone_call_goes_at_once_and_later_ones_share_the_next_batch() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        batcher: Batcher[int, int] = Batcher(recorder.flush, max_size=3, abandoned=None)
        first = asyncio.create_task(batcher.call(1))
        await asyncio.sleep(0.001)  # the first batch is on its way
        rest = [asyncio.create_task(batcher.call(n)) for n in range(2, 7)]
        assert await asyncio.gather(first, *rest) == [2, 4, 6, 8, 10, 12]
        assert recorder.batches == [[1], [2, 3, 4], [5, 6]]
        assert await batcher.call(7) == 14  # alone again: no timer held it back
        assert recorder.batches[-1] == [7]

    run(scenario())


def test_a_failed_batch_fails_its_calls_only() -> None:
    async def scenario() -> None:
        recorder = Recorder(fail_on=3)
        batcher: Batcher[int, int] = Batcher(recorder.flush, abandoned=None)
        first = asyncio.create_task(batcher.call(1))
        await asyncio.sleep(0.001)
        doomed = [asyncio.create_task(batcher.call(n)) for n in (2, 3)]
        outcomes = await asyncio.gather(first, *doomed, return_exceptions=True)
        assert outcomes[0] == 2
        assert all(isinstance(o, RuntimeError) for o in outcomes[1:])
        assert await batcher.call(4) == 8  # the batcher goes on

    run(scenario())


def test_a_caller_that_stops_waiting_has_its_result_handed_back() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        batcher: Batcher[int, int] = Batcher(recorder.flush, abandoned=recorder.give_back)
        impatient = asyncio.create_task(batcher.call(5))
        patient = asyncio.create_task(batcher.call(6))
        await asyncio.sleep(0.001)
        impatient.cancel()
        assert await patient == 12
        assert recorder.abandoned == [(5, 10)]  # carried out, then handed back

    run(scenario())
