"""Shared pieces of the job queue tests: a service on a temporary SQLite file (or on any
store and storage URLs), worker processes, and polling."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from attrs import frozen

from cesar_core.jobs import Job
from cesar_core.plugins import make_manager
from cesar_core.service import JobService
from cesar_core.settings import DEFAULT_INLINE_AUDIO_BYTES
from cesar_core.storage import open_storage
from cesar_core.storage.local import LocalStorage
from cesar_core.stores import open_store
from cesar_core.stores.sqlite import SQLiteJobStore
from cesar_core.worker import Worker

HERE = Path(__file__).parent


@frozen
class Site:
    """Where a test's queue lives: a store URL and a storage URL."""

    store: str
    storage: str

    @classmethod
    def local(cls, root: Path) -> Site:
        """SQLite and files under ``root``: one machine."""
        return cls(f"sqlite:///{root / 'jobs.db'}", (root / "audio").as_uri())


async def open_service(
    where: Path | Site, *, inline_bytes: int = DEFAULT_INLINE_AUDIO_BYTES
) -> JobService:
    """A service on the site's store and storage, or SQLite and files under a directory;
    ``inline_bytes=0`` sends even small uploads to storage."""
    if isinstance(where, Site):
        manager = make_manager({})
        store = await open_store(where.store, manager)
        storage = await open_storage(where.storage, manager)
        return JobService(store, storage, inline_bytes=inline_bytes)
    store = await SQLiteJobStore.open(where / "jobs.db")
    return JobService(store, LocalStorage(where / "audio"), inline_bytes=inline_bytes)


def submit(
    root: Site,
    count: int,
    audio: Path,
    *,
    inline_bytes: int = DEFAULT_INLINE_AUDIO_BYTES,
    **kwargs: object,
) -> list[str]:
    """Submit ``audio`` ``count`` times; return the job ids."""

    async def go() -> list[str]:
        service = await open_service(root, inline_bytes=inline_bytes)
        ids = [(await service.submit_file(audio, **kwargs))[0].id for _ in range(count)]  # type: ignore[arg-type]
        await service.close()
        return ids

    return run(go())


def jobs(root: Site, ids: list[str]) -> list[Job]:
    """The jobs as the store has them now."""

    async def go() -> list[Job]:
        service = await open_service(root)
        found = [await service.get(job_id) for job_id in ids]
        await service.close()
        return found

    return run(go())


def state_of(root: Site, job_id: str) -> Job:
    return jobs(root, [job_id])[0]


def start_worker(where: Path | Site, *args: str) -> subprocess.Popen[str]:
    """A worker process on the test's store; returns once it is ready."""
    site = where if isinstance(where, Site) else Site.local(where)
    process = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "worker_process.py"),
            "--store",
            site.store,
            "--storage",
            site.storage,
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
