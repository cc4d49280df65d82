"""The faster-whisper transcriber: warm, shared models and a progress callback.

Loaded models live in a :class:`~cesar_core.transcription.cache.ModelCache`, shared by
every caller and thread, within the bound and idle time-to-live the settings give.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import numpy as np

from ..detection import DetectedLanguage
from ..errors import CesarError, TranscriptionError, UnsupportedLanguageError
from ..protocols import AudioInput, ModelLocation, ProgressCallback, SegmentsCallback
from ..settings import Settings
from ..transcript import (
    Device,
    Task,
    TranscribeOptions,
    Transcript,
    default_cpu_threads,
)
from . import windows
from .audio import SAMPLE_RATE, AudioStream
from .cache import ModelCache
from .confidence import review, top_languages
from .models import ModelResolver
from .windows import SILENCE_PEAK, WindowedRun, _ProgressAborted

logger = logging.getLogger(__name__)

#: faster-whisper detects a language in the first this-many samples it is handed (30 s).
DETECTION_SAMPLES = 30 * SAMPLE_RATE
#: What to use for speech other than English, named as an option (not a command-line
#: flag), so that it reads well whichever adapter shows it.
MULTILINGUAL_HINT = "model=\"base\" (pip install 'cesar[multilingual]')."


def pick_device(device: Device) -> str:
    """``auto`` is CUDA when CTranslate2 sees a GPU, the CPU otherwise."""
    if device is Device.AUTO:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    return device.value


def pick_compute_type(compute_type: str, device: str) -> str:
    """``auto`` is int8 on the CPU (fastest there, see docs/performance.md), float16 on CUDA."""
    if compute_type != "auto":
        return compute_type
    return "float16" if device == "cuda" else "int8"


class WhisperTranscriber:
    """A :class:`~cesar_core.protocols.Transcriber` backed by faster-whisper."""

    def __init__(self, settings: Settings, resolver: ModelResolver | None = None) -> None:
        """``resolver`` finds models by name; by default only through the built-in sources
        (directories, carrier packages, the cache, the hub when allowed). The edges pass one
        built from every plugin's sources (:meth:`ModelResolver.from_plugins`)."""
        self.settings = settings
        self.resolver = resolver or ModelResolver.builtin(settings)
        self.models = ModelCache(settings.max_loaded_models, settings.model_ttl_seconds)

    def load(
        self, options: TranscribeOptions, location: ModelLocation | None = None
    ) -> tuple[ModelLocation, Any]:
        """Load the model ``options`` names (warming the cache); pass ``location`` when it
        is already resolved, so the sources are not asked twice."""
        with self._use(options, location) as (location, model):
            return location, model

    @contextmanager
    def _use(
        self, options: TranscribeOptions, location: ModelLocation | None = None
    ) -> Iterator[tuple[ModelLocation, Any]]:
        """The model ``options`` names, kept loaded until the block ends."""
        location = location or self.resolver.resolve(options.model)
        assert location.path is not None, "a resolved model always has a path"
        device = pick_device(options.device)
        with self.models.use(
            location.path,
            device,
            pick_compute_type(options.compute_type, device),
            options.cpu_threads or default_cpu_threads(),
        ) as model:
            yield location, model

    def transcribe(
        self,
        audio: AudioInput,
        options: TranscribeOptions,
        progress: ProgressCallback | None = None,
        on_segments: SegmentsCallback | None = None,
        detected: DetectedLanguage | None = None,
    ) -> Transcript:
        """Transcribe ``audio`` with ``options``; see :class:`TranscribeOptions`.
        ``on_segments`` is told of each segment as soon as it is transcribed.

        ``detected`` is what :meth:`detect_language` found in this same audio with these
        same options (a worker hands it to a short job that runs alone after its language
        was detected): where detecting again provably finds the same (one window of at
        most 30 seconds, decoded as detection sees it; see :func:`_reusable`), the
        transcript reports it and the detection's encoder pass is not repeated. Elsewhere
        it is ignored.
        """
        location = self.resolver.resolve(options.model)
        _check_language(options, location.multilingual, location.name)
        with (
            AudioStream(audio, start=options.clip_start, end=options.clip_end) as stream,
            self._use(options, location) as (location, model),
        ):
            multilingual = bool(model.model.is_multilingual)
            _check_language(options, multilingual, location.name)
            run = WindowedRun(model, options, stream.start, stream.expected_duration, progress)
            run.on_segments = on_segments
            opening: Any = None  # the first block, to tell the language if nothing is heard
            try:
                for block in stream.blocks(windows.BLOCK_S):
                    opening = block if opening is None else opening
                    run.feed(block)
                stream.finish()
                run.detected = _reusable(detected, options, stream.samples)
                run.close()
            except _ProgressAborted as stop:
                raise stop.error from None
            except CesarError:
                raise
            except (RuntimeError, MemoryError, ValueError) as exc:
                raise TranscriptionError(f"The transcription engine failed: {exc}.") from exc
        if progress:
            progress(1.0)
        warnings: tuple[str, ...] = ()
        if run.peak < SILENCE_PEAK:
            warnings = (
                f"{stream.name} is silent (peak {_dbfs(run.peak)}); nothing to transcribe.",
            )
        elif not run.segments and not multilingual:
            # What an English-only model makes of speech in another language, most often.
            heard = self._heard_language(opening, options)
            sounds = f"it sounds like language {heard!r}, and " if heard else ""
            warnings = (
                f"No speech was recognised in {stream.name}: {sounds}model {location.name!r} "
                "understands English only. For speech in another language, use the "
                f"multilingual model: {MULTILINGUAL_HINT}",
            )
        elif not run.segments:
            warnings = (f"No speech was recognised in {stream.name}.",)
        for message in warnings:
            logger.warning(message)
        segments = review(run.segments, options, run.loops.ends)
        return Transcript(
            text=" ".join(segment.text for segment in segments if segment.text),
            segments=segments,
            language=run.language or options.language or "en",
            language_probability=run.language_probability,
            top_languages=run.top_languages,
            duration=stream.samples / SAMPLE_RATE,
            model=location.name,
            task=options.task,
            warnings=warnings,
        )

    def detect_language(self, audio: AudioInput, options: TranscribeOptions) -> DetectedLanguage:
        """The language :meth:`transcribe` would report for ``audio`` without
        ``options.language`` (a :class:`~cesar_core.detection.LanguageDetecting`), found
        the same way: faster-whisper's detection, one encoder pass, on the first window.

        A worker packing short jobs asks this first, so that only jobs of one language
        share a window, and each still gets the probability and top languages it would
        get alone. A model that knows English only hears English, for sure.
        """
        with (
            AudioStream(audio, start=options.clip_start, end=options.clip_end) as stream,
            self._use(options) as (_, model),
        ):
            opening = next(iter(stream.blocks(windows.BLOCK_S)), None)
            if opening is None:
                stream.finish()  # says why there is nothing to hear
                raise TranscriptionError(f"{stream.name} holds no audio to detect a language in.")
            if not model.model.is_multilingual:
                return DetectedLanguage(language="en", probability=1.0)
            try:
                language, probability, scores = model.detect_language(audio=opening)
            except (RuntimeError, MemoryError, ValueError) as exc:
                raise TranscriptionError(f"The transcription engine failed: {exc}.") from exc
        return DetectedLanguage(
            language=str(language),
            probability=round(float(probability), 4),
            top_languages=top_languages(scores),
        )

    def _heard_language(self, samples: Any, options: TranscribeOptions) -> str | None:
        """The language other than English that a multilingual model available offline
        hears, with some confidence, in ``samples``: what an English-only model cannot tell.
        None when there is no such model, it hears English, or it is unsure."""
        found = next(
            (m for m in self.resolver.available() if m.multilingual and m.path is not None), None
        )
        if found is None or samples is None:
            return None
        try:
            with self._use(attrs.evolve(options, model=found.name)) as (_, model):
                language, probability, _ = model.detect_language(audio=samples)
        except (CesarError, RuntimeError, ValueError) as exc:
            logger.info("could not tell the language with %s: %s", found.name, exc)
            return None
        return str(language) if language != "en" and probability >= 0.5 else None


