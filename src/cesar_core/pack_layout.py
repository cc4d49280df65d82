"""Short clips share one window of the model: which may, how they are laid out, and how the
window's transcript is split back into one transcript per clip.

Whisper always encodes 30 seconds of audio, so a 5-second clip costs as much encoder work as
30 seconds of speech. Clips laid end to end with silence between them, at most
:data:`WINDOW_S` seconds in all, are transcribed in one call; the result, timed word by word,
is cut back at the silences (:func:`split`). Whatever cannot be cut cleanly (a segment or a
word that reaches across the silence between two clips), or was heard with too little
confidence, is reported, and those clips are transcribed alone: sharing must never make
what a job gets back worse, only faster.

This module is pure computation on samples and transcripts; :mod:`cesar_core.packing` runs it.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt

from .jobs import Job, SourceKind
from .protocols import AudioInput
from .transcript import Segment, TranscribeOptions, Transcript, Word
from .transcription.audio import SAMPLE_RATE, AudioStream

#: What whisper hears at once; a window of clips and their gaps is at most this long.
WINDOW_S = 30.0
#: Silence laid between two clips, in seconds (bench/throughput.py measured 0.5 to 2 s).
GAP_S = 1.0
#: A clip longer than this never shares: it would leave little room for company.
MAX_SHARED_S = 20.0
#: Samples quieter than this (-60 dBFS) count as silence (as in the transcriber).
SILENCE_PEAK = 10 ** (-60 / 20)
#: A clip whose words the shared window heard with a mean probability below this is
#: transcribed alone. The clips before it in a window can lead whisper astray on it ("The
#: train to masterly met I look like tomorrow morning." for "... Boston leaves at nine
#: o'clock ..."); on 78 clips, 6 fell below 0.7, and alone 4 of those came out better and 1
#: worse, for a corpus WER of 0.074 against 0.087 (bench/pack_confidence.py,
#: docs/performance.md).
MIN_WORD_PROBABILITY = 0.7

Samples = npt.NDArray[np.float32]


def share_key(job: Job) -> TranscribeOptions | None:
    """What a job must have in common with another to share a window with it (None: the
    job never shares).

    Jobs share when every option but their clip range and word timestamps is the same, with
    the language fixed: a job with a prompt, voice detection, batched decoding, speakers, a
    language per window or a list of languages to detect among, or a URL source runs alone.
    A job without a language on a model that is not English-only gets a key without one:
    whisper would detect one language for the whole window, so such jobs share only once
    each one's language is detected (:mod:`cesar_core.packing`), with jobs of that language.
    """
    options = job.options
    if (
        job.source.kind is SourceKind.URL
        or options.initial_prompt
        or options.vad_filter
        or options.batched
        or getattr(options, "diarize", None) is not None
        or getattr(options, "multilingual", False)
        or getattr(options, "languages", ())
    ):
        return None
    language = options.language
    if language is None and options.model.endswith(".en"):
        language = "en"
    return attrs.evolve(
        options, language=language, word_timestamps=True, clip_start=None, clip_end=None
    )


def decode_short(audio: AudioInput, options: TranscribeOptions, longest: float) -> Samples | None:
    """The samples of the job's clip, or None when it is longer than ``longest`` seconds or
    silent (such a job runs alone). Bad audio raises, as it would for the transcriber."""
    with AudioStream(audio, start=options.clip_start, end=options.clip_end) as stream:
        expected = stream.expected_duration
        if expected is not None and expected > longest + 1:
            return None
        blocks = []
        for block in stream.blocks(longest + 1):
            blocks.append(block)
            if stream.samples > longest * SAMPLE_RATE:
                return None
        stream.finish()
    samples = np.concatenate(blocks)
    if not samples.size or float(np.max(np.abs(samples))) < SILENCE_PEAK:
        return None
    return samples


def plan(durations: Sequence[float], max_clips: int, gap: float = GAP_S) -> list[list[int]]:
    """Group clips (by index, in order) into windows of at most :data:`WINDOW_S` seconds
    with ``gap`` between clips and at most ``max_clips`` each; a group of one runs alone."""
    windows: list[list[int]] = []
    current: list[int] = []
    length = 0.0
    for index, duration in enumerate(durations):
        needed = duration if not current else length + gap + duration
        if current and (needed > WINDOW_S or len(current) >= max_clips):
            windows.append(current)
            current, needed = [], duration
        current.append(index)
        length = needed
    if current:
        windows.append(current)
    return windows


def join(clips: Sequence[Samples], gap: float = GAP_S) -> tuple[Samples, list[float]]:
    """The window's samples (``clips`` with ``gap`` seconds of silence between them) and
    where each clip starts in it, in seconds."""
    silence = np.zeros(round(gap * SAMPLE_RATE), dtype=np.float32)
    parts: list[Samples] = []
    starts = []
    at = 0
    for clip in clips:
        if parts:
            parts.append(silence)
            at += len(silence)
        starts.append(at / SAMPLE_RATE)
        parts.append(clip)
        at += len(clip)
    return np.concatenate(parts), starts


def wav(samples: Samples) -> io.BytesIO:
    """``samples`` as a 32-bit float WAV file in memory: what a transcriber reads."""
    data = samples.astype("<f4").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 3, 1, SAMPLE_RATE, SAMPLE_RATE * 4, 4, 32)
    buffer = io.BytesIO(header + b"data" + struct.pack("<I", len(data)) + data)
    buffer.name = "a window of short jobs"
    return buffer


def split(
    window: Transcript,
    starts: Sequence[float],
    durations: Sequence[float],
    options: Sequence[TranscribeOptions],
) -> list[Transcript | None]:
    """One transcript per clip, timed on the clip's own timeline, from the window's.

    Each clip owns the window from the middle of the silence before it to the middle of the
    silence after it. A segment whose words (or, without words, whose start and end) fall
    in two clips' parts, or a word that does, makes both clips None: they are to be
    transcribed alone. So is a clip left with no text, since alone it would have some
    (silent clips never share), and one heard with little confidence (:func:`doubtful`).
    """
    count = len(starts)
    bounds = _bounds(starts, durations)
    owned: list[list[Segment]] = [[] for _ in range(count)]
    broken: set[int] = set()
    for segment in window.segments:
        owners = _owners(segment, bounds)
        if len(owners) > 1:
            broken |= set(range(min(owners), max(owners) + 1))
            continue
        owned[owners.pop()].append(segment)
    results: list[Transcript | None] = []
    for index in range(count):
        segments = tuple(
            _moved(segment, number, starts[index], durations[index], options[index])
            for number, segment in enumerate(owned[index])
        )
        text = " ".join(segment.text for segment in segments if segment.text)
        if index in broken or not text or doubtful(owned[index]):
            results.append(None)
            continue
        results.append(
            attrs.evolve(
                window,
                text=text,
                segments=segments,
                duration=durations[index],
                warnings=(),
            )
        )
    return results


class LiveSplit:
    """A window's segments, as they are transcribed, handed to their clips once settled.

    A clip is settled when the window's segments have moved past it (a segment lies wholly
    in a later clip's part): nothing that comes later can reach back across its silence,
    so its segments are the ones :func:`split` will give it. A clip that a segment
    straddles is never handed anything (it is to be transcribed alone), nor is one left
    without text or heard with little confidence (:func:`doubtful`); the last clip is
    settled only by the window's end, when :func:`split` takes over.
    """

    def __init__(
        self,
        starts: Sequence[float],
        durations: Sequence[float],
        options: Sequence[TranscribeOptions],
    ) -> None:
        self.starts, self.durations, self.options = starts, durations, options
        self._bounds = _bounds(starts, durations)
        self._held: list[list[Segment]] = [[] for _ in starts]
        self._broken: set[int] = set()
        self._open = 0  # the first clip not settled yet

    def add(self, segments: Sequence[Segment]) -> list[tuple[int, tuple[Segment, ...]]]:
        """Take the window's next segments; return each clip they settle, by index, with
        its segments on its own timeline (as :func:`split` numbers and times them)."""
        settled = []
        for segment in segments:
            owners = _owners(segment, self._bounds)
            for index in range(self._open, min(owners)):
                held = self._held[index]
                text = any(part.text for part in held)
                if index not in self._broken and text and not doubtful(held):
                    settled.append((index, self._moved(index)))
            self._open = max(self._open, min(owners))
            if len(owners) > 1:
                self._broken |= set(range(min(owners), max(owners) + 1))
            else:
                self._held[owners.pop()].append(segment)
        return settled

    def _moved(self, index: int) -> tuple[Segment, ...]:
        start, duration = self.starts[index], self.durations[index]
        return tuple(
            _moved(segment, number, start, duration, self.options[index])
            for number, segment in enumerate(self._held[index])
        )


def doubtful(segments: Sequence[Segment]) -> bool:
    """Whether the window heard a clip's ``segments`` with too little confidence to keep
    them: their words' mean probability is below :data:`MIN_WORD_PROBABILITY`."""
    mean = mean_word_probability(segments)
    return mean is not None and mean < MIN_WORD_PROBABILITY


