"""The PostgreSQL store and storage against a real server: the shared contract, and what
only PostgreSQL does (SKIP LOCKED claims, the sweep's lock, LISTEN/NOTIFY, migrations run by
several nodes at once, connection loss)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from cesar_core.errors import (
    AudioNotFoundError,
    CesarError,
    InvalidOptionsError,
    StoreUnavailableError,
    UploadTooLargeError,
)
from cesar_core.jobs import Job, JobError, JobState
from cesar_core.plugins import make_manager
from cesar_core.protocols import JobNotifier, JobStore
from cesar_core.settings import redact
from cesar_core.storage import open_storage
from cesar_core.stores import open_store
from cesar_core.testing import TRANSCRIPT, JobStoreContract, claimed, new_job
from cesar_core.transcript import Segment
from cesar_postgres.blobs import PART_BYTES, PostgresStorage
from cesar_postgres.schema import MIGRATIONS
from cesar_postgres.store import SWEEP_LOCK, PostgresJobStore

from .conftest import DATA, REFERENCES, wer
from .http_helpers import serving, wait_for
from .postgres_helpers import admin, scratch_database
from .queue_helpers import Site, eventually, start_worker, state_of, stop, submit


class TestPostgresStore(JobStoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, empty_postgres: str) -> None:
        self.url = empty_postgres

    async def open_store(self, tmp_path: Path) -> JobStore:
        return await open_store(self.url, make_manager({}))

    async def inline_audio_kept(self, store: JobStore) -> int:
        async with await psycopg.AsyncConnection.connect(self.url) as connection:
            cursor = await connection.execute("SELECT COUNT(*) FROM cesar_job_audio")
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def other_backends(url: str) -> int:
    """Kill every connection to the test database but this one, as a failover would."""
    name = url.rsplit("/", 1)[1]
    with admin() as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def test_urls_and_unreachable_servers_are_explained() -> None:
    manager = make_manager({})
    with pytest.raises(
        StoreUnavailableError, match=r"Cannot connect to PostgreSQL at 127.0.0.1:1/x"
    ):
        run(open_store("postgresql://127.0.0.1:1/x", manager))
    with pytest.raises(StoreUnavailableError) as error:
        run(open_store("postgresql://someone:secret@127.0.0.1:1/x", manager))
    assert "secret" not in str(error.value)  # messages never show a password
    assert redact("postgresql://someone:secret@db:5432/x") == "postgresql://someone:***@db:5432/x"
    with pytest.raises(InvalidOptionsError, match="Invalid PostgreSQL URL"):
        run(open_store("postgresql://127.0.0.1:5432/x?nonsense=1", manager))


def test_migrations_run_once_when_nodes_start_together() -> None:
    async def start_nodes(url: str) -> list[int]:
        stores = await asyncio.gather(*(PostgresJobStore.open(url) for _ in range(6)))
        versions = [await store.schema_version() for store in stores]
        await stores[0].create(new_job())
        for store in stores:
            await store.close()
        return versions

    with scratch_database("cesar_migrate") as url:
        assert run(start_nodes(url)) == [len(MIGRATIONS)] * 6
        with psycopg.connect(url) as connection:
            applied = connection.execute(
                "SELECT component, version FROM cesar_migrations ORDER BY 1, 2"
            ).fetchall()
            assert applied == [("jobs", v) for v in range(1, len(MIGRATIONS) + 1)]
            connection.execute("INSERT INTO cesar_migrations VALUES ('jobs', 999)")
        with pytest.raises(CesarError, match="schema version 999, newer than this Cesar knows"):
            run(PostgresJobStore.open(url))


def test_one_node_sweeps_at_a_time(empty_postgres: str) -> None:
    async def scenario() -> None:
        store = await PostgresJobStore.open(empty_postgres)
        lost = await claimed(store, lease=0.1)
        await asyncio.sleep(0.2)
        with psycopg.connect(empty_postgres, autocommit=True) as other_node:
            with other_node.transaction():
                other_node.execute("SELECT pg_advisory_xact_lock(%s)", (SWEEP_LOCK,))
                assert await store.release_expired() == []  # another node holds the sweep
                assert (await store.get(lost.id)).state is JobState.PROCESSING  # type: ignore[union-attr]
            released = await store.release_expired()
        assert [job.id for job in released] == [lost.id]
        await store.close()

    run(scenario())


def test_listen_wakes_an_idle_worker_of_another_node(empty_postgres: str) -> None:
    async def scenario() -> tuple[float, float]:
        worker_node = await PostgresJobStore.open(empty_postgres)
        api_node = await PostgresJobStore.open(empty_postgres)
        assert isinstance(worker_node, JobNotifier)
        # The first wait starts listening, and returns once connected: jobs queued before
        # then were never announced. After that, with nothing queued, a wait times out.
        await worker_node.wait_for_jobs(5)
        started = time.monotonic()
        await worker_node.wait_for_jobs(0.5)
        quiet = time.monotonic() - started
        waiting = asyncio.create_task(worker_node.wait_for_jobs(30))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await api_node.create(new_job())
        await waiting
        woken = time.monotonic() - started
        assert await worker_node.claim("w", 30) is not None
        await api_node.close()
        await worker_node.close()
        return quiet, woken

    quiet, woken = run(scenario())
    assert quiet >= 0.4
    assert woken < 2  # not the 30 s timeout


def test_killed_connections_are_replaced_and_the_job_finishes_once(empty_postgres: str) -> None:
    async def scenario() -> None:
        store = await PostgresJobStore.open(empty_postgres)
        job = await claimed(store)
        token = job.lease.token  # type: ignore[union-attr]
        assert other_backends(empty_postgres) >= 1
        assert await store.heartbeat(job.id, token, 30, progress=50)
        assert other_backends(empty_postgres) >= 1
        assert await store.complete(job.id, token, TRANSCRIPT)
        assert not await store.complete(job.id, token, TRANSCRIPT)
        done = await store.get(job.id)
        assert done is not None
        assert done.state is JobState.COMPLETED
        await store.close()

    run(scenario())


class LostAnswers:
    """Runs each operation, lets it commit, then loses the answer once, as a connection that
    drops between COMMIT and its reply does; the store must then retry without doing the
    work twice. (No real network can drop that reply on cue, so this stands in for it.)"""

    def __init__(self, store: PostgresJobStore) -> None:
        self.database = store.database
        self.real_run = store.database.run

    async def run(self, work):  # type: ignore[no-untyped-def]
        async def first_then_lost(connection, retried):  # type: ignore[no-untyped-def]
            if not retried:
                await work(connection, False)
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            return await work(connection, True)

        return await self.real_run(first_then_lost)


def test_retried_writes_whose_first_try_committed_are_not_done_twice(empty_postgres: str) -> None:
    async def scenario() -> None:
        store = await PostgresJobStore.open(empty_postgres)
        store.database.run = LostAnswers(store).run  # type: ignore[method-assign]
        job, created = await store.create(new_job(idempotency_key="once"))
        assert created
        again, created = await store.create(new_job(idempotency_key="once"))
        assert not created
        assert again.id == job.id
        claim = await store.claim("w", 30)
        assert claim is not None
        assert claim.id == job.id
        assert claim.attempts == 1  # the retry returned the first claim, not a second one
        token = claim.lease.token  # type: ignore[union-attr]
        assert (
            await store.retry(job.id, token, JobError(code="x", message="y"), 0) is JobState.QUEUED
        )
        claim = await store.claim("w", 30)
        assert claim is not None
        assert claim.attempts == 2
        assert await store.release(job.id, claim.lease.token)  # type: ignore[union-attr]
        claim = await store.claim("w", 30)
        assert claim is not None
        assert await store.complete(job.id, claim.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
        assert not await store.complete(job.id, "someone-else", TRANSCRIPT)
        counts = await store.counts()
        assert counts[JobState.COMPLETED] == 1
        assert sum(counts.values()) == 1
        # Completing and claiming in one step: the retry finds both effects of the first
        # try (and claims no second job), with or without a job to claim.
        ids = [(await store.create(new_job()))[0].id for _ in range(3)]
        current = await store.claim("w", 30)
        for expected in (ids[1], ids[2], None):
            assert current is not None
            assert current.lease is not None
            done, following = await store.complete_and_claim(
                current.id, current.lease.token, TRANSCRIPT, "w", 30
            )
            assert done
            assert (following and following.id) == expected
            assert following is None or following.attempts == 1
            current = following
        counts = await store.counts()
        assert counts[JobState.COMPLETED] == 4
        assert sum(counts.values()) == 4
        await store.close()

    run(scenario())


def test_a_retried_publish_whose_first_try_committed_adds_no_segment_twice(
    empty_postgres: str,
) -> None:
    """Live segments are appended; a retry after a lost answer must not append again (the
    live view and ``GET /jobs/{id}`` would show a segment twice)."""

    async def scenario() -> None:
        store = await PostgresJobStore.open(empty_postgres)
        store.database.run = LostAnswers(store).run  # type: ignore[method-assign]
        job, _ = await store.create(new_job())
        claim = await store.claim("w", 30)
        assert claim is not None
        assert claim.lease is not None
        token = claim.lease.token
        first = [Segment(id=i, start=float(i), end=i + 1.0, text=f" part {i}") for i in range(2)]
        second = [Segment(id=2, start=2.0, end=3.0, text=" part 2")]
        assert await store.publish(job.id, token, first, progress=20)
        assert await store.publish(job.id, token, second, progress=40)
        assert await store.publish(job.id, token, [], progress=50)  # progress alone
        assert await store.live_segments(job.id) == first + second
        assert not await store.publish(job.id, "someone-else", second)
        assert await store.live_segments(job.id) == first + second
        running = await store.get(job.id)
        assert running is not None
        assert running.progress == 50
        await store.close()

    run(scenario())


def test_an_unreachable_server_ends_retries_with_a_clear_error(empty_postgres: str) -> None:
    async def scenario() -> None:
        store = await PostgresJobStore.open(empty_postgres)
        store.database.reconnect_seconds = 1.0
        await store.database.pool.close()  # as if every connection were gone for good
        with pytest.raises(StoreUnavailableError, match="has not answered for 1 s"):
            await store.get("x")

    run(scenario())


# Storage


async def chunks(data: bytes, size: int = 64 * 1024):  # type: ignore[no-untyped-def]
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_storage_round_trip_in_parts(empty_postgres: str) -> None:
    payload = bytes(range(256)) * (PART_BYTES * 5 // 256 // 2)  # two and a half parts
    assert len(payload) > 2 * PART_BYTES

    async def scenario() -> None:
        storage = await open_storage(empty_postgres, make_manager({}))
        assert isinstance(storage, PostgresStorage)
        assert await storage.save("job1/audio.wav", chunks(payload)) == len(payload)
        assert await storage.save("job2/audio.wav", chunks(b"other")) == 5
        assert await storage.exists("job1/audio.wav")
        async with storage.local_path("job1/audio.wav") as path:
            assert path.suffix == ".wav"
            assert path.read_bytes() == payload
        assert not path.exists()  # the local copy is gone with the context
        await storage.delete_job("job1")
        assert not await storage.exists("job1/audio.wav")
        assert await storage.exists("job2/audio.wav")
        with pytest.raises(AudioNotFoundError, match="not in storage any more"):
            async with storage.local_path("job1/audio.wav"):
                pass
        await storage.close()

    run(scenario())
    with psycopg.connect(empty_postgres) as connection:
        parts = connection.execute(
            "SELECT key, count(*) FROM cesar_blob_parts GROUP BY key"
        ).fetchall()
    assert parts == [("job2/audio.wav", 1)]  # deleting a job removed its parts


def test_storage_failed_upload_leaves_nothing(empty_postgres: str) -> None:
    async def scenario() -> None:
        storage = await PostgresStorage.open(empty_postgres)
        with pytest.raises(UploadTooLargeError):
            await storage.save(
                "big/audio.wav", chunks(b"x" * (3 * PART_BYTES)), max_bytes=PART_BYTES * 2
            )

        async def broken():  # type: ignore[no-untyped-def]
            yield b"x" * (PART_BYTES + 1)
            raise ConnectionResetError("client went away")

        with pytest.raises(ConnectionResetError):
            await storage.save("gone/audio.wav", broken())
        assert not await storage.exists("big/audio.wav")
        assert not await storage.exists("gone/audio.wav")
        await storage.close()

    run(scenario())
    with psycopg.connect(empty_postgres) as connection:
        assert connection.execute("SELECT count(*) FROM cesar_blob_parts").fetchone() == (0,)


def test_an_api_node_and_two_workers_share_nothing_but_postgres(
    empty_postgres: str, tmp_path: Path
) -> None:
    """Three processes with data directories of their own: only the database joins them."""
    shared = {"CESAR_STORE": empty_postgres, "CESAR_STORAGE": empty_postgres}
    workers = []
    for n in range(2):
        home = tmp_path / f"worker{n}"
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "cesar_cli", "worker", "--name", f"node{n}"],
                env={**os.environ, **shared, "CESAR_DATA_DIR": str(home)},
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    api_home = tmp_path / "api"
    # The WAV (263 KiB) goes to the blob tables, the Opus files (41 KiB) inline with their jobs.
    inline = {"CESAR_INLINE_AUDIO_BYTES": str(100 * 1024)}
    try:
        with (
            serving(api_home, "--no-worker", **shared, **inline) as url,
            httpx.Client(base_url=url, timeout=60) as client,
        ):
            ids = []
            names = ("speech_en.opus", "speech_en.wav", "speech_en.opus")
            for name in names:
                with (DATA / name).open("rb") as audio:
                    answer = client.post("/transcribe", files={"file": (name, audio)})
                assert answer.status_code == 202, answer.text
                ids.append(answer.json()["id"])
            done = [wait_for(client, job_id, timeout=180) for job_id in ids]
            # keep_audio (the default): the audio outlives its job, in the blob tables and
            # inline alike, and the API node serves it; it goes with the job.
            for job_id, name in zip(ids, names, strict=True):
                played = client.get(f"/jobs/{job_id}/audio", headers={"Range": "bytes=0-"})
                assert played.content == (DATA / name).read_bytes(), job_id
            with psycopg.connect(empty_postgres) as connection:
                assert connection.execute("SELECT count(*) FROM cesar_blobs").fetchone() == (1,)
                audio_rows = connection.execute("SELECT count(*) FROM cesar_job_audio")
                assert audio_rows.fetchone() == (2,)
                kept = connection.execute(
                    "SELECT (source->>'inline')::boolean FROM cesar_jobs ORDER BY seq"
                ).fetchall()
            assert kept == [(True,), (False,), (True,)]
            for job_id in ids:
                assert client.delete(f"/jobs/{job_id}").status_code == 204
    finally:
        outputs = []
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            outputs.append(worker.communicate(timeout=60)[1])
    assert all(worker.returncode == 0 for worker in workers), outputs
    for job in done:
        assert job["status"] == "completed", job
        assert wer(REFERENCES["speech_en"], str(job["text"])) < 0.5
    # Nothing went through a disk the nodes share: no node stored audio of its own.
    for home in (api_home, tmp_path / "worker0", tmp_path / "worker1"):
        assert not list(home.rglob("audio*")), list(home.rglob("*"))
    with psycopg.connect(empty_postgres) as connection:  # deleted jobs' audio is removed
        assert connection.execute("SELECT count(*) FROM cesar_blobs").fetchone() == (0,)
        assert connection.execute("SELECT count(*) FROM cesar_job_audio").fetchone() == (0,)


def test_an_api_node_rides_out_a_database_that_goes_away(
    empty_postgres: str, tmp_path: Path
) -> None:
    name = empty_postgres.rsplit("/", 1)[1]
    shared = {"CESAR_STORE": empty_postgres, "CESAR_STORAGE": empty_postgres}
    with (
        serving(tmp_path, "--no-worker", **shared) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        assert client.get("/ready").status_code == 200
        with admin() as connection:
            connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            other_backends(empty_postgres)  # every pooled connection of the server dies
            started = time.monotonic()
            probe = client.get("/ready")
            assert probe.status_code == 503
            assert probe.json()["error"]["code"] == "store_unavailable"
            assert time.monotonic() - started < 10  # a probe does not wait out the retries
        finally:
            with admin() as connection:
                connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        # Back: the pool reconnects, and requests go through again.
        with (DATA / "speech_en.opus").open("rb") as audio:
            answer = client.post("/transcribe", files={"file": ("speech_en.opus", audio)})
        assert answer.status_code == 202, answer.text
        assert client.get(f"/jobs/{answer.json()['id']}").json()["status"] == "queued"
        assert client.get("/ready").status_code == 200


def test_a_worker_whose_connections_are_killed_finishes_its_job_once(
    empty_postgres: str,
) -> None:
    site = Site(store=empty_postgres, storage=empty_postgres)
    # The audio goes to the blob tables, so that removing it also meets a dead link.
    [job_id] = submit(site, 1, DATA / "speech_en.ogg", inline_bytes=0)
    worker = start_worker(site, "--transcriber", "slow:2", "--lease", "5", "--name", "steady")
    try:
        eventually(lambda: state_of(site, job_id).state is JobState.PROCESSING)
        for _ in range(3):  # heartbeats, the completion and the clean-up all meet dead links
            assert other_backends(empty_postgres) >= 1
            time.sleep(0.6)
        done = eventually(lambda: (j := state_of(site, job_id)).state.terminal and j)
    finally:
        output = stop(worker)
    assert isinstance(done, Job)
    assert done.state is JobState.COMPLETED, output
    assert done.attempts == 1  # never lost, never run twice
    assert done.result is not None
    assert done.result.text == "steady"
    assert "completed 1" in output
    assert "retrying in" in output  # it did meet dead connections, and replaced them
    with psycopg.connect(empty_postgres) as connection:
        assert connection.execute("SELECT count(*) FROM cesar_blobs").fetchone() == (0,)
