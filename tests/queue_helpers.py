"""Shared pieces of the job queue tests: a service on a temporary SQLite file, worker
processes, and polling."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cesar_core.jobs import Job
from cesar_core.service import JobService
from cesar_core.storage.local import LocalStorage
from cesar_core.stores.sqlite import SQLiteJobStore
from cesar_core.worker import Worker

HERE = Path(__file__).parent


async def open_service(root: Path) -> JobService:
    store = await SQLiteJobStore.open(root / "jobs.db")
    return JobService(store, LocalStorage(root / "audio"))


def start_worker(root: Path, *args: str) -> subprocess.Popen[str]:
    """A worker process on the test's store; returns once it is ready."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "worker_process.py"),
            "--store",
            str(root / "jobs.db"),
            "--audio",
            str(root / "audio"),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parent / "src")},
    )
    assert process.stdout is not None
    line = _read_line(process.stdout.fileno())
    assert line.strip() == "ready", process.stderr.read() if process.stderr else line
    return process


def _read_line(fd: int) -> str:
    """One line, read byte by byte: a buffered readline could swallow later output that
    ``communicate`` (which reads the raw pipe) would then never see."""
    data = b""
    while not data.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        data += byte
    return data.decode()


def stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30) -> str:
    """Signal a worker, wait for it, and return everything it wrote."""
    if process.poll() is None:
        process.send_signal(sig)
    out, err = process.communicate(timeout=timeout)
    return out + err


def eventually(check: Callable[[], object], timeout: float = 30, every: float = 0.05) -> object:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


async def work_until_finished(
    worker: Worker, service: JobService, job_id: str, timeout: float
) -> Job:
    """Run ``worker`` until the job is finished (retries and backoff included), then stop it."""
    task = asyncio.create_task(worker.run())
    try:
        return await service.wait(job_id, timeout=timeout)
    finally:
        worker.request_stop()
        await task
