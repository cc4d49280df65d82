"""The faster-whisper transcriber: warm, shared models and a progress callback.

Loading a model costs far more than a short transcription, so loaded models are cached by
(directory, device, compute type, threads) and shared by every caller and thread; a
per-key lock makes concurrent first calls load a model once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from attrs import evolve

from ..errors import CesarError, TranscriptionError, UnsupportedLanguageError
from ..protocols import AudioInput, ModelLocation, ProgressCallback
from ..settings import Settings
from ..transcript import (
    Device,
    Segment,
    Task,
    TranscribeOptions,
    Transcript,
    Word,
    default_cpu_threads,
)
from .audio import SAMPLE_RATE, DecodedAudio, describe, load_audio
from .models import ModelResolver

logger = logging.getLogger(__name__)

#: Audio whose loudest sample is below this (-60 dBFS) is treated as silence.
SILENCE_PEAK = 10 ** (-60 / 20)
#: Whisper's own fallback schedule, used when no temperature is given.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: Batched mode without VAD cuts the audio into windows of this many seconds.
BATCH_WINDOW_S = 30.0

_ModelKey = tuple[str, str, str, int]


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


class ModelCache:
    """Loaded ``WhisperModel`` objects, shared between threads."""

    def __init__(self) -> None:
        self._models: dict[_ModelKey, Any] = {}
        self._locks: dict[_ModelKey, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, path: Path, device: str, compute_type: str, cpu_threads: int) -> Any:
        """The model for this key, loading it on first use."""
        key = (str(path), device, compute_type, cpu_threads)
        with self._guard:
            if key in self._models:
                return self._models[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._models:
                    return self._models[key]
            from faster_whisper import WhisperModel

            try:
                model = WhisperModel(
                    str(path), device=device, compute_type=compute_type, cpu_threads=cpu_threads
                )
            except ValueError as exc:  # CTranslate2 rejects unsupported compute types this way
                raise TranscriptionError(
                    f"Cannot load the model in {path} on {device} with compute type "
                    f"{compute_type!r}: {exc}.",
                    hint="Try --compute-type auto.",
                ) from exc
            except RuntimeError as exc:
                raise TranscriptionError(
                    f"Cannot load the model in {path} on {device}: {exc}.",
                    hint="Check that the directory holds a CTranslate2 whisper model and "
                    "that the device exists (--device cpu always does).",
                ) from exc
            logger.info(
                "loaded model %s on %s (%s, %d threads)", path, device, compute_type, cpu_threads
            )
            with self._guard:
                self._models[key] = model
            return model

    def clear(self) -> None:
        """Forget every loaded model (memory is freed once no transcription holds one)."""
        with self._guard:
            self._models.clear()

    def __len__(self) -> int:
        with self._guard:
            return len(self._models)


class WhisperTranscriber:
    """A :class:`~cesar_core.protocols.Transcriber` backed by faster-whisper."""

    def __init__(
        self, settings: Settings | None = None, resolver: ModelResolver | None = None
    ) -> None:
        from ..plugins import get_manager

        self.settings = settings or Settings.load()
        self.resolver = resolver or ModelResolver.from_plugins(get_manager(), self.settings)
        self.models = ModelCache()

    def load(self, options: TranscribeOptions) -> tuple[ModelLocation, Any]:
        """Resolve and load the model ``options`` names (warming the cache)."""
        location = self.resolver.resolve(options.model)
        assert location.path is not None, "a resolved model always has a path"
        device = pick_device(options.device)
        model = self.models.get(
            location.path,
            device,
            pick_compute_type(options.compute_type, device),
            options.cpu_threads or default_cpu_threads(),
        )
        return location, model

    def transcribe(
        self,
        audio: AudioInput,
        options: TranscribeOptions,
        progress: ProgressCallback | None = None,
    ) -> Transcript:
        """Transcribe ``audio`` with ``options``; see :class:`TranscribeOptions`."""
        location = self.resolver.resolve(options.model)
        _check_language(options, location.multilingual, location.name)
        decoded = load_audio(audio, start=options.clip_start, end=options.clip_end)
        location, model = self.load(options)
        _check_language(options, bool(model.model.is_multilingual), location.name)
        empty = Transcript(
            text="",
            segments=(),
            language=options.language or "en",
            language_probability=0.0,
            duration=decoded.duration,
            model=location.name,
            task=options.task,
        )
        peak = float(np.max(np.abs(decoded.samples)))
        if peak < SILENCE_PEAK:
            message = f"{describe(audio)} is silent (peak {_dbfs(peak)}); nothing to transcribe."
            logger.warning(message)
            if progress:
                progress(1.0)
            return evolve(empty, warnings=(message,))
        transcript = self._run(model, decoded, options, progress, location.name)
        if not transcript.segments:
            message = f"No speech was recognised in {describe(audio)}."
            logger.warning(message)
            transcript = evolve(transcript, warnings=(*transcript.warnings, message))
        return transcript

    def _run(
        self,
        model: Any,
        decoded: DecodedAudio,
        options: TranscribeOptions,
        progress: ProgressCallback | None,
        model_name: str,
    ) -> Transcript:
        kwargs: dict[str, Any] = {
            "language": options.language,
            "task": options.task.value,
            "beam_size": options.beam_size,
            "temperature": (
                FALLBACK_TEMPERATURES if options.temperature is None else options.temperature
            ),
            "initial_prompt": options.initial_prompt,
            "word_timestamps": options.word_timestamps,
            "vad_filter": options.vad_filter,
        }
        try:
            if options.batched:
                from faster_whisper import BatchedInferencePipeline

                if not options.vad_filter and decoded.duration > BATCH_WINDOW_S:
                    kwargs["clip_timestamps"] = _windows(decoded.duration)
                segments, info = BatchedInferencePipeline(model).transcribe(
                    decoded.samples, batch_size=options.batch_size, **kwargs
                )
            else:
                segments, info = model.transcribe(decoded.samples, **kwargs)
            collected = _collect(segments, info.duration, decoded.offset, progress)
        except _ProgressAborted as stop:
            raise stop.error from None
        except CesarError:
            raise
        except (RuntimeError, MemoryError, ValueError) as exc:
            raise TranscriptionError(f"The transcription engine failed: {exc}.") from exc
        if progress:
            progress(1.0)
        return Transcript(
            text=" ".join(segment.text for segment in collected if segment.text),
            segments=tuple(collected),
            language=info.language,
            language_probability=round(float(info.language_probability), 4),
            duration=decoded.duration,
            model=model_name,
            task=options.task,
        )


class _ProgressAborted(Exception):
    """Carries an exception raised by the progress callback past our error wrapping."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _collect(
    segments: Iterable[Any], duration: float, offset: float, progress: ProgressCallback | None
) -> list[Segment]:
    collected: list[Segment] = []
    for index, raw in enumerate(segments):
        words = tuple(
            Word(
                start=round(float(w.start) + offset, 3),
                end=round(float(w.end) + offset, 3),
                word=w.word,
                probability=round(float(w.probability), 4),
            )
            for w in raw.words or ()
        )
        collected.append(
            Segment(
                id=index,
                start=round(float(raw.start) + offset, 3),
                end=round(float(raw.end) + offset, 3),
                text=raw.text.strip(),
                words=words,
                avg_logprob=round(float(raw.avg_logprob), 4),
                no_speech_prob=round(float(raw.no_speech_prob), 4),
            )
        )
        if progress and duration > 0:
            try:
                progress(min(1.0, raw.end / duration))
            except BaseException as exc:
                raise _ProgressAborted(exc) from exc
    return collected


def _windows(duration: float) -> list[dict[str, float]]:
    starts = np.arange(0.0, duration, BATCH_WINDOW_S)
    return [{"start": float(s), "end": float(min(s + BATCH_WINDOW_S, duration))} for s in starts]


def _dbfs(peak: float) -> str:
    return "-inf dBFS" if peak <= 0 else f"{20 * np.log10(peak):.0f} dBFS"


def _check_language(options: TranscribeOptions, multilingual: bool | None, name: str) -> None:
    if multilingual is not False:
        return
    if options.language not in (None, "en") or options.task is Task.TRANSLATE:
        asked = (
            "translation" if options.task is Task.TRANSLATE else f"language {options.language!r}"
        )
        raise UnsupportedLanguageError(
            f"Model {name!r} understands English only, so it cannot do {asked}.",
            hint="Use the multilingual model: --model base (pip install 'cesar[multilingual]').",
        )


__all__ = ["SAMPLE_RATE", "ModelCache", "WhisperTranscriber"]
