"""Pieces every store shares: cursors, the error of a job whose worker vanished, and the
in-process wake-up of idle workers."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from ..errors import InvalidOptionsError
from ..jobs import Job, JobError
from ..protocols import Page


def encode_cursor(position: int) -> str:
    """An opaque cursor for the job at ``position`` in creation order."""
    return base64.urlsafe_b64encode(f"j{position}".encode()).decode().rstrip("=")


#: Positions are 64-bit signed integers in every store (SQLite's INTEGER, PostgreSQL's
#: bigint); a cursor beyond them cannot have come from a page.
MAX_POSITION = 2**63 - 1


def decode_cursor(cursor: str | None) -> int | None:
    """The position a cursor stands for; a malformed cursor, or one for a position no store
    can hold, is the caller's error."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("j") or not text[1:].isdigit():
            raise ValueError(text)
        position = int(text[1:])
        if position > MAX_POSITION:
            raise ValueError(text)
        return position
    except ValueError:
        raise InvalidOptionsError(
            f"Invalid cursor {cursor!r}.", hint="Pass the next_cursor of a previous page."
        ) from None


def page_of(rows: Sequence[Any], limit: int, job: Callable[[Any], Job]) -> Page:
    """The page for up to ``limit + 1`` rows, newest first, each with its ``seq``: stores
    fetch one row more than asked, which only says whether there is a next page."""
    shown = rows[:limit]
    more = len(rows) > limit
    return Page(
        jobs=tuple(job(row) for row in shown),
        next_cursor=encode_cursor(shown[-1]["seq"]) if more else None,
    )


def expired_error(attempts: int) -> JobError:
    """Why a job is failed after its workers stopped responding ``attempts`` times."""
    return JobError(
        code="worker_lost",
        message=f"The worker running this job stopped responding {attempts} times (the job "
        "may crash or exhaust its worker); giving up. Check the worker logs.",
    )


class Wakeup:
    """Wakes every idle worker of this process when a job may have become claimable.

    Each wait holds the event current when it began; :meth:`notify` sets that event and
    starts a new one, so every waiter wakes once and later waiters wait afresh. Stores call
    it after queueing a job (create, release, an expired lease), which makes a job
    submitted to ``cesar serve`` start without waiting for the embedded worker's next poll.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake the current waiters (safe to call with none waiting)."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Return at the next :meth:`notify`, or after ``timeout`` seconds."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


class Changes:
    """Wakes the followers of a job (or of every job) when it may have changed.

    Stores call :meth:`notify` after each write that changes a job's state, progress or
    live segments (PostgreSQL's listener also for other nodes' writes); followers (the
    service's event streams) wait on one job, or on any with None. Like :class:`Wakeup`,
    each wait holds the event current when it began.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, asyncio.Event] = {}
        self._any = asyncio.Event()

    def notify(self, job_id: str | None) -> None:
        """Wake whoever waits on ``job_id`` (every job: None) or on any job."""
        if job_id is None:
            events, self._jobs = list(self._jobs.values()), {}
        else:
            events = [event] if (event := self._jobs.pop(job_id, None)) else []
        for event in events:
            event.set()
        self._any.set()
        self._any = asyncio.Event()

    async def wait(self, job_id: str | None, timeout: float) -> None:
        """Return at the next change of ``job_id`` (any job: None), or after ``timeout``."""
        event = self._any if job_id is None else self._jobs.setdefault(job_id, asyncio.Event())
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
