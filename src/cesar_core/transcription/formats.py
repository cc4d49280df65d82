"""Transcript to text: txt, srt, vtt, json and tsv.

The same writers serve the CLI's files and (later) the HTTP API's downloads, so the media
type and file extension of each format live here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..convert import to_dict
from ..errors import InvalidOptionsError
from ..transcript import Transcript
from .subtitles import SubtitleOptions, subtitle_cues


def _timestamp(seconds: float, separator: str) -> str:
    """``HH:MM:SS<sep>mmm``; hours grow past 99 rather than wrap."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _speaker_changes(transcript: Transcript) -> dict[int, str]:
    """``"Speaker 1: "`` (or the name given) for each segment of text where the speaker
    changes, by segment id; empty when the transcript has no speakers."""
    labels, changes, previous = transcript.speaker_labels(), {}, None
    for segment in transcript.segments:
        if segment.text and segment.speaker is not None and segment.speaker != previous:
            changes[segment.id] = f"{labels.get(segment.speaker, segment.speaker)}: "
            previous = segment.speaker
    return changes


def to_txt(transcript: Transcript) -> str:
    """One segment a line; ``Speaker 1:`` before the line where the speaker changes."""
    said = _speaker_changes(transcript)
    return "".join(
        f"{said.get(s.id, '')}{_one_line(s.text)}\n" for s in transcript.segments if s.text
    )


def to_srt(transcript: Transcript) -> str:
    """SubRip: numbered cues from 1, ``HH:MM:SS,mmm`` times, a blank line between cues."""
    cues, said = [], _speaker_changes(transcript)
    for number, segment in enumerate((s for s in transcript.segments if s.text), start=1):
        start, end = _timestamp(segment.start, ","), _timestamp(segment.end, ",")
        text = said.get(segment.id, "") + _one_line(segment.text).replace("-->", "->")
        cues.append(f"{number}\n{start} --> {end}\n{text}\n")
    return "\n".join(cues)


def to_vtt(transcript: Transcript) -> str:
    """WebVTT: the ``WEBVTT`` header, then cues with ``HH:MM:SS.mmm`` times; with speakers,
    each cue is a voice span (``<v Speaker 1>``), as players show and style them."""
    cues, labels = ["WEBVTT\n"], transcript.speaker_labels()
    for segment in transcript.segments:
        if not segment.text:
            continue
        start, end = _timestamp(segment.start, "."), _timestamp(segment.end, ".")
        text = _one_line(segment.text).replace("-->", "->")
        if segment.speaker is not None:
            voice = _one_line(labels.get(segment.speaker, segment.speaker)).replace(">", "")
            text = f"<v {voice}>{text.replace('<', '&lt;')}"
        cues.append(f"{start} --> {end}\n{text}\n")
    return "\n".join(cues)


def to_json(transcript: Transcript) -> str:
    """Everything: text, language, duration, segments and words."""
    return json.dumps(to_dict(transcript), ensure_ascii=False, indent=2) + "\n"


def to_tsv(transcript: Transcript) -> str:
    """``start``, ``end`` (integer milliseconds, as whisper writes them) and ``text``; a
    ``speaker`` column (names as given) when the transcript has speakers. With word
    timestamps, a row per word instead (see :func:`_word_tsv`)."""
    if transcript.words:
        return _word_tsv(transcript)
    if transcript.speakers:
        labels = transcript.speaker_labels()
        return "start\tend\tspeaker\ttext\n" + "".join(
            f"{round(s.start * 1000)}\t{round(s.end * 1000)}\t"
            f"{_one_line(labels.get(s.speaker or '', s.speaker or ''))}\t{_one_line(s.text)}\n"
            for s in transcript.segments
            if s.text
        )
    rows = ["start\tend\ttext\n"]
    rows.extend(
        f"{round(s.start * 1000)}\t{round(s.end * 1000)}\t{_one_line(s.text)}\n"
        for s in transcript.segments
        if s.text
    )
    return "".join(rows)


def _word_tsv(transcript: Transcript) -> str:
    """A row per word: ``start``, ``end`` (milliseconds), the ``segment`` id it belongs to,
    ``speaker`` when there are speakers, the ``word`` and its ``probability`` (0 to 1)."""
    labels = transcript.speaker_labels() if transcript.speakers else None
    rows = [
        "start\tend\tsegment\t"
        + ("speaker\t" if labels is not None else "")
        + "word\tprobability\n"
    ]
    for segment in transcript.segments:
        for w in segment.words:
            if not w.word.strip():
                continue
            who = w.speaker or segment.speaker or ""
            speaker = "" if labels is None else f"{_one_line(labels.get(who, who))}\t"
            rows.append(
                f"{round(w.start * 1000)}\t{round(w.end * 1000)}\t{segment.id}\t{speaker}"
                f"{_one_line(w.word)}\t{w.probability:.4f}\n"
            )
    return "".join(rows)


WRITERS: dict[str, Callable[[Transcript], str]] = {
    "txt": to_txt,
    "srt": to_srt,
    "vtt": to_vtt,
    "json": to_json,
    "tsv": to_tsv,
}

MEDIA_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
    "tsv": "text/tab-separated-values; charset=utf-8",
}

FORMATS = tuple(WRITERS)


#: The formats that ``subtitles`` options shape.
SUBTITLE_FORMATS = ("srt", "vtt")


def _escape_vtt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _write_cues(transcript: Transcript, fmt: str, options: SubtitleOptions) -> str:
    """srt or vtt from re-flowed (or highlighted) cues; see :mod:`.subtitles`. Speakers are
    labelled as in segment cues: ``Speaker 1:`` where the speaker changes in srt (laid out
    within the line width), a voice span on every cue in vtt."""
    vtt = fmt == "vtt"
    cues = subtitle_cues(transcript, options, _escape_vtt if vtt else str, labels=not vtt)
    blocks, names = ["WEBVTT\n"] if vtt else [], transcript.speaker_labels()
    separator = "." if vtt else ","
    for number, cue in enumerate(cues, start=1):
        times = f"{_timestamp(cue.start, separator)} --> {_timestamp(cue.end, separator)}"
        if not vtt:
            blocks.append(f"{number}\n{times}\n{cue.text}\n")
            continue
        voice = _one_line(names.get(cue.speaker, cue.speaker)) if cue.speaker else ""
        span = f"<v {voice.replace('>', '')}>" if cue.speaker else ""
        blocks.append(f"{times}\n{span}{cue.text}\n")
    return "\n".join(blocks)


def render(transcript: Transcript, fmt: str, subtitles: SubtitleOptions | None = None) -> str:
    """The transcript in format ``fmt`` (one of :data:`FORMATS`); ``subtitles`` shapes the
    cues of srt and vtt (other formats ignore it)."""
    try:
        writer = WRITERS[fmt]
    except KeyError:
        raise InvalidOptionsError(
            f"Unknown output format {fmt!r}.", hint=f"Choose one of: {', '.join(FORMATS)}."
        ) from None
    if subtitles is not None and subtitles.needs_words and fmt in SUBTITLE_FORMATS:
        return _write_cues(transcript, fmt, subtitles)
    return writer(transcript)
