"""Readable subtitles: cues re-flowed from word timestamps to a width, a line count and a pace.

Whisper's segments make poor cues: up to 90 characters on one line, shown for as long as it
took to say them. Re-flowing takes the words (with their times) and builds cues that a
viewer can read: at most ``max_line_width`` characters a line and ``max_line_count`` lines,
on screen between ``min_cue_duration`` and ``max_cue_duration`` seconds and, where the
speech leaves room, slowly enough for ``max_chars_per_second``. Lines and cues are broken
where a reader expects a pause (after punctuation, before a conjunction) and not between an
article and its noun, and a pause in the speech always starts a new cue.

These are rendering options, not transcription options: they apply to a finished
transcript, so a job's subtitles can be asked for in another shape at download time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
from attrs import field, frozen

from ..errors import InvalidOptionsError
from ..transcript import Transcript
from .reflow import Flow, Limits, tokens

#: Seconds of silence that start a new cue when ``pause_threshold`` is not set.
DEFAULT_PAUSE = 2.0
#: Lines a cue may have when a width is set but no line count.
DEFAULT_LINE_COUNT = 2


def _optional(check: Callable[[float], bool], needs: str) -> Callable[..., None]:
    def validate(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidOptionsError(
                f"{attribute.name} must be a number, not {value!r}.", field=attribute.name
            )
        if not math.isfinite(value) or not check(value):
            raise InvalidOptionsError(
                f"{attribute.name} must be {needs}, not {value}.", field=attribute.name
            )

    return validate


_width = _optional(lambda v: 1 <= v <= 1000, "a whole number from 1 to 1000")
_lines = _optional(lambda v: 1 <= v <= 10, "a whole number from 1 to 10")
_seconds = _optional(lambda v: 0 < v <= 3600, "greater than 0 and at most 3600 seconds")
_min_seconds = _optional(lambda v: 0 <= v <= 3600, "from 0 to 3600 seconds")
_rate = _optional(lambda v: 0 < v <= 1000, "greater than 0 and at most 1000")


def _integer(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not (isinstance(value, int) and not isinstance(value, bool)):
        raise InvalidOptionsError(
            f"{attribute.name} must be a whole number, not {value!r}.", field=attribute.name
        )


@frozen(kw_only=True)
class SubtitleOptions:
    """How srt and vtt cues are shaped. All unset means one cue per segment, as whisper
    writes them; any limit set means cues re-flowed from the words. Invalid values raise
    :class:`~cesar_core.errors.InvalidOptionsError`."""

    max_line_width: int | None = field(default=None, validator=[_integer, _width])
    #: 2 when re-flowing and unset.
    max_line_count: int | None = field(default=None, validator=[_integer, _lines])
    max_cue_duration: float | None = field(default=None, validator=_seconds)
    min_cue_duration: float | None = field(default=None, validator=_min_seconds)
    max_chars_per_second: float | None = field(default=None, validator=_rate)
    #: Silence (seconds) after which a new cue starts; :data:`DEFAULT_PAUSE` when unset.
    pause_threshold: float | None = field(default=None, validator=_seconds)
    #: Karaoke: one cue per spoken word, that word underlined (``<u>``).
    highlight_words: bool = False

    def __attrs_post_init__(self) -> None:
        low, high = self.min_cue_duration, self.max_cue_duration
        if low is not None and high is not None and low > high:
            raise InvalidOptionsError(
                f"min_cue_duration ({low}) must not be more than max_cue_duration ({high})."
            )

    @classmethod
    def preset(cls, name: str | None = None, **overrides: Any) -> SubtitleOptions:
        """The options of preset ``name`` (see :data:`PRESETS`), with ``overrides`` (unset
        ones, None, ignored) on top of it."""
        base: dict[str, Any] = {}
        if name is not None:
            try:
                base = attrs.asdict(PRESETS[name.strip().lower()])
            except KeyError:
                raise InvalidOptionsError(
                    f"Unknown subtitle preset {name!r}.",
                    hint=f"Choose one of: {', '.join(PRESETS)}.",
                ) from None
        base.update({key: value for key, value in overrides.items() if value is not None})
        try:
            return cls(**base)
        except TypeError as exc:  # an unknown keyword
            raise InvalidOptionsError(f"Unknown subtitle option: {exc}.") from None

    @property
    def reflows(self) -> bool:
        """Whether cues are rebuilt from the words rather than taken from the segments."""
        limits = attrs.asdict(self, filter=lambda a, _: a.name != "highlight_words")
        return any(value is not None for value in limits.values())

    @property
    def needs_words(self) -> bool:
        """Whether these options need word timestamps to work as meant."""
        return self.reflows or self.highlight_words


#: Named limits. ``netflix``: its English timed-text style guide (42 characters a line, 2
#: lines, 5/6 s to 7 s, 17 characters a second for adult programmes). ``bbc``: in the
#: spirit of broadcast guidelines (37 characters, 2 lines, about 180 words a minute).
PRESETS: dict[str, SubtitleOptions] = {
    "netflix": SubtitleOptions(
        max_line_width=42,
        max_line_count=2,
        min_cue_duration=5 / 6,
        max_cue_duration=7.0,
        max_chars_per_second=17.0,
        pause_threshold=1.5,
    ),
    "bbc": SubtitleOptions(
        max_line_width=37,
        max_line_count=2,
        min_cue_duration=1.0,
        max_cue_duration=7.0,
        max_chars_per_second=15.0,
        pause_threshold=1.5,
    ),
}


@frozen
class Cue:
    """One cue: its times in seconds, its text (lines joined by ``\\n``) and who says it
    (a speaker id, when the transcript has speakers)."""

    start: float
    end: float
    text: str
    speaker: str | None = None


def words_are_estimated(transcript: Transcript) -> bool:
    """Whether re-flowing this transcript must estimate word times: it has text but no
    words (word timestamps were off), so each segment's words are timed in proportion to
    their length."""
    return any(s.text.strip() for s in transcript.segments) and not transcript.words


def subtitle_cues(
    transcript: Transcript,
    options: SubtitleOptions,
    escape: Callable[[str], str] = str,
    labels: bool = False,
) -> list[Cue]:
    """The cues of ``transcript`` shaped by ``options``; ``escape`` makes a word safe for
    the format (WebVTT escapes ``&``, ``<`` and ``>``) before any markup is added. A new
    speaker starts a new cue; with ``labels`` their label (``Speaker 1:``) starts its text,
    within the line width."""
    words = tokens(transcript, labels)
    limits = Limits(
        width=options.max_line_width,
        lines=options.max_line_count or DEFAULT_LINE_COUNT,
        pause=options.pause_threshold or DEFAULT_PAUSE,
        max_duration=options.max_cue_duration,
        min_duration=options.min_cue_duration,
        chars_per_second=options.max_chars_per_second,
    )
    flow = Flow(words, limits, transcript.language)
    if options.reflows:
        spans = flow.spans()
        # A clipped transcript's times stay on the file's timeline, past its duration.
        end_of_audio = max(transcript.duration, words[-1].end if words else 0.0)
        times = flow.times(spans, end_of_audio or math.inf)
    else:  # one cue per segment, as whisper makes them
        spans, at = [], 0
        for k, token in enumerate(words):
            if token.last_of_segment:
                spans.append((at, k + 1))
                at = k + 1
        times = [(words[i].start, words[j - 1].end) for i, j in spans]
    safe = [escape(word.text) for word in words]
    cues: list[Cue] = []
    for (i, j), (start, end) in zip(spans, times, strict=True):
        lines = flow.layout(i, j) if options.reflows else [(i, j)]

        def text(marked: int | None, lines: list[tuple[int, int]] = lines) -> str:
            return "\n".join(
                "".join(
                    (words[k].glue if k > a else "")
                    + (f"<u>{safe[k]}</u>" if k == marked else safe[k])
                    for k in range(a, b)
                )
                for a, b in lines
            )

        speaker = words[i].speaker
        if not options.highlight_words:
            cues.append(Cue(start, end, text(None), speaker))
            continue
        last = start
        for k in range(i, j):  # as whisper's writer: the cue again for each word
            if words[k].label:
                continue
            word_start = max(words[k].start, last)
            word_end = min(max(words[k].end, word_start), end)
            if word_start > last:
                cues.append(Cue(last, word_start, text(None), speaker))
            if word_end > word_start:
                cues.append(Cue(word_start, word_end, text(k), speaker))
                last = word_end
        if end > last:
            cues.append(Cue(last, end, text(None), speaker))
    return cues
