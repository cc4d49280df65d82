"""Long audio, a window at a time: flat memory whatever the length.

faster-whisper is handed all the audio it transcribes at once, so an hour of audio held
whole would need gigabytes. :class:`WindowedRun` receives decoded blocks, cuts them into
windows of 10 minutes at quiet moments and hands faster-whisper one window at a time;
within a window faster-whisper decodes exactly as one call on the whole file would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ..protocols import ProgressCallback, SegmentsCallback
from ..transcript import DetectedLanguage, LanguageScore, Segment, TranscribeOptions, Word
from .audio import SAMPLE_RATE
from .confidence import LanguageWatch, LoopGuard, top_languages

#: Audio whose loudest sample is below this (-60 dBFS) is treated as silence.
SILENCE_PEAK = 10 ** (-60 / 20)
#: Whisper's own fallback schedule, used when no temperature is given.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: Batched mode without VAD cuts each window into clips of at most this many seconds (what
#: whisper hears at once), each ending in the longest pause of its last
#: :data:`_CUT_SEARCH_S` seconds (see :func:`_clips`).
BATCH_WINDOW_S = 30.0
#: Long audio is transcribed this many seconds at a time (see :class:`WindowedRun`), so
#: memory stays flat: 405 MiB with tiny.en on 10 and on 30 minutes, against 734 and
#: 1,794 MiB for one raw call (bench/transcribe.py). Each window starts afresh, and on
#: eight recordings of six to seven minutes 60 s windows made 0.006 more word errors with
#: base than one raw call, mostly next to the cuts; 600 s windows leave such recordings
#: uncut, transcribed exactly as one raw call does, and cut longer ones every 10 minutes
#: (bench/windows.py, docs/performance.md). The models' features are computed a block at a time
#: (:mod:`.mel`), so a long window costs its samples, not gigabytes of temporaries.
WINDOW_S = 600.0
#: The windows of batched decoding and of ``multilingual``, as they were before.
#: Batched decoding decodes its clips each on its own, with no text carried from one to the
#: next, so longer windows bring it no context; at 600 s the batches changed and a clip's
#: last sentence was dropped (tests/test_batched.py). With ``multilingual``, every window
#: detects its language afresh: in one window faster-whisper's own detection before each
#: 30 s kept English through 35 s of Spanish that began 3 s into a stretch, where a new
#: 60 s window caught it (tests/test_confidence.py, docs/library.md).
SHORT_WINDOW_S = 60.0
#: Audio is decoded and handed to a run this many seconds at a time (whisper's own window:
#: what a language is detected on), however long the windows.
BLOCK_S = 30.0
#: A window ends in the longest pause of its last this-many seconds (see :func:`_cut`).
_CUT_SEARCH_S = 20.0
#: Pauses are measured in frames of 10 ms; a window ends in the quietest 10 of them in a row.
_CUT_FRAME = SAMPLE_RATE // 100
_CUT_SPAN = 10
#: Each window after the first can be primed with at most this many tokens: the end of the
#: text before it, as one faster-whisper call primes each 30 seconds with the text before
#: them (223 is faster-whisper's own cap). 0, the default, starts windows fresh: measured on
#: four long recordings, priming with 223 tokens was worse on three of them and 64 tokens
#: was erratic, while fresh windows matched one raw call (docs/performance.md).
PROMPT_TOKENS = 0
#: faster-whisper stops priming with the text before after a stretch decoded at a
#: temperature above this (its ``prompt_reset_on_temperature``): so do windows.
_PROMPT_RESET_TEMPERATURE = 0.5


class WindowedRun:
    """Feeds long audio to faster-whisper a window at a time, so memory stays flat.

    faster-whisper holds all the audio it is given at once: an hour of audio would hold
    gigabytes. Here the audio is cut into windows of at most
    :data:`WINDOW_S` seconds, each cut in the longest pause of the window's last
    :data:`_CUT_SEARCH_S` seconds so that no word is split, and each window is transcribed
    on its own; the language detected in the first window with speech is kept for the rest.
    Audio shorter than one window is a single faster-whisper call, exactly as without windows.

    Windows start fresh unless :data:`PROMPT_TOKENS` is raised; then each is primed with
    the tokens whisper decoded last, timestamps included, as one unwindowed call primes
    each 30 seconds (see :meth:`_prompt`). Measured, that did not beat fresh windows
    (docs/performance.md). An earlier design passed the text alone, without timestamp
    tokens, and whisper then dropped timestamps and skipped speech.
    """

    def __init__(
        self,
        model: Any,
        options: TranscribeOptions,
        offset: float,
        total: float | None,
        progress: ProgressCallback | None,
    ) -> None:
        self.model = model
        self.options = options
        self.total = total
        self.progress = progress
        #: Told of each segment once it is transcribed (live segments).
        self.on_segments: SegmentsCallback | None = None
        #: The language detected beforehand in exactly the next window, decoded in it and
        #: reported rather than detected again (the transcriber sets it where that is the same).
        self.detected: DetectedLanguage | None = None
        self.segments: list[Segment] = []
        self.language = options.language
        self.language_probability = 1.0 if options.language else 0.0
        self.peak = 0.0
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = offset  # seconds on the file's timeline of _buffer[0]
        #: Blocks fed since the buffer was last joined: joined once a window is full, not
        #: block by block, so a long window's samples are copied once.
        self._incoming: list[npt.NDArray[np.float32]] = []
        self._offset = offset
        self._reported = 0.0
        self._detected: tuple[str, float] = ("en", 0.0)
        #: The likeliest languages of the window the language was detected in.
        self.top_languages: tuple[LanguageScore, ...] = ()
        self._top: tuple[LanguageScore, ...] = ()
        #: Collapses repetition loops before segments are kept or told (live).
        self.loops = LoopGuard()
        short = options.batched or options.multilingual
        self._window = round((SHORT_WINDOW_S if short else WINDOW_S) * SAMPLE_RATE)
        #: The latest tokens decoded (at most :data:`PROMPT_TOKENS`), to prime the next window.
        self.context: list[int] = []

    def feed(self, block: npt.NDArray[np.float32]) -> None:
        """Add decoded samples; transcribe every full window they complete."""
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
        self._incoming.append(block)
        if len(self._buffer) + sum(len(part) for part in self._incoming) < self._window:
            return
        self._join()
        while len(self._buffer) >= self._window:
            self._decode(_cut(self._buffer[: self._window]))

    def close(self) -> None:
        """Transcribe what is left after the last full window."""
        self._join()
        if self._buffer.size:
            self._decode(len(self._buffer))

    def _decode(self, length: int) -> None:
        """Transcribe the first ``length`` samples of the buffer and drop them from it."""
        samples = self._buffer[:length]
        if float(np.max(np.abs(samples))) >= SILENCE_PEAK:
            before = len(self.segments)
            span = (self._buffer_start, self._buffer_start + length / SAMPLE_RATE)
            floor = self.segments[-1].end if self.segments else span[0]
            for raw, language in self._segments(samples):
                self._carry(raw)
                self._report(self._buffer_start - self._offset + float(raw.end))
                segment = self.loops.admit(_segment(raw, len(self.segments), span, language, floor))
                if segment is None:
                    continue
                self.segments.append(segment)
                if self.on_segments is not None:
                    self.on_segments(self.segments[-1:])
            if self.language is None and len(self.segments) > before:
                # Detected on a window that held speech: keep it for the rest of the audio.
                self.language = self._detected[0]
                self.language_probability = self._detected[1]
                self.top_languages = self._top
        # A copy of what is left (at most the end of a window), so that the window's
        # samples are freed now, not when the next window is joined.
        self._buffer = self._buffer[length:].copy()
        self._buffer_start += length / SAMPLE_RATE

    def _join(self) -> None:
        """Append the blocks fed since the last join to the buffer, in one copy."""
        if self._incoming:
            parts = [self._buffer, *self._incoming] if self._buffer.size else self._incoming
            self._buffer = parts[0] if len(parts) == 1 else np.concatenate(parts)
            self._incoming = []

    def _segments(self, samples: npt.NDArray[np.float32]) -> Iterator[tuple[Any, str]]:
        """faster-whisper's segments of ``samples``, each with the language it was decoded
        as (see :class:`~.confidence.LanguageWatch`)."""
        options = self.options
        watch = LanguageWatch(self.model, options.languages)
        known, self.detected = self.detected, None
        kwargs: dict[str, Any] = {
            "language": known.language if known else self.language,
            "task": options.task.value,
            "beam_size": options.beam_size,
            "temperature": (
                FALLBACK_TEMPERATURES if options.temperature is None else options.temperature
            ),
            "initial_prompt": (
                options.initial_prompt if options.batched else self._prompt(watch.model)
            ),
            "word_timestamps": options.word_timestamps,
            "vad_filter": options.vad_filter,
            "multilingual": options.multilingual,
            "condition_on_previous_text": options.condition_on_previous_text,
            "compression_ratio_threshold": options.compression_ratio_threshold,
            "log_prob_threshold": options.log_prob_threshold,
            "no_speech_threshold": options.no_speech_threshold,
            "hallucination_silence_threshold": options.hallucination_silence_threshold,
        }
        if options.batched:
            from faster_whisper import BatchedInferencePipeline

            if not options.vad_filter:
                # Always clips, even for one: faster-whisper refuses exactly 30 s without.
                kwargs["clip_timestamps"] = _clips(samples)
            segments, info = BatchedInferencePipeline(watch.model).transcribe(
                samples, batch_size=options.batch_size, **kwargs
            )
        else:
            segments, info = watch.model.transcribe(samples, **kwargs)
        self._detected = (info.language, round(float(info.language_probability), 4))
        self._top = top_languages(info.all_language_probs)
        if known is not None:  # what detecting again would have found
            self._detected, self._top = (known.language, known.probability), known.top_languages
        for segment in segments:
            yield segment, (watch.last if options.multilingual else None) or info.language

    def _prompt(self, model: Any) -> str | list[int] | None:
        """What primes the next window: the user's prompt, then the latest tokens decoded.

        faster-whisper keeps a user's prompt only until 223 tokens of speech push it out;
        here it primes every window (names and spellings matter all along) and the text
        before fills what room is left. Without ``condition_on_previous_text`` windows
        start from the user's prompt alone, as faster-whisper's 30-second stretches do.
        """
        user = self.options.initial_prompt
        if not self.context or not self.options.condition_on_previous_text:
            return user
        prompt: list[int] = []
        if user:  # tokenised as faster-whisper tokenises a text prompt
            prompt = model.hf_tokenizer.encode(" " + user.strip(), add_special_tokens=False).ids
        prompt = prompt[:PROMPT_TOKENS]
        room = PROMPT_TOKENS - len(prompt)
        return [*prompt, *self.context[-room:]] if room > 0 else prompt

    def _carry(self, raw: Any) -> None:
        """Keep ``raw``'s tokens to prime the next window, unless whisper struggled with it
        (decoded at a high temperature: faster-whisper then stops priming too)."""
        if PROMPT_TOKENS <= 0:
            return
        if raw.temperature is not None and raw.temperature > _PROMPT_RESET_TEMPERATURE:
            self.context = []
        else:
            self.context = [*self.context, *map(int, raw.tokens)][-PROMPT_TOKENS:]

    def _report(self, done: float) -> None:
        if not self.progress or not self.total:
            return
        fraction = min(1.0, done / self.total)
        if fraction > self._reported:
            self._reported = fraction
            try:
                self.progress(fraction)
            except BaseException as exc:
                raise _ProgressAborted(exc) from exc


class _ProgressAborted(Exception):
    """Carries an exception raised by the progress callback past our error wrapping."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _segment(
    raw: Any, index: int, span: tuple[float, float], language: str, floor: float = 0.0
) -> Segment:
    """Our :class:`Segment` from faster-whisper's, moved onto the file's timeline and kept
    inside ``span``, the window it was heard in (start and end on that timeline), and not
    before ``floor``, where the segment before it ended.

    Whisper times speech on a 30-second grid padded with silence, so near the end of a
    window it can put an end past the last sample (27.6 s on a 27.2 s file, 39.9 s for a
    clip ending at 26 s): subtitles would outlast the sound, and one window's segments
    would overlap the next's. The text is kept, only its times are clamped.
    """
    offset = span[0]
    span = (max(offset, floor), span[1])
    words = tuple(
        Word(
            start=start,
            end=end,
            word=w.word,
            probability=round(float(w.probability), 4),
        )
        for w in raw.words or ()
        for start, end in [_clamp(float(w.start) + offset, float(w.end) + offset, span)]
    )
    start, end = _clamp(float(raw.start) + offset, float(raw.end) + offset, span)
    return Segment(
        id=index,
        start=start,
        end=end,
        text=raw.text.strip(),
        words=words,
        avg_logprob=round(float(raw.avg_logprob), 4),
        no_speech_prob=round(float(raw.no_speech_prob), 4),
        compression_ratio=round(float(raw.compression_ratio), 4),
        temperature=None if raw.temperature is None else float(raw.temperature),
        tokens=tuple(int(token) for token in raw.tokens),
        seek=round(offset * 100) + int(raw.seek),
        language=language,
    )


