"""Live jobs: a running job's segments as Server-Sent Events, resumable, on a real server.

A real uvicorn on loopback with its embedded worker, the real tiny.en model on 34 s of
speech (tests/data/long_en.opus), and a real SSE client (httpx-sse).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from httpx_sse import ServerSentEvent, connect_sse

from cesar_core.service import JobService
from cesar_core.storage.local import LocalStorage
from cesar_core.stores.memory import MemoryJobStore
from cesar_core.testing import TRANSCRIPT, new_job
from cesar_core.transcript import Segment, Transcript

from .conftest import REFERENCES, wer
from .http_helpers import serving
from .inproc_server import served_app
from .speech_helpers import long_audio

ENDINGS = {"completed", "error", "cancelled"}


def submit(client: httpx.Client, audio: Path) -> str:
    with audio.open("rb") as file:
        answer = client.post("/transcribe", files={"file": (audio.name, file)})
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def read_events(
    client: httpx.Client,
    job_id: str,
    *,
    last_event_id: str | None = None,
    segments: int | None = None,
    on_segment: Any = None,
) -> list[ServerSentEvent]:
    """The job's events until the stream ends (or ``segments`` segments came)."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    events: list[ServerSentEvent] = []
    with connect_sse(client, "GET", f"/jobs/{job_id}/events", headers=headers) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for event in source.iter_sse():
            events.append(event)
            if event.event == "segment":
                if on_segment is not None:
                    on_segment(event)
                if segments is not None and sum(e.event == "segment" for e in events) >= segments:
                    break
    return events


def texts(events: list[ServerSentEvent]) -> list[str]:
    return [json.loads(event.data)["text"] for event in events if event.event == "segment"]


