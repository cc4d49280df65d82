"""Downloads that never end: a real server on loopback that sends one byte at a time.

Such a server must not hold a worker slot: a download has an overall deadline and a
minimum rate, and it stops when its job is cancelled or deleted, or the worker stops.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from cesar_core.fetch import DownloadError, DownloadStopped, FetchPolicy, download
from cesar_core.jobs import JobState
from cesar_core.worker import Worker, WorkerConfig

from .http_helpers import serving, wait_for
from .queue_helpers import open_service
from .worker_process import NoopTranscriber

FAST = WorkerConfig(heartbeat_seconds=0.05, poll_seconds=0.02, retry_base_seconds=0.01)
#: One byte every this many seconds.
DRIP_SECONDS = 0.2


@dataclass
class Drip:
    url: str
    started: threading.Event = field(default_factory=threading.Event)
    #: Set when a dripping response ends because the client went away.
    dropped: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


def drip_handler(drip: Drip) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/drip.wav":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            drip.started.set()
            give_up = time.monotonic() + 30
            try:
                while not drip.stop.is_set() and time.monotonic() < give_up:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(DRIP_SECONDS)
            except OSError:
                drip.dropped.set()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def drip() -> Iterator[Drip]:
    found = Drip("")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), drip_handler(found))
    httpd.daemon_threads = True
    found.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield found
    found.stop.set()
    httpd.shutdown()
    httpd.server_close()


async def consume(url: str, policy: FetchPolicy, stop: threading.Event | None = None) -> int:
    received = 0
    async for chunk in download(url, policy, stop=None if stop is None else stop.is_set):
        received += len(chunk)
    return received


def timed(coroutine: object) -> tuple[BaseException, float]:
    started = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(coroutine, 20))  # type: ignore[arg-type]
    except BaseException as exc:
        return exc, time.monotonic() - started
    raise AssertionError("the download ended normally")


def test_a_download_has_an_overall_deadline(drip: Drip) -> None:
    policy = FetchPolicy(allow_private=True, deadline_seconds=1.0, min_bytes_per_second=0)
    error, elapsed = timed(consume(f"{drip.url}/drip.wav", policy))
    assert isinstance(error, DownloadError), error
    assert "did not finish within 1 s" in str(error)
    assert error.hint is not None
    assert "download_timeout_seconds" in error.hint
    assert elapsed < 2.5


def test_a_download_slower_than_the_minimum_rate_is_dropped(drip: Drip) -> None:
    policy = FetchPolicy(
        allow_private=True, deadline_seconds=60, min_bytes_per_second=100, rate_grace_seconds=0.5
    )
    error, elapsed = timed(consume(f"{drip.url}/drip.wav", policy))
    assert isinstance(error, DownloadError), error
    assert "slower than 100 bytes/s" in str(error)
    assert elapsed < 2.5
    assert drip.dropped.wait(2)  # the connection was closed, not left open


def test_a_download_stops_when_asked(drip: Drip) -> None:
    stop = threading.Event()
    policy = FetchPolicy(allow_private=True)

    async def scenario() -> None:
        asyncio.get_running_loop().call_later(0.5, stop.set)
        await consume(f"{drip.url}/drip.wav", policy, stop)

    error, elapsed = timed(scenario())
    assert isinstance(error, DownloadStopped), error
    assert elapsed < 1.5


def test_deleting_a_job_mid_download_frees_its_slot_at_once(tmp_path: Path, drip: Drip) -> None:
    policy = FetchPolicy(allow_private=True)

    async def scenario() -> float:
        service = await open_service(tmp_path)
        service.fetch = policy
        job, _ = await service.submit_url(f"{drip.url}/drip.wav")
        worker = Worker(service.store, service.storage, NoopTranscriber(), FAST, fetch=policy)
        task = asyncio.create_task(worker.run(until_idle=True))
        assert await asyncio.to_thread(drip.started.wait, 10)
        deleted = time.monotonic()
        await service.delete(job.id)
        try:
            await asyncio.wait_for(task, 10)  # the slot is free: it finds no other job
        finally:
            worker.request_stop()
        elapsed = time.monotonic() - deleted
        assert await service.store.get(job.id) is None
        assert not (tmp_path / "audio" / job.id).exists()
        await service.close()
        return elapsed

    assert asyncio.run(scenario()) < 2
    assert drip.dropped.wait(2)


def test_a_stopping_worker_hands_a_download_back(tmp_path: Path, drip: Drip) -> None:
    policy = FetchPolicy(allow_private=True)
    config = WorkerConfig(heartbeat_seconds=0.05, poll_seconds=0.02, grace_seconds=0.2)

    async def scenario() -> float:
        service = await open_service(tmp_path)
        service.fetch = policy
        job, _ = await service.submit_url(f"{drip.url}/drip.wav")
        worker = Worker(service.store, service.storage, NoopTranscriber(), config, fetch=policy)
        task = asyncio.create_task(worker.run())
        assert await asyncio.to_thread(drip.started.wait, 10)
        asked = time.monotonic()
        worker.request_stop()
        await asyncio.wait_for(task, 10)
        elapsed = time.monotonic() - asked
        back = await service.get(job.id)
        assert back.state is JobState.QUEUED
        assert back.attempts == 0  # a hand-back does not count
        await service.close()
        return elapsed

    assert asyncio.run(scenario()) < 2


def test_over_http_a_deleted_download_frees_the_only_slot(tmp_path: Path, drip: Drip) -> None:
    """``cesar serve`` with one worker slot: DELETE during a download lets the next job
    run within a heartbeat or two; malformed URLs are answered 400, not 500."""
    with (
        serving(tmp_path, CESAR_ALLOW_PRIVATE_URLS="1", CESAR_WORKERS="1") as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        for bad in ("http://[::1/a.mp3", "http://example.org:99999/a.mp3"):
            answer = client.post("/transcribe", json={"url": bad})
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["code"] == "url_refused"
        first = client.post("/transcribe", json={"url": f"{drip.url}/drip.wav"}).json()
        assert drip.started.wait(30)
        assert client.delete(f"/jobs/{first['id']}").status_code in (200, 204)
        deleted = time.monotonic()
        second = client.post("/transcribe", json={"url": f"{drip.url}/missing.wav"}).json()
        done = wait_for(client, second["id"], timeout=15)
        elapsed = time.monotonic() - deleted
    assert done["status"] == "error"
    assert elapsed < 8  # the default heartbeat is 2 s
