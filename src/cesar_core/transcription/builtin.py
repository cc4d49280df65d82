"""The built-in transcriber, registered through the ``cesar_transcribers`` hook."""

from __future__ import annotations

from ..hookspecs import hookimpl
from . import TranscriberFactory
from .whisper import WhisperTranscriber


@hookimpl
def cesar_transcribers() -> dict[str, TranscriberFactory]:
    return {"whisper": WhisperTranscriber}
