"""The HTTP API against real ``cesar serve`` processes on loopback, with the real model, a
real SQLite store, real clients (httpx) and independent SRT/WebVTT parsers."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import srt
import webvtt

from cesar_core.jobs import Job, JobState

from .conftest import DATA, REFERENCES, wer
from .http_helpers import serving, wait_for
from .queue_helpers import open_service, run
from .speech_helpers import long_audio
from .test_urls import server  # noqa: F401  (the fixture serving test audio)

KEY = "a-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server with its embedded worker, allowed to fetch from loopback (the test server)."""
    root = tmp_path_factory.mktemp("served")
    with (
        serving(root, CESAR_ALLOW_PRIVATE_URLS="1") as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server with no worker (jobs stay queued), an API key and a 300 kB upload limit."""
    root = tmp_path_factory.mktemp("idle")
    with (
        serving(root, "--no-worker", CESAR_API_KEY=KEY, CESAR_MAX_UPLOAD_BYTES="300000") as url,
        httpx.Client(base_url=url, timeout=60, headers=AUTH) as client,
    ):
        client.root = root  # type: ignore[attr-defined]
        yield client


def upload(client: httpx.Client, name: str = "speech_en.wav", **fields: str) -> httpx.Response:
    return upload_path(client, DATA / name, **fields)


def upload_path(client: httpx.Client, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as audio:
        return client.post("/transcribe", files={"file": (path.name, audio)}, data=fields)


def test_upload_to_transcript(api: httpx.Client) -> None:
    submitted = upload(api, word_timestamps="true", metadata='{"ticket": 7}')
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert submitted.headers["location"] == f"/jobs/{job['id']}"
    assert int(submitted.headers["retry-after"]) > 0
    assert job["status"] in ("queued", "processing")
    assert job["metadata"] == {"ticket": 7}
    assert job["source"] == {
        "kind": "upload",
        "filename": "speech_en.wav",
        "size": 269042,
        "url": None,
    }

    done = wait_for(api, job["id"])
    assert done["status"] == "completed", done
    assert done["progress"] == 100
    assert wer(REFERENCES["speech_en"], str(done["text"])) < 0.5
    assert done["language"] == "en"
    assert done["words"]
    assert done["segments"]
    assert done["started_at"]
    assert done["completed_at"]

    srt_text = api.get(f"/jobs/{job['id']}/transcript", params={"format": "srt"})
    assert srt_text.headers["content-type"].startswith("application/x-subrip")
    cues = list(srt.parse(srt_text.text))
    assert wer(REFERENCES["speech_en"], " ".join(cue.content for cue in cues)) < 0.5
    vtt = api.get(f"/jobs/{job['id']}/transcript", params={"format": "vtt"})
    assert vtt.headers["content-type"].startswith("text/vtt")
    captions = webvtt.from_buffer(io.StringIO(vtt.text))
    assert wer(REFERENCES["speech_en"], " ".join(c.text for c in captions)) < 0.5
    as_json = api.get(f"/jobs/{job['id']}/transcript", params={"format": "json"}).json()
    assert as_json["text"] == done["text"]
    txt = api.get(f"/jobs/{job['id']}/transcript")
    assert txt.headers["content-type"].startswith("text/plain")
    tsv = api.get(f"/jobs/{job['id']}/transcript", params={"format": "tsv"})
    assert tsv.text.splitlines()[0].split("\t")[:2] == ["start", "end"]
    bad = api.get(f"/jobs/{job['id']}/transcript", params={"format": "docx"})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "format"

    listed = api.get("/jobs", params={"status": "completed", "limit": 100}).json()
    mine = [j for j in listed["jobs"] if j["id"] == job["id"]]
    assert mine
    assert mine[0]["text"] is None


def test_url_job(api: httpx.Client, server: str) -> None:  # noqa: F811
    submitted = api.post("/transcribe", json={"url": f"{server}/speech_en.ogg", "language": "en"})
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["source"]["url"] == f"{server}/speech_en.ogg"
    done = wait_for(api, submitted.json()["id"])
    assert done["status"] == "completed", done
    assert wer(REFERENCES["speech_en"], str(done["text"])) < 0.5


def test_twenty_concurrent_submissions_all_complete(api: httpx.Client) -> None:
    audio = (DATA / "speech_en.opus").read_bytes()

    async def submit_all() -> list[str]:
        async with httpx.AsyncClient(base_url=str(api.base_url), timeout=60) as client:
            answers = await asyncio.gather(
                *(
                    client.post("/transcribe", files={"file": (f"{n}.opus", audio)})
                    for n in range(20)
                )
            )
        assert {answer.status_code for answer in answers} == {202}
        return [answer.json()["id"] for answer in answers]

    ids = asyncio.run(submit_all())
    assert len(set(ids)) == 20
    for job_id in ids:
        done = wait_for(api, job_id, timeout=300)
        assert done["status"] == "completed", done
        assert done["attempts"] == 1


def test_idempotency_key_returns_the_first_job(api: httpx.Client) -> None:
    first = upload(api, idempotency_key="talk-42")
    again = upload(api, idempotency_key="talk-42")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_bad_input_gets_a_clear_4xx(api: httpx.Client, tmp_path: Path, server: str) -> None:  # noqa: F811
    def error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
        assert response.status_code == status, response.text
        body = response.json()["error"]
        assert body["code"] == code
        assert body["message"]
        return body  # type: ignore[no-any-return]

    notes = tmp_path / "notes.mp3"
    notes.write_text("not audio\n" * 50)
    with notes.open("rb") as handle:
        error(api.post("/transcribe", files={"file": handle}), 422, "invalid_audio")
    with (DATA / "speech_en.wav").open("rb") as handle:
        wrong = error(api.post("/transcribe", files={"audio": handle}), 400, "invalid_form")
    assert "'audio'" in wrong["message"]
    assert "'file'" in wrong["message"]
    unknown = error(upload(api, langage="en"), 422, "invalid_request")
    assert unknown["field"] == "langage"
    error(upload(api, beam_size="zero"), 422, "invalid_request")
    error(upload(api, model="huge"), 422, "model_not_found")
    error(upload(api, language="xx"), 422, "unsupported_language")
    error(api.post("/transcribe", json={"url": "ftp://x/a.mp3"}), 400, "url_refused")
    error(
        api.post("/transcribe", json={"url": "http://no-such-host.invalid/a"}),
        400,
        "url_unresolvable",
    )
    error(api.post("/transcribe", json={"nothing": 1}), 422, "invalid_request")
    error(
        api.post("/transcribe", content=b"{", headers={"content-type": "application/json"}),
        400,
        "invalid_form",
    )
    error(api.post("/transcribe", content=b"raw bytes"), 400, "invalid_form")
    error(api.get("/jobs/no-such-job"), 404, "job_not_found")
    error(api.get("/jobs/no-such-job/transcript"), 404, "job_not_found")
    error(api.get("/jobs", params={"cursor": "garbage"}), 422, "invalid_options")
    error(api.get("/no-such-route"), 404, "not_found")


def test_an_unreachable_url_fails_its_job(api: httpx.Client) -> None:
    from .http_helpers import free_port

    closed = free_port()
    submitted = api.post("/transcribe", json={"url": f"http://127.0.0.1:{closed}/a.wav"})
    assert submitted.status_code == 202
    # A download that cannot connect is retried with backoff; the job is queued again.
    job = wait_for_attempt(api, submitted.json()["id"])
    assert job["error"]["code"] == "download_failed"  # type: ignore[index]
    assert api.delete(f"/jobs/{job['id']}").status_code in (200, 204)


def wait_for_attempt(client: httpx.Client, job_id: str) -> dict[str, object]:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["error"]:
            return job  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("the download was never attempted")


def test_loopback_urls_are_refused_by_default(idle: httpx.Client, server: str) -> None:  # noqa: F811
    refused = idle.post("/transcribe", json={"url": f"{server}/speech_en.ogg"})
    assert refused.status_code == 400
    assert "private or local address" in refused.json()["error"]["message"]


def test_the_api_key_is_required_when_set(idle: httpx.Client) -> None:
    base = str(idle.base_url)
    assert httpx.get(f"{base}/jobs").status_code == 401
    wrong = httpx.get(f"{base}/jobs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{base}/health").status_code == 200  # probes stay open
    assert idle.get("/jobs").status_code == 200


def test_oversize_upload_is_refused_while_streaming(idle: httpx.Client) -> None:
    big = io.BytesIO(b"\0" * 5_000_000)
    refused = idle.post("/transcribe", files={"file": ("big.wav", big)})
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "upload_too_large"
    audio_dir = idle.root / "audio"  # type: ignore[attr-defined]
    assert not audio_dir.exists() or not any(audio_dir.rglob("*"))  # nothing kept


def test_cancel_then_delete(idle: httpx.Client) -> None:
    job = upload(idle, "speech_en.opus").json()
    assert idle.get(f"/jobs/{job['id']}/transcript").status_code == 409
    cancelled = idle.delete(f"/jobs/{job['id']}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    conflict = idle.get(f"/jobs/{job['id']}/transcript")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "job_not_completed"
    assert idle.delete(f"/jobs/{job['id']}").status_code == 204  # now deleted
    assert idle.get(f"/jobs/{job['id']}").status_code == 404
    assert idle.delete(f"/jobs/{job['id']}").status_code == 204  # and it stays gone


def test_list_pages_newest_first(idle: httpx.Client) -> None:
    ids = [upload(idle, "speech_en.opus").json()["id"] for _ in range(3)]
    first = idle.get("/jobs", params={"limit": 2, "status": "queued"}).json()
    assert [job["id"] for job in first["jobs"]] == ids[::-1][:2]
    rest = idle.get(
        "/jobs", params={"limit": 2, "status": "queued", "cursor": first["next_cursor"]}
    )
    assert rest.json()["jobs"][0]["id"] == ids[0]


def test_queued_jobs_complete_after_a_restart(tmp_path: Path) -> None:
    with serving(tmp_path, "--no-worker") as url, httpx.Client(base_url=url) as client:
        ids = [upload(client, "speech_en.opus").json()["id"] for _ in range(3)]
    with serving(tmp_path) as url, httpx.Client(base_url=url, timeout=60) as client:
        for job_id in ids:
            assert wait_for(client, job_id)["status"] == "completed"


def test_no_worker_server_and_a_cesar_worker_share_the_store(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    with serving(tmp_path, "--no-worker") as url, httpx.Client(base_url=url, timeout=60) as client:
        job_id = upload(client, "speech_en.opus").json()["id"]
        worker = subprocess.Popen(
            [sys.executable, "-m", "cesar_cli", "worker", "--lease", "5"],
            env={**os.environ, "CESAR_DATA_DIR": str(tmp_path)},
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            done = wait_for(client, job_id)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.communicate(timeout=60)
    assert done["status"] == "completed"
    assert wer(REFERENCES["speech_en"], str(done["text"])) < 0.5


def test_health_ready_metrics_and_openapi(api: httpx.Client) -> None:
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready").json()
    assert ready["status"] == "ready"
    assert ready["worker"] is True
    metrics = api.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = metrics.text.splitlines()
    assert any(line.startswith('cesar_jobs{state="completed"}') for line in lines)
    assert "cesar_job_duration_seconds_count" in metrics.text
    schema = api.get("/openapi.json").json()
    assert {"/transcribe", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/transcript"} <= set(
        schema["paths"]
    )
    submit = schema["paths"]["/transcribe"]["post"]
    assert set(submit["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert "ErrorBody" in json.dumps(submit["responses"])


def test_every_core_option_is_a_field_of_the_api() -> None:
    import attrs

    from cesar_core import TranscribeOptions
    from cesar_http.schemas import TranscribeFields

    options = {field.name for field in attrs.fields(TranscribeOptions)}
    assert options == set(TranscribeFields().options())
    page = (Path(__file__).parent.parent / "docs" / "http.md").read_text()
    assert [name for name in sorted(options) if f"`{name}`" not in page] == []


def test_health_answers_at_once_while_a_long_job_runs(api: httpx.Client, tmp_path: Path) -> None:
    job_id = upload_path(api, long_audio(2, tmp_path), cpu_threads="1").json()["id"]
    took: list[float] = []
    deadline = time.monotonic() + 120
    while (status := api.get(f"/jobs/{job_id}").json()["status"]) in ("queued", "processing"):
        assert time.monotonic() < deadline, f"job {job_id} still {status}"
        if status == "processing":
            started = time.perf_counter()
            assert api.get("/health").json() == {"status": "ok"}
            took.append(time.perf_counter() - started)
        time.sleep(0.05)
    assert status == "completed"
    assert len(took) >= 5, took  # sampled while the job held a CPU for seconds
    assert max(took) < 1.0, took


#: Long enough (about 5 s on one thread) to outlast the 1 s grace the server gets below.
HANDBACK_MINUTES = 3


def test_sigterm_hands_a_running_job_back_and_a_restart_completes_it(tmp_path: Path) -> None:
    root = tmp_path / "data"
    audio = long_audio(HANDBACK_MINUTES, tmp_path)
    with (
        serving(root, "--grace", "1") as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        job_id = upload_path(client, audio, cpu_threads="1").json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/jobs/{job_id}").json()["status"] != "processing":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
    # Leaving the block sent SIGTERM and checked that the server exited with status 0.

    async def stored() -> tuple[Job, bool]:
        service = await open_service(root)
        job = await service.get(job_id)
        kept = await service.storage.exists(job.source.location)
        await service.close()
        return job, kept

    job, kept = run(stored())
    assert job.state is JobState.QUEUED, job
    assert job.attempts == 0  # a hand-back is not an attempt
    assert job.lease is None
    assert kept  # its audio stays for the next worker

    with serving(root) as url, httpx.Client(base_url=url, timeout=60) as client:
        done = wait_for(client, job_id, timeout=300)
    assert done["status"] == "completed", done
    assert done["attempts"] == 1
    assert done["duration"] == pytest.approx(HANDBACK_MINUTES * 60, abs=1)


def test_ready_is_503_without_the_default_model(tmp_path: Path) -> None:
    with (
        serving(tmp_path, "--no-worker", "--model", "no-such-model") as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        assert client.get("/health").status_code == 200  # alive, but not ready
        ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "model_not_found"