def mean_word_probability(segments: Sequence[Segment]) -> float | None:
    """The mean probability of the words in ``segments``; None where they have no words."""
    probabilities = [word.probability for segment in segments for word in segment.words]
    return sum(probabilities) / len(probabilities) if probabilities else None


def _bounds(starts: Sequence[float], durations: Sequence[float]) -> list[float]:
    """Where each clip's part of the window ends: the middle of the silence after it."""
    count = len(starts)
    return [
        (starts[i] + durations[i] + starts[i + 1]) / 2 if i + 1 < count else math.inf
        for i in range(count)
    ]


def _owners(segment: Segment, bounds: Sequence[float]) -> set[int]:
    """The clips whose parts ``segment``'s words (or, without words, its start and end)
    fall in."""
    times = [t for word in segment.words for t in (word.start, word.end)]
    return {
        next(i for i, bound in enumerate(bounds) if time < bound)
        for time in times or (segment.start, segment.end)
    }


def _moved(
    segment: Segment, number: int, start: float, duration: float, options: TranscribeOptions
) -> Segment:
    """``segment`` on its clip's timeline (where the clip started, as the job asked for it),
    kept inside the clip, with words only when the job asked for them."""
    offset = (options.clip_start or 0.0) - start
    low, high = options.clip_start or 0.0, (options.clip_start or 0.0) + duration

    def at(time: float) -> float:
        return min(max(round(time + offset, 3), low), math.floor(high * 1000) / 1000)

    words: tuple[Word, ...] = ()
    if options.word_timestamps:
        words = tuple(attrs.evolve(w, start=at(w.start), end=at(w.end)) for w in segment.words)
    begin = at(segment.start)
    return attrs.evolve(
        segment, id=number, start=begin, end=max(begin, at(segment.end)), words=words
    )
