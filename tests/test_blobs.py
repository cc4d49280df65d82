"""Audio in PostgreSQL when a connection drops around an upload's COMMIT: an upload is a
stream read once, so a retry must find out what the first try did, never store what is
left of the stream (nothing) as the file. A real server; the lost answer is simulated
as in test_postgres.py (no network drops a reply on cue)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from cesar_core.errors import StoreUnavailableError
from cesar_postgres.blobs import PART_BYTES, PostgresStorage
from cesar_postgres.database import Work

from .test_postgres import LostAnswers, chunks, run

PAYLOAD = bytes(range(256)) * (PART_BYTES * 5 // 256 // 2)  # two and a half parts
KEY = "job1/audio.wav"


class RolledBack:
    """The first try's transaction never commits (the connection died before COMMIT
    reached the server): its work is rolled back, and the error is a lost connection."""

    def __init__(self, storage: PostgresStorage) -> None:
        self.real_run = storage.database.run

    async def run(self, work: Work[Any]) -> Any:
        async def first_rolled_back(connection: Any, retried: bool) -> Any:
            if not retried:
                async with connection.transaction():  # the work's own becomes a savepoint
                    await work(connection, False)
                    raise psycopg.OperationalError("server closed the connection unexpectedly")
            return await work(connection, True)

        return await self.real_run(first_rolled_back)


class DeadBeforeStart:
    """The first try finds its pooled connection dead before doing anything."""

    def __init__(self, storage: PostgresStorage) -> None:
        self.real_run = storage.database.run

    async def run(self, work: Work[Any]) -> Any:
        async def first_dead(connection: Any, retried: bool) -> Any:
            if not retried:
                raise psycopg.OperationalError("terminating connection")
            return await work(connection, True)

        return await self.real_run(first_dead)


def stored_sizes(url: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT key, size FROM cesar_blobs ORDER BY key").fetchall()
    return [(str(key), int(size)) for key, size in rows]


async def read_back(storage: PostgresStorage, key: str) -> bytes:
    async with storage.local_path(key) as path:
        return path.read_bytes()


def test_a_lost_answer_to_the_commit_keeps_the_upload(empty_postgres: str) -> None:
    async def scenario() -> None:
        storage = await PostgresStorage.open(empty_postgres)
        storage.database.run = LostAnswers(storage).run  # type: ignore[arg-type,method-assign]
        assert await storage.save(KEY, chunks(PAYLOAD)) == len(PAYLOAD)
        assert await read_back(storage, KEY) == PAYLOAD
        await storage.close()

    run(scenario())
    assert stored_sizes(empty_postgres) == [(KEY, len(PAYLOAD))]


def test_an_upload_rolled_back_with_its_connection_fails_as_retryable(
    empty_postgres: str,
) -> None:
    async def scenario() -> None:
        storage = await PostgresStorage.open(empty_postgres)
        storage.database.run = RolledBack(storage).run  # type: ignore[method-assign]
        with pytest.raises(StoreUnavailableError, match="the upload did not complete") as caught:
            await storage.save(KEY, chunks(PAYLOAD))
        assert not caught.value.permanent  # sending it again can work
        await storage.close()

    run(scenario())
    assert stored_sizes(empty_postgres) == []  # no empty file stands for the upload


def test_a_connection_dead_before_the_first_chunk_is_replaced(empty_postgres: str) -> None:
    async def scenario() -> None:
        storage = await PostgresStorage.open(empty_postgres)
        storage.database.run = DeadBeforeStart(storage).run  # type: ignore[method-assign]
        assert await storage.save(KEY, chunks(PAYLOAD)) == len(PAYLOAD)
        storage.database.run = type(storage.database).run.__get__(storage.database)  # type: ignore[method-assign]
        assert await read_back(storage, KEY) == PAYLOAD
        await storage.close()

    run(scenario())