def _clamp(start: float, end: float, span: tuple[float, float]) -> tuple[float, float]:
    """``start`` and ``end`` rounded to the millisecond and kept inside ``span``, in order.

    The upper bound is rounded down, so that rounding never lifts a time past the end.
    """
    low = math.ceil(span[0] * 1000 - 1e-6) / 1000
    high = max(low, math.floor(span[1] * 1000 + 1e-6) / 1000)
    start = min(max(round(start, 3), low), high)
    return start, min(max(round(end, 3), start), high)


def _cut(window: npt.NDArray[np.float32]) -> int:
    """Where to end ``window``: the quietest 100 ms of the longest pause in its last
    :data:`_CUT_SEARCH_S` seconds.

    A pause is a run of 10 ms frames no louder than twice the quietest frame there (or
    than -60 dBFS, for digital silence). The longest run is a sentence's end rather than a
    gap between two words: taking the quietest 100 ms of the whole stretch instead cut
    between words when several gaps were about as quiet (the noise floor decided), and the
    words either side of such a cut, each heard without the other, came out wrong
    (docs/performance.md). Where that quietest 100 ms lay in the longest pause anyway,
    the cut is where it was.
    """
    search = min(len(window), round(_CUT_SEARCH_S * SAMPLE_RATE))
    frames = search // _CUT_FRAME
    if frames < 2:
        return len(window)
    tail = window[len(window) - frames * _CUT_FRAME :].reshape(frames, _CUT_FRAME)
    power = np.mean(tail * tail, axis=1)
    quiet = np.sqrt(power) <= max(2 * float(np.sqrt(power.min())), SILENCE_PEAK)
    # Runs of quiet frames: where each starts and ends (exclusive); then the longest.
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    starts, ends = edges[::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    first, last = int(starts[longest]), int(ends[longest])
    # Its quietest 100 ms, on the grid of 100 ms ending with the window.
    blocks = frames // _CUT_SPAN
    begins = frames - (blocks - np.arange(blocks)) * _CUT_SPAN
    inside = (begins >= first) & (begins + _CUT_SPAN <= last)
    if inside.any():
        block = power[frames - blocks * _CUT_SPAN :].reshape(blocks, _CUT_SPAN).mean(axis=1)
        begin = int(begins[int(np.argmin(np.where(inside, block, np.inf)))])
        middle = begin * _CUT_FRAME + _CUT_SPAN * _CUT_FRAME // 2
    else:  # a pause shorter than 100 ms: its middle
        middle = (first + last) * _CUT_FRAME // 2
    return len(window) - frames * _CUT_FRAME + middle


def _clips(samples: npt.NDArray[np.float32]) -> list[dict[str, float]]:
    """The clips batched mode decodes ``samples`` in (``clip_timestamps``, in seconds).

    Each is at most :data:`BATCH_WINDOW_S` long and ends in the longest pause near its
    end, as windows do. Clips cut every 30 s regardless of the speech split sentences, and
    whisper, decoding a clip without timestamps, drops a sentence cut at either edge: on
    10 minutes of speech batched decoding kept 1,204 of 1,315 words (WER 0.12, 0.04
    unbatched); cut in pauses it keeps 1,313 (WER 0.04). faster-whisper's own batched mode
    avoids this by cutting at the pauses its voice detection finds.
    """
    longest = round(BATCH_WINDOW_S * SAMPLE_RATE)
    clips = []
    start = 0
    while len(samples) - start > longest:
        end = start + _cut(samples[start : start + longest])
        clips.append((start, end))
        start = end
    clips.append((start, len(samples)))
    return [{"start": a / SAMPLE_RATE, "end": b / SAMPLE_RATE} for a, b in clips]
