"""Webhooks: a real receiver on loopback, real workers on a real SQLite file, and signatures
checked by the independent Standard Webhooks library as well as our own ``verify``."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as ThirdPartyError

from cesar_core import EmptyAudioError, InvalidOptionsError, Settings, hookimpl
from cesar_core.events import JobEvent, JobEvents, JobEventType
from cesar_core.fetch import FetchPolicy, UrlRefusedError
from cesar_core.jobs import DeliveryStatus, Job, JobState, NewJob
from cesar_core.plugins import make_manager
from cesar_core.service import JobService
from cesar_core.storage.local import LocalStorage
from cesar_core.stores.sqlite import SQLiteJobStore
from cesar_core.webhooks import WebhookPolicy, WebhookVerificationError, deliver, sign, verify
from cesar_core.worker import Worker, WorkerConfig

from .queue_helpers import work_until_finished
from .test_url_guard import FakeDNS, dns  # noqa: F401  (the resolver fixture)
from .worker_process import NoopTranscriber, SlowTranscriber

SECRET = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes....").decode()
FAST = WorkerConfig(heartbeat_seconds=0.05, poll_seconds=0.02, sweep_seconds=0.05)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    hanging: threading.Event = field(default_factory=threading.Event)
    flaky_calls: int = 0

    def to(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]


def make_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            sent = {name.lower(): value for name, value in self.headers.items()}
            receiver.requests.append(Received(self.path, sent, body))
            status, headers = 200, {}
            if self.path == "/flaky":  # 503, then 429 asking for a short wait, then 200
                receiver.flaky_calls += 1
                if receiver.flaky_calls == 1:
                    status = 503
                elif receiver.flaky_calls == 2:
                    status, headers = 429, {"Retry-After": "0"}
            elif self.path == "/slow-down":  # 429 asking for a 1 s wait, then 200
                receiver.flaky_calls += 1
                if receiver.flaky_calls == 1:
                    status, headers = 429, {"Retry-After": "1"}
            elif self.path == "/reject":
                status = 400
            elif self.path == "/redirect":
                status, headers = 302, {"Location": "/ok"}
            elif self.path == "/hang":
                receiver.hanging.set()
                time.sleep(4)
                receiver.hanging.clear()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver("")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(found))
    httpd.daemon_threads = True
    found.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield found
    httpd.shutdown()


def settings_for(root: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": root,
        "allow_private_urls": True,
        "webhook_secret": SECRET,
        "webhook_backoff": 0.02,
        "webhook_timeout": 2.0,
        "webhook_max_attempts": 3,
    }
    values.update(changes)
    return Settings(**values)


async def open_service(root: Path, settings: Settings) -> JobService:
    store = await SQLiteJobStore.open(root / "jobs.db")
    events = JobEvents(store, settings, make_manager({"CESAR_PLUGINS": ""}))
    fetch = FetchPolicy.from_settings(settings)
    return JobService(store, LocalStorage(root / "audio"), fetch, events)


async def submit(service: JobService, tmp_path: Path, **kwargs: Any) -> Job:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF....")
    job, _ = await service.submit_file(audio, **kwargs)
    return job


def worker_for(service: JobService, transcriber: object = None) -> Worker:
    return Worker(
        service.store,
        service.storage,
        transcriber or NoopTranscriber(),  # type: ignore[arg-type]
        FAST,
        events=service.events,
    )


async def run_worker(service: JobService, transcriber: object = None) -> None:
    await worker_for(service, transcriber).run(until_idle=True)  # returns once webhooks are done


def run_one(tmp_path: Path, webhook_url: str) -> Job:
    """Submit one job with a webhook, run it, and return it once its webhook is done."""

    async def scenario() -> Job:
        service = await open_service(tmp_path, settings_for(tmp_path))
        job = await submit(service, tmp_path, webhook_url=webhook_url)
        await run_worker(service)
        done = await service.get(job.id)
        await service.close()
        return done

    return asyncio.run(scenario())


def test_a_completed_job_is_announced_signed_and_recorded(
    tmp_path: Path, receiver: Receiver
) -> None:
    done = run_one(tmp_path, f"{receiver.url}/ok")
    assert done.state is JobState.COMPLETED
    [request] = receiver.to("/ok")
    body = json.loads(request.body)
    assert body == {
        "id": f"{done.id}.completed",
        "type": "job.completed",
        "job_id": done.id,
        "state": "completed",
        "timestamp": body["timestamp"],
        "error": None,
    }
    assert request.headers["webhook-id"] == body["id"]
    assert request.headers["content-type"] == "application/json"
    # The independent reference implementation accepts our signature...
    assert Webhook(SECRET).verify(request.body, request.headers) == body
    # ...and so does ours, which refuses a changed body, another key and an old request.
    verify(SECRET, request.headers, request.body)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(SECRET, request.headers, request.body.replace(b"completed", b"cancelled"))
    with pytest.raises(ThirdPartyError):
        Webhook("whsec_" + base64.b64encode(b"another key").decode()).verify(
            request.body, request.headers
        )
    with pytest.raises(WebhookVerificationError, match="timestamp"):
        verify(SECRET, request.headers, request.body, now=time.time() + 3600)
    assert done.webhook is not None
    assert done.webhook.status is DeliveryStatus.DELIVERED
    assert done.webhook.attempts == 1
    assert done.webhook.status_code == 200
    assert done.webhook.event_id == body["id"]


def test_signatures_with_a_plain_secret_match_the_reference_library() -> None:
    body = b'{"test": 2432232314}'
    signature = sign("plain secret", "msg_1", 1614265330, body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1614265330",
        "webhook-signature": signature,
    }
    reference = Webhook(base64.b64encode(b"plain secret").decode())
    assert reference.sign("msg_1", _utc(1614265330), body.decode()) == signature
    verify("plain secret", headers, body, now=1614265330)
    with pytest.raises(WebhookVerificationError, match="lacks"):
        verify("plain secret", {"webhook-id": "msg_1"}, body)


def _utc(seconds: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC)


def test_5xx_and_429_are_retried_with_the_same_event_id(tmp_path: Path, receiver: Receiver) -> None:
    done = run_one(tmp_path, f"{receiver.url}/flaky")
    requests = receiver.to("/flaky")
    assert len(requests) == 3
    assert {request.headers["webhook-id"] for request in requests} == {f"{done.id}.completed"}
    assert done.webhook is not None
    assert done.webhook.status is DeliveryStatus.DELIVERED
    assert done.webhook.attempts == 3


def test_other_4xx_and_redirects_are_final(tmp_path: Path, receiver: Receiver) -> None:
    async def scenario() -> list[Job]:
        service = await open_service(tmp_path, settings_for(tmp_path))
        rejected = await submit(service, tmp_path, webhook_url=f"{receiver.url}/reject")
        moved = await submit(service, tmp_path, webhook_url=f"{receiver.url}/redirect")
        await run_worker(service)
        jobs = [await service.get(rejected.id), await service.get(moved.id)]
        await service.close()
        return jobs

    rejected, moved = asyncio.run(scenario())
    assert len(receiver.to("/reject")) == 1
    assert len(receiver.to("/redirect")) == 1
    assert receiver.to("/ok") == []  # the redirect was not followed
    for job, status in ((rejected, 400), (moved, 302)):
        assert job.state is JobState.COMPLETED
        assert job.webhook is not None
        assert job.webhook.status is DeliveryStatus.FAILED
        assert job.webhook.attempts == 1
        assert job.webhook.status_code == status
        assert job.webhook.error == f"HTTP {status}"


def test_an_unreachable_receiver_is_retried_up_to_the_limit(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]

    done = run_one(tmp_path, f"http://127.0.0.1:{closed}/hook")
    assert done.state is JobState.COMPLETED
    assert done.webhook is not None
    assert done.webhook.status is DeliveryStatus.FAILED
    assert done.webhook.attempts == 3
    assert done.webhook.status_code is None
    assert "ConnectError" in (done.webhook.error or "")


def test_a_hanging_receiver_delays_no_job_and_no_heartbeat(
    tmp_path: Path, receiver: Receiver
) -> None:
    """While the first job's webhook hangs, the next job (which runs for three times its
    lease) keeps its lease by heartbeat and completes on its first attempt."""
    settings = settings_for(tmp_path, webhook_timeout=3.0, webhook_max_attempts=1)

    async def scenario() -> tuple[Job, Job, bool]:
        service = await open_service(tmp_path, settings)
        first = await submit(service, tmp_path, webhook_url=f"{receiver.url}/hang")
        second = await submit(service, tmp_path)
        worker = Worker(
            service.store,
            service.storage,
            SlowTranscriber(0.9, "slow"),
            WorkerConfig(
                lease_seconds=0.3, heartbeat_seconds=0.05, poll_seconds=0.02, sweep_seconds=0.05
            ),
            events=service.events,
        )
        task = asyncio.create_task(worker.run())
        await service.wait(second.id, timeout=30)
        still_hanging = receiver.hanging.is_set()
        worker.request_stop()
        await task
        jobs = (await service.get(first.id), await service.get(second.id))
        await service.close()
        return (*jobs, still_hanging)

    first, second, still_hanging = asyncio.run(scenario())
    assert still_hanging  # the second job finished while the first's webhook hung
    assert second.state is JobState.COMPLETED
    assert second.attempts == 1  # its lease never lapsed
    assert first.state is JobState.COMPLETED
    assert first.webhook is not None
    assert first.webhook.status is DeliveryStatus.FAILED
    assert first.webhook.error is not None
    assert "Timeout" in first.webhook.error


class BadAudio:
    def transcribe(self, audio: Any, options: Any, progress: Any = None) -> Any:
        raise EmptyAudioError("The file holds no audio.")


def test_failures_cancellations_and_lost_workers_are_announced(
    tmp_path: Path, receiver: Receiver
) -> None:
    async def scenario() -> tuple[Job, Job, Job]:
        service = await open_service(tmp_path, settings_for(tmp_path))
        hook = f"{receiver.url}/ok"
        failed = await submit(service, tmp_path, webhook_url=hook)
        await run_worker(service, BadAudio())
        cancelled = await submit(service, tmp_path, webhook_url=hook)
        await service.cancel(cancelled.id)
        await service.cancel(cancelled.id)  # already cancelled: announced once
        await service.events.drain()
        lost = await submit(service, tmp_path, webhook_url=hook, max_attempts=1)
        assert await service.store.claim("a worker that dies", 0.05) is not None
        # A live worker's sweep fails the job, out of attempts.
        await work_until_finished(worker_for(service), service, lost.id, timeout=30)
        jobs = (
            await service.get(failed.id),
            await service.get(cancelled.id),
            await service.get(lost.id),
        )
        await service.close()
        return jobs

    failed, cancelled, lost = asyncio.run(scenario())
    bodies = [json.loads(request.body) for request in receiver.to("/ok")]
    assert [(body["job_id"], body["type"]) for body in bodies] == [
        (failed.id, "job.failed"),
        (cancelled.id, "job.cancelled"),
        (lost.id, "job.failed"),
    ]
    assert bodies[0]["error"]["code"] == "empty_audio"
    assert bodies[2]["error"]["code"] == "worker_lost"
    for job in (failed, cancelled, lost):
        assert job.webhook is not None
        assert job.webhook.status is DeliveryStatus.DELIVERED
    assert lost.state is JobState.ERROR


def test_webhooks_to_private_addresses_are_refused_unless_allowed(
    tmp_path: Path, receiver: Receiver
) -> None:
    async def scenario() -> None:
        service = await open_service(tmp_path, settings_for(tmp_path))
        service.fetch = FetchPolicy()  # a public server's default
        with pytest.raises(UrlRefusedError, match="private or local address"):
            await submit(service, tmp_path, webhook_url=f"{receiver.url}/ok")
        with pytest.raises(UrlRefusedError, match="not an http or https URL"):
            await service.submit_url("http://93.184.216.34/a.mp3", webhook_url="ftp://x/y")
        assert sum((await service.store.counts()).values()) == 0
        assert not (tmp_path / "audio").exists()  # checked before the upload was stored
        await service.close()

    asyncio.run(scenario())


def test_retry_after_is_honoured(tmp_path: Path, receiver: Receiver) -> None:
    done = run_one(tmp_path, f"{receiver.url}/slow-down")
    first, second = receiver.to("/slow-down")
    assert second.at - first.at >= 0.9  # our own backoff alone would be 0.02 s
    assert done.webhook is not None
    assert done.webhook.status is DeliveryStatus.DELIVERED


def test_a_host_that_does_not_resolve_is_retried(tmp_path: Path) -> None:
    async def scenario() -> Job:
        service = await open_service(tmp_path, settings_for(tmp_path))
        job = await submit(service, tmp_path)
        # The name resolved when the job was submitted; by delivery time it no longer does.
        await service.store.delete(job.id)
        job, _ = await service.store.create(
            NewJob(
                source=job.source, audio=b"RIFF....", webhook_url="http://no-such-host.invalid/hook"
            )
        )
        await run_worker(service)
        done = await service.get(job.id)
        await service.close()
        return done

    done = asyncio.run(scenario())
    assert done.webhook is not None
    assert done.webhook.status is DeliveryStatus.FAILED
    assert done.webhook.attempts == 3
    assert "cannot be resolved" in (done.webhook.error or "")


def test_a_failing_plugin_does_not_keep_events_from_the_others(
    tmp_path: Path, receiver: Receiver
) -> None:
    heard: list[str] = []

    class Broken:
        @hookimpl
        def cesar_job_event(self, event: JobEvent) -> None:
            raise RuntimeError("a bug in someone's plugin")

    class Plain:  # a plain function: nothing to run in the background
        @hookimpl
        def cesar_job_event(self, event: JobEvent) -> None:
            heard.append(event.type.value)

    async def scenario() -> Job:
        settings = settings_for(tmp_path)
        store = await SQLiteJobStore.open(tmp_path / "jobs.db")
        manager = make_manager({"CESAR_PLUGINS": ""})
        manager.register(Plain(), name="plain")
        manager.register(Broken(), name="broken")  # registered last: called first
        events = JobEvents(store, settings, manager)
        fetch = FetchPolicy.from_settings(settings)
        service = JobService(store, LocalStorage(tmp_path / "audio"), fetch, events)
        job = await submit(service, tmp_path, webhook_url=f"{receiver.url}/ok")
        await run_worker(service)
        done = await service.get(job.id)
        await service.close()
        return done

    done = asyncio.run(scenario())
    assert heard == ["job.completed"]
    assert done.webhook is not None
    assert done.webhook.status is DeliveryStatus.DELIVERED


def test_drain_gives_up_on_a_hung_delivery(tmp_path: Path, receiver: Receiver) -> None:
    async def scenario() -> tuple[Job, float]:
        settings = settings_for(tmp_path, webhook_timeout=30.0)
        service = await open_service(tmp_path, settings)
        job = await submit(service, tmp_path, webhook_url=f"{receiver.url}/hang")
        worker = Worker(
            service.store,
            service.storage,
            NoopTranscriber(),
            WorkerConfig(poll_seconds=0.02, drain_seconds=0.2),
            events=service.events,
        )
        task = asyncio.create_task(worker.run())
        await service.wait(job.id, timeout=30)
        await asyncio.to_thread(receiver.hanging.wait, 10)
        worker.request_stop()
        started = time.monotonic()
        await task  # without the drain limit this would wait for the 30 s timeout
        elapsed = time.monotonic() - started
        done = await service.get(job.id)
        await service.close()
        return done, elapsed

    done, elapsed = asyncio.run(scenario())
    assert elapsed < 3
    assert done.state is JobState.COMPLETED
    assert done.webhook is None  # abandoned: no outcome recorded


@pytest.mark.parametrize("secret", ["whsec_abc", "whsec_!!!!", "whsec_"])
def test_unusable_secrets_are_refused_at_start(tmp_path: Path, secret: str) -> None:
    with pytest.raises(InvalidOptionsError, match="webhook_secret is not usable"):
        Settings(data_dir=tmp_path, webhook_secret=secret)


def test_a_signature_with_non_ascii_characters_is_refused_cleanly() -> None:
    body = b"{}"
    for signature in ("v1,é", "v1,\u200b", "é"):
        headers = {"webhook-id": "msg_1", "webhook-timestamp": "1614265330"}
        with pytest.raises(WebhookVerificationError, match="does not match"):
            verify(
                "plain secret", {**headers, "webhook-signature": signature}, body, now=1614265330
            )


def test_a_receiver_name_rebound_to_loopback_is_never_posted_to(
    dns: FakeDNS,  # noqa: F811
    receiver: Receiver,
) -> None:
    """The name answers a public address to the check and loopback afterwards: the
    request goes to the address that was checked, or nowhere."""
    port = receiver.url.rsplit(":", 1)[1]
    dns.answers["hooks.test"] = [["2001:4860:4860::8888"], ["127.0.0.1"]]
    event = JobEvent(
        id="j1.completed",
        type=JobEventType.COMPLETED,
        job_id="j1",
        state=JobState.COMPLETED,
        occurred_at=datetime.now(UTC),
        webhook_url=f"http://hooks.test:{port}/ok",
    )
    policy = WebhookPolicy(max_attempts=1, timeout_seconds=1.0)
    delivery = asyncio.run(deliver(event, policy))
    assert delivery.status is DeliveryStatus.FAILED
    assert receiver.requests == []
    assert dns.asked == ["hooks.test"]


def test_a_long_webhook_url_allowed_by_the_settings_is_delivered(
    tmp_path: Path, receiver: Receiver
) -> None:
    """``max_url_length`` counts at delivery as at submission: a URL accepted for the job
    is not refused when the request is made."""
    settings = settings_for(tmp_path, max_url_length=10_000)
    hook = f"{receiver.url}/ok?pad={'a' * 9000}"

    async def scenario() -> Job:
        service = await open_service(tmp_path, settings)
        job = await submit(service, tmp_path, webhook_url=hook)
        await run_worker(service)
        done = await service.get(job.id)
        await service.close()
        return done

    done = asyncio.run(scenario())
    assert done.webhook is not None
    assert done.webhook.status is DeliveryStatus.DELIVERED, done.webhook.error
    assert len(receiver.requests) == 1
