"""The attrs domain model and the library's converter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cesar_core import (
    InvalidOptionsError,
    Segment,
    Task,
    TranscribeOptions,
    Transcript,
    UnsupportedLanguageError,
    Word,
    from_dict,
    make_options,
    to_dict,
)
from cesar_core.convert import _converter

TRANSCRIPT = Transcript(
    text="Hello there.",
    segments=(
        Segment(
            id=0,
            start=0.0,
            end=1.25,
            text="Hello there.",
            words=(
                Word(start=0.0, end=0.5, word=" Hello", probability=0.9),
                Word(start=0.5, end=1.25, word=" there.", probability=0.8),
            ),
        ),
    ),
    language="en",
    language_probability=0.97,
    duration=1.5,
    model="tiny.en",
    task=Task.TRANSCRIBE,
)


def test_transcript_round_trips_through_json() -> None:
    wire = json.loads(json.dumps(to_dict(TRANSCRIPT)))
    assert wire["segments"][0]["words"][1] == {
        "start": 0.5,
        "end": 1.25,
        "word": " there.",
        "probability": 0.8,
    }
    assert wire["task"] == "transcribe"
    assert from_dict(wire, Transcript) == TRANSCRIPT
    assert TRANSCRIPT.words[1].word == " there."


def test_options_round_trip_with_enum_values() -> None:
    options = TranscribeOptions(task="translate", device="cpu", language="fr", clip_start=1.0)
    wire = to_dict(options)
    assert wire["task"] == "translate"
    assert wire["device"] == "cpu"
    assert from_dict(json.loads(json.dumps(wire)), TranscribeOptions) == options


def test_datetimes_are_iso_8601_utc() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 3, 1, 13, 30, tzinfo=paris)
    text = _converter.unstructure(moment)
    assert text == "2026-03-01T12:30:00Z"
    assert _converter.structure(text, datetime) == moment.astimezone(UTC)
    with pytest.raises(ValueError, match="naive"):
        _converter.unstructure(datetime(2026, 3, 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"language": "xx"}, "Unknown language code 'xx'"),
        ({"task": "summarise"}, "Unknown task 'summarise'"),
        ({"device": "tpu"}, "Unknown device 'tpu'"),
        ({"beam_size": 0}, "beam_size must be greater than 0"),
        ({"temperature": 1.5}, "temperature must be between 0 and 1"),
        ({"clip_start": 5.0, "clip_end": 2.0}, "clip_end (2.0) must be after clip_start"),
        ({"compute_type": "int3"}, "Unknown compute type 'int3'"),
        ({"cpu_threads": -1}, "cpu_threads must be 0 or more"),
        ({"model": " "}, "The model name is empty"),
    ],
)
def test_invalid_options_are_explained(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidOptionsError) as error:
        TranscribeOptions(**kwargs)  # type: ignore[arg-type]
    assert message in str(error.value)


def test_unknown_language_has_its_own_error_code() -> None:
    with pytest.raises(UnsupportedLanguageError) as error:
        TranscribeOptions(language="klingon")
    assert error.value.code == "unsupported_language"
    assert "leave the language unset" in str(error.value)


def test_make_options_names_unknown_keywords() -> None:
    with pytest.raises(InvalidOptionsError, match=r"Unknown transcription option.*langauge"):
        make_options(langauge="en")
    assert make_options(language=None).language is None
