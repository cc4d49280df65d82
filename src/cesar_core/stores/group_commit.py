"""Group commit for the SQLite store: writes that arrive together share one transaction.

Every write to SQLite is a hand-off to the connection's thread and a commit. Both cost more
than most of the statements they carry (about 0.1 ms for the round trip between threads,
and a WAL commit, against tens of microseconds for an ``UPDATE``), and SQLite takes one
writer at a time anyway. So writes are queued, and whatever queued up while the thread
was busy with the previous batch goes over in one hand-off, as one ``BEGIN IMMEDIATE`` ...
``COMMIT``. A lone write runs exactly as it would alone.

Each write in a batch of several runs inside a savepoint of its own: one that raises is
rolled back to its savepoint and gets its exception, and the others still commit. A
failure of the transaction itself (the database locked past ``busy_timeout``, a full disk
at ``COMMIT``) reaches every write of the batch, none of which then took effect.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from ..batch import Batcher

T = TypeVar("T")
#: ``work(connection, *args)``, run on the connection's thread.
Work = Callable[..., Any]
#: What one write led to: its value, or the exception it raised.
Outcome = tuple[bool, Any]
#: Runs ``function(connection, *args)`` on the connection's thread.
Runner = Callable[..., Awaitable[Any]]


class GroupCommit:
    """Queues writes and sends them to the connection's thread in batches."""

    def __init__(self, run: Runner) -> None:
        self._run = run
        self._batcher: Batcher[tuple[Work, tuple[Any, ...]], Outcome] = Batcher(self._flush)

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(connection, *args)`` in a write transaction, maybe with others."""
        ok, value = await self._batcher.call((work, args))
        if not ok:
            raise value
        return cast(T, value)

    async def drain(self) -> None:
        """Wait until every queued write is done (before the connection closes)."""
        await self._batcher.drain()

    async def _flush(self, batch: list[tuple[Work, tuple[Any, ...]]]) -> list[Outcome]:
        outcomes: list[Outcome] = await self._run(run_batch, batch)
        return outcomes


def run_batch(db: sqlite3.Connection, batch: list[tuple[Work, tuple[Any, ...]]]) -> list[Outcome]:
    """Run the writes of ``batch`` in one ``BEGIN IMMEDIATE`` transaction (on the
    connection's thread); each of several is isolated by a savepoint."""
    # IMMEDIATE takes the write lock first (waiting up to busy_timeout), so a transaction
    # never fails half-way upgrading a read lock.
    db.execute("BEGIN IMMEDIATE")
    try:
        if len(batch) == 1:
            work, args = batch[0]
            try:
                outcomes: list[Outcome] = [(True, work(db, *args))]
            except Exception as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                return [(False, exc)]
        else:
            outcomes = [_isolated(db, work, args) for work, args in batch]
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back already (I/O error, full disk)
            db.execute("ROLLBACK")
        raise
    return outcomes


def _isolated(db: sqlite3.Connection, work: Work, args: tuple[Any, ...]) -> Outcome:
    db.execute("SAVEPOINT write")
    try:
        value = work(db, *args)
    except Exception as exc:
        db.execute("ROLLBACK TO write")
        db.execute("RELEASE write")
        return (False, exc)
    db.execute("RELEASE write")
    return (True, value)
