"""Finished jobs are pruned by the running nodes, with nobody asking: an API-only
``cesar serve`` on SQLite, a ``cesar worker`` on PostgreSQL, one node at a time there."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from cesar_core import Settings
from cesar_core.errors import InvalidOptionsError
from cesar_core.housekeeping import prune_interval, retention_of
from cesar_core.jobs import JobState
from cesar_core.plugins import make_manager
from cesar_core.service import JobNotFoundError, JobService
from cesar_postgres.store import PRUNE_LOCK, PostgresJobStore

from .http_helpers import serving
from .queue_helpers import eventually

#: 1.8 s: a cancelled job outlives it within a test's patience; pruning runs every second.
SHORT = "0.0005"


def upload(client: httpx.Client, data: Path) -> str:
    with (data / "speech_en.opus").open("rb") as audio:
        answer = client.post("/transcribe", files={"file": ("speech_en.opus", audio)})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def test_an_api_only_server_prunes_finished_jobs_by_itself(tmp_path: Path, data: Path) -> None:
    with (
        serving(tmp_path, "--no-worker", CESAR_RETENTION_HOURS=SHORT) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        finished, waiting = upload(client, data), upload(client, data)
        assert client.delete(f"/jobs/{finished}").json()["status"] == "cancelled"
        started = time.monotonic()
        eventually(lambda: client.get(f"/jobs/{finished}").status_code == 404, timeout=30)
        assert time.monotonic() - started >= 1.5  # not before its retention was over
        assert client.get(f"/jobs/{waiting}").json()["status"] == "queued"  # unfinished: kept


def test_retention_zero_keeps_jobs(tmp_path: Path, data: Path) -> None:
    with (
        serving(tmp_path, "--no-worker", CESAR_RETENTION_HOURS="0") as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        job_id = upload(client, data)
        client.delete(f"/jobs/{job_id}")
        time.sleep(3)
        assert client.get(f"/jobs/{job_id}").json()["status"] == "cancelled"


def test_a_worker_on_postgresql_prunes_without_being_asked(
    tmp_path: Path, data: Path, empty_postgres: str
) -> None:
    settings = Settings(
        data_dir=tmp_path, store=empty_postgres, storage=empty_postgres, inline_audio_bytes=0
    )

    async def cancelled_job() -> str:
        service = await JobService.open(settings, make_manager({}))
        job, _ = await service.submit_file(data / "speech_en.opus")
        await service.cancel(job.id)
        await service.close()
        return job.id

    async def gone(job_id: str) -> bool:
        service = await JobService.open(settings, make_manager({}))
        try:
            await service.get(job_id)
        except JobNotFoundError:
            return True
        finally:
            await service.close()
        return False

    job_id = asyncio.run(cancelled_job())
    worker = subprocess.Popen(
        [sys.executable, "-m", "cesar_cli", "worker"],
        env={
            **os.environ,
            "CESAR_DATA_DIR": str(tmp_path),
            "CESAR_STORE": empty_postgres,
            "CESAR_STORAGE": empty_postgres,
            "CESAR_RETENTION_HOURS": SHORT,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: asyncio.run(gone(job_id)), timeout=60, every=0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    with psycopg.connect(empty_postgres) as connection:
        assert connection.execute("SELECT count(*) FROM cesar_blobs").fetchone() == (0,)


def test_one_postgresql_node_prunes_at_a_time(empty_postgres: str, data: Path) -> None:
    async def scenario() -> None:
        store = await PostgresJobStore.open(empty_postgres)
        service = JobService(store, _NoStorage())
        job, _ = await service.submit_file(data / "speech_en.opus")
        await service.cancel(job.id)
        later = datetime.now(UTC) + timedelta(hours=1)
        with psycopg.connect(empty_postgres, autocommit=True) as other_node:
            other_node.execute("SELECT pg_advisory_lock(%s)", (PRUNE_LOCK,))
            assert await store.prune(later) == []  # another node is pruning: skip the turn
            other_node.execute("SELECT pg_advisory_unlock(%s)", (PRUNE_LOCK,))
        assert await store.prune(later) == [job.id]
        assert (await store.counts())[JobState.CANCELLED] == 0
        await store.close()

    asyncio.run(scenario())


class _NoStorage:
    """Inline audio only: this test's jobs never reach storage."""

    async def delete_job(self, job_id: str) -> None:
        raise AssertionError("an inline job has no files")

    async def close(self) -> None:
        pass


def test_the_retention_setting() -> None:
    assert retention_of(0) is None
    assert retention_of(24) == timedelta(hours=24)
    assert prune_interval(timedelta(hours=24)) == 900  # a quarter of an hour at most
    assert prune_interval(timedelta(seconds=2)) == 1  # a second at least
    assert Settings.load({"CESAR_RETENTION_HOURS": "72"}).retention_hours == 72
    assert Settings().retention_hours == 24
    for bad in ("-1", "nan"):
        with pytest.raises(InvalidOptionsError, match="retention_hours"):
            Settings.load({"CESAR_RETENTION_HOURS": bad})
