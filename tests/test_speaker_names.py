"""Naming speakers after the job: every built-in store, ``PATCH /jobs/{id}`` on a real
server, and ``cesar jobs rename``."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import webvtt

from cesar_core.diarization.assign import assign_speakers
from cesar_core.jobs import JobState
from cesar_core.plugins import make_manager
from cesar_core.speakers import ResultStore
from cesar_core.stores import open_store
from cesar_core.testing import new_job
from cesar_core.transcript import Segment, SpeakerTurn, Transcript

from .conftest import DATA
from .http_helpers import serving, wait_for


def diarized() -> Transcript:
    segments = (
        Segment(id=0, start=0.0, end=1.0, text=" Hello.", speaker="SPEAKER_00"),
        Segment(id=1, start=1.0, end=2.0, text=" Hi.", speaker="SPEAKER_01"),
    )
    plain = Transcript(
        text="Hello. Hi.",
        segments=segments,
        language="en",
        language_probability=1.0,
        duration=2.0,
        model="tiny.en",
    )
    turns = [SpeakerTurn(start=s.start, end=s.end, speaker=s.speaker or "") for s in segments]
    return assign_speakers(plain, turns)


async def check_store(url: str) -> None:
    store = await open_store(url, make_manager({}))
    try:
        assert isinstance(store, ResultStore)
        waiting, _ = await store.create(new_job())
        done, _ = await store.create(new_job())
        claimed = await store.claim("w", 30)
        while claimed is not None and claimed.id != done.id:  # the oldest comes first
            claimed = await store.claim("w", 30)
        assert claimed is not None
        assert claimed.lease is not None
        assert await store.complete(done.id, claimed.lease.token, diarized())
        named = diarized().renamed({"SPEAKER_00": "Alice"})
        assert await store.replace_result(done.id, named)
        job = await store.get(done.id)
        assert job is not None
        assert job.state is JobState.COMPLETED
        assert job.result == named
        assert job.result.speaker_labels() == {"SPEAKER_00": "Alice", "SPEAKER_01": "Speaker 2"}
        # Only a completed job's transcript can be replaced; an unknown id is no job.
        assert not await store.replace_result(waiting.id, named)
        assert (await store.get(waiting.id)).result is None  # type: ignore[union-attr]
        assert not await store.replace_result("no-such-job", named)
    finally:
        await store.close()


def test_the_memory_store_names_speakers() -> None:
    asyncio.run(check_store("memory://"))


def test_the_sqlite_store_names_speakers(tmp_path: Path) -> None:
    asyncio.run(check_store(f"sqlite:///{tmp_path / 'jobs.db'}"))


def test_the_postgres_store_names_speakers(empty_postgres: str) -> None:
    asyncio.run(check_store(empty_postgres))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    root = tmp_path_factory.mktemp("served-names")
    with serving(root) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, root


def submit(api: httpx.Client, name: str, **fields: str) -> dict[str, object]:
    with (DATA / name).open("rb") as audio:
        answer = api.post("/transcribe", files={"file": (name, audio)}, data=fields)
    assert answer.status_code == 202, answer.text
    return wait_for(api, answer.json()["id"])


def test_patch_names_speakers_in_every_format(served: tuple[httpx.Client, Path]) -> None:
    api, _ = served
    job = submit(api, "call_stereo.opus", diarize="channels")
    answer = api.patch(f"/jobs/{job['id']}", json={"speakers": {"SPEAKER_00": "Agent"}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["speakers"][0] == {
        "id": "SPEAKER_00",
        "name": "Agent",
        "talk_time": job["speakers"][0]["talk_time"],  # type: ignore[index]
    }
    vtt = api.get(f"/jobs/{job['id']}/transcript", params={"format": "vtt"}).text
    voices = {c.voice for c in webvtt.from_buffer(io.StringIO(vtt))}
    assert voices == {"Agent", "Speaker 2"}
    assert api.get(f"/jobs/{job['id']}/transcript").text.startswith("Agent: ")
    assert api.get(f"/jobs/{job['id']}").json()["speakers"][0]["name"] == "Agent"
    # A label the transcript does not have, or a name with a line break, changes nothing.
    for body, status in (
        ({"speakers": {"SPEAKER_09": "Carol"}}, 422),
        ({"speakers": {"SPEAKER_01": "Bob\nSmith"}}, 422),
        ({"names": {"SPEAKER_01": "Bob"}}, 422),
    ):
        refused = api.patch(f"/jobs/{job['id']}", json=body)
        assert refused.status_code == status, refused.text
        assert "error" in refused.json()
    assert api.get(f"/jobs/{job['id']}").json()["speakers"][1]["name"] is None


def test_patch_needs_a_completed_job(served: tuple[httpx.Client, Path]) -> None:
    api, _ = served
    missing = api.patch("/jobs/no-such-job", json={"speakers": {}})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "job_not_found"


def test_cesar_jobs_rename(served: tuple[httpx.Client, Path]) -> None:
    api, root = served
    job = submit(api, "call_stereo.opus", diarize="channels")
    store = f"sqlite:///{root / 'jobs.db'}"

    def cesar(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "cesar_cli", "jobs", *args, "--store", store]
        return subprocess.run(command, capture_output=True, text=True)

    named = cesar("rename", str(job["id"]), "SPEAKER_01=Caller")
    assert named.returncode == 0, named.stderr
    assert named.stdout.splitlines() == ["SPEAKER_00\tSpeaker 1", "SPEAKER_01\tCaller"]
    tsv = api.get(f"/jobs/{job['id']}/transcript", params={"format": "tsv"}).text
    assert "\tCaller\t" in tsv
    bad = cesar("rename", str(job["id"]), "Caller")
    assert bad.returncode == 2
    assert "is not LABEL=NAME" in bad.stderr
    unknown = cesar("rename", str(job["id"]), "SPEAKER_05=X")
    assert unknown.returncode != 0
    assert "No speaker is labelled 'SPEAKER_05'" in unknown.stderr
