"""The re-flow of words into subtitle cues: where lines and cues break, and their times.

Cues are chosen by dynamic programming over each stretch of speech between pauses: every
cue costs the same, a break costs what it costs a reader (nothing after a full stop, more
in the middle of a phrase, most between an article and its noun), and a cue that could not
stay on screen for ``min_cue_duration`` or be read at ``max_chars_per_second`` costs more.
So a cue ends at a sentence where one is near, and lines are balanced within a cue.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
from attrs import frozen

from ..transcript import Transcript

#: Languages written without spaces between words: their words are joined as they are.
_UNSPACED = frozenset({"ja", "zh", "th", "lo", "my", "km", "bo", "yue"})

_SENTENCE_END = ".?!…。？！"  # noqa: RUF001
_CLAUSE_END = ",;:—–、，；："  # noqa: RUF001
_CLOSERS = "\"')]}»”’"  # noqa: RUF001


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words a line should not end with (the noun belongs with them), by language.
_ARTICLES = {
    "en": _words(
        "a an the this that these those my your his her its our their some any no every "
        "each to of mr. mrs. ms. dr."
    ),
    "fr": _words(
        "le la les l' un une des du de d' au aux ce cet cette ces mon ma mes ton ta tes son sa ses"
    ),
    "es": _words(
        "el la los las un una unos unas del al de este esta estos estas mi mis tu tus su sus"
    ),
    "de": _words("der die das den dem des ein eine einen einem einer eines zu zum zur"),
}
#: Words a line may well start with: conjunctions and prepositions, by language.
_OPENERS = {
    "en": _words(
        "and but or nor so yet because although though while when where which who whom "
        "whose that if unless until before after since as in on at for with from by "
        "about into than then"
    ),
    "fr": _words("et mais ou donc car que qui quand parce si pour avec dans sur sans comme puis"),
    "es": _words("y e pero o u porque que quien cuando si para con en sin como pues"),
    "de": _words("und aber oder denn weil dass wenn als ob mit für in auf nach bei von"),
}


@frozen
class Limits:
    """The limits one re-flow works to; ``None`` is no limit."""

    width: int | None
    lines: int
    pause: float
    max_duration: float | None
    min_duration: float | None
    chars_per_second: float | None


@frozen
class Token:
    """A word as it is laid out: its text, what joins it to the word before it on a line
    (a space, or nothing in languages written without spaces), its times and speaker."""

    text: str
    glue: str
    start: float
    end: float
    last_of_segment: bool = False
    speaker: str | None = None
    #: A speaker's label (``Speaker 1:``) written before their words, not a spoken word.
    label: bool = False


def tokens(transcript: Transcript, labels: bool = False) -> list[Token]:
    """Every word with its time and speaker; a segment without words is split on spaces
    and its words timed in proportion to their length (an estimate). With ``labels``, the
    speaker's label comes before the first word of each turn, laid out as a word."""
    unspaced = transcript.language in _UNSPACED
    names = transcript.speaker_labels()
    out: list[Token] = []
    speaker: str | None = None
    for segment in transcript.segments:
        if segment.words:
            pieces = [(w.word, w.start, w.end, w.speaker or segment.speaker) for w in segment.words]
        else:
            parts = segment.text.split()
            total = sum(len(p) for p in parts) or 1
            span, at, pieces = segment.end - segment.start, segment.start, []
            for part in parts:
                step = span * len(part) / total
                pieces.append((" " + part, at, at + step, segment.speaker))
                at += step
        first = len(out)
        for raw, start, end, said_by in pieces:
            text = " ".join(raw.split()).replace("-->", "->")
            if not text:
                continue
            if labels and said_by is not None and said_by != speaker:
                name = " ".join(names.get(said_by, said_by).split())
                out.append(Token(f"{name}:", " ", start, start, speaker=said_by, label=True))
            speaker = said_by
            glue = "" if unspaced and not raw[:1].isspace() else " "
            out.append(Token(text, glue, start, max(start, end), speaker=said_by))
        if len(out) > first:
            out[-1] = attrs.evolve(out[-1], last_of_segment=True)
    return out


def _bare(text: str) -> str:
    return text.lower().strip(_CLOSERS + _SENTENCE_END + _CLAUSE_END + "\"'¿¡(")


def break_cost(before: Token, after: Token, language: str) -> float:
    """How bad a line or cue break between ``before`` and ``after`` is for a reader."""
    end = before.text.rstrip(_CLOSERS)
    if end[-1:] in _SENTENCE_END:
        cost = 0.0
    elif end[-1:] in _CLAUSE_END:
        cost = 2.0
    elif _bare(before.text) in _ARTICLES.get(language, ()):
        cost = 40.0
    elif _bare(after.text) in _OPENERS.get(language, ()):
        cost = 4.0
    else:
        cost = 10.0
    if before.last_of_segment:
        cost -= 2.0
    return cost - 4.0 * min(1.0, max(0.0, after.start - before.end))


#: What every cue costs, so that fewer, fuller cues win over many small ones.
_CUE_COST = 10.0
#: The most words a cue holds whatever the limits (it bounds the work of the search).
_MOST_WORDS = 40