def test_a_running_job_streams_its_segments_resumably(tmp_path: Path, data: Path) -> None:
    """Order, live segments in GET /jobs/{id}, resumption with Last-Event-ID, and the
    segments adding up to the transcript."""
    running_views: list[dict[str, Any]] = []
    with (
        served_app(tmp_path, workers=1) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        job_id = submit(client, long_audio(1.5, tmp_path))  # three 30-second windows

        def look(event: ServerSentEvent) -> None:
            running_views.append(client.get(f"/jobs/{job_id}").json())

        first = read_events(client, job_id, segments=2, on_segment=look)
        assert first[0].event == "status"
        assert [e.id for e in first if e.event == "segment"] == ["1", "2"]
        # The job ran on while nobody followed it; the second connection resumes.
        rest = read_events(client, job_id, last_event_id="2")
        job = client.get(f"/jobs/{job_id}").json()

    assert job["status"] == "completed"
    # Each segment once, in order: ids go on from where the first connection stopped.
    assert [e.id for e in rest if e.event == "segment"] == [
        str(n) for n in range(3, len(job["segments"]) + 1)
    ]
    assert " ".join(texts(first) + texts(rest)) == job["text"]
    kinds = [e.event for e in rest]
    assert kinds[-1] == "completed"
    assert json.loads(rest[-1].data)["text"] == job["text"]
    assert not ENDINGS & set(kinds[:-1])
    # While it ran, the job itself showed the segments so far.
    running = [view for view in running_views if view["status"] == "processing"]
    assert running, "the job finished before it could be looked at while running"
    assert all(view["segments"] for view in running)
    assert running[0]["segments"][0]["text"] == texts(first)[0]


def test_live_segments_come_while_the_job_runs(tmp_path: Path, data: Path) -> None:
    """The first window's segments arrive before the job completes, and progress rises."""
    arrivals: list[tuple[float, ServerSentEvent]] = []
    with (
        served_app(tmp_path, workers=1) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        job_id = submit(client, long_audio(1.5, tmp_path))  # three 30-second windows
        with connect_sse(client, "GET", f"/jobs/{job_id}/events") as source:
            for event in source.iter_sse():
                arrivals.append((time.time(), event))
                if event.event in ENDINGS:
                    break
        job = client.get(f"/jobs/{job_id}").json()
    kinds = [event.event for _, event in arrivals]
    assert kinds[0] == "status"
    assert kinds[-1] == "completed"
    first_segment = next(at for at, event in arrivals if event.event == "segment")
    completed_at = datetime.fromisoformat(job["completed_at"]).timestamp()
    assert first_segment < completed_at - 0.2, (first_segment, completed_at)
    progress = [json.loads(e.data)["progress"] for _, e in arrivals if e.event == "progress"]
    assert progress == sorted(progress)
    assert progress[-1] == 100
    assert len(progress) >= 2


def test_events_of_an_unknown_job_and_a_bad_last_event_id(tmp_path: Path, data: Path) -> None:
    with served_app(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as client:
        missing = client.get(f"/jobs/{'0' * 32}/events")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "job_not_found"
        job_id = submit(client, data / "speech_en.opus")
        bad = client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": "abc"})
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_last_event_id"


def test_cancelling_a_followed_job_ends_its_stream(tmp_path: Path, data: Path) -> None:
    """No worker: the job waits queued; cancelling it ends the stream with ``cancelled``."""
    with served_app(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as client:
        job_id = submit(client, data / "speech_en.opus")
        timer = threading.Timer(0.5, lambda: httpx.delete(f"{url}/jobs/{job_id}"))
        timer.start()
        events = read_events(client, job_id)
        timer.join()
    assert [e.event for e in events] == ["status", "progress", "cancelled"]
    assert json.loads(events[-1].data) == {"id": job_id, "status": "cancelled"}
    assert json.loads(events[0].data)["status"] == "queued"


def test_all_jobs_stream_their_state_changes(tmp_path: Path, data: Path) -> None:
    with (
        served_app(tmp_path, workers=1) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        seen: list[dict[str, Any]] = []
        with connect_sse(client, "GET", "/jobs/events") as source:
            job_id = submit(client, data / "speech_en.opus")
            for event in source.iter_sse():
                assert event.event == "job"
                seen.append(json.loads(event.data))
                if seen[-1]["id"] == job_id and seen[-1]["status"] in ENDINGS:
                    break
    statuses = [item["status"] for item in seen if item["id"] == job_id]
    assert statuses[0] in ("queued", "processing")
    assert statuses[-1] == "completed"
    assert "processing" in statuses


@pytest.mark.parametrize("value", ["", "0"])
def test_a_last_event_id_of_nothing_seen_starts_from_the_first_segment(
    tmp_path: Path, data: Path, value: str
) -> None:
    with (
        served_app(tmp_path, workers=1) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        job_id = submit(client, data / "speech_en.opus")
        events = read_events(client, job_id, last_event_id=value)
        job = client.get(f"/jobs/{job_id}").json()
    assert " ".join(texts(events)) == job["text"]


def test_on_postgres_an_api_node_streams_what_a_worker_elsewhere_transcribes(
    empty_postgres: str, tmp_path: Path, data: Path
) -> None:
    """API node and worker as separate processes, joined only by PostgreSQL: the segments
    reach the API node's stream while the job runs (NOTIFY), resumably."""
    shared = {"CESAR_STORE": empty_postgres, "CESAR_STORAGE": empty_postgres}
    worker = subprocess.Popen(
        [sys.executable, "-m", "cesar_cli", "worker", "--name", "elsewhere"],
        env={**os.environ, **shared, "CESAR_DATA_DIR": str(tmp_path / "worker")},
        stderr=subprocess.PIPE,
        text=True,
    )
    arrivals: list[float] = []
    try:
        with (
            serving(tmp_path / "api", "--no-worker", **shared) as url,
            httpx.Client(base_url=url, timeout=120) as client,
        ):
            # Three 30-second windows: the first window's segments must come well before the
            # last window is done (with one window and a short tail, a fast machine finishes
            # the tail too soon after them to tell live from at-the-end).
            job_id = submit(client, long_audio(1.5, tmp_path))
            first = read_events(
                client, job_id, segments=2, on_segment=lambda _: arrivals.append(time.time())
            )
            rest = read_events(client, job_id, last_event_id="2")
            job = client.get(f"/jobs/{job_id}").json()
    finally:
        worker.send_signal(signal.SIGTERM)
        _, log = worker.communicate(timeout=60)
    assert worker.returncode == 0, log
    assert job["status"] == "completed", job
    assert " ".join(texts(first) + texts(rest)) == job["text"]
    assert [e.id for e in rest if e.event == "segment"] == [
        str(n) for n in range(3, len(job["segments"]) + 1)
    ]
    assert rest[-1].event == "completed"
    # Live: the first segments reached the API node before the worker completed the job.
    assert arrivals[0] < datetime.fromisoformat(job["completed_at"]).timestamp() - 0.2


def test_openai_sdk_streams_a_transcription(tmp_path: Path, data: Path) -> None:
    """stream=true: the official SDK's stream iterator yields the deltas, then done."""
    with served_app(tmp_path, workers=1) as url:
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        with (data / "long_en.opus").open("rb") as audio:
            stream = sdk.audio.transcriptions.create(
                model="whisper-1", file=audio, stream=True, response_format="json"
            )
            events = list(stream)
        (listed,) = httpx.get(f"{url}/jobs").json()["jobs"]
        job = httpx.get(f"{url}/jobs/{listed['id']}").json()
    kinds = [event.type for event in events]
    assert kinds[-1] == "transcript.text.done"
    assert set(kinds[:-1]) == {"transcript.text.delta"}
    assert len(kinds) >= 4
    text = "".join(event.delta for event in events[:-1])  # type: ignore[union-attr]
    assert text == events[-1].text  # type: ignore[union-attr]
    assert text == job["text"]
    assert wer(REFERENCES["long_en"], text) < 0.3


def test_openai_stream_of_a_job_that_ends_unfinished_raises_in_the_sdk(
    tmp_path: Path, data: Path
) -> None:
    """No worker: the job waits; cancelled meanwhile, its stream ends with OpenAI's error
    object, which the SDK raises. Audio that cannot be decoded is refused before any stream."""
    with served_app(tmp_path) as url:
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.UnprocessableEntityError):
            sdk.audio.transcriptions.create(
                model="whisper-1", file=("noise.wav", b"RIFF" + bytes(4000)), stream=True
            )

        def cancel() -> None:
            (job,) = httpx.get(f"{url}/jobs").json()["jobs"]
            httpx.delete(f"{url}/jobs/{job['id']}")

        with (data / "speech_en.opus").open("rb") as audio:
            stream = sdk.audio.transcriptions.create(model="whisper-1", file=audio, stream=True)
            timer = threading.Timer(0.5, cancel)
            timer.start()
            with pytest.raises(openai.APIError) as failed:
                list(stream)
            timer.join()
    assert failed.value.body["code"] == "job_cancelled"  # type: ignore[index,call-overload]


def test_a_stream_client_that_goes_away_cancels_its_job(tmp_path: Path, data: Path) -> None:
    """No worker: the job waits; the client closes the stream; nobody will read the result,
    so the job is cancelled (as the synchronous answer does for a client that goes away)."""
    with served_app(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as client:
        with (
            (data / "speech_en.opus").open("rb") as audio,
            client.stream(
                "POST",
                "/v1/audio/transcriptions",
                files={"file": audio},
                data={"model": "whisper-1", "stream": "true"},
            ) as answer,
        ):
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            (job,) = client.get("/jobs").json()["jobs"]
            assert job["status"] == "queued"
        deadline = time.monotonic() + 10
        while client.get(f"/jobs/{job['id']}").json()["status"] != "cancelled":
            assert time.monotonic() < deadline, "the job was not cancelled"
            time.sleep(0.1)


class CountingStore(MemoryJobStore):
    """The memory store, counting reads of live segments (only a job's watch makes them)."""

    reads = 0

    async def live_segments(self, job_id: str, after: int = 0) -> list[Segment]:
        self.reads += 1
        return await super().live_segments(job_id, after)


@pytest.mark.parametrize("followers", [1, 40])
def test_followers_of_a_job_share_one_reader(tmp_path: Path, followers: int) -> None:
    """However many follow a job in one process, the store is read as for one; each
    follower still gets every event. (40 followers reading on their own would read at
    least 40 times per change.)"""

    async def main() -> tuple[int, list[list[str]]]:
        store = CountingStore()
        service = JobService(store, LocalStorage(tmp_path))
        job, _ = await store.create(new_job())
        streams = [await service.follow(job.id) for _ in range(followers)]

        async def read(stream: Any) -> list[str]:
            return [
                f"{e.event}:{e.data.get('text', e.data.get('status', ''))}" async for e in stream
            ]

        readers = asyncio.gather(*(read(stream) for stream in streams))
        await asyncio.sleep(0.05)  # every follower has seen the job queued
        claimed = await store.claim("w", 30)
        assert claimed is not None
        token = claimed.lease.token  # type: ignore[union-attr]
        for n in range(3):
            await asyncio.sleep(0.05)
            await store.publish(job.id, token, [Segment(id=n, start=n, end=n + 1, text=f"s{n}")])
        await asyncio.sleep(0.05)
        result = Transcript(
            text="s0 s1 s2",
            segments=tuple(Segment(id=n, start=n, end=n + 1, text=f"s{n}") for n in range(3)),
            language="en",
            language_probability=1.0,
            duration=3.0,
            model="tiny.en",
        )
        await store.complete(job.id, token, result)
        seen = await asyncio.wait_for(readers, 10)
        return store.reads, seen

    reads, seen = asyncio.run(main())
    expected = ["status:queued", "progress:", "status:processing", "segment:s0"]
    for events in seen:
        assert events[: len(expected)] == expected
        assert [e for e in events if e.startswith("segment:")] == [
            "segment:s0",
            "segment:s1",
            "segment:s2",
        ]
        assert events[-1] == "completed:s0 s1 s2"
    assert reads <= 8, reads


class ListCountingStore(MemoryJobStore):
    """The memory store, counting its listings (only the list's watch makes them)."""

    listings = 0

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        self.listings += 1
        return await super().list(*args, **kwargs)


@pytest.mark.parametrize("followers", [1, 40])
def test_followers_of_the_job_list_share_one_reader(tmp_path: Path, followers: int) -> None:
    """Every open web page follows ``GET /jobs/events``; however many do in one process,
    the store is listed as for one, and each still sees every change."""

    async def main() -> tuple[int, list[list[str]]]:
        store = ListCountingStore()
        service = JobService(store, LocalStorage(tmp_path))
        streams = [service.follow_all(limit=10) for _ in range(followers)]
        expected = 4  # two jobs queued, then one processing, then completed

        async def read(stream: Any) -> list[str]:
            seen: list[str] = []
            async for event in stream:
                seen.append(f"{event.data['id'][:4]}:{event.data['status']}")
                if len(seen) == expected:
                    break
            return seen

        readers = asyncio.gather(*(read(stream) for stream in streams))
        await store.create(new_job(id="aaaa-1"))
        await store.create(new_job(id="bbbb-2"))
        await asyncio.sleep(0.4)
        claimed = await store.claim("w", 30)
        assert claimed is not None
        await asyncio.sleep(0.4)
        await store.complete(claimed.id, claimed.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
        seen = await asyncio.wait_for(readers, 10)
        return store.listings, seen

    listings, seen = asyncio.run(main())
    for events in seen:
        assert sorted(events[:2]) == ["aaaa:queued", "bbbb:queued"]
        assert events[2:] == ["aaaa:processing", "aaaa:completed"]
    assert listings <= 10, listings


def test_bad_parameters_of_the_stream_of_all_jobs(tmp_path: Path) -> None:
    with served_app(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as client:
        for query, status, code in (
            ({"limit": "0"}, 422, "invalid_request"),
            ({"limit": "x"}, 422, "invalid_request"),
            ({"status": "queued"}, 400, "unknown_parameter"),
        ):
            refused = client.get("/jobs/events", params=query)
            assert refused.status_code == status, refused.text
            assert refused.json()["error"]["code"] == code


def test_an_openai_stream_no_worker_finishes_in_time_ends_in_timeout(
    tmp_path: Path, data: Path
) -> None:
    with served_app(tmp_path, sync_timeout=1.0) as url:
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        with (data / "speech_en.opus").open("rb") as audio:
            stream = sdk.audio.transcriptions.create(model="whisper-1", file=audio, stream=True)
            with pytest.raises(openai.APIError) as failed:
                list(stream)
        (job,) = httpx.get(f"{url}/jobs").json()["jobs"]
    assert failed.value.body["code"] == "timeout"  # type: ignore[index,call-overload]
    assert job["status"] == "cancelled"
