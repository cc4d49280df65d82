"""Job audio in PostgreSQL, for nodes that share a database but no disk.

A file is a row of ``cesar_blobs`` and its content is split into parts of
:data:`PART_BYTES` in ``cesar_blob_parts``. An upload is written part by part inside one
transaction: never whole in memory, invisible until its last part is in, and gone without a
trace when the upload fails. A worker reads it back part by part into a local copy for
the decoder, in :attr:`PostgresStorage.scratch_dir` (the cache directory's ``scratch``,
not the system's temporary directory, so that the next process to start there removes
the copies of a process that was killed: :meth:`PostgresStorage.clean_leftovers`), and
removes it when the job is done with it. Parts are stored uncompressed: audio is
compressed already, and compressing it again only costs CPU.

An upload is a stream, read once: when the answer to its COMMIT is lost, the upload is not
sent again but looked up by the random ``upload`` id it was written with, which tells
whether the lost COMMIT happened.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import platformdirs
import psycopg

from cesar_core.errors import AudioNotFoundError, StoreUnavailableError
from cesar_core.ids import check_job_id
from cesar_core.storage.keys import check_key, check_size, key_job_id
from cesar_core.storage.scratch import remove_leftovers, scratch_name

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
    # The upload that wrote the file: a retry after a lost COMMIT looks for it.
    ("ALTER TABLE cesar_blobs ADD COLUMN upload TEXT",),
)
#: How local copies are named: ``cesar~<host>~<pid>~<random><suffix>``.
COPY_PREFIX = "cesar"


def default_scratch_dir() -> Path:
    """Where local copies go unless told otherwise: the user cache directory's
    ``scratch`` (``JobService.open`` passes the ``cache_dir`` setting's)."""
    return Path(platformdirs.user_cache_dir("cesar")) / "scratch"


class PostgresStorage:
    """A :class:`~cesar_core.protocols.Storage` in PostgreSQL tables."""

    def __init__(self, database: Database, scratch_dir: Path | None = None) -> None:
        self.database = database
        #: Where local copies of files are made for the decoder.
        self.scratch_dir = scratch_dir or default_scratch_dir()

    @property
    def _db(self) -> Database:
        return self.database

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
        connection rolls the upload back and raises :class:`StoreUnavailableError`, and a
        lost answer to the COMMIT is settled by looking the upload up, never by storing
        what is left of the stream (nothing) as the file.
        """
        job_id = key_job_id(key)
        upload = uuid.uuid4().hex
        stream = _Stream(chunks)

        async def work(db: Connection, retried: bool) -> int:
            if stream.started:  # only the first try can have stored it: did it commit?
                return await self._committed(db, key, upload)
            async with db.transaction():
                # A new upload under an existing key replaces it, atomically with the rest.
                await db.execute("DELETE FROM cesar_blobs WHERE key = %s", (key,))
                await db.execute(
                    "INSERT INTO cesar_blobs (key, job_id, size, upload) VALUES (%s, %s, 0, %s)",
                    (key, job_id, upload),
                )
                try:
                    return await _save(db, key, stream, max_bytes)
                except psycopg.OperationalError as exc:
                    raise StoreUnavailableError(
                        f"Storing {key} in PostgreSQL at {self._db.where} failed: {exc}.",
                        hint="Check that the database is reachable, then send the file again.",
                    ) from exc

        return await self._db.run(work)

    async def _committed(self, db: Connection, key: str, upload: str) -> int:
        """The size ``upload`` stored under ``key``, if its COMMIT happened."""
        cursor = await db.execute(
            "SELECT size FROM cesar_blobs WHERE key = %s AND upload = %s", (key, upload)
        )
        row = await cursor.fetchone()
        if row is None:
            raise StoreUnavailableError(
                f"The connection to PostgreSQL at {self._db.where} was lost while {key} was "
                "being stored, and the upload did not complete.",
                hint="Send the file again.",
            )
        size: int = row["size"]
        return size

    @asynccontextmanager
    async def local_path(self, key: str) -> AsyncIterator[Path]:
        """The content of ``key`` copied into :attr:`scratch_dir`, removed afterwards."""
        suffix = Path(check_key(key)).suffix
        await asyncio.to_thread(self.scratch_dir.mkdir, parents=True, exist_ok=True)
        path = self.scratch_dir / scratch_name(COPY_PREFIX, suffix)
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
        check_key(key)

        async def work(db: Connection, retried: bool) -> bool:
            cursor = await db.execute("SELECT 1 FROM cesar_blobs WHERE key = %s", (key,))
            return await cursor.fetchone() is not None

        return await self._db.run(work)

    async def delete_job(self, job_id: str) -> None:
        check_job_id(job_id)

        async def work(db: Connection, retried: bool) -> None:
            await db.execute("DELETE FROM cesar_blobs WHERE job_id = %s", (job_id,))

        await self._db.run(work)

    async def clean_leftovers(self) -> int:
        """Remove the local copies of processes that died holding them (a worker killed
        mid-job); return how many went."""

        def clean() -> int:
            copies = self.scratch_dir.glob(f"{COPY_PREFIX}~*")
            return len(remove_leftovers(copies))

        return await asyncio.to_thread(clean)

    async def close(self) -> None:
        await self._db.close()


class _Stream:
    """An upload's chunks, remembering whether any was read (it cannot be read twice)."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = chunks
        self.started = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            self.started = True
            yield chunk


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
