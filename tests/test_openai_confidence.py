"""The OpenAI-compatible answers carry the engine's real values, checked with the openai
SDK's own types against a real ``cesar serve``; the job API carries the same, and takes
the language and guard options."""

from __future__ import annotations

import math

import httpx
import openai
import pytest
from openai.types.audio import Transcription, TranscriptionVerbose

from .conftest import DATA
from .http_helpers import wait_for
from .test_http import api, upload  # noqa: F401  (the served API fixture)


@pytest.fixture(scope="module")
def client(api: httpx.Client) -> openai.OpenAI:  # noqa: F811
    base = str(api.base_url).rstrip("/")
    return openai.OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0)


def _post(api: httpx.Client, name: str = "speech_en.wav", **fields: str) -> httpx.Response:  # noqa: F811
    with (DATA / name).open("rb") as audio:
        return api.post(
            "/v1/audio/transcriptions",
            files={"file": (name, audio)},
            data={"model": "whisper-1", **fields},
        )


def test_verbose_json_carries_the_real_values(api: httpx.Client) -> None:  # noqa: F811
    answer = _post(api, response_format="verbose_json", temperature="0")
    assert answer.status_code == 200, answer.text
    verbose = TranscriptionVerbose.model_validate(answer.json())
    assert verbose.segments
    for segment in verbose.segments:
        assert 0 < segment.compression_ratio < 2.4
        assert segment.tokens
        assert all(isinstance(token, int) and token >= 0 for token in segment.tokens)
        assert segment.temperature == 0.0
        assert -5 < segment.avg_logprob <= 0
        assert 0 <= segment.no_speech_prob <= 1
        assert segment.seek >= 0
        assert segment.model_extra == {"language": "en"}  # Cesar's own, per segment
    assert verbose.usage is not None
    assert verbose.usage.type == "duration"
    assert verbose.usage.seconds == math.ceil(verbose.duration)


def test_the_sdk_reads_usage_of_plain_json(client: openai.OpenAI) -> None:
    with (DATA / "speech_en.wav").open("rb") as audio:
        result = client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert isinstance(result, Transcription)
    assert result.usage is not None
    assert result.usage.type == "duration"
    assert result.usage.seconds >= 1


def test_language_names_and_lists_reach_the_engine(api: httpx.Client) -> None:  # noqa: F811
    named = _post(
        api, "speech_es.opus", model="base", language="Spanish", response_format="verbose_json"
    )
    assert named.status_code == 200, named.text
    assert named.json()["language"] == "spanish"  # OpenAI's: the name, in lower case
    restricted = _post(
        api,
        "speech_es.opus",
        model="base",
        languages="it,French,pt",
        response_format="verbose_json",
    )
    assert restricted.status_code == 200, restricted.text
    body = TranscriptionVerbose.model_validate(restricted.json())
    spoken = {"italian": "it", "french": "fr", "portuguese": "pt"}
    assert body.language in spoken
    # Each segment's language (Cesar's own field) is the code, as in the job API.
    assert {s.model_extra["language"] for s in body.segments or ()} == {spoken[body.language]}  # type: ignore[index]


def test_jobs_carry_top_languages_flags_and_tokens(api: httpx.Client) -> None:  # noqa: F811
    submitted = upload(api, "speech_es.opus", model="base", languages="es,ca")
    assert submitted.status_code == 202, submitted.text
    job = wait_for(api, submitted.json()["id"])
    assert job["status"] == "completed", job
    assert job["options"]["languages"] == ["es", "ca"]
    assert [t["language"] for t in job["top_languages"]] == ["es", "ca"]
    segment = job["segments"][0]
    assert segment["tokens"]
    assert segment["language"] == "es"
    assert segment["flags"] == []
    assert segment["compression_ratio"] > 0


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"languages": "de,Klingon"}, "languages", "Unknown language code 'Klingon'"),
        ({"language": "Klingon"}, "language", "Unknown language code 'Klingon'"),
        ({"no_speech_threshold": "2"}, "no_speech_threshold", "less than or equal to 1"),
        ({"languages": "de"}, None, "understands English only"),
        (
            {"hallucination_silence_threshold": "2"},
            None,
            "hallucination_silence_threshold needs word timestamps",
        ),
    ],
)
def test_bad_options_are_4xx(
    api: httpx.Client,  # noqa: F811
    fields: dict[str, str],
    field: str | None,
    message: str,
) -> None:
    answer = _post(api, **fields)
    assert 400 <= answer.status_code < 500, answer.text
    error = answer.json()["error"]
    assert message in error["message"]
    if field is not None and error.get("field") is not None:
        assert error["field"] == field
