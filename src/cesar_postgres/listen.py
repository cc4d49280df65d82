"""LISTEN for queued jobs on a connection of its own, reconnecting when it drops.

Only a process that waits for jobs (a worker) opens it, on its first wait: API nodes
never hold a listening connection. While it is down, waits simply time out, and the
worker's polling carries on until it is back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from contextlib import suppress

import psycopg

from cesar_core.stores.common import Wakeup

from . import CHANNEL
from .database import CONNECT_TIMEOUT

logger = logging.getLogger(__name__)


class Listener:
    """Turns ``NOTIFY`` on ``channel`` (``cesar_jobs`` by default) from any node into
    wake-ups in this process, and tells ``on_notify`` each payload (None after a reconnect:
    anything may have changed meanwhile)."""

    def __init__(
        self,
        url: str,
        where: str,
        *,
        channel: str = CHANNEL,
        on_notify: Callable[[str | None], None] | None = None,
    ) -> None:
        self._url = url
        self._where = where
        self._channel = channel
        self._on_notify = on_notify
        self._wakeup = Wakeup()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start listening (once; later calls do nothing)."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name=f"cesar-listen-{self._channel}")

    async def wait(self, timeout: float) -> None:
        """Return at the next notification, or after ``timeout`` seconds."""
        self.start()
        await self._wakeup.wait(timeout)

    def _notify(self, payload: str | None) -> None:
        self._wakeup.notify()
        if self._on_notify is not None:
            self._on_notify(payload)

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                )
                async with connection:
                    await connection.execute(f"LISTEN {self._channel}")
                    delay = 0.1
                    # What happened while this connection was down was never announced.
                    self._notify(None)
                    async for note in connection.notifies():
                        self._notify(note.payload)
            except psycopg.Error as exc:
                logger.warning(
                    "listening on %s on PostgreSQL at %s failed (%s); polling until it "
                    "reconnects in %.1f s",
                    self._channel,
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
