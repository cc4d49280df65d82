"""Job audio in PostgreSQL, for nodes that share a database but no disk.

A file is a row of ``cesar_blobs`` and its content is split into parts of
:data:`PART_BYTES` in ``cesar_blob_parts``. An upload is written part by part inside one
transaction: never whole in memory, invisible until its last part is in, and gone without a
trace when the upload fails. A worker reads it back part by part into a local temporary
file for the decoder, and removes that file when the job is done with it. Parts are
stored uncompressed: audio is compressed already, and compressing it again only costs CPU.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import psycopg

from cesar_core.errors import AudioNotFoundError, StoreUnavailableError
from cesar_core.storage.local import check_size, key_job_id

from .database import Connection, Database

#: Upload chunks are gathered into parts of this size, one INSERT each.
PART_BYTES = 1 << 20
#: Parts fetched per round trip when a file is read back.
READ_PARTS = 4

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE cesar_blobs (
            key TEXT PRIMARY KEY,
            job_id TEXT NOT NULL,
            size BIGINT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )""",
        "CREATE INDEX cesar_blobs_job ON cesar_blobs (job_id)",
        """CREATE TABLE cesar_blob_parts (
            key TEXT NOT NULL REFERENCES cesar_blobs (key) ON DELETE CASCADE,
            part INTEGER NOT NULL,
            data BYTEA NOT NULL,
            PRIMARY KEY (key, part)
        )""",
        "ALTER TABLE cesar_blob_parts ALTER COLUMN data SET STORAGE EXTERNAL",
    ),
)


class PostgresStorage:
    """A :class:`~cesar_core.protocols.Storage` in PostgreSQL tables."""

    def __init__(self, database: Database) -> None:
        self._db = database

    @classmethod
    async def open(cls, url: str) -> PostgresStorage:
        """Connect to ``url`` and bring the storage tables up to date."""
        return cls(await Database.open(url, "blobs", MIGRATIONS, max_size=5))

    async def save(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> int:
        """Stream ``chunks`` into ``key`` in one transaction; returns the size.

        A connection found dead before the first chunk is read is replaced, as for every
        operation. A stream cannot be replayed, though: once chunks are read, a lost
        connection rolls the upload back and raises :class:`StoreUnavailableError`.
        """

        async def work(db: Connection, retried: bool) -> int:
            async with db.transaction():
                # A new upload under an existing key replaces it, atomically with the rest.
                await db.execute("DELETE FROM cesar_blobs WHERE key = %s", (key,))
                await db.execute(
                    "INSERT INTO cesar_blobs (key, job_id, size) VALUES (%s, %s, 0)",
                    (key, key_job_id(key)),
                )
                try:
                    return await _save(db, key, chunks, max_bytes)
                except psycopg.OperationalError as exc:
                    raise StoreUnavailableError(
                        f"Storing {key} in PostgreSQL at {self._db.where} failed: {exc}.",
                        hint="Check that the database is reachable, then send the file again.",
                    ) from exc

        return await self._db.run(work)

    @asynccontextmanager
    async def local_path(self, key: str) -> AsyncIterator[Path]:
        """The content of ``key`` copied into a temporary file, removed afterwards."""
        suffix = Path(key).suffix
        handle, name = tempfile.mkstemp(prefix="cesar-", suffix=suffix)
        os.close(handle)
        path = Path(name)
        try:

            async def work(db: Connection, retried: bool) -> bool:
                with path.open("wb") as out:  # a retry starts the file afresh
                    return await _copy(db, key, out)

            if not await self._db.run(work):
                raise AudioNotFoundError(
                    f"The audio of this job ({key}) is not in storage any more.",
                    hint="Submit the file again.",
                )
            yield path
        finally:
            path.unlink(missing_ok=True)

    async def exists(self, key: str) -> bool:
        async def work(db: Connection, retried: bool) -> bool:
            cursor = await db.execute("SELECT 1 FROM cesar_blobs WHERE key = %s", (key,))
            return await cursor.fetchone() is not None

        return await self._db.run(work)

    async def delete_job(self, job_id: str) -> None:
        async def work(db: Connection, retried: bool) -> None:
            await db.execute("DELETE FROM cesar_blobs WHERE job_id = %s", (job_id,))

        await self._db.run(work)

    async def close(self) -> None:
        await self._db.close()


async def _save(
    db: Connection, key: str, chunks: AsyncIterable[bytes], max_bytes: int | None
) -> int:
    size = 0
    part = 0
    pending = bytearray()
    async for chunk in chunks:
        size += len(chunk)
        check_size(size, max_bytes)
        pending += chunk
        while len(pending) >= PART_BYTES:
            await _insert_part(db, key, part, bytes(pending[:PART_BYTES]))
            del pending[:PART_BYTES]
            part += 1
    if pending:
        await _insert_part(db, key, part, bytes(pending))
    await db.execute("UPDATE cesar_blobs SET size = %s WHERE key = %s", (size, key))
    return size


async def _insert_part(db: Connection, key: str, part: int, data: bytes) -> None:
    await db.execute(
        "INSERT INTO cesar_blob_parts (key, part, data) VALUES (%s, %s, %s)", (key, part, data)
    )


async def _copy(db: Connection, key: str, out: BinaryIO) -> bool:
    """Write the parts of ``key`` to ``out`` in order; False when there is no such file."""
    cursor = await db.execute("SELECT size FROM cesar_blobs WHERE key = %s", (key,))
    if await cursor.fetchone() is None:
        return False
    part = 0
    while True:
        cursor = await db.execute(
            "SELECT data FROM cesar_blob_parts WHERE key = %s AND part >= %s AND part < %s "
            "ORDER BY part",
            (key, part, part + READ_PARTS),
        )
        rows = await cursor.fetchall()
        for row in rows:
            await asyncio.to_thread(out.write, row["data"])
        if len(rows) < READ_PARTS:
            return True
        part += READ_PARTS