def _reusable(
    detected: DetectedLanguage | None, options: TranscribeOptions, samples: int
) -> DetectedLanguage | None:
    """``detected`` (by :meth:`WhisperTranscriber.detect_language`, in the same audio),
    where faster-whisper, given no language, would detect it again and provably find the
    same; None elsewhere, and faster-whisper detects as it always did.

    Given no language, faster-whisper computes the log-Mel features of all the audio it is
    handed (normalised to their loudest point) and detects on their first 30 seconds, one
    encoder pass (``language_detection_segments=1``: below its threshold it still takes the
    likeliest language, so an unsure detection is reused as well). ``detect_language``
    computes them on the first 30 seconds alone: the same features only when the audio
    (``samples`` long) is at most 30 seconds, so one window. It must also be decoded as
    that detection sees it: unbatched (batched decoding detects on its clips' features),
    without voice detection (which detects on the speech it keeps), without a language per
    segment (detected again every 30 seconds) and without a list of languages to choose
    among (which restricts detection).
    """
    if (
        detected is None
        or options.language is not None
        or options.batched
        or options.vad_filter
        or options.multilingual
        or options.languages
        or samples > DETECTION_SAMPLES
    ):
        return None
    return detected


def _dbfs(peak: float) -> str:
    return "-inf dBFS" if peak <= 0 else f"{20 * np.log10(peak):.0f} dBFS"


def needs_multilingual(options: TranscribeOptions) -> tuple[str, str] | None:
    """What ``options`` ask that only a multilingual model can do, as the end of the
    sentence "so it cannot ...", and the option that asks it; None when English will do.

    Checked before any audio is read, by the library and by the HTTP adapter alike:
    faster-whisper itself would quietly switch ``multilingual`` off on an English-only
    model, and transcribe as if it had never been asked.
    """
    others = sorted(set(options.languages) - {"en"})
    if options.language not in (None, "en"):
        return f"do language {options.language!r}", "language"
    if others:
        return f"do language {others[0]!r}", "languages"
    if options.task is Task.TRANSLATE:
        return "do translation", "task"
    if options.multilingual:
        return "tell a language per segment (multilingual)", "multilingual"
    return None


def _check_language(options: TranscribeOptions, multilingual: bool | None, name: str) -> None:
    asked = needs_multilingual(options) if multilingual is False else None
    if asked is not None:
        raise UnsupportedLanguageError(
            f"Model {name!r} understands English only, so it cannot {asked[0]}.",
            hint=f"Use the multilingual model: {MULTILINGUAL_HINT}",
        )


__all__ = ["ModelCache", "WhisperTranscriber", "needs_multilingual"]
