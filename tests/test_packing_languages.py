"""Short jobs on the multilingual model, without a language: detected first, packed by
language, each with the language it would get alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from faster_whisper import WhisperModel

from cesar_core import Settings, TranscribeOptions, WhisperTranscriber
from cesar_core.detection import DetectedLanguage, LanguageDetecting
from cesar_core.diarization import with_diarization
from cesar_core.jobs import Job, JobState
from cesar_core.packing import SURE_LANGUAGE
from cesar_core.plugins import make_manager
from cesar_core.worker import Worker, WorkerConfig

from .conftest import DATA, wer
from .queue_helpers import open_service
from .test_packing import ALONE, CLIPS, PACKED, SHORT_REFERENCES

pytestmark = pytest.mark.multilingual

# A fixed temperature: whisper's fallback samples at random when a decode looks poor.
BASE = TranscribeOptions(model="base", temperature=0.0)
REFERENCES: dict[str, str] = json.loads((DATA / "references.json").read_text())
REFERENCES |= json.loads((DATA / "spanish" / "references.json").read_text())
SPANISH = DATA / "speech_es.opus"
SPANISH_CLIPS = sorted((DATA / "spanish").glob("clip_es_*.opus"))
#: English and Spanish, interleaved: (file, language, reference).
MIXED = [
    (DATA / "speech_en.opus", "en", REFERENCES["speech_en"]),
    (SPANISH, "es", REFERENCES["speech_es"]),
    (CLIPS[1], "en", SHORT_REFERENCES[CLIPS[1].stem]),
    (SPANISH_CLIPS[1], "es", REFERENCES[SPANISH_CLIPS[1].stem]),
]


async def _run(
    tmp_path: Path, transcriber: Any, config: WorkerConfig, jobs: list[tuple[Path, Any]]
) -> tuple[Worker, list[Job]]:
    service = await open_service(tmp_path)
    submitted = [(await service.submit_file(path, options=options))[0] for path, options in jobs]
    worker = Worker(service.store, service.storage, transcriber, config)
    await worker.run(until_idle=True)
    done = [await service.get(job.id) for job in submitted]
    await service.close()
    return worker, done


@pytest.mark.usefixtures("packing_ignores_confidence")
def test_english_and_spanish_jobs_pack_by_the_language_detected_in_each(
    tmp_path: Path, transcriber: WhisperTranscriber
) -> None:
    """Four short jobs, two English and two Spanish, queued together: two windows, one per
    language, each job with its own right text and the language, probability and top
    languages it gets alone."""

    async def scenario() -> None:
        jobs = [(path, BASE) for path, _, _ in MIXED]
        worker, packed = await _run(tmp_path / "p", transcriber, PACKED, jobs)
        assert worker._packer is not None
        assert worker._packer.packed == 4
        _, alone = await _run(tmp_path / "a", transcriber, ALONE, jobs)
        for (_, language, reference), one, other in zip(MIXED, packed, alone, strict=True):
            assert one.state is other.state is JobState.COMPLETED
            assert one.result is not None
            assert other.result is not None
            assert one.result.language == other.result.language == language
            assert one.result.language_probability == other.result.language_probability
            assert one.result.top_languages == other.result.top_languages
            assert one.result.top_languages[0].language == language
            # base hears espeak-ng's Spanish poorly, alone as in company (the bound of
            # test_transcribe.py), and a word or two differ between the two.
            assert wer(reference, one.result.text) < 0.5, (reference, one.result.text)
            assert wer(reference, other.result.text) < 0.5, (reference, other.result.text)

    asyncio.run(scenario())


class _Plain:
    """A transcriber that does not offer language detection (the real one behind it)."""

    def __init__(self, inner: WhisperTranscriber) -> None:
        self.inner = inner

    def transcribe(self, audio: Any, options: TranscribeOptions, progress: Any = None) -> Any:
        return self.inner.transcribe(audio, options, progress)


def test_without_language_detection_such_jobs_run_alone(
    tmp_path: Path, transcriber: WhisperTranscriber
) -> None:
    async def scenario() -> None:
        plain = _Plain(transcriber)
        assert not isinstance(plain, LanguageDetecting)
        assert isinstance(transcriber, LanguageDetecting)
        jobs = [(SPANISH, BASE), (SPANISH_CLIPS[1], BASE)]
        worker, done = await _run(tmp_path, plain, PACKED, jobs)
        assert worker._packer is not None
        assert worker._packer.packed == 0
        assert [job.state for job in done] == [JobState.COMPLETED] * 2
        assert all(job.result and job.result.language == "es" for job in done)

    asyncio.run(scenario())


@pytest.mark.usefixtures("packing_ignores_confidence")
def test_a_job_whose_language_is_unsure_runs_alone(
    tmp_path: Path, transcriber: WhisperTranscriber
) -> None:
    """The last 1.4 s of an English clip (two words) is a language the model is unsure of:
    it runs alone, and the two Spanish jobs queued with it share a window."""
    unsure = attrs.evolve(BASE, clip_start=1.6)
    guess = transcriber.detect_language(CLIPS[5], unsure)
    assert guess.probability < SURE_LANGUAGE, guess

    async def scenario() -> None:
        jobs = [(SPANISH, BASE), (CLIPS[5], unsure), (SPANISH_CLIPS[1], BASE)]
        worker, done = await _run(tmp_path, transcriber, PACKED, jobs)
        assert worker._packer is not None
        assert worker._packer.packed == 2
        assert [job.state for job in done] == [JobState.COMPLETED] * 3

    asyncio.run(scenario())


def test_detection_reports_what_transcribing_alone_does(transcriber: WhisperTranscriber) -> None:
    result = transcriber.transcribe(SPANISH, BASE)
    guess = transcriber.detect_language(SPANISH, BASE)
    assert (guess.language, guess.probability, guess.top_languages) == (
        result.language,
        result.language_probability,
        result.top_languages,
    )
    english_only = transcriber.detect_language(SPANISH, TranscribeOptions(model="tiny.en"))
    assert (english_only.language, english_only.probability) == ("en", 1.0)


@pytest.fixture
def detections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One item per language detection of the real model from now on: faster-whisper's
    ``detect_language`` (one encoder pass), which the transcriber's detection and a
    transcription without a language both call."""
    found: list[int] = []
    real = WhisperModel.detect_language

    def counted(self: WhisperModel, *args: Any, **kwargs: Any) -> Any:
        found.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(WhisperModel, "detect_language", counted)
    return found


