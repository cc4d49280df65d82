"""Speakers onto a transcript: each word gets the speaker who talks most while it is said,
and a segment that spans a change of speaker is split at the word where it changes.

This is whisperX's ``assign_word_speakers`` idea (largest overlap wins, nearest turn for a
word that overlaps none), on Cesar's frozen domain objects. It needs word timings, which
is why diarizing turns word timestamps on. Labels are renumbered in order of first
appearance (``SPEAKER_00`` speaks first), whatever the engine called them, so that
``Speaker 1`` in every format is the first voice heard.

The turns are known before the transcription starts, so :class:`SpeakerLabels` labels each
segment as it comes (live segments carry their speaker) and the final transcript is made
by the same steps: the live segments, in order, are the transcript's.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

import attrs

from ..transcript import Segment, Speaker, SpeakerTurn, Transcript, Word

#: The text of token ids (a whisper tokenizer's ``decode``), or None when it cannot be
#: told: to give the parts of a split segment the tokens of their own words.
TokenText = Callable[[Sequence[int]], str | None]


def _speaker_at(turns: Sequence[SpeakerTurn], starts: list[float], start: float, end: float) -> str:
    """The speaker overlapping ``start``..``end`` the longest, else the nearest turn's."""
    overlap: dict[str, float] = {}
    first = max(0, bisect.bisect_right(starts, start) - 1)
    for turn in turns[first:]:
        if turn.start >= end:
            break
        shared = min(end, turn.end) - max(start, turn.start)
        if shared > 0:
            overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
    if overlap:
        return max(overlap, key=lambda speaker: overlap[speaker])
    middle = (start + end) / 2
    nearest = min(
        turns,
        key=lambda t: (
            0.0 if t.start <= middle <= t.end else min(abs(t.start - middle), abs(t.end - middle))
        ),
    )
    return nearest.speaker


def split_tokens(
    tokens: Sequence[int], texts: Sequence[str], decode: TokenText | None
) -> list[tuple[int, ...]]:
    """``tokens`` shared out among parts whose texts are ``texts`` (the parts' words, as
    the tokens spell them), each token going to the part its text starts in.

    Tokens without text (whisper's timestamps) go with their neighbours: the leading one
    with the first part, the trailing one with the last. So the parts' tokens, in order,
    are always the segment's. When the tokens cannot be shared out (no ``decode``, or
    their text is not the words'), the first part keeps them all and the others get none.
    """
    whole = "".join(texts)
    if decode is not None and tokens and decode(tokens) == whole:
        starts = [0]
        for text in texts[:-1]:
            starts.append(starts[-1] + len(text))
        parts: list[list[int]] = [[] for _ in texts]
        for index, token in enumerate(tokens):
            offset = len(decode(tokens[:index]) or "") if index else 0
            parts[bisect.bisect_right(starts, offset) - 1].append(token)
        return [tuple(part) for part in parts]
    return [tuple(tokens)] + [()] * (len(texts) - 1)


