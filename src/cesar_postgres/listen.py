"""LISTEN for queued jobs on a connection of its own, reconnecting when it drops.

Only a process that waits for jobs (a worker) opens it, on its first wait: API nodes
never hold a listening connection. While it is down, waits simply time out, and the
worker's polling carries on until it is back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from contextlib import suppress

import psycopg

from cesar_core.stores.common import Wakeup

from . import CHANNEL
from .database import CONNECT_TIMEOUT

logger = logging.getLogger(__name__)


class Listener:
    """Turns ``NOTIFY cesar_jobs`` from any node into wake-ups in this process."""

    def __init__(self, url: str, where: str) -> None:
        self._url = url
        self._where = where
        self._wakeup = Wakeup()
        self._task: asyncio.Task[None] | None = None

    async def wait(self, timeout: float) -> None:
        """Return at the next notification, or after ``timeout`` seconds."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="cesar-postgres-listen")
        await self._wakeup.wait(timeout)

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                )
                async with connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    delay = 0.1
                    # Jobs queued while this connection was down were never announced.
                    self._wakeup.notify()
                    async for _ in connection.notifies():
                        self._wakeup.notify()
            except psycopg.Error as exc:
                logger.warning(
                    "listening for jobs on PostgreSQL at %s failed (%s); polling until it "
                    "reconnects in %.1f s",
                    self._where,
                    exc,
                    delay,
                )
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, 10.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
