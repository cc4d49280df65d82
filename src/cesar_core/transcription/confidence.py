"""What the engine knows of its own confidence, kept instead of thrown away.

faster-whisper decides the language inside its decoding loop and says which it chose only
for the first window; it repeats itself in loops on music and silence; and it scores every
segment. This module watches (and, when asked, restricts) its language detection, so each
segment can say which language it was decoded as; collapses repeated-phrase loops; and
flags the segments that fail the engine's own thresholds, so a reader knows what to check.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

import attrs

from ..transcript import LanguageScore, Segment, TranscribeOptions, Word

#: How many alternative languages a transcript keeps.
TOP_LANGUAGES = 5
#: A phrase of up to this many words said this many times in a row or more is a loop.
_LOOP_PHRASE_WORDS = 8
_LOOP_REPEATS = 4
#: This many consecutive segments with the same text are a loop too.
_LOOP_SEGMENTS = 3


class LanguageWatch:
    """A shallow copy of a faster-whisper model whose language detection is seen and,
    with ``allowed`` codes, restricted to them.

    faster-whisper asks CTranslate2's ``detect_language`` once before decoding (when no
    language is given) and, with ``multilingual``, again before every 30 seconds it decodes;
    the segments that follow are decoded in the language it returned. Wrapping that one
    call gives each segment its language, and lets a caller who knows the audio is German,
    French or Italian keep whisper from choosing anything else. The probabilities of the
    allowed languages are renormalised to add up to 1 among themselves.
    """

    def __init__(self, model: Any, allowed: tuple[str, ...] = ()) -> None:
        self.model = copy.copy(model)
        self.model.model = _Detector(model.model, {f"<|{code}|>" for code in allowed}, self)
        #: The language of the latest detection, and its scores (likeliest first).
        self.last: str | None = None
        self.scores: list[tuple[str, float]] = []


class _Detector:
    """CTranslate2's Whisper model with ``detect_language`` watched; the rest delegated."""

    def __init__(self, inner: Any, allowed: set[str], watch: LanguageWatch) -> None:
        self._inner = inner
        self._allowed = allowed
        self._watch = watch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def detect_language(self, *args: Any, **kwargs: Any) -> list[list[tuple[str, float]]]:
        results: list[list[tuple[str, float]]] = self._inner.detect_language(*args, **kwargs)
        if self._allowed:
            results = [_restrict(scores, self._allowed) for scores in results]
        if results and results[0]:
            self._watch.scores = [(token[2:-2], float(p)) for token, p in results[0]]
            self._watch.last = self._watch.scores[0][0]
        return results


def _restrict(scores: list[tuple[str, float]], allowed: set[str]) -> list[tuple[str, float]]:
    kept = [(token, float(p)) for token, p in scores if token in allowed]
    total = sum(p for _, p in kept) or 1.0
    return sorted(((token, p / total) for token, p in kept), key=lambda item: -item[1])


def top_languages(scores: Iterable[tuple[str, float]] | None) -> tuple[LanguageScore, ...]:
    """The :data:`TOP_LANGUAGES` likeliest of ``scores``, rounded like other probabilities."""
    ranked = sorted(scores or (), key=lambda item: -item[1])[:TOP_LANGUAGES]
    return tuple(LanguageScore(language=code, probability=round(p, 4)) for code, p in ranked)


class LoopGuard:
    """Collapses loops as segments come, so that live segments are the final ones.

    A phrase said :data:`_LOOP_REPEATS` times or more in a row within a segment is kept
    once. A segment with the same text as the two before it is dropped: the second of them
    is marked to span it, in :attr:`ends`, for :func:`review` to flag (live segments were
    sent already, so they are left as they were).
    """

    def __init__(self) -> None:
        self._recent: list[Segment] = []
        #: The segments that stand for a dropped loop, by id, and where the loop ended.
        self.ends: dict[int, float] = {}

    def admit(self, segment: Segment) -> Segment | None:
        """``segment`` with its phrase loops collapsed; None when it repeats a loop."""
        segment = _collapse(segment)
        recent = self._recent
        if (
            segment.text.strip()
            and len(recent) >= _LOOP_SEGMENTS - 1
            and all(_same(before.text, segment.text) for before in recent)
        ):
            self.ends[recent[-1].id] = segment.end
            return None
        self._recent = [*recent, segment][-(_LOOP_SEGMENTS - 1) :]
        return segment


def review(
    segments: Iterable[Segment], options: TranscribeOptions, ends: dict[int, float] | None = None
) -> tuple[Segment, ...]:
    """``segments`` with doubtful ones flagged, and those that stand for a loop (``ends``,
    from :class:`LoopGuard`) flagged ``repetition`` and spanning it.

    A flag is set with faster-whisper's own thresholds (the options'): whisper keeps a
    segment that fails them when every fallback temperature failed too, so these are the
    segments it was least sure of.
    """
    ends = ends or {}
    return tuple(
        _doubts(
            _flagged(segment, "repetition", end=ends[segment.id])
            if segment.id in ends
            else segment,
            options,
        )
        for segment in segments
    )


def _doubts(segment: Segment, options: TranscribeOptions) -> Segment:
    flags = []
    if options.log_prob_threshold is not None and segment.avg_logprob < options.log_prob_threshold:
        flags.append("low_logprob")
    ratio = options.compression_ratio_threshold
    if ratio is not None and segment.compression_ratio > ratio:
        flags.append("high_compression")
    if options.no_speech_threshold is not None and (
        segment.no_speech_prob > options.no_speech_threshold
    ):
        flags.append("no_speech")
    for flag in flags:
        segment = _flagged(segment, flag)
    return segment


def _flagged(segment: Segment, flag: str, end: float | None = None) -> Segment:
    flags = segment.flags if flag in segment.flags else (*segment.flags, flag)
    return attrs.evolve(segment, flags=flags, end=segment.end if end is None else end)


def _same(a: str, b: str) -> bool:
    return _key(a) == _key(b)


def _key(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


def _collapse(segment: Segment) -> Segment:
    """The segment with a phrase said :data:`_LOOP_REPEATS` times or more in a row kept
    once (its words too, when they were timed); flagged ``repetition`` when it had one."""
    units = [word.word for word in segment.words] if segment.words else segment.text.split()
    keep = _loop_free(units)
    if len(keep) == len(units):
        return segment
    if segment.words:
        words: tuple[Word, ...] = tuple(segment.words[i] for i in keep)
        text = "".join(word.word for word in words).strip()
        segment = attrs.evolve(segment, words=words, text=text)
    else:
        segment = attrs.evolve(segment, text=" ".join(units[i] for i in keep))
    return _flagged(segment, "repetition")


def _loop_free(units: list[str]) -> list[int]:
    """The indexes of ``units`` to keep: each run of a repeated phrase kept once."""
    keys = [_key(unit) for unit in units]
    keep: list[int] = []
    i = 0
    while i < len(units):
        step = _loop_at(keys, i)
        if step is None:
            keep.append(i)
            i += 1
        else:
            size, count = step
            keep.extend(range(i, i + size))
            i += size * count
    return keep


def _loop_at(keys: list[str], i: int) -> tuple[int, int] | None:
    """The shortest phrase starting at ``i`` that repeats in a loop, as (words, times)."""
    for size in range(1, _LOOP_PHRASE_WORDS + 1):
        phrase = keys[i : i + size]
        if len(phrase) < size:
            return None
        if not all(phrase):
            continue
        count = 1
        while keys[i + count * size : i + (count + 1) * size] == phrase:
            count += 1
        if count >= _LOOP_REPEATS:
            return size, count
    return None
