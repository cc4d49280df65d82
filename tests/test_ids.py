"""Job ids, idempotency keys and storage keys are checked where they enter: an id no job
could have is refused (never a 500, never a storage path), and an id the store does not
know never touches storage. Real servers, real stores, real files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from cesar_core import Settings
from cesar_core.errors import (
    InvalidIdempotencyKeyError,
    InvalidJobIdError,
    InvalidStorageKeyError,
)
from cesar_core.ids import check_idempotency_key, check_job_id
from cesar_core.jobs import new_job_id
from cesar_core.plugins import make_manager
from cesar_core.service import JobService
from cesar_core.storage.keys import audio_key, key_job_id
from cesar_core.storage.local import LocalStorage
from cesar_postgres.blobs import PostgresStorage

from .http_helpers import serving
from .queue_helpers import run
from .test_cli_jobs import cesar

BAD_PATHS = ("%2E", "%2E%2E", "%00", "a%00b", "x" * 65, "%C3%A9t%C3%A9", "a.b")


def stored_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def upload(client: httpx.Client, data: Path, **fields: str) -> httpx.Response:
    with (data / "speech_en.opus").open("rb") as audio:
        return client.post("/transcribe", files={"file": ("speech_en.opus", audio)}, data=fields)


def test_malformed_job_ids_get_a_4xx_and_touch_no_file(tmp_path: Path, data: Path) -> None:
    audio = tmp_path / "audio"
    with (
        serving(tmp_path, "--no-worker", CESAR_INLINE_AUDIO_BYTES="0") as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        ids = [upload(client, data).json()["id"] for _ in range(2)]
        before = stored_files(audio)
        assert len(before) == 2
        for bad in BAD_PATHS:
            for answer in (
                client.delete(f"/jobs/{bad}"),
                client.get(f"/jobs/{bad}"),
                client.get(f"/jobs/{bad}/transcript"),
            ):
                assert answer.status_code == 422, (bad, answer.text)
                error = answer.json()["error"]
                assert error["code"] == "invalid_job_id", (bad, error)
                assert "is not a job id" in error["message"]
        assert stored_files(audio) == before  # every job keeps its audio
        for job_id in ids:
            assert client.get(f"/jobs/{job_id}").json()["status"] == "queued"

        # A well-formed id that no job has: nothing to delete, and storage is not touched.
        orphan = audio / "not-a-job" / "audio.wav"
        orphan.parent.mkdir()
        orphan.write_bytes(b"not a job's")
        assert client.delete("/jobs/not-a-job").status_code == 204
        assert orphan.exists()
        assert client.get("/jobs/not-a-job").json()["error"]["code"] == "job_not_found"

        # A queued job is cancelled (and its audio goes), then deleted.
        cancelled = client.delete(f"/jobs/{ids[0]}")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert client.delete(f"/jobs/{ids[0]}").status_code == 204
        assert client.get(f"/jobs/{ids[0]}").status_code == 404
        assert stored_files(audio) == sorted([f"{ids[1]}/audio.opus", "not-a-job/audio.wav"])


def submit_to_storage(root: Path, audio: Path) -> str:
    """Queue ``audio`` as ``cesar jobs`` will find it, as a file in storage."""

    async def go() -> str:
        settings = Settings(data_dir=root, store=f"sqlite:///{root}/jobs.db", inline_audio_bytes=0)
        service = await JobService.open(settings, make_manager({}))
        job, _ = await service.submit_file(audio)
        await service.close()
        return job.id

    return str(run(go()))


def test_the_cli_refuses_malformed_ids(tmp_path: Path, data: Path) -> None:
    job_id = submit_to_storage(tmp_path, data / "speech_en.ogg")
    audio = tmp_path / "audio"
    before = stored_files(audio)
    assert before == [f"{job_id}/audio.ogg"]
    for command in ("delete", "cancel", "show"):
        for bad in (".", "..", "../audio", "a/b"):
            result = cesar(tmp_path, "jobs", command, bad)
            assert result.returncode == 2, (command, bad, result.stderr)
            assert "Invalid value for 'JOB_ID'" in result.stderr
            assert "is not a job id" in result.stderr
    assert stored_files(audio) == before
    shown = cesar(tmp_path, "jobs", "show", job_id)
    assert "queued" in shown.stdout
    gone = cesar(tmp_path, "jobs", "delete", "not-a-job")
    assert gone.returncode == 0
    assert "was already gone" in gone.stdout


def test_nul_bytes_and_bad_keys_on_postgresql_are_refused(
    tmp_path: Path, data: Path, empty_postgres: str
) -> None:
    with (
        serving(tmp_path, "--no-worker", CESAR_STORE=empty_postgres) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        for key in ("nul\x00key", "x" * 201, "tab\tkey", ""):
            answer = upload(client, data, idempotency_key=key)
            assert answer.status_code == 422, (key, answer.text)
            assert answer.json()["error"]["code"] in (
                "invalid_idempotency_key",
                "invalid_request",  # the schema's own length limit
            ), answer.text
        answer = client.post(
            "/transcribe", json={"url": "https://example.com/a.mp3", "idempotency_key": "a\x00"}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] in ("invalid_idempotency_key", "invalid_request")
        for bad in ("%00", "a%00", "%2E"):
            answer = client.get(f"/jobs/{bad}")
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["code"] == "invalid_job_id"
        fine = upload(client, data, idempotency_key="ключ-1 with spaces")
        assert fine.status_code == 202, fine.text
        assert client.get("/jobs").json()["jobs"][0]["idempotency_key"] == "ключ-1 with spaces"


def test_the_service_checks_ids_and_keys_itself_on_postgresql(
    tmp_path: Path, data: Path, empty_postgres: str
) -> None:
    """What the HTTP schema does not catch (a script calling the service), the service does:
    PostgreSQL refuses NUL in text, and would answer with a driver error."""

    async def scenario() -> None:
        settings = Settings(
            data_dir=tmp_path, store=empty_postgres, storage=empty_postgres, inline_audio_bytes=0
        )
        service = await JobService.open(settings, make_manager({}))
        try:
            for key in ("nul\x00key", "", "x" * 201):
                with pytest.raises(InvalidIdempotencyKeyError):
                    await service.submit_file(data / "speech_en.opus", idempotency_key=key)
                with pytest.raises(InvalidIdempotencyKeyError):
                    await service.submit_url("https://example.com/a.mp3", idempotency_key=key)
            for job_id in ("a\x00", ".", "x" * 65):
                for call in (service.get, service.cancel, service.delete, service.wait):
                    with pytest.raises(InvalidJobIdError):
                        await call(job_id)
            assert await service.delete("not-a-job") is False
            page = await service.list()
            assert not page.jobs  # nothing was created, and the refused audio went too
        finally:
            await service.close()

    asyncio.run(scenario())
    assert blob_count(empty_postgres) == 0


def blob_count(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM cesar_blobs").fetchone()
    return int(row[0]) if row else -1


def test_the_id_and_key_rules() -> None:
    assert check_job_id(new_job_id())
    for good in ("a", "A-b_9", "x" * 64):
        assert check_job_id(good) == good
    for bad in ("", ".", "..", "a/b", "a\x00", "x" * 65, "é", " a", None, 7):
        with pytest.raises(InvalidJobIdError, match="is not a job id"):
            check_job_id(bad)
    assert check_idempotency_key(None) is None
    assert check_idempotency_key("order 42 / ü") == "order 42 / ü"
    for bad in ("", "a\x00", "\n", "x" * 201, "\ud800"):
        with pytest.raises(InvalidIdempotencyKeyError):
            check_idempotency_key(bad)
    assert audio_key("job1", "talk.MP3") == "job1/audio.mp3"
    assert audio_key("job1", "../../etc/passwd") == "job1/audio"
    assert key_job_id("job1/audio.wav") == "job1"
    for key in ("..", ".", "../x/audio", "/etc/passwd", "job1", "job1/", "job1/../x"):
        with pytest.raises(InvalidStorageKeyError):
            key_job_id(key)


async def _storages(tmp_path: Path, url: str) -> list[LocalStorage | PostgresStorage]:
    return [LocalStorage(tmp_path / "audio"), await PostgresStorage.open(url)]


def test_storages_refuse_keys_that_could_escape(tmp_path: Path, empty_postgres: str) -> None:
    (tmp_path / "secret").write_text("outside the storage")

    async def scenario() -> None:
        for storage in await _storages(tmp_path, empty_postgres):

            async def once() -> None:
                yield b"x"

            for key in ("../secret", "/tmp/x", "job1/../../secret", "job1/.hidden", "."):
                with pytest.raises(InvalidStorageKeyError):
                    await storage.save(key, once())
                with pytest.raises(InvalidStorageKeyError):
                    await storage.exists(key)
                with pytest.raises(InvalidStorageKeyError):
                    async with storage.local_path(key):
                        pass
            for job_id in (".", "..", "", "a/b"):
                with pytest.raises(InvalidJobIdError):
                    await storage.delete_job(job_id)
            await storage.close()

    asyncio.run(scenario())
    assert (tmp_path / "secret").read_text() == "outside the storage"