class SpeakerLabels:
    """Segments labelled with the speakers of ``turns``, one at a time, in order: what
    live segments and the final transcript are both made of.

    Each segment is split where the speaker of its words changes; the parts are numbered
    on from the segments before, and labelled ``SPEAKER_00``, ``SPEAKER_01``... in order of
    first appearance (``renumber=False`` keeps the diarizer's labels). ``decode`` gives each
    part the tokens of its own words (see :func:`split_tokens`).
    """

    def __init__(
        self,
        turns: Sequence[SpeakerTurn],
        *,
        renumber: bool = True,
        decode: TokenText | None = None,
    ) -> None:
        self.turns = sorted((t for t in turns if t.end > t.start), key=lambda t: t.start)
        self._starts = [t.start for t in self.turns]
        self.renumber = renumber
        self.decode = decode
        #: The diarizer's labels, as given to the segments so far, in order of appearance.
        self.order: dict[str, str] = {}
        self._count = 0

    def label(self, segment: Segment) -> list[Segment]:
        """``segment`` with its speaker (on its words too), split where it changes. With no
        turns at all (silence), the segment as it was."""
        if not self.turns:
            return [segment]
        if segment.words:
            words = [
                attrs.evolve(w, speaker=self._name(self._at(w.start, w.end))) for w in segment.words
            ]
            parts = self._split(segment, words)
        else:
            parts = [
                attrs.evolve(segment, speaker=self._name(self._at(segment.start, segment.end)))
            ]
        numbered = [attrs.evolve(part, id=self._count + index) for index, part in enumerate(parts)]
        self._count += len(numbered)
        return numbered

    def _at(self, start: float, end: float) -> str:
        return _speaker_at(self.turns, self._starts, start, end)

    def _name(self, label: str) -> str:
        if label not in self.order:
            self.order[label] = f"SPEAKER_{len(self.order):02d}" if self.renumber else label
        return self.order[label]

    def _split(self, segment: Segment, words: Sequence[Word]) -> list[Segment]:
        """``segment`` cut where the speaker of its words changes."""
        pieces: list[list[Word]] = []
        for word in words:
            if pieces and pieces[-1][-1].speaker == word.speaker:
                pieces[-1].append(word)
            else:
                pieces.append([word])
        if len(pieces) == 1:
            return [attrs.evolve(segment, words=tuple(words), speaker=words[0].speaker)]
        texts = ["".join(word.word for word in piece) for piece in pieces]
        tokens = split_tokens(segment.tokens, texts, self.decode)
        return [
            attrs.evolve(
                segment,
                start=piece[0].start if index else segment.start,
                end=piece[-1].end if index < len(pieces) - 1 else segment.end,
                text=texts[index].strip(),
                words=tuple(piece),
                speaker=piece[0].speaker,
                tokens=tokens[index],
            )
            for index, piece in enumerate(pieces)
        ]

    def speakers(self) -> tuple[Speaker, ...]:
        """Every speaker of the turns, with their talk time: those given to segments in
        order, then any that no segment got; sorted by label when labels are kept."""
        for turn in self.turns:
            self._name(turn.speaker)
        talk: dict[str, float] = dict.fromkeys(self.order.values(), 0.0)
        for turn in self.turns:
            talk[self.order[turn.speaker]] += turn.end - turn.start
        labels = sorted(talk) if not self.renumber else list(talk)
        return tuple(Speaker(id=label, talk_time=round(talk[label], 3)) for label in labels)


def without_words(segment: Segment) -> Segment:
    """``segment`` without its words (and theirs speakers): they were only turned on to
    place the speakers."""
    return attrs.evolve(segment, words=()) if segment.words else segment


def assign_speakers(
    transcript: Transcript,
    turns: Sequence[SpeakerTurn],
    *,
    keep_words: bool = True,
    renumber: bool = True,
    decode: TokenText | None = None,
) -> Transcript:
    """``transcript`` with a speaker on every word and segment, and its list of speakers.

    ``keep_words=False`` drops the words afterwards (they were only turned on to place the
    speakers). ``renumber=False`` keeps the diarizer's labels (channels: ``SPEAKER_00`` is
    the first channel). ``decode`` shares a split segment's tokens out among its parts
    (:func:`split_tokens`). With no turns at all (silence), the transcript comes back
    unchanged. The text is the parts' texts joined, as live followers saw them.
    """
    labels = SpeakerLabels(turns, renumber=renumber, decode=decode)
    if not labels.turns:
        return transcript
    segments = [part for segment in transcript.segments for part in labels.label(segment)]
    if not keep_words:
        segments = [without_words(segment) for segment in segments]
    return attrs.evolve(
        transcript,
        segments=tuple(segments),
        text=" ".join(segment.text for segment in segments if segment.text),
        speakers=labels.speakers(),
    )
