"""URL jobs: a real HTTP server on loopback, real downloads, and the refusals that keep a
server from being used as a proxy into its own network."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cesar_core.fetch import FetchPolicy, UrlRefusedError, check_url
from cesar_core.jobs import JobState
from cesar_core.service import JobService
from cesar_core.worker import Worker, WorkerConfig

from .conftest import DATA, REFERENCES, wer
from .queue_helpers import open_service, work_until_finished
from .worker_process import NoopTranscriber

FAST = WorkerConfig(heartbeat_seconds=0.05, poll_seconds=0.02, retry_base_seconds=0.01)
PRIVATE_OK = FetchPolicy(allow_private=True, timeout_seconds=5)


class AudioHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path
        if path.startswith("/redirect/"):
            hops = int(path.rsplit("/", 1)[1])
            target = "/speech_en.ogg" if hops == 0 else f"/redirect/{hops - 1}"
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()
            return
        if path == "/flaky":
            self.send_response(503)
            self.end_headers()
            return
        file = DATA / path.lstrip("/")
        if not file.is_file():
            self.send_response(404)
            self.end_headers()
            return
        body = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), AudioHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


async def run_jobs(service: JobService, transcriber: object, policy: FetchPolicy) -> None:
    worker = Worker(service.store, service.storage, transcriber, FAST, fetch=policy)  # type: ignore[arg-type]
    await worker.run(until_idle=True)


def test_url_job_downloads_and_transcribes(tmp_path: Path, server: str, transcriber) -> None:
    async def scenario() -> None:
        service = await open_service(tmp_path)
        service.fetch = PRIVATE_OK
        job, _ = await service.submit_url(f"{server}/redirect/2")
        assert job.source.kind.value == "url"
        await run_jobs(service, transcriber, PRIVATE_OK)
        done = await service.get(job.id)
        assert done.state is JobState.COMPLETED, done.error
        assert done.result is not None
        assert wer(REFERENCES["speech_en"], done.result.text) < 0.5
        assert not (tmp_path / "audio" / job.id).exists()  # the download is gone with the job
        await service.close()

    asyncio.run(scenario())


def test_private_addresses_are_refused_by_default(tmp_path: Path, server: str) -> None:
    for url in (
        f"{server}/speech_en.ogg",
        "http://localhost/a.mp3",
        "http://10.1.2.3/a.mp3",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/a.wav",
    ):
        with pytest.raises(UrlRefusedError, match="private or local address"):
            check_url(url, FetchPolicy())
    for url in ("ftp://example.org/a.mp3", "file:///etc/passwd", "not a url"):
        with pytest.raises(UrlRefusedError, match="is not an http or https URL"):
            check_url(url, FetchPolicy())
    with pytest.raises(UrlRefusedError, match="cannot be resolved"):
        check_url("http://no-such-host.invalid/a.mp3", FetchPolicy())

    async def scenario() -> None:
        service = await open_service(tmp_path)
        with pytest.raises(UrlRefusedError):
            await service.submit_url(f"{server}/speech_en.ogg")
        assert sum((await service.store.counts()).values()) == 0  # nothing was queued
        await service.close()

    asyncio.run(scenario())


def test_worker_rechecks_urls_it_is_given(tmp_path: Path, server: str) -> None:
    """A job queued where private URLs were allowed is refused by a stricter worker."""

    async def scenario() -> None:
        service = await open_service(tmp_path)
        service.fetch = PRIVATE_OK
        job, _ = await service.submit_url(f"{server}/speech_en.ogg")
        await run_jobs(service, NoopTranscriber(), FetchPolicy())
        failed = await service.get(job.id)
        assert failed.state is JobState.ERROR
        assert failed.error is not None
        assert failed.error.code == "url_refused"
        await service.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("path", "policy", "code", "attempts", "message"),
    [
        ("/missing.wav", PRIVATE_OK, "download_rejected", 1, "HTTP 404"),
        ("/redirect/9", PRIVATE_OK, "download_rejected", 1, "redirected more than 5 times"),
        (
            "/speech_en.wav",
            FetchPolicy(allow_private=True, max_bytes=10_000),
            "download_rejected",
            1,
            "larger than the limit of 10,000 bytes",
        ),
        ("/flaky", PRIVATE_OK, "download_failed", 2, "HTTP 503"),
    ],
)
def test_download_failures_are_recorded(
    tmp_path: Path,
    server: str,
    path: str,
    policy: FetchPolicy,
    code: str,
    attempts: int,
    message: str,
) -> None:
    async def scenario() -> None:
        service = await open_service(tmp_path)
        service.fetch = PRIVATE_OK
        job, _ = await service.submit_url(f"{server}{path}", max_attempts=2)
        worker = Worker(service.store, service.storage, NoopTranscriber(), FAST, fetch=policy)
        failed = await work_until_finished(worker, service, job.id, timeout=20)
        assert failed.state is JobState.ERROR
        assert failed.error is not None
        assert failed.error.code == code
        assert message in failed.error.message
        assert failed.attempts == attempts
        assert not (tmp_path / "audio" / job.id).exists()
        await service.close()

    asyncio.run(scenario())


def test_unreachable_server_is_retried_then_fails(tmp_path: Path) -> None:
    async def scenario() -> None:
        service = await open_service(tmp_path)
        service.fetch = PRIVATE_OK
        job, _ = await service.submit_url("http://127.0.0.1:9/a.wav", max_attempts=2)
        worker = Worker(service.store, service.storage, NoopTranscriber(), FAST, fetch=PRIVATE_OK)
        failed = await work_until_finished(worker, service, job.id, timeout=20)
        assert failed.state is JobState.ERROR
        assert failed.error is not None
        assert failed.error.code == "download_failed"
        assert "Could not fetch http://127.0.0.1:9/a.wav" in failed.error.message
        assert failed.attempts == 2
        await service.close()

    asyncio.run(scenario())
