"""What every node does besides its work: clear what crashed processes left, and forget
finished jobs once their retention is over.

A :class:`Housekeeper` runs inside each ``cesar serve`` and ``cesar worker`` (in the
worker when there is one, else beside the API). At start-up it removes the storage's
scratch files whose writer died (a server killed mid-upload, a worker killed while it held
a local copy of its audio); then, every :func:`prune_interval`, it deletes jobs finished
more than the retention ago, with their files. On PostgreSQL the store lets one node
prune at a time (an advisory lock); a node that finds it taken skips its turn.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from .protocols import JobStore, Storage
from .storage.scratch import LeftoverCleaner

logger = logging.getLogger(__name__)

#: Pruning runs at most this often, and at least this often, whatever the retention.
MIN_PRUNE_SECONDS = 1.0
MAX_PRUNE_SECONDS = 15 * 60.0


def prune_interval(retention: timedelta) -> float:
    """How often to prune: a 24th of the retention, between 1 s and 15 min, so a job
    outlives its retention by a small part of it at most."""
    return min(MAX_PRUNE_SECONDS, max(MIN_PRUNE_SECONDS, retention.total_seconds() / 24))


async def prune(store: JobStore, storage: Storage, retention: timedelta) -> list[str]:
    """Delete jobs finished more than ``retention`` ago, then their files; return their ids."""
    ids = await store.prune(datetime.now(UTC) - retention)
    for job_id in ids:
        await storage.delete_job(job_id)
    if ids:
        logger.info("pruned %d job(s) finished more than %s ago", len(ids), retention)
    return ids


async def clean_leftovers(storage: Storage) -> int:
    """Remove the scratch files of dead processes, if the storage keeps any."""
    if not isinstance(storage, LeftoverCleaner):
        return 0
    try:
        return await storage.clean_leftovers()
    except Exception:
        logger.exception("removing the scratch files of stopped processes failed")
        return 0


class Housekeeper:
    """Start-up clean-up, then periodic pruning (none when ``retention`` is None)."""

    def __init__(self, store: JobStore, storage: Storage, retention: timedelta | None) -> None:
        self.store = store
        self.storage = storage
        self.retention = retention

    async def run(self) -> None:
        """Clean up, then prune until cancelled."""
        await clean_leftovers(self.storage)
        if self.retention is None:
            return
        every = prune_interval(self.retention)
        while True:
            try:
                await prune(self.store, self.storage, self.retention)
            except Exception:
                logger.exception("pruning finished jobs failed; trying again later")
            await asyncio.sleep(every)


def retention_of(hours: float) -> timedelta | None:
    """The ``retention_hours`` setting as a period; 0 (keep forever) as None."""
    return timedelta(hours=hours) if hours > 0 else None
