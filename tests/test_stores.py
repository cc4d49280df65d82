"""The job store contract against every built-in store, and what is SQLite's own."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from cesar_core import InvalidOptionsError
from cesar_core.errors import CesarError
from cesar_core.jobs import JobState
from cesar_core.plugins import make_manager
from cesar_core.protocols import JobStore
from cesar_core.stores import open_store
from cesar_core.stores.memory import MemoryJobStore
from cesar_core.stores.sqlite import SQLiteJobStore
from cesar_core.stores.sqlite_work import MIGRATIONS
from cesar_core.testing import JobStoreContract, new_job


class TestMemoryStore(JobStoreContract):
    async def open_store(self, tmp_path: Path) -> JobStore:
        return await open_store("memory://", make_manager({}))

    async def inline_audio_kept(self, store: JobStore) -> int:
        assert isinstance(store, MemoryJobStore)
        return len(store._audio)


class TestSQLiteStore(JobStoreContract):
    async def open_store(self, tmp_path: Path) -> JobStore:
        return await open_store(f"sqlite:///{tmp_path / 'jobs.db'}", make_manager({}))

    async def inline_audio_kept(self, store: JobStore) -> int:
        assert isinstance(store, SQLiteJobStore)
        with sqlite3.connect(store.path) as db:  # another connection sees what committed
            return int(db.execute("SELECT COUNT(*) FROM job_audio").fetchone()[0])


def test_store_urls_are_checked() -> None:
    manager = make_manager({})
    with pytest.raises(InvalidOptionsError, match=r"No job store handles 'redis://x'") as error:
        asyncio.run(open_store("redis://x", manager))
    assert "(available: memory, postgres, postgresql, sqlite)" in str(error.value)
    with pytest.raises(InvalidOptionsError, match="Invalid SQLite store URL"):
        asyncio.run(open_store("sqlite://jobs.db", manager))
    store = asyncio.run(open_store("memory://", manager))
    assert isinstance(store, MemoryJobStore)


def test_sqlite_uses_wal_and_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"

    async def scenario() -> None:
        store = await SQLiteJobStore.open(path)
        await store.create(new_job())
        assert await store.schema_version() == len(MIGRATIONS)
        await store.close()
        again = await SQLiteJobStore.open(path)  # migrations are not applied twice
        assert (await again.counts())[JobState.QUEUED] == 1
        await again.close()

    asyncio.run(scenario())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = db.execute("SELECT version FROM schema_migrations").fetchall()
    assert versions == [(n,) for n in range(1, len(MIGRATIONS) + 1)]


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    asyncio.run(_open_close(path))
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_migrations VALUES (999, 0)")
    with pytest.raises(CesarError, match="schema version 999, newer than this Cesar knows"):
        asyncio.run(_open_close(path))


def test_sqlite_unwritable_location_is_explained(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CesarError, match="Cannot open the job database"):
        asyncio.run(_open_close(blocker / "jobs.db"))


async def _open_close(path: Path) -> None:
    store = await SQLiteJobStore.open(path)
    await store.close()


def _claim_all(path: str, worker: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def loop() -> list[str]:
        store = await SQLiteJobStore.open(path)
        ids = []
        while (job := await store.claim(worker, 30)) is not None:
            assert job.lease is not None
            assert await store.complete(job.id, job.lease.token, _transcript())
            ids.append(job.id)
        await store.close()
        return ids

    out.put(asyncio.run(loop()))


def _transcript():  # a fresh import in the child process
    from cesar_core.testing import TRANSCRIPT

    return TRANSCRIPT


def test_processes_sharing_one_file_claim_each_job_once(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"

    async def fill() -> list[str]:
        store = await SQLiteJobStore.open(path)
        ids = [(await store.create(new_job()))[0].id for _ in range(300)]
        await store.close()
        return ids

    created = asyncio.run(fill())
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=_claim_all, args=(str(path), f"w{i}", out)) for i in range(4)]
    for worker in workers:
        worker.start()
    claimed = [job_id for _ in workers for job_id in out.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sorted(claimed) == sorted(created)  # every job once, none twice


def test_cancelled_writers_leave_no_transaction_open(tmp_path: Path) -> None:
    """A heartbeat cancelled mid-transaction (its job ended) must not wedge the store."""
    from contextlib import suppress

    from cesar_core.testing import TRANSCRIPT, claimed

    async def scenario() -> None:
        store = await SQLiteJobStore.open(tmp_path / "jobs.db")
        job = await claimed(store)
        assert job.lease is not None
        for delay in range(30):
            task = asyncio.create_task(store.heartbeat(job.id, job.lease.token, 30, 5))
            for _ in range(delay % 4):
                await asyncio.sleep(0)
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        assert await store.complete(job.id, job.lease.token, TRANSCRIPT)
        await store.close()

    asyncio.run(scenario())


def test_sqlite_reads_do_not_wait_for_a_write(tmp_path: Path) -> None:
    """A burst of submissions must not hold up ``GET /jobs/{id}``: while a write waits for
    the database (another process holds the write lock, as a ``cesar worker`` does while it
    commits), reads are still answered."""
    path = tmp_path / "jobs.db"

    async def scenario() -> None:
        store = await SQLiteJobStore.open(path)
        known, _ = await store.create(new_job())
        other = sqlite3.connect(path, isolation_level=None)  # another process's writer
        other.execute("BEGIN IMMEDIATE")
        try:
            writing = asyncio.create_task(store.create(new_job()))
            await asyncio.sleep(0.2)  # the create now waits for the lock on the writer
            assert not writing.done()
            job = await asyncio.wait_for(store.get(known.id), 5)
            assert job is not None
            assert job.id == known.id
            counts = await asyncio.wait_for(store.counts(), 5)
            assert counts[JobState.QUEUED] == 1  # the waiting create is not visible yet
        finally:
            other.execute("COMMIT")
            other.close()
        await writing
        assert (await store.counts())[JobState.QUEUED] == 2  # and is once committed
        await store.close()

    asyncio.run(scenario())


def test_sqlite_writes_that_arrive_together_share_a_transaction_but_not_a_failure(
    tmp_path: Path,
) -> None:
    """Group commit: concurrent writes go in one transaction, each in its own savepoint, so
    the one that fails (a duplicate id here) takes none of the others with it."""

    async def scenario() -> None:
        store = await SQLiteJobStore.open(tmp_path / "jobs.db")
        taken, _ = await store.create(new_job())
        jobs = [new_job() for _ in range(3)]
        duplicate = new_job(id=taken.id)
        outcomes = await asyncio.gather(
            store.create(jobs[0]),
            store.create(duplicate),
            store.create(jobs[1]),
            store.claim("w", 30),
            store.create(jobs[2]),
            return_exceptions=True,
        )
        assert isinstance(outcomes[1], sqlite3.IntegrityError)
        assert all(isinstance(o, tuple) and o[1] for o in (outcomes[0], outcomes[2], outcomes[4]))
        claimed = outcomes[3]
        assert not isinstance(claimed, BaseException)
        assert claimed is not None
        assert claimed.id == taken.id
        counts = await store.counts()
        assert counts[JobState.QUEUED] == 3
        assert counts[JobState.PROCESSING] == 1
        await store.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("position", [-1, 2**63, 10**30])
def test_a_cursor_no_store_can_hold_is_refused_by_every_store(
    tmp_path: Path, position: int
) -> None:
    """A cursor is an opaque token, but a crafted one (``cesar jobs list --cursor``, any
    caller of the library) must be refused as bad input, not reach SQLite's 64-bit
    integers and fail there."""
    from cesar_core.stores.common import encode_cursor

    async def scenario() -> None:
        manager = make_manager({})
        for url in ("memory://", f"sqlite:///{tmp_path / 'jobs.db'}"):
            store = await open_store(url, manager)
            try:
                with pytest.raises(InvalidOptionsError, match="Invalid cursor"):
                    await store.list(cursor=encode_cursor(position))
            finally:
                await store.close()

    asyncio.run(scenario())
