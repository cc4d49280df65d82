"""PostgreSQL restarted (killed, then recovered) while workers on two processes run jobs:
every job ends completed, once, and nothing is left behind. The server is a private one
(see ``postgres_server.py``), since the shared one serves the other tests; and the
throwaway server a run starts for itself when it is given none."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from cesar_core.jobs import JobState

from .postgres_server import private_server
from .queue_helpers import Site, eventually, jobs, start_worker, stop, submit


def ended(url: str) -> int:
    """Jobs in a terminal state; 0 while the server cannot be reached."""
    try:
        with psycopg.connect(url, connect_timeout=2) as connection:
            row = connection.execute(
                "SELECT count(*) FROM cesar_jobs WHERE state IN ('completed', 'error', 'cancelled')"
            ).fetchone()
    except psycopg.OperationalError:
        return 0
    return int(row[0]) if row else 0


def left_over(url: str) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        return {
            table: int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            for table in ("cesar_job_audio", "cesar_blobs", "cesar_blob_parts")
        }


def test_jobs_survive_a_postgres_restart_mid_run(data: Path) -> None:
    with private_server() as server:
        site = Site(store=server.url, storage=server.url)
        audio = data / "speech_en.ogg"
        # Half the audio rides with its job, half goes to the blob tables.
        ids = submit(site, 20, audio) + submit(site, 20, audio, inline_bytes=0)
        workers = [
            start_worker(site, "--transcriber", "slow:0.2", "--name", "one"),
            start_worker(site, "--transcriber", "slow:0.2", "--concurrency", "4", "--name", "four"),
        ]
        try:
            eventually(lambda: ended(server.url) >= 5)
            # As a crash would: every backend killed at once, recovery from the WAL at start.
            down = datetime.now(UTC)
            server.stop("immediate")
            time.sleep(2)  # long enough for every worker to lose its connections
            server.start()
            eventually(lambda: ended(server.url) == len(ids), timeout=120)
        finally:
            outputs = [stop(worker) for worker in workers]
        assert all(worker.returncode == 0 for worker in workers), outputs
        assert all("retrying in" in output for output in outputs), outputs  # both felt it
        counts = [
            int(m.group(1)) for o in outputs if (m := re.search(r"^completed (\d+)$", o, re.M))
        ]
        assert sum(counts) == len(ids), outputs  # one successful completion per job
        found = jobs(site, ids)
        assert all(job.state is JobState.COMPLETED for job in found)
        assert all(job.attempts == 1 for job in found)  # no claim was made twice
        # Some were running when the server went down, and finished after it came back.
        assert any(
            job.started_at and job.completed_at and job.started_at < down < job.completed_at
            for job in found
        )
        assert all(job.result is not None and job.result.text in {"one", "four"} for job in found)
        assert left_over(server.url) == {
            "cesar_job_audio": 0,
            "cesar_blobs": 0,
            "cesar_blob_parts": 0,
        }


SCRATCH = """
import psycopg
from tests.postgres_helpers import scratch_database

with scratch_database() as url, psycopg.connect(url) as connection:
    print(url)
    print(connection.execute("SHOW data_directory").fetchone()[0])
"""


def test_a_run_without_a_server_url_starts_a_throwaway_one_and_removes_it() -> None:
    """Unset, ``CESAR_TEST_POSTGRES_URL`` never means "whatever answers on 5432": the run
    starts a server of its own on a free port, and nothing of it outlives the run."""
    env = {k: v for k, v in os.environ.items() if k != "CESAR_TEST_POSTGRES_URL"}
    done = subprocess.run(
        [sys.executable, "-c", SCRATCH],
        cwd=Path(__file__).parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    url, data_directory = done.stdout.split()
    port = conninfo_to_dict(url)["port"]
    assert port != "5432", url
    assert not Path(data_directory).exists()  # the cluster's directory went with it
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)  # and so did the server
