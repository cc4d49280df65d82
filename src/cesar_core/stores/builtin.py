"""The built-in stores, registered through the ``cesar_job_stores`` hook like any plugin."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidOptionsError
from ..hookspecs import hookimpl
from ..protocols import JobStore
from . import JobStoreOpener
from .memory import MemoryJobStore
from .sqlite import SQLiteJobStore


async def open_memory(url: str) -> JobStore:
    """``memory://``: a store that lives as long as the process."""
    return MemoryJobStore()


def sqlite_path(url: str) -> Path:
    """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` to a path."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or len(rest) < 2:
        raise InvalidOptionsError(
            f"Invalid SQLite store URL {url!r}.",
            hint="Write sqlite:///jobs.db for a relative path or sqlite:////var/lib/cesar/jobs.db "
            "for an absolute one.",
        )
    return Path(rest[1:]).expanduser()


async def open_sqlite(url: str) -> JobStore:
    """``sqlite:///path``: the default, durable store for one machine."""
    return await SQLiteJobStore.open(sqlite_path(url))


@hookimpl
def cesar_job_stores() -> dict[str, JobStoreOpener]:
    return {"memory": open_memory, "sqlite": open_sqlite}
