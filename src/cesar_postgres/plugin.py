"""The hooks that hand ``postgresql://`` URLs to the store and the storage.

Registered through the ``postgres`` entry point of Cesar's own distribution (the core never
names this package), it is loaded whatever ``CESAR_PLUGINS`` says, and must import without
psycopg: a machine without the ``postgres`` extra still lists the scheme, and opening it says
what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from cesar_core.errors import CesarError
from cesar_core.hookspecs import hookimpl
from cesar_core.protocols import JobStore, JobStoreOpener, Storage, StorageOpener

SCHEMES = ("postgresql", "postgres")


def _load(module: str) -> ModuleType:
    try:
        return importlib.import_module(f"cesar_postgres.{module}")
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith("psycopg"):
            raise
        raise CesarError(
            "PostgreSQL support is not installed (psycopg is missing).",
            hint="Install it with: pip install 'cesar[postgres]'.",
        ) from exc


async def open_store(url: str) -> JobStore:
    """``postgresql://user@host/db``: the job store every node of a deployment shares."""
    store: JobStore = await _load("store").PostgresJobStore.open(url)
    return store


async def open_storage(url: str) -> Storage:
    """``postgresql://user@host/db``: job audio in the database, for nodes that share no disk."""
    storage: Storage = await _load("blobs").PostgresStorage.open(url)
    return storage


@hookimpl
def cesar_job_stores() -> dict[str, JobStoreOpener]:
    return dict.fromkeys(SCHEMES, open_store)


@hookimpl
def cesar_storage() -> dict[str, StorageOpener]:
    return dict.fromkeys(SCHEMES, open_storage)
