"""The official OpenAI SDK, unchanged, against a real ``cesar serve``: every response
format, word and segment timestamps, translations, and the model list."""

from __future__ import annotations

import io

import httpx
import openai
import pytest
import srt
import webvtt

from .conftest import DATA, REFERENCES, wer
from .test_http import api  # noqa: F401  (the served API fixture)


@pytest.fixture(scope="module")
def client(api: httpx.Client) -> openai.OpenAI:  # noqa: F811
    base = str(api.base_url).rstrip("/")
    return openai.OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0)


def transcribe(client: openai.OpenAI, **kwargs: object) -> object:
    with (DATA / "speech_en.wav").open("rb") as audio:
        return client.audio.transcriptions.create(model="whisper-1", file=audio, **kwargs)  # type: ignore[call-overload]


def test_json_and_text(client: openai.OpenAI) -> None:
    result = transcribe(client)
    assert wer(REFERENCES["speech_en"], result.text) < 0.5  # type: ignore[attr-defined]
    text = transcribe(client, response_format="text")
    assert isinstance(text, str)
    assert wer(REFERENCES["speech_en"], text) < 0.5


def test_srt_and_vtt_parse(client: openai.OpenAI) -> None:
    subtitles = transcribe(client, response_format="srt")
    cues = list(srt.parse(str(subtitles)))
    assert cues
    assert wer(REFERENCES["speech_en"], " ".join(c.content for c in cues)) < 0.5
    captions = webvtt.from_buffer(io.StringIO(str(transcribe(client, response_format="vtt"))))
    assert wer(REFERENCES["speech_en"], " ".join(c.text for c in captions)) < 0.5


def test_verbose_json_with_words_and_segments(client: openai.OpenAI) -> None:
    result = transcribe(
        client,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
        temperature=0.0,
    )
    assert result.language == "en"  # type: ignore[attr-defined]
    assert result.duration > 3  # type: ignore[attr-defined]
    assert result.segments  # type: ignore[attr-defined]
    assert result.segments[0].end > result.segments[0].start  # type: ignore[attr-defined]
    words = result.words  # type: ignore[attr-defined]
    assert words
    assert all(word.end >= word.start for word in words)
    assert wer(REFERENCES["speech_en"], " ".join(word.word for word in words)) < 0.5
    plain = transcribe(client, response_format="verbose_json")
    assert getattr(plain, "words", None) is None  # words only when asked for


def test_prompt_and_temperature_reach_the_job(
    client: openai.OpenAI,
    api: httpx.Client,  # noqa: F811
) -> None:
    transcribe(client, response_format="text", prompt="Foxes and dogs.", temperature=0.2)
    newest = api.get("/jobs", params={"limit": 1}).json()["jobs"][0]
    assert newest["options"]["initial_prompt"] == "Foxes and dogs."
    assert newest["options"]["temperature"] == 0.2
    assert newest["options"]["model"] == "tiny.en"  # whisper-1 is the server's default


def test_translation_to_english(client: openai.OpenAI) -> None:
    with (DATA / "speech_es.opus").open("rb") as audio:
        result = client.audio.translations.create(model="base", file=audio)
    english = result.text.lower()
    assert "dog" in english or "kitchen" in english, result.text
    assert wer(REFERENCES["speech_es"], result.text) > 0.5  # not the Spanish words


def test_models_and_errors(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"whisper-1", "tiny.en"} <= ids
    with pytest.raises(openai.UnprocessableEntityError, match="not available on this server"):
        _unknown_model(client)
    with pytest.raises(openai.BadRequestError, match="response_format"):
        transcribe(client, response_format="docx")


def _unknown_model(client: openai.OpenAI) -> None:
    with (DATA / "speech_en.wav").open("rb") as audio:
        client.audio.transcriptions.create(model="no-such-model", file=audio)
