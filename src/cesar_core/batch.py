"""Calls that arrive together go as one batch: one hand-off, round trip or commit for many.

Stores use it where the cost of going to the database (a hand-off to SQLite's thread, a
round trip to PostgreSQL, a commit) outweighs the work each call carries: calls are queued,
and whatever queued up while the previous batch was on its way goes in the next one (the
SQLite store's group commit; the PostgreSQL store's complete-and-claim over arrays). A
lone call goes at once, as it would alone: batches form only when calls would otherwise
wait on each other, so nothing is held back on a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")
#: Runs one batch: one result per item, in the items' order.
Flush = Callable[[list[In]], Awaitable[Sequence[Out]]]
#: Told of a result whose caller stopped waiting for it (to undo what can be undone).
Abandoned = Callable[[In, Out], Awaitable[None]]


class Batcher(Generic[In, Out]):
    """Queues calls and runs them ``flush``-ed together, at most ``max_size`` at a time
    (``None``: all that are waiting).

    A failed batch (the statement, or retries through a lost connection, gave up) fails
    every call in it, none of which then took effect. A caller cancelled while its batch is
    in flight does not stop the others: its item is carried out, and ``abandoned`` is
    handed its result.
    """

    def __init__(
        self,
        flush: Flush[In, Out],
        *,
        max_size: int | None = None,
        abandoned: Abandoned[In, Out] | None = None,
    ) -> None:
        self._flush = flush
        self._max_size = max_size
        self._abandoned = abandoned
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def call(self, item: In) -> Out:
        """Run ``item`` in the next batch and return its result."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._run())
        return await future

    async def drain(self) -> None:
        """Wait until every queued call is done (before what ``flush`` uses is closed)."""
        if self._flusher is not None:
            with suppress(asyncio.CancelledError):
                await asyncio.shield(self._flusher)

    async def _run(self) -> None:
        try:
            while self._pending:
                size = self._max_size or len(self._pending)
                batch = self._pending[:size]
                del self._pending[:size]
                try:
                    results = await self._flush([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:  # the flusher itself is cancelled (loop shutdown)
                    self._pending[:0] = batch
                    raise
                for (item, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                    elif self._abandoned is not None:
                        await self._give_back(item, result)
        finally:
            for _, future in self._pending:  # left only when cancelled
                future.cancel()
            self._pending = []
            self._flusher = None

    async def _give_back(self, item: In, result: Out) -> None:
        assert self._abandoned is not None
        try:
            await self._abandoned(item, result)
        except Exception:
            logger.exception("undoing an abandoned call failed")
