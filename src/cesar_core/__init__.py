"""Cesar's core library: offline speech-to-text with faster-whisper.

The public API is what this module exports; everything else is an implementation detail
that may change between releases.

>>> import cesar_core
>>> transcript = cesar_core.transcribe("talk.mp3", word_timestamps=True)  # doctest: +SKIP
>>> print(transcript.text)  # doctest: +SKIP
"""

from ._version import __version__
from .api import default_transcriber, make_options, transcribe
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
from .hookspecs import hookimpl
from .protocols import ModelLocation, ModelSource, ProgressCallback, Transcriber
from .settings import Settings
from .transcript import (
    DEFAULT_MODEL,
    Device,
    Segment,
    Task,
    TranscribeOptions,
    Transcript,
    Word,
)
from .transcription.formats import FORMATS, render
from .transcription.models import ModelResolver
from .transcription.whisper import WhisperTranscriber

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
