"""Speakers through a real ``cesar serve``: the job API and the official OpenAI SDK.

The channel diarizer needs no model, so these run without the ``diarize`` extra; the voice
model itself is tested in tests/test_diarization_model.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import openai
import pytest
import webvtt
from httpx_sse import connect_sse

from .conftest import DATA
from .http_helpers import serving, wait_for


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("served-speakers")
    with serving(root) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def submit(api: httpx.Client, name: str = "call_stereo.opus", **fields: str) -> httpx.Response:
    with (DATA / name).open("rb") as audio:
        return api.post("/transcribe", files={"file": (name, audio)}, data=fields)


def test_a_job_with_speakers_shows_them_in_every_format(api: httpx.Client) -> None:
    submitted = submit(api, diarize="channels", word_timestamps="true")
    assert submitted.status_code == 202, submitted.text
    done = wait_for(api, submitted.json()["id"])
    assert done["status"] == "completed", done
    assert done["options"]["diarize"] == "channels"
    assert [s["id"] for s in done["speakers"]] == ["SPEAKER_00", "SPEAKER_01"]
    assert all(s["talk_time"] > 5 for s in done["speakers"])
    assert {s["speaker"] for s in done["segments"]} == {"SPEAKER_00", "SPEAKER_01"}
    assert all(w["speaker"] for w in done["words"])
    vtt = api.get(f"/jobs/{done['id']}/transcript", params={"format": "vtt"})
    voices = [c.voice for c in webvtt.from_buffer(io.StringIO(vtt.text))]
    assert voices[0] == "Speaker 1"
    assert set(voices) == {"Speaker 1", "Speaker 2"}
    txt = api.get(f"/jobs/{done['id']}/transcript").text
    assert txt.startswith("Speaker 1: ")
    assert "\nSpeaker 2: " in txt


def test_a_job_without_speakers_has_none(api: httpx.Client) -> None:
    done = wait_for(api, submit(api, "speech_en.opus").json()["id"])
    assert done["speakers"] is None
    assert all(s["speaker"] is None for s in done["segments"])


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"num_speakers": "2"}, "num_speakers", "num_speakers only apply when speakers are asked"),
        ({"diarize": "voices"}, "diarize", "auto"),
        ({"diarize": "auto", "num_speakers": "0"}, "num_speakers", "greater than or equal to 1"),
        (
            {"diarize": "auto", "min_speakers": "4", "max_speakers": "2"},
            "min_speakers",
            "more than",
        ),
        (
            {"diarize": "auto", "num_speakers": "5", "max_speakers": "3"},
            "num_speakers",
            "is outside",
        ),
    ],
)
def test_bad_speaker_options_are_refused_before_a_job_exists(
    api: httpx.Client, fields: dict[str, str], field: str, message: str
) -> None:
    answer = submit(api, "speech_en.opus", **fields)
    assert 400 <= answer.status_code < 500, answer.text
    error = answer.json()["error"]
    assert message in error["message"]
    assert error["field"] == field  # the form field to correct


def test_the_openai_sdk_parses_diarized_json(api: httpx.Client) -> None:
    base = str(api.base_url).rstrip("/")
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0)
    with (DATA / "call_stereo.opus").open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="diarized_json",
            extra_body={"diarize": "channels"},
        )
    assert type(result).__name__ == "TranscriptionDiarized"
    assert result.task == "transcribe"
    assert result.duration > 20
    assert [s.speaker for s in result.segments][:2] == ["A", "B"]
    assert {s.speaker for s in result.segments} == {"A", "B"}
    assert all(s.type == "transcript.text.segment" for s in result.segments)
    assert result.segments[0].id == "seg_0"
    assert "help desk" in result.segments[0].text.lower()
    assert result.usage is not None
    assert result.usage.type == "duration"


def test_a_followed_job_shows_speakers_on_its_segments_while_it_runs(
    api: httpx.Client, tmp_path: Path
) -> None:
    """The speakers are found first, so the segments streamed while the job runs carry
    them, and they are the transcript's: same texts, same speakers, in order."""
    call = tmp_path / "call_three_times.wav"  # three 30-second windows of transcription
    source = DATA / "call_stereo.opus"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-stream_loop", "2", "-i", source, "-ar", "16000", call],
        check=True,
    )
    with call.open("rb") as audio:
        submitted = api.post(
            "/transcribe", files={"file": (call.name, audio)}, data={"diarize": "channels"}
        )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    arrivals: list[tuple[float, dict[str, object]]] = []
    with connect_sse(api, "GET", f"/jobs/{job_id}/events") as source:
        for event in source.iter_sse():
            if event.event == "segment":
                arrivals.append((time.time(), json.loads(event.data)))
            if event.event in ("completed", "error", "cancelled"):
                break
    done = api.get(f"/jobs/{job_id}").json()
    assert done["status"] == "completed", done
    completed_at = datetime.fromisoformat(done["completed_at"]).timestamp()
    live = [segment for at, segment in arrivals if at < completed_at - 0.2]
    assert live, "no segment came before the job completed"
    assert all(segment["speaker"] in ("SPEAKER_00", "SPEAKER_01") for segment in live)
    assert [(s["speaker"], s["text"]) for _, s in arrivals] == [
        (s["speaker"], s["text"]) for s in done["segments"]
    ]
    assert " ".join(str(s["text"]) for _, s in arrivals) == done["text"]
    assert {s["speaker"] for _, s in arrivals} == {"SPEAKER_00", "SPEAKER_01"}
