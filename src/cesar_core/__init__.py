"""Cesar's core library: offline speech-to-text with faster-whisper.

The public API is what this module exports; everything else is an implementation detail
that may change between releases.

>>> import cesar_core
>>> transcript = cesar_core.transcribe("talk.mp3", word_timestamps=True)  # doctest: +SKIP
>>> print(transcript.text)  # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .convert import from_dict, to_dict
from .errors import (
    AudioError,
    AudioNotFoundError,
    CesarError,
    EmptyAudioError,
    InvalidOptionsError,
    ModelIntegrityError,
    ModelNotFoundError,
    NoAudioStreamError,
    TranscriptionError,
    TruncatedAudioError,
    UnsupportedLanguageError,
)
from .protocols import ModelLocation, ModelSource, ProgressCallback, Transcriber
from .transcript import (
    DEFAULT_MODEL,
    Device,
    Segment,
    Task,
    TranscribeOptions,
    Transcript,
    Word,
)

if TYPE_CHECKING:
    from .api import default_transcriber, make_options, transcribe
    from .hookspecs import hookimpl
    from .settings import Settings
    from .transcription.formats import FORMATS, render
    from .transcription.models import ModelResolver
    from .transcription.subtitles import SubtitleOptions
    from .transcription.whisper import WhisperTranscriber

#: Public names that live beside the engine or the plugin machinery, and the module of each.
#: They are imported on first use (PEP 562), so that ``import cesar_core.jobs`` on a node that
#: only queues jobs loads neither faster-whisper, PyAV and NumPy nor pluggy.
_LAZY = {
    "default_transcriber": ".api",
    "make_options": ".api",
    "transcribe": ".api",
    "hookimpl": ".hookspecs",
    "Settings": ".settings",
    "FORMATS": ".transcription.formats",
    "render": ".transcription.formats",
    "ModelResolver": ".transcription.models",
    "SubtitleOptions": ".transcription.subtitles",
    "WhisperTranscriber": ".transcription.whisper",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_MODEL",
    "FORMATS",
    "AudioError",
    "AudioNotFoundError",
    "CesarError",
    "Device",
    "EmptyAudioError",
    "InvalidOptionsError",
    "ModelIntegrityError",
    "ModelLocation",
    "ModelNotFoundError",
    "ModelResolver",
    "ModelSource",
    "NoAudioStreamError",
    "ProgressCallback",
    "Segment",
    "Settings",
    "SubtitleOptions",
    "Task",
    "TranscribeOptions",
    "Transcriber",
    "Transcript",
    "TranscriptionError",
    "TruncatedAudioError",
    "UnsupportedLanguageError",
    "WhisperTranscriber",
    "Word",
    "__version__",
    "default_transcriber",
    "from_dict",
    "hookimpl",
    "make_options",
    "render",
    "to_dict",
    "transcribe",
]
