"""No-op jobs per second on PostgreSQL with several worker processes (used by queue.py).

Each worker is its own process (``tests/worker_process.py``: a real ``Worker`` with one
slot unless told otherwise, the no-op transcriber) on the PostgreSQL store *and* storage,
as nodes that share nothing but the database run. Two figures per worker count:

- **drain**: the workers are started and paused (SIGSTOP), the jobs submitted, the workers
  resumed, and the clock runs until the last job is completed: the rate of the workers
  alone (claim, run, complete; with audio in the blob tables, also copy it out before and
  delete it after).
- **end to end**: the workers run while this process submits the jobs (8 concurrent
  submitters through ``JobService``, 1 KiB of audio each), clock from the first submit to
  the last completion.

The 1 KiB goes inline with its job unless ``inline_bytes`` is 0 (then to the blob tables).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from tests.postgres_helpers import scratch_database

from cesar_core.service import JobService
from cesar_postgres.blobs import PostgresStorage
from cesar_postgres.store import PostgresJobStore

ROOT = Path(__file__).resolve().parent.parent
AUDIO = b"RIFF" + b"\0" * 1020  # the no-op transcriber never reads it
SUBMITTERS = 8


def start_workers(url: str, count: int, slots: int = 1) -> list[subprocess.Popen[bytes]]:
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "worker_process.py"),
                "--store",
                url,
                "--storage",
                url,
                "--transcriber",
                "noop",
                "--poll",
                "0.5",
                "--sweep",
                "5",
                "--heartbeat",
                "5",
                "--name",
                f"bench{n}",
                "--concurrency",
                str(slots),
            ],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        for n in range(count)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == b"ready"
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGCONT)
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=120)


async def submit(url: str, jobs: int, inline_bytes: int) -> None:
    store = await PostgresJobStore.open(url)
    service = JobService(store, await PostgresStorage.open(url), inline_bytes=inline_bytes)

    async def chunks():  # type: ignore[no-untyped-def]
        yield AUDIO

    async def one_submitter(count: int) -> None:
        for _ in range(count):
            await service.submit_file(chunks(), filename="a.wav")

    shares = [jobs // SUBMITTERS + (i < jobs % SUBMITTERS) for i in range(SUBMITTERS)]
    async with asyncio.TaskGroup() as group:
        for share in shares:
            group.create_task(one_submitter(share))
    await service.close()


def wait_completed(url: str, jobs: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(
                "SELECT count(*) FROM cesar_jobs WHERE state = 'completed'"
            ).fetchone()
            if row is not None and row[0] >= jobs:
                return
            time.sleep(0.05)  # often enough to time the run, rarely enough to cost nothing
    raise TimeoutError(f"{jobs} jobs not completed within {timeout} s")


def one_run(
    admin_url: str, jobs: int, workers: int, mode: str, inline_bytes: int, slots: int = 1
) -> float:
    """Jobs per second for ``workers`` processes of ``slots`` slots each in ``mode``
    (``drain`` or ``e2e``)."""
    with scratch_database("cesar_bench", admin_url) as url:
        asyncio.run(_open_close(url))  # tables exist before workers race to create them
        processes = start_workers(url, workers, slots)
        try:
            if mode == "drain":
                for process in processes:
                    process.send_signal(signal.SIGSTOP)
                asyncio.run(submit(url, jobs, inline_bytes))
                started = time.perf_counter()
                for process in processes:
                    process.send_signal(signal.SIGCONT)
                wait_completed(url, jobs)
            else:
                started = time.perf_counter()
                asyncio.run(_submit_while_waiting(url, jobs, inline_bytes))
            elapsed = time.perf_counter() - started
        finally:
            stop_workers(processes)
        return jobs / elapsed


async def _submit_while_waiting(url: str, jobs: int, inline_bytes: int) -> None:
    await asyncio.gather(
        submit(url, jobs, inline_bytes), asyncio.to_thread(wait_completed, url, jobs)
    )


async def _open_close(url: str) -> None:
    await (await PostgresJobStore.open(url)).close()
    await (await PostgresStorage.open(url)).close()
