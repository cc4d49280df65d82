"""What the engine knows of its confidence, kept: word probabilities in tsv, each segment's
compression ratio, temperature and tokens, the likeliest languages, the hallucination
guards, loops collapsed, doubtful segments flagged; languages by name, detection restricted
to a list, and a language per segment for recordings that switch language."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cesar_core import WhisperTranscriber, render
from cesar_core.errors import InvalidOptionsError, UnsupportedLanguageError
from cesar_core.languages import LANGUAGE_CODES, LANGUAGE_NAMES, language_code
from cesar_core.transcript import Segment, TranscribeOptions, Word
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio
from cesar_core.transcription.confidence import LoopGuard, review

from .conftest import DATA, REFERENCES, wer


def _reviewed(segments: list[Segment], options: TranscribeOptions) -> tuple[Segment, ...]:
    """What the engine does: loops collapsed as segments come, then flags."""
    guard = LoopGuard()
    kept = [s for s in map(guard.admit, segments) if s is not None]
    return review(kept, options, guard.ends)


def _segment(index: int, text: str, **fields: object) -> Segment:
    return Segment(id=index, start=index * 2.0, end=index * 2.0 + 2, text=text, **fields)  # type: ignore[arg-type]


# --- languages by name --------------------------------------------------------------------


def test_every_language_has_whispers_name() -> None:
    assert set(LANGUAGE_NAMES) == LANGUAGE_CODES
    assert LANGUAGE_NAMES["de"] == "german"


@pytest.mark.parametrize(
    ("given", "code"),
    [("de", "de"), ("German", "de"), ("GERMAN", "de"), ("castilian", "es"), ("Mandarin", "zh")],
)
def test_names_are_accepted_where_codes_are(given: str, code: str) -> None:
    assert language_code(given) == code
    assert TranscribeOptions(language=given).language == code


def test_languages_list_takes_codes_names_and_text() -> None:
    assert TranscribeOptions(languages=["de", "French", "it"]).languages == ("de", "fr", "it")
    assert TranscribeOptions(languages="de, fr,de").languages == ("de", "fr")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"language": "Klingon"}, UnsupportedLanguageError, "Unknown language code 'Klingon'"),
        ({"languages": ["de", "xx"]}, UnsupportedLanguageError, "Unknown language code 'xx'"),
        (
            {"language": "en", "languages": ["de", "fr"]},
            InvalidOptionsError,
            "language 'en' is not one of languages (de, fr)",
        ),
        (
            {"hallucination_silence_threshold": 2.0},
            InvalidOptionsError,
            "hallucination_silence_threshold needs word timestamps",
        ),
        ({"multilingual": True, "batched": True}, InvalidOptionsError, "batched"),
        ({"no_speech_threshold": 1.5}, InvalidOptionsError, "between 0 and 1"),
        ({"compression_ratio_threshold": 0}, InvalidOptionsError, "greater than 0"),
    ],
)
def test_bad_language_and_guard_options_are_explained(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        TranscribeOptions(**kwargs)  # type: ignore[arg-type]
    assert message in str(caught.value)


# --- loops and doubts ---------------------------------------------------------------------


def test_a_phrase_said_in_a_loop_is_kept_once_with_its_words() -> None:
    phrase = ["Thank", "you."] * 6 + ["Bye."]
    words = tuple(
        Word(start=i * 0.3, end=i * 0.3 + 0.3, word=f" {w}", probability=0.9)
        for i, w in enumerate(phrase)
    )
    looped = _segment(0, " ".join(phrase), words=words)
    [kept] = _reviewed([looped], TranscribeOptions())
    assert kept.text == "Thank you. Bye."
    assert [w.word.strip() for w in kept.words] == ["Thank", "you.", "Bye."]
    assert kept.flags == ("repetition",)


def test_speech_that_repeats_a_little_is_left_alone() -> None:
    said = _segment(0, "It is very very good, no no.")
    assert _reviewed([said], TranscribeOptions()) == (said,)


def test_the_same_segment_in_a_loop_is_kept_once_spanning_the_loop() -> None:
    segments = [_segment(0, "Hello.")] + [_segment(i, "Subscribe!") for i in range(1, 6)]
    segments.append(_segment(6, "Goodbye."))
    kept = _reviewed(segments, TranscribeOptions())
    assert [s.text for s in kept] == ["Hello.", "Subscribe!", "Subscribe!", "Goodbye."]
    assert [s.flags for s in kept] == [(), (), ("repetition",), ()]
    assert (kept[2].start, kept[2].end) == (4.0, 12.0)  # it spans the loop
    twice = [_segment(0, "Yes."), _segment(1, "Yes.")]  # said twice is speech
    assert [s.flags for s in _reviewed(twice, TranscribeOptions())] == [(), ()]


def test_segments_failing_the_engines_thresholds_are_flagged() -> None:
    doubtful = _segment(0, "mm", avg_logprob=-1.4, compression_ratio=2.9, no_speech_prob=0.8)
    fine = _segment(1, "Fine.", avg_logprob=-0.2, compression_ratio=1.1, no_speech_prob=0.01)
    flagged, kept = _reviewed([doubtful, fine], TranscribeOptions())
    assert flagged.flags == ("low_logprob", "high_compression", "no_speech")
    assert kept.flags == ()
    lenient = TranscribeOptions(
        log_prob_threshold=None, compression_ratio_threshold=3.0, no_speech_threshold=0.9
    )
    assert _reviewed([doubtful], lenient)[0].flags == ()


# --- real models --------------------------------------------------------------------------


def test_json_and_tsv_carry_what_the_engine_knows(transcriber: WhisperTranscriber) -> None:
    options = TranscribeOptions(word_timestamps=True, temperature=0.0)
    result = transcriber.transcribe(DATA / "speech_en.wav", options)
    data = json.loads(render(result, "json"))
    assert data["segments"]
    for segment in data["segments"]:
        assert 0 < segment["compression_ratio"] < 2.4
        assert segment["temperature"] == 0.0
        assert segment["tokens"]
        assert all(isinstance(t, int) for t in segment["tokens"])
        assert segment["language"] == "en"
        assert segment["flags"] == []
        assert -5 < segment["avg_logprob"] <= 0
        assert 0 <= segment["no_speech_prob"] <= 1
        assert isinstance(segment["seek"], int)
    # tsv: a row per word, with its probability, the same words json has
    rows = list(csv.DictReader(io.StringIO(render(result, "tsv")), delimiter="\t"))
    assert list(rows[0]) == ["start", "end", "segment", "word", "probability"]
    words = [w for s in data["segments"] for w in s["words"]]
    assert [r["word"] for r in rows] == [w["word"].strip() for w in words]
    assert all(0 <= float(r["probability"]) <= 1 for r in rows)
    assert all(int(r["start"]) <= int(r["end"]) for r in rows)
    assert wer(REFERENCES["speech_en"], " ".join(r["word"] for r in rows)) < 0.5
    # without word timestamps, tsv keeps whisper's segment rows
    plain = transcriber.transcribe(DATA / "speech_en.wav", TranscribeOptions(temperature=0.0))
    assert render(plain, "tsv").splitlines()[0] == "start\tend\ttext"


def test_json_names_the_likeliest_languages(transcriber: WhisperTranscriber) -> None:
    result = transcriber.transcribe(DATA / "speech_es.opus", TranscribeOptions(model="base"))
    top = json.loads(render(result, "json"))["top_languages"]
    assert top[0] == {"language": "es", "probability": result.language_probability}
    assert len(top) == 5
    probabilities = [entry["probability"] for entry in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0 <= p <= 1 for p in probabilities)
    assert sum(probabilities) <= 1.0001


def test_detection_keeps_to_the_languages_given(transcriber: WhisperTranscriber) -> None:
    options = TranscribeOptions(model="base", languages=["it", "French", "pt"])
    result = transcriber.transcribe(DATA / "speech_es.opus", options)
    assert result.language in ("it", "fr", "pt")  # Spanish is not among them
    top = result.top_languages
    assert {t.language for t in top} == {"it", "fr", "pt"}
    assert sum(t.probability for t in top) == pytest.approx(1, abs=0.001)  # among themselves
    assert {s.language for s in result.segments} == {result.language}


def test_an_english_only_model_refuses_other_languages(
    transcriber: WhisperTranscriber,
) -> None:
    with pytest.raises(UnsupportedLanguageError, match="English only"):
        transcriber.transcribe(DATA / "speech_en.wav", TranscribeOptions(languages=["de", "en"]))


def test_multilingual_gives_a_language_per_segment(
    transcriber: WhisperTranscriber, tmp_path: Path
) -> None:
    """32 s of English, then 35 s of Spanish: whisper detects once per 30 s it decodes, so
    the switch is caught at the next 30 s (docs/cli.md says what this gives)."""
    english = load_audio(DATA / "long_en.opus")[: 32 * SAMPLE_RATE]
    spanish, gap = load_audio(DATA / "speech_es.opus"), np.zeros(SAMPLE_RATE, np.float32)
    sf.write(tmp_path / "switch.wav", np.concatenate([english, gap] + [spanish, gap] * 6), 16000)
    options = TranscribeOptions(model="base", multilingual=True, temperature=0.0)
    result = transcriber.transcribe(tmp_path / "switch.wav", options)
    languages = [s.language for s in result.segments]
    assert result.language == "en"
    assert languages[0] == "en"
    spanish_segments = [s for s in result.segments if s.language == "es"]
    assert spanish_segments
    assert all(s.start > 30 for s in spanish_segments)
    assert "perro" in " ".join(s.text.lower() for s in spanish_segments)


def test_the_guards_reach_the_engine(transcriber: WhisperTranscriber) -> None:
    """A no-speech threshold of 0 with a log-probability threshold no decode reaches makes
    whisper skip every window as silence: the options are the engine's own."""
    options = TranscribeOptions(temperature=0.0, no_speech_threshold=0.0, log_prob_threshold=0.0)
    assert transcriber.transcribe(DATA / "speech_en.wav", options).segments == ()
    kept = TranscribeOptions(
        temperature=0.0,
        word_timestamps=True,
        hallucination_silence_threshold=1.0,
        condition_on_previous_text=False,
    )
    assert (
        wer(REFERENCES["speech_en"], transcriber.transcribe(DATA / "speech_en.wav", kept).text)
        < 0.5
    )


def test_cli_takes_language_names_and_guards(tmp_path: Path) -> None:
    out = tmp_path / "talk.tsv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cesar_cli",
            "transcribe",
            str(DATA / "speech_en.wav"),
            "--language",
            "English",
            "--hallucination-silence-threshold",
            "2",
            "--no-condition-on-previous-text",
            "-q",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # the silence guard turned word timestamps on: tsv has a row per word
    assert out.read_text().splitlines()[0] == "start\tend\tsegment\tword\tprobability"
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "cesar_cli",
            "transcribe",
            str(DATA / "speech_en.wav"),
            "--languages",
            "de,Klingon",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert refused.returncode == 2
    assert "unknown language 'Klingon'" in refused.stderr
