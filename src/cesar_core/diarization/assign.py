"""Speakers onto a transcript: each word gets the speaker who talks most while it is said,
and a segment that spans a change of speaker is split at the word where it changes.

This is whisperX's ``assign_word_speakers`` idea (largest overlap wins, nearest turn for a
word that overlaps none), on Cesar's frozen domain objects. It needs word timings, which
is why diarizing turns word timestamps on. Labels are renumbered in order of first
appearance (``SPEAKER_00`` speaks first), whatever the engine called them, so that
``Speaker 1`` in every format is the first voice heard.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import attrs

from ..transcript import Segment, Speaker, SpeakerTurn, Transcript, Word


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


def _split(segment: Segment, words: Sequence[Word]) -> list[Segment]:
    """``segment`` cut where the speaker of its words changes (ids are set later)."""
    pieces: list[list[Word]] = []
    for word in words:
        if pieces and pieces[-1][-1].speaker == word.speaker:
            pieces[-1].append(word)
        else:
            pieces.append([word])
    if len(pieces) == 1:
        return [attrs.evolve(segment, words=tuple(words), speaker=words[0].speaker)]
    return [
        attrs.evolve(
            segment,
            start=piece[0].start if index else segment.start,
            end=piece[-1].end if index < len(pieces) - 1 else segment.end,
            text="".join(word.word for word in piece).strip(),
            words=tuple(piece),
            speaker=piece[0].speaker,
        )
        for index, piece in enumerate(pieces)
    ]


def assign_speakers(
    transcript: Transcript,
    turns: Sequence[SpeakerTurn],
    *,
    keep_words: bool = True,
    renumber: bool = True,
) -> Transcript:
    """``transcript`` with a speaker on every word and segment, and its list of speakers.

    ``keep_words=False`` drops the words afterwards (they were only turned on to place the
    speakers). ``renumber=False`` keeps the diarizer's labels (channels: ``SPEAKER_00`` is
    the first channel). With no turns at all (silence), the transcript comes back unchanged.
    """
    turns = sorted((t for t in turns if t.end > t.start), key=lambda t: t.start)
    if not turns:
        return transcript
    starts = [t.start for t in turns]
    segments: list[Segment] = []
    for segment in transcript.segments:
        if segment.words:
            words = [
                attrs.evolve(w, speaker=_speaker_at(turns, starts, w.start, w.end))
                for w in segment.words
            ]
            segments.extend(_split(segment, words))
        else:
            speaker = _speaker_at(turns, starts, segment.start, segment.end)
            segments.append(attrs.evolve(segment, speaker=speaker))
    order: dict[str, str] = {}
    for label in [s.speaker for s in segments] + [t.speaker for t in turns]:
        if label is not None and label not in order:
            order[label] = f"SPEAKER_{len(order):02d}" if renumber else label
    if not renumber:
        order = dict(sorted(order.items()))
    talk: dict[str, float] = dict.fromkeys(order.values(), 0.0)
    for turn in turns:
        talk[order[turn.speaker]] += turn.end - turn.start
    renumbered = tuple(
        attrs.evolve(
            segment,
            id=index,
            speaker=order[segment.speaker] if segment.speaker else None,
            words=tuple(
                attrs.evolve(w, speaker=order[w.speaker] if w.speaker else None)
                for w in segment.words
            )
            if keep_words
            else (),
        )
        for index, segment in enumerate(segments)
    )
    speakers = tuple(Speaker(id=label, talk_time=round(talk[label], 3)) for label in talk)
    return attrs.evolve(transcript, segments=renumbered, speakers=speakers)
