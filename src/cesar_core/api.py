"""The one-call API for scripts: ``cesar_core.transcribe("talk.mp3")``."""

from __future__ import annotations

import threading
from typing import Any

import attrs

from .diarization import DiarizingTranscriber, with_diarization
from .errors import InvalidOptionsError
from .plugins import get_manager
from .protocols import AudioInput, ProgressCallback
from .settings import Settings
from .transcript import TranscribeOptions, Transcript
from .transcription.models import ModelResolver
from .transcription.whisper import WhisperTranscriber

_lock = threading.Lock()
_default: WhisperTranscriber | None = None
_speakers: DiarizingTranscriber | None = None

_OPTION_NAMES = frozenset(field.name for field in attrs.fields(TranscribeOptions))


def default_transcriber() -> WhisperTranscriber:
    """The process-wide transcriber whose models stay loaded between calls."""
    global _default
    with _lock:
        if _default is None:
            # The library's one-call entry point is an edge: it reads the settings and the
            # plugins (model sources) here, once, and hands them to the engine.
            settings = Settings.load()
            _default = WhisperTranscriber(
                settings, ModelResolver.from_plugins(get_manager(), settings)
            )
        return _default


def make_options(settings: Settings | None = None, **options: Any) -> TranscribeOptions:
    """Build options from keyword arguments, naming any unknown one; ``None`` means default."""
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise InvalidOptionsError(
            f"Unknown transcription option(s): {', '.join(unknown)}.",
            hint=f"Known options: {', '.join(sorted(_OPTION_NAMES))}.",
        )
    given = {name: value for name, value in options.items() if value is not None}
    if "model" not in given and settings is not None:
        given["model"] = settings.model
    return TranscribeOptions(**given)


def transcribe(
    audio: AudioInput, *, progress: ProgressCallback | None = None, **options: Any
) -> Transcript:
    """Transcribe a file path or an open binary file and return the :class:`Transcript`.

    ``options`` are the fields of :class:`TranscribeOptions` (``model``, ``language``,
    ``word_timestamps``, ...). The model is loaded on the first call and kept warm.
    ``progress`` is called with the fraction of audio done, from 0.0 to 1.0.
    """
    global _speakers
    transcriber = default_transcriber()
    opts = make_options(transcriber.settings, **options)
    if opts.diarize is None:
        return transcriber.transcribe(audio, opts, progress=progress)
    with _lock:  # one wrapper, so the diarizer's model stays warm between calls too
        if _speakers is None or _speakers.inner is not transcriber:
            _speakers = with_diarization(transcriber, get_manager(), transcriber.settings)
        engine = _speakers
    return engine.transcribe(audio, opts, progress=progress)
