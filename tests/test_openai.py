"""The official OpenAI SDK, unchanged, against a real ``cesar serve``: every response
format, word and segment timestamps, translations, and the model list."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
import srt
import webvtt
from openai.types.audio import TranslationVerbose

from cesar_http.routes import openai as openai_routes

from .conftest import DATA, REFERENCES, wer
from .inproc_server import served_app
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
    assert result.language == "english"  # type: ignore[attr-defined]  # OpenAI's: a name
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
    # A fixed temperature. At 0, OpenAI's and so this API fall back to sampling at higher
    # temperatures when a decode looks poor, and base's translation of this clip always
    # does: at 1.0 it came out in Spanish about one run in eight.
    with (DATA / "speech_es.opus").open("rb") as audio:
        result = client.audio.translations.create(model="base", file=audio, temperature=0.01)
    english = result.text.lower()
    assert "dog" in english or "kitchen" in english, result.text
    assert wer(REFERENCES["speech_es"], result.text) > 0.5  # not the Spanish words


def test_verbose_translation_is_in_english_from_spanish(client: openai.OpenAI) -> None:
    with (DATA / "speech_es.opus").open("rb") as audio:
        result = client.audio.translations.create(
            model="base", file=audio, response_format="verbose_json"
        )
    assert isinstance(result, TranslationVerbose)
    assert result.language == "english"  # the translation's, as OpenAI documents it
    assert result.segments
    # Cesar's own per-segment field keeps the code of the language spoken.
    assert {segment.model_extra["language"] for segment in result.segments} == {"es"}  # type: ignore[index]


def test_a_translation_takes_the_spoken_language_when_given(client: openai.OpenAI) -> None:
    """``language`` (an extra field: OpenAI's translations take none) says what is spoken,
    as it does for a transcription, instead of being dropped for detection."""
    with (DATA / "speech_es.opus").open("rb") as audio:
        result = client.audio.translations.create(
            model="base", file=audio, response_format="verbose_json", extra_body={"language": "it"}
        )
    assert {segment.model_extra["language"] for segment in result.segments} == {"it"}  # type: ignore[index]
    with (
        (DATA / "speech_es.opus").open("rb") as audio,
        pytest.raises(openai.UnprocessableEntityError, match="Unknown language") as refused,
    ):
        client.audio.translations.create(model="base", file=audio, extra_body={"language": "xx"})
    assert refused.value.body["field"] == "language"  # type: ignore[index]


def test_models_and_errors(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"whisper-1", "tiny.en"} <= ids
    with pytest.raises(openai.UnprocessableEntityError, match="not available on this server"):
        _unknown_model(client)
    with pytest.raises(openai.BadRequestError, match="response_format") as refused:
        transcribe(client, response_format="docx")
    assert refused.value.body["field"] == "response_format"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="stream=true") as refused:
        transcribe(client, response_format="srt", stream=True)
    assert refused.value.body["field"] == "response_format"  # type: ignore[index]


def _unknown_model(client: openai.OpenAI) -> None:
    with (DATA / "speech_en.wav").open("rb") as audio:
        client.audio.transcriptions.create(model="no-such-model", file=audio)


def test_rendering_an_answer_leaves_the_server_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-flowing subtitles of a long transcript is CPU work: while one answer renders,
    the server still answers others. The render here waits until the test has seen
    ``GET /health`` answered, so on the event loop it would hold the health check up."""
    rendering, release = threading.Event(), threading.Event()
    real_render = openai_routes.render

    def held_render(*args: object) -> str:
        rendering.set()
        release.wait(60)
        return real_render(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(openai_routes, "render", held_render)
    with served_app(tmp_path, workers=1) as url, ThreadPoolExecutor(1) as pool:
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)

        def subtitles() -> str:
            with (DATA / "speech_en.wav").open("rb") as audio:
                return sdk.audio.transcriptions.create(
                    model="whisper-1", file=audio, response_format="srt"
                )

        answer = pool.submit(subtitles)
        try:
            assert rendering.wait(120), answer.exception(0) if answer.done() else "no render"
            health = httpx.get(f"{url}/health", timeout=5)
            assert health.status_code == 200
        finally:
            release.set()
        cues = list(srt.parse(answer.result(60)))
    assert wer(REFERENCES["speech_en"], " ".join(cue.content for cue in cues)) < 0.5
