"""The upload slots: at most a few uploads worked on at once, and a slow client gives its
slot up (the server-level proof is in test_upload_door.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from cesar_http.slots import SLOW_READ_S, UploadSlots

UPLOAD_SLOTS = 4


async def body(chunks: int, pause: float = 0.0) -> AsyncIterator[bytes]:
    for _ in range(chunks):
        if pause:
            await asyncio.sleep(pause)
        yield b"x" * 1000


def test_at_most_the_slots_work_at_once_and_all_finish() -> None:
    async def scenario() -> tuple[int, int]:
        slots = UploadSlots(UPLOAD_SLOTS)
        working = most = done = 0

        async def upload() -> None:
            nonlocal working, most, done
            async with slots.slot() as slot:
                working += 1
                most = max(most, working)
                async for _ in slot.paced(body(3)):
                    await asyncio.sleep(0.001)  # work on the chunk
                working -= 1
                done += 1

        await asyncio.gather(*(upload() for _ in range(30)))
        return most, done

    most, done = asyncio.run(scenario())
    assert most == UPLOAD_SLOTS
    assert done == 30


def test_a_client_slower_than_the_limit_gives_its_slot_up() -> None:
    """Every slot held by a client that stalls: a quick upload still gets in once the slow
    ones have waited SLOW_READ_S, not when they finish."""

    async def scenario() -> float:
        slots = UploadSlots(UPLOAD_SLOTS)
        loop = asyncio.get_running_loop()

        async def slow() -> None:
            async with slots.slot() as slot:
                async for _ in slot.paced(body(2, pause=SLOW_READ_S * 20)):
                    pass

        stalled = [asyncio.create_task(slow()) for _ in range(UPLOAD_SLOTS)]
        await asyncio.sleep(0.01)
        started = loop.time()
        async with slots.slot():
            waited = loop.time() - started
        await asyncio.gather(*stalled)
        return waited

    waited = asyncio.run(scenario())
    assert waited < SLOW_READ_S * 5  # not the slow clients' whole transfer (40 x)
