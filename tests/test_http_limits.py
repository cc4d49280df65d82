"""Bad and hostile input to the HTTP API: every case is a 4xx with the JSON error body, and
what a remote caller controls (sizes, depths, models, costly options, waits) is bounded.

The server is the real app under a real uvicorn on loopback, in this process (so that its
log records can be read), with no worker: nothing here needs a transcription.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from .conftest import DATA
from .inproc_server import served_app

CAP = 300_000


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("limits")


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[httpx.Client]:
    """A server without a worker, a 300 kB upload cap and a 1 s synchronous wait."""
    with (
        served_app(root, max_upload_bytes=CAP, sync_timeout=1.0, inline_audio_bytes=0) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield http


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"code", "message", "hint", "field"}
    assert body["code"] == code, body
    assert body["message"]
    return body


def audio_left(root: Path) -> list[Path]:
    audio = root / "audio"
    return sorted(path for path in audio.rglob("*") if path.is_file()) if audio.exists() else []


def jobs(client: httpx.Client) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = client.get("/jobs", params={"limit": 1000}).json()["jobs"]
    return listed


def speech() -> bytes:
    return (DATA / "speech_en.opus").read_bytes()


# Uploads and the multipart reader


def test_an_upload_just_over_the_cap_is_413(client: httpx.Client, root: Path) -> None:
    before = audio_left(root)  # other tests' jobs keep their audio (keep_audio)
    refused = client.post("/transcribe", files={"file": ("a.wav", b"\0" * (CAP + 100))})
    error(refused, 413, "upload_too_large")
    assert audio_left(root) == before


def test_a_boundary_over_256_characters_is_400(client: httpx.Client) -> None:
    boundary = "b" * 300
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        f"abc\r\n--{boundary}--\r\n"
    ).encode()
    refused = client.post(
        "/transcribe",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "256" in error(refused, 400, "invalid_form")["message"]


def test_a_client_that_disconnects_mid_upload_leaves_one_line_and_no_file(
    client: httpx.Client, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = str(client.base_url.host), int(client.base_url.port or 80)
    boundary = "cut"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.opus"\r\n\r\n'
    ).encode()
    before = len(jobs(client))
    files_before = audio_left(root)  # other tests' jobs keep their audio (keep_audio)
    caplog.set_level(logging.INFO)
    with socket.create_connection((host, port)) as raw:
        raw.sendall(
            b"POST /transcribe HTTP/1.1\r\nHost: x\r\nContent-Length: 290000\r\n"
            + f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
            + head
            + speech()[:100_000]
        )
        time.sleep(0.5)  # the server is now streaming the file into storage
    deadline = time.monotonic() + 10
    while not any("disconnected" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.05)
    time.sleep(0.3)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    said = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(said) == 1
    assert said[0].levelno in (logging.INFO, logging.WARNING)
    assert said[0].exc_info is None
    assert audio_left(root) == files_before
    assert len(jobs(client)) == before


# JSON bodies and fields


def post_json(client: httpx.Client, body: bytes, **headers: str) -> httpx.Response:
    return client.post(
        "/transcribe", content=body, headers={"content-type": "application/json", **headers}
    )


def test_json_nested_100000_deep_is_400(client: httpx.Client) -> None:
    error(post_json(client, b"[" * 100_000 + b"]" * 100_000), 400, "invalid_form")


def test_an_integer_of_5000_digits_is_400(client: httpx.Client) -> None:
    body = b'{"url": "https://example.com/a.mp3", "beam_size": ' + b"9" * 5000 + b"}"
    error(post_json(client, body), 400, "invalid_form")


def test_a_large_json_body_is_413_before_it_is_read(client: httpx.Client) -> None:
    big = json.dumps({"url": "https://example.com/a.mp3", "metadata": {"x": "y" * 3_000_000}})
    error(post_json(client, big.encode()), 413, "request_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap holds while it streams
        yield b'{"url": "https://example.com/a.mp3", "metadata": {"x": "'
        for _ in range(50):
            yield b"y" * 65536
        yield b'"}}'

    error(post_json(client, chunks()), 413, "request_too_large")  # type: ignore[arg-type]


def deep(levels: int) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for _ in range(levels - 1):
        tree = {"a": tree}
    return tree


def test_metadata_depth_size_and_prompt_are_capped(client: httpx.Client) -> None:
    url = "https://example.com/a.mp3"
    too_deep = error(
        client.post("/transcribe", json={"url": url, "metadata": deep(50)}), 422, "invalid_request"
    )
    assert too_deep["field"] == "metadata"
    ten_thousand = "{" + '"a":{' * 9999 + "}" * 10_000
    with (DATA / "speech_en.opus").open("rb") as audio:
        form = client.post("/transcribe", files={"file": audio}, data={"metadata": ten_thousand})
    assert error(form, 422, "invalid_request")["field"] == "metadata"
    large = {"url": url, "metadata": {"notes": "x" * 20_000}}
    assert (
        error(client.post("/transcribe", json=large), 422, "invalid_options")["field"] == "metadata"
    )
    nul = {"url": url, "metadata": {"a": "b\u0000"}}
    error(client.post("/transcribe", json=nul), 422, "invalid_request")
    prompt = {"url": url, "initial_prompt": "word " * 1000}
    assert error(client.post("/transcribe", json=prompt), 422, "invalid_request")["field"] == (
        "initial_prompt"
    )


@pytest.mark.parametrize(
    ("member", "raw"),
    [
        ("metadata", '{"a": "\\ud800"}'),  # a lone surrogate: not UTF-8, no store keeps it
        ("metadata", '{"\\udfff": 1}'),
        ("metadata", '{"a": NaN}'),  # not JSON: PostgreSQL's jsonb refuses it
        ("metadata", '{"a": 1e999}'),
        ("initial_prompt", '"a\\u0000b"'),  # PostgreSQL text cannot hold a NUL
        ("initial_prompt", '"\\ud800"'),
        ("idempotency_key", '"\\ud800"'),
        ("webhook_url", '"https://example.com/\\ud800"'),
    ],
)
def test_text_no_store_can_keep_is_422(client: httpx.Client, member: str, raw: str) -> None:
    body = f'{{"url": "https://example.com/a.mp3", "{member}": {raw}}}'.encode()
    assert error(post_json(client, body), 422, "invalid_request")["field"] == member


@pytest.mark.parametrize("model", ["tiny\u0000en", "m" * 300, "tiny.en\n"])
def test_model_names_with_nul_or_300_characters_are_422(client: httpx.Client, model: str) -> None:
    body = {"url": "https://example.com/a.mp3", "model": model}
    assert error(client.post("/transcribe", json=body), 422, "invalid_request")["field"] == "model"


def test_a_cursor_past_2_to_the_63_is_422(client: httpx.Client) -> None:
    for position in (2**63, 2**70, -1):
        cursor = base64.urlsafe_b64encode(f"j{position}".encode()).decode().rstrip("=")
        refused = client.get("/jobs", params={"cursor": cursor})
        assert error(refused, 422, "invalid_options")["field"] == "cursor"
    error(client.get("/jobs", params={"cursor": "x" * 5000}), 422, "invalid_request")


# Models and costly options


def test_model_paths_are_refused_alike_without_looking(client: httpx.Client) -> None:
    messages = []
    for path in ("/root/.ssh", "/etc", "/no/such/dir", "../models"):
        body = {"url": "https://example.com/a.mp3", "model": path}
        refused = error(client.post("/transcribe", json=body), 422, "model_not_found")
        assert refused["field"] == "model"
        assert "--" not in refused["hint"]  # no CLI flags over HTTP
        assert "model field" in refused["hint"]
        messages.append(refused["message"].replace(repr(path), "<model>"))
    assert len(set(messages)) == 1, messages
    assert "does not exist" not in messages[0]
    assert "directory" not in messages[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu_threads", "100000"),
        ("beam_size", "11"),
        ("batch_size", "65"),
        ("compute_type", "float128"),
        ("device", "tpu"),
    ],
)
def test_costly_options_are_bounded(client: httpx.Client, field: str, value: str) -> None:
    with (DATA / "speech_en.opus").open("rb") as audio:
        refused = client.post("/transcribe", files={"file": audio}, data={field: value})
    assert refused.status_code == 422, refused.text
    body = refused.json()["error"]
    assert field in (body["field"] or "") + body["message"], body


def test_options_within_the_bounds_are_taken(client: httpx.Client) -> None:
    with (DATA / "speech_en.opus").open("rb") as audio:
        taken = client.post(
            "/transcribe",
            files={"file": audio},
            data={"beam_size": "10", "batch_size": "64", "cpu_threads": "1"},
        )
    assert taken.status_code == 202, taken.text
    assert client.delete(f"/jobs/{taken.json()['id']}").status_code == 200


def test_empty_form_fields_mean_the_defaults(client: httpx.Client) -> None:
    with (DATA / "speech_en.opus").open("rb") as audio:
        taken = client.post(
            "/transcribe", files={"file": audio}, data={"model": "", "language": ""}
        )
    assert taken.status_code == 202, taken.text
    assert taken.json()["options"]["model"] == "tiny.en"
    assert taken.json()["options"]["language"] is None
    assert client.delete(f"/jobs/{taken.json()['id']}").status_code == 200


def test_a_cancelled_jobs_transcript_does_not_say_to_poll(client: httpx.Client) -> None:
    with (DATA / "speech_en.opus").open("rb") as audio:
        job = client.post("/transcribe", files={"file": audio}).json()
    queued = error(client.get(f"/jobs/{job['id']}/transcript"), 409, "job_not_completed")
    assert "Poll" in queued["hint"]
    client.delete(f"/jobs/{job['id']}")
    cancelled = client.get(f"/jobs/{job['id']}/transcript")
    body = error(cancelled, 409, "job_not_completed")
    assert "poll" not in body["hint"].lower()
    assert "never" in body["message"]
    assert "retry-after" not in cancelled.headers


# The OpenAI-compatible endpoints


@pytest.fixture(scope="module")
def sdk(client: httpx.Client) -> openai.OpenAI:
    base = str(client.base_url).rstrip("/")
    # The SDK's own retries (it retries 5xx), and a timeout for a server that never answers.
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", timeout=20)


def test_french_on_the_english_only_model_is_refused_before_any_job(
    client: httpx.Client, sdk: openai.OpenAI
) -> None:
    before = len(jobs(client))
    with (
        (DATA / "speech_en.wav").open("rb") as audio,
        pytest.raises(openai.UnprocessableEntityError) as refused,
    ):
        sdk.audio.transcriptions.create(model="whisper-1", file=audio, language="fr")
    assert "English only" in str(refused.value)
    hint = refused.value.body["hint"]  # type: ignore[index,call-overload]  # the SDK unwraps "error"
    assert "--" not in hint
    assert "model" in hint
    assert len(jobs(client)) == before  # no job, and no retry made one


def test_stream_true_is_refused_for_a_format_that_comes_whole(client: httpx.Client) -> None:
    before = len(jobs(client))
    with (DATA / "speech_en.opus").open("rb") as audio:
        refused = client.post(
            "/v1/audio/transcriptions",
            files={"file": audio},
            data={"model": "whisper-1", "stream": "true", "response_format": "srt"},
        )
    assert "stream" in error(refused, 400, "invalid_form")["message"]
    assert len(jobs(client)) == before


def test_a_wait_with_no_worker_times_out_and_cancels_its_job(
    client: httpx.Client, root: Path
) -> None:
    with (DATA / "speech_en.opus").open("rb") as audio:
        started = time.monotonic()
        waited = client.post(
            "/v1/audio/transcriptions", files={"file": audio}, data={"model": "whisper-1"}
        )
    assert time.monotonic() - started < 10
    error(waited, 504, "timeout")
    newest = jobs(client)[0]
    assert newest["status"] == "cancelled"
    # keep_audio (the default) keeps the audio with its job until the job is deleted.
    assert client.delete(f"/jobs/{newest['id']}").status_code == 204
    assert [path for path in audio_left(root) if newest["id"] in path.parts] == []


def test_openai_fields_are_named_as_openai_names_them(client: httpx.Client) -> None:
    with (DATA / "speech_en.opus").open("rb") as audio:
        refused = client.post(
            "/v1/audio/transcriptions",
            files={"file": audio},
            data={"model": "whisper-1", "prompt": "p" * 5000},
        )
    assert error(refused, 400, "invalid_form")["field"] == "prompt"
    with (DATA / "speech_en.opus").open("rb") as audio:
        path = client.post(
            "/v1/audio/transcriptions", files={"file": audio}, data={"model": "/etc"}
        )
    error(path, 422, "model_not_found")


def test_job_errors_take_their_status_from_the_one_table() -> None:
    from cesar_http.errors import status_for_code

    assert status_for_code("invalid_audio") == 422
    assert status_for_code("truncated_audio") == 422
    assert status_for_code("unsupported_language") == 422
    assert status_for_code("model_not_found") == 422
    assert status_for_code("download_rejected") == 422
    assert status_for_code("transcription_failed") == 503  # transient: a retry may work
    assert status_for_code("download_failed") == 503
    assert status_for_code("store_unavailable") == 503
    assert status_for_code("internal_error") == 500  # no class: the server's own failure


# The schema


def test_every_ref_in_the_openapi_document_resolves(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        target: Any = document
        for part in ref[2:].split("/"):
            assert isinstance(target, dict), ref
            assert part in target, f"{ref} points nowhere"
            target = target[part]
    submit = document["paths"]["/transcribe"]["post"]["requestBody"]["content"]
    assert "url" in submit["application/json"]["schema"]["properties"]


# The same limits in front of PostgreSQL, the strictest store


def test_what_passes_the_limits_is_kept_by_postgresql(tmp_path: Path) -> None:
    """Text the limits let through (tabs, line breaks, any script, emoji, metadata just
    under its cap) is stored and read back by PostgreSQL; what they refuse never reaches
    it; and a cursor past 2**63 is refused before PostgreSQL's bigint sees it."""
    from .postgres_helpers import scratch_database

    metadata = {"note": "tab\there\nline 2 — ünïcødé 🎙", "n": [1, 2.5, None, True]}
    metadata["pad"] = "x" * (16 * 1024 - len(json.dumps(metadata, ensure_ascii=False)) - 20)
    with (
        scratch_database("cesar_limits") as store,
        served_app(tmp_path, store=store, storage=store) as url,
        httpx.Client(base_url=url, timeout=30) as pg,
    ):
        fields = {
            "metadata": json.dumps(metadata),
            "initial_prompt": "Line one.\nLine two, ✓.",
            "idempotency_key": "ключ-🔑",
        }
        parts = [
            f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        ]
        # Written by hand: clients escape a NUL in a filename, a hostile caller need not.
        parts.append(
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="talk\x00\x07.opus"'
            b"\r\n\r\n" + speech() + b"\r\n--b--\r\n"
        )
        taken = pg.post(
            "/transcribe",
            content=b"".join(parts),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert taken.status_code == 202, taken.text
        job = pg.get(f"/jobs/{taken.json()['id']}").json()
        assert job["metadata"] == metadata
        assert job["options"]["initial_prompt"] == "Line one.\nLine two, ✓."
        assert job["source"]["filename"] == "talk.opus"
        for member, raw in (("metadata", '{"a": "\\u0000"}'), ("initial_prompt", '"\\u0000"')):
            body = f'{{"url": "https://example.com/a.mp3", "{member}": {raw}}}'.encode()
            error(post_json(pg, body), 422, "invalid_request")
        cursor = base64.urlsafe_b64encode(f"j{2**63}".encode()).decode().rstrip("=")
        error(pg.get("/jobs", params={"cursor": cursor}), 422, "invalid_options")
        assert pg.get("/jobs").status_code == 200


@pytest.mark.parametrize(
    "bad",
    [
        {"max_json_bytes": 0},
        {"max_metadata_bytes": 0},
        {"max_beam_size": 0},
        {"max_batch_size": 0},
        {"max_cpu_threads": -1},
        {"sync_timeout": 0},
    ],
)
def test_limits_that_would_refuse_everything_are_refused_at_start(bad: dict[str, int]) -> None:
    from cesar_core import Settings
    from cesar_core.errors import InvalidOptionsError

    with pytest.raises(InvalidOptionsError, match=next(iter(bad))):
        Settings.load(**bad)
