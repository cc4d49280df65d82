"""How many uploads the server works on at once, so that other requests are not held up.

A burst of short uploads all arrive together. Worked on all at once, their steps (the form's
parsing, the audio's probe, the job's creation) fill the event loop's queue, and a
``GET /jobs/{id}`` that arrives meanwhile waits behind every one of them: 60 ms at the 99th
percentile during 200 simultaneous uploads of a 41 KB clip, against 28 ms when four are
worked on at a time and the others wait, connected, for their turn (docs/performance.md, "A
burst of short uploads"); the burst was not accepted any slower.

An upload holds its slot only while its bytes come quickly: one that waits longer than
:data:`SLOW_READ_S` for its client gives the slot up, so a slow client (a phone on a poor
network, a large file) never keeps the others waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

#: How long an upload may wait for its client's next bytes before it gives its slot up.
SLOW_READ_S = 0.05


class UploadSlots:
    """At most ``slots`` uploads being worked on (the ``upload_slots`` setting: 4 by default,
    which gave the lowest poll latency of 2, 4, 8, 16, 32 and no limit, at no cost in
    uploads accepted per second); the others wait their turn."""

    def __init__(self, slots: int) -> None:
        self._free = asyncio.Semaphore(slots)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[UploadSlot]:
        """Hold a slot for the block (an upload from its form to its job)."""
        await self._free.acquire()
        held = UploadSlot(self._free)
        try:
            yield held
        finally:
            held.give_up()


class UploadSlot:
    """One upload's place; given up for good when its client turns out slow."""

    def __init__(self, free: asyncio.Semaphore) -> None:
        self._free = free
        self._held = True

    def give_up(self) -> None:
        if self._held:
            self._held = False
            self._free.release()

    async def paced(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``body``'s chunks. An upload whose next bytes take longer than
        :data:`SLOW_READ_S` to come gives its slot up for good: it is a slow client, and its
        work, spread over its transfer, does not crowd the event loop. (Giving the slot up
        only while waiting, and taking it again, cost a task per chunk: 0.6 ms of CPU per
        upload of a burst.)"""
        loop = asyncio.get_running_loop()
        while True:
            timer = loop.call_later(SLOW_READ_S, self.give_up) if self._held else None
            try:
                chunk = await anext(body)
            except StopAsyncIteration:
                return
            finally:
                if timer is not None:
                    timer.cancel()
            yield chunk
