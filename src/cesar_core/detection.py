"""What a transcriber may also offer: telling the language of a clip without transcribing it.

A worker that packs short jobs into one window of the model (see :mod:`cesar_core.packing`)
can only put jobs of one language in a window, since whisper decodes a window in one
language. Jobs that did not fix their language are asked this first, one encoder pass
each, and share with jobs the model hears in the same language. A transcriber without it
still runs such jobs, each alone. A job that runs alone after all is handed the language
detected in it, so that the detection is not paid twice.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .protocols import AudioInput
from .transcript import DetectedLanguage, TranscribeOptions

__all__ = ["DetectedLanguage", "LanguageDetecting"]


@runtime_checkable
class LanguageDetecting(Protocol):
    """What a :class:`~cesar_core.protocols.Transcriber` may also offer: the language of a
    clip, found the way :meth:`~cesar_core.protocols.Transcriber.transcribe` finds it when
    ``options.language`` is None.

    Optional: without it, a job on a multilingual model that did not fix its language never
    shares a window with other jobs.

    Its ``transcribe`` may also take a ``detected`` keyword argument: the
    :class:`DetectedLanguage` this method found in the same audio with the same options.
    A job that runs alone after its language was detected (unsure, without company of its
    language, or one the split could not place) is handed it, so that its transcription
    need not detect the language again; the transcriber uses it only where its result is
    then the same as detecting again (see
    :meth:`cesar_core.transcription.whisper.WhisperTranscriber.transcribe`). It is no
    option of the job: it is neither stored nor shown.
    """

    def detect_language(self, audio: AudioInput, options: TranscribeOptions) -> DetectedLanguage:
        """The language of the start of ``audio`` (the first window the model hears) with
        the model, device and clip range of ``options``; raise a
        :class:`cesar_core.errors.CesarError` on bad input, as transcribing would."""
        ...
