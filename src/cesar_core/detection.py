"""What a transcriber may also offer: telling the language of a clip without transcribing it.

A worker that packs short jobs into one window of the model (see :mod:`cesar_core.packing`)
can only put jobs of one language in a window, since whisper decodes a window in one
language. Jobs that did not fix their language are asked this first, one encoder pass
each, and share with jobs the model hears in the same language. A transcriber without it
still runs such jobs, each alone.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from attrs import frozen

from .protocols import AudioInput
from .transcript import LanguageScore, TranscribeOptions


@frozen(kw_only=True)
class DetectedLanguage:
    """The language a model hears in a clip, as transcribing the clip alone would report it:
    the likeliest language, its probability and the likeliest others
    (:attr:`~cesar_core.transcript.Transcript.top_languages`)."""

    language: str
    probability: float
    top_languages: tuple[LanguageScore, ...] = ()


@runtime_checkable
class LanguageDetecting(Protocol):
    """What a :class:`~cesar_core.protocols.Transcriber` may also offer: the language of a
    clip, found the way :meth:`~cesar_core.protocols.Transcriber.transcribe` finds it when
    ``options.language`` is None.

    Optional: without it, a job on a multilingual model that did not fix its language never
    shares a window with other jobs.
    """

    def detect_language(self, audio: AudioInput, options: TranscribeOptions) -> DetectedLanguage:
        """The language of the start of ``audio`` (the first window the model hears) with
        the model, device and clip range of ``options``; raise a
        :class:`cesar_core.errors.CesarError` on bad input, as transcribing would."""
        ...