@pytest.mark.usefixtures("packing_ignores_confidence")
def test_a_job_alone_after_detection_gets_its_transcript_without_a_second_detection(
    tmp_path: Path, transcriber: WhisperTranscriber, detections: list[int]
) -> None:
    """Jobs whose language was detected and that then run alone (one unsure of its
    language, one without company of its language) get exactly the transcript they get
    with no packing at all, and each job's language is detected once, as alone: the
    detection is handed to the transcription rather than paid again."""
    unsure = attrs.evolve(BASE, clip_start=1.6)
    jobs = [(SPANISH, BASE), (CLIPS[5], unsure), (CLIPS[1], BASE), (SPANISH_CLIPS[1], BASE)]

    async def scenario() -> None:
        worker, packed = await _run(tmp_path / "p", transcriber, PACKED, jobs)
        assert worker._packer is not None
        assert worker._packer.packed == 2  # the two Spanish jobs; the others ran alone
        in_packing = len(detections)
        detections.clear()
        _, alone = await _run(tmp_path / "a", transcriber, ALONE, jobs)
        assert len(detections) == len(jobs)  # alone, each transcription detects once
        assert in_packing == len(jobs)
        for index, (one, other) in enumerate(zip(packed, alone, strict=True)):
            assert one.state is other.state is JobState.COMPLETED
            assert one.result is not None
            assert other.result is not None
            if index in (1, 2):  # alone after its detection: exactly what alone gives
                assert one.result == other.result
            assert one.result.language == other.result.language
            assert one.result.language_probability == other.result.language_probability
            assert one.result.top_languages == other.result.top_languages

    asyncio.run(scenario())


def test_a_detected_language_is_used_only_where_detecting_again_finds_the_same(
    transcriber: WhisperTranscriber, detections: list[int], settings: Settings
) -> None:
    """Handed through the speakers wrapper (what ``cesar serve`` runs), the language
    detected beforehand spares the transcription its detection, and the transcript is the
    same. With voice detection whisper detects on the speech it keeps, other features: a
    language handed there is not used (a wrong one changes nothing) and whisper detects."""
    clip = SPANISH_CLIPS[1]
    guess = transcriber.detect_language(clip, BASE)
    plain = transcriber.transcribe(clip, BASE)
    detections.clear()
    wrapped = with_diarization(transcriber, make_manager({}), settings)
    assert wrapped.transcribe(clip, BASE, detected=guess) == plain
    assert detections == []
    wrong = DetectedLanguage(language="en", probability=0.99)
    heard = transcriber.transcribe(clip, attrs.evolve(BASE, vad_filter=True), detected=wrong)
    assert heard.language == guess.language == "es"
    assert len(detections) == 1
