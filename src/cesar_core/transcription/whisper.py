"""The faster-whisper transcriber: warm, shared models and a progress callback.

Loading a model costs far more than a short transcription, so loaded models are cached by
(directory, device, compute type, threads) and shared by every caller and thread; a
per-key lock makes concurrent first calls load a model once.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CesarError, TranscriptionError, UnsupportedLanguageError
from ..protocols import AudioInput, ModelLocation, ProgressCallback
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
from .models import ModelResolver
from .windows import SILENCE_PEAK, WindowedRun, _ProgressAborted

logger = logging.getLogger(__name__)

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

    def __init__(self, settings: Settings, resolver: ModelResolver | None = None) -> None:
        """``resolver`` finds models by name; by default only through the built-in sources
        (directories, carrier packages, the cache, the hub when allowed). The edges pass one
        built from every plugin's sources (:meth:`ModelResolver.from_plugins`)."""
        self.settings = settings
        self.resolver = resolver or ModelResolver.builtin(settings)
        self.models = ModelCache()

    def load(
        self, options: TranscribeOptions, location: ModelLocation | None = None
    ) -> tuple[ModelLocation, Any]:
        """Load the model ``options`` names (warming the cache); pass ``location`` when it
        is already resolved, so the sources are not asked twice."""
        location = location or self.resolver.resolve(options.model)
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
        with AudioStream(audio, start=options.clip_start, end=options.clip_end) as stream:
            location, model = self.load(options, location)
            _check_language(options, bool(model.model.is_multilingual), location.name)
            run = WindowedRun(model, options, stream.start, stream.expected_duration, progress)
            try:
                for block in stream.blocks(windows.WINDOW_S):
                    run.feed(block)
                stream.finish()
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
        elif not run.segments:
            warnings = (f"No speech was recognised in {stream.name}.",)
        for message in warnings:
            logger.warning(message)
        return Transcript(
            text=" ".join(segment.text for segment in run.segments if segment.text),
            segments=tuple(run.segments),
            language=run.language or options.language or "en",
            language_probability=run.language_probability,
            duration=stream.samples / SAMPLE_RATE,
            model=location.name,
            task=options.task,
            warnings=warnings,
        )


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


__all__ = ["ModelCache", "WhisperTranscriber"]