class Flow:
    """The re-flow of one transcript's tokens to one set of limits."""

    def __init__(self, words: Sequence[Token], limits: Limits, language: str) -> None:
        self.t = words
        self.limits = limits
        self.lang = language
        self.width = limits.width or 10**9
        self._ends = [0]  # _ends[k]: characters of tokens :k on one line, glue included
        for token in words:
            self._ends.append(self._ends[-1] + len(token.glue) + len(token.text))

    def length(self, i: int, j: int) -> int:
        """Characters of tokens ``i:j`` on one line."""
        return self._ends[j] - self._ends[i] - len(self.t[i].glue) if j > i else 0

    def _line_count(self, i: int, j: int) -> int:
        """Lines greedy filling needs for tokens ``i:j`` (the fewest possible; a word wider
        than a line gets a line of its own)."""
        count, used = 1, 0
        for k in range(i, j):
            size = len(self.t[k].text) + (len(self.t[k].glue) if used else 0)
            if used and used + size > self.width:
                count, used = count + 1, len(self.t[k].text)
            else:
                used += size
        return count

    def _fits(self, i: int, j: int) -> bool:
        if j - i > _MOST_WORDS:
            return False
        if self.length(i, j) > self.width and self._line_count(i, j) > self.limits.lines:
            return False
        longest = self.limits.max_duration
        return longest is None or self.t[j - 1].end - self.t[i].start <= longest

    def layout(self, i: int, j: int) -> list[tuple[int, int]]:
        """Tokens ``i:j`` as the fewest lines that fit, broken where reading pauses and
        balanced in length."""
        need = self._line_count(i, j)
        if need == 1:
            return [(i, j)]
        target = self.length(i, j) / need
        best: dict[tuple[int, int], tuple[float, list[tuple[int, int]]]] = {(0, i): (0.0, [])}
        for line in range(need):
            for (done, start), (cost, lines) in list(best.items()):
                if done != line:
                    continue
                for end in [j] if line == need - 1 else range(start + 1, j):
                    size = self.length(start, end)
                    if size > self.width and end - start > 1:
                        continue
                    extra = (size - target) ** 2 / max(target, 1.0)
                    if end < j:
                        extra += break_cost(self.t[end - 1], self.t[end], self.lang)
                    key = (line + 1, end)
                    if key not in best or cost + extra < best[key][0]:
                        best[key] = (cost + extra, [*lines, (start, end)])
        found = best.get((need, j))
        return found[1] if found else [(i, j)]

    def _cue_cost(self, i: int, k: int, q: int) -> float:
        cost = _CUE_COST
        if k < q:
            cost += break_cost(self.t[k - 1], self.t[k], self.lang)
        if self.t[k - 1].label:
            cost += 1000.0  # a speaker's label goes with their words
        room = min(
            self.limits.max_duration or math.inf,
            (self.t[k].start if k < q else math.inf) - self.t[i].start,
        )
        if self.limits.min_duration and room < self.limits.min_duration:
            cost += 30.0
        rate = self.limits.chars_per_second
        if rate and room > 0 and math.isfinite(room):
            cost += 20.0 * max(0.0, self.length(i, k) / room / rate - 1)
        return cost

    def _spans(self, p: int, q: int) -> list[tuple[int, int]]:
        """Tokens ``p:q`` (no long pause inside) cut into the cheapest cues."""
        best: list[tuple[float, int]] = [
            (0.0, p)
        ]  # best[k - p]: cost of p:k, start of its last cue
        for k in range(p + 1, q + 1):
            choice = (math.inf, k - 1)
            for i in range(k - 1, p - 1, -1):
                if i < k - 1 and not self._fits(i, k):
                    break  # a longer cue fits no better
                cost = best[i - p][0] + self._cue_cost(i, k, q)
                if cost < choice[0]:
                    choice = (cost, i)
            best.append(choice)
        spans, k = [], q
        while k > p:
            i = best[k - p][1]
            spans.append((i, k))
            k = i
        return spans[::-1]

    def spans(self) -> list[tuple[int, int]]:
        """Every cue as token indices ``(start, end)``: a long pause or another speaker
        always ends one."""
        out: list[tuple[int, int]] = []
        p, t = 0, self.t
        for k in range(1, len(t) + 1):
            if (
                k == len(t)
                or t[k].start - t[k - 1].end > self.limits.pause
                or t[k].speaker != t[k - 1].speaker
            ):
                out.extend(self._spans(p, k))
                p = k
        return out

    def times(self, spans: list[tuple[int, int]], duration: float) -> list[tuple[float, float]]:
        """Each cue's start and end: from its words, then held longer (never past the next
        cue, the longest duration, nor the end of the audio, ``duration`` seconds) to reach
        the shortest duration and a reading speed of ``chars_per_second``."""
        t, limits = self.t, self.limits
        out = []
        for n, (i, j) in enumerate(spans):
            start, end = t[i].start, max(t[j - 1].end, t[i].start)
            want = limits.min_duration or 0.0
            if limits.chars_per_second:
                want = max(want, self.length(i, j) / limits.chars_per_second)
            limit = t[spans[n + 1][0]].start if n + 1 < len(spans) else duration
            end = max(start, min(end, limit))  # word times that overlap the next cue's
            if end - start < want:
                longest = start + (limits.max_duration or math.inf)
                end = max(end, min(start + want, limit, longest))
            out.append((start, end))
        return out
