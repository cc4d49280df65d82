"""Readable subtitles: presets and limits on real speech, checked with independent parsers."""

from __future__ import annotations

import html
import io
import itertools
import re
from datetime import timedelta

import attrs
import pytest
import srt
import webvtt

from cesar_core import InvalidOptionsError, Segment, TranscribeOptions, Transcript, Word, render
from cesar_core.transcript import Speaker
from cesar_core.transcription.subtitles import (
    PRESETS,
    SubtitleOptions,
    subtitle_cues,
    words_are_estimated,
)
from cesar_core.transcription.whisper import WhisperTranscriber

from .speech_helpers import LONG_SPEECH

#: Tolerance for times written to the millisecond.
MS = 0.0015


@pytest.fixture(scope="module")
def long_transcript(transcriber: WhisperTranscriber) -> Transcript:
    """Real words with real times: the long fixture through the real model."""
    return transcriber.transcribe(LONG_SPEECH, TranscribeOptions(word_timestamps=True))


def _words_of(text: str) -> list[str]:
    return re.sub(r"</?u>", "", text).split()


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


def _vtt_seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _assert_limits(cues: list[tuple[float, float, str]], options: SubtitleOptions) -> None:
    assert options.max_line_width
    assert options.max_line_count
    assert options.max_cue_duration
    assert options.min_cue_duration
    assert options.max_chars_per_second
    previous_end = 0.0
    for start, end, text in cues:
        lines = text.split("\n")
        assert 1 <= len(lines) <= options.max_line_count, text
        assert all(0 < len(line) <= options.max_line_width for line in lines), text
        duration = end - start
        assert options.min_cue_duration - MS <= duration <= options.max_cue_duration + MS, text
        assert len(" ".join(lines)) / duration <= options.max_chars_per_second + 0.05, text
        assert start >= previous_end - MS, "cues overlap"
        previous_end = end


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_cue_of_real_speech_keeps_the_preset_limits(
    long_transcript: Transcript, preset: str
) -> None:
    options = SubtitleOptions.preset(preset)
    srt_cues = list(srt.parse(render(long_transcript, "srt", options)))
    parsed = [(_seconds(c.start), _seconds(c.end), c.content) for c in srt_cues]
    _assert_limits(parsed, options)
    assert [c.index for c in srt_cues] == list(range(1, len(srt_cues) + 1))
    captions = webvtt.from_buffer(io.StringIO(render(long_transcript, "vtt", options)))
    vtt_cues = [(_vtt_seconds(c.start), _vtt_seconds(c.end), c.text) for c in captions]
    _assert_limits(vtt_cues, options)
    # Nothing is lost or reordered: the cues hold every word, in order.
    spoken = [w.word.strip() for w in long_transcript.words if w.word.strip()]
    assert [w for c in parsed for w in _words_of(c[2])] == spoken
    assert [w for c in vtt_cues for w in _words_of(c[2])] == spoken


def test_segments_as_cues_break_the_netflix_limits(long_transcript: Transcript) -> None:
    """What the presets are for: whisper's own segments are too long for a line."""
    cues = list(srt.parse(render(long_transcript, "srt")))
    assert max(len(c.content) for c in cues) > 42
    assert all("\n" not in c.content for c in cues)


def test_no_options_render_as_before(long_transcript: Transcript) -> None:
    for fmt in ("srt", "vtt", "txt", "json", "tsv"):
        assert render(long_transcript, fmt, SubtitleOptions()) == render(long_transcript, fmt)
    netflix = SubtitleOptions.preset("netflix")
    for fmt in ("txt", "json", "tsv"):  # only cues are re-flowed
        assert render(long_transcript, fmt, netflix) == render(long_transcript, fmt)


def test_highlighted_words_underline_each_word_in_turn(long_transcript: Transcript) -> None:
    options = SubtitleOptions.preset("netflix", highlight_words=True)
    for fmt in ("srt", "vtt"):
        text = render(long_transcript, fmt, options)
        if fmt == "srt":
            cues = [(_seconds(c.start), _seconds(c.end), c.content) for c in srt.parse(text)]
        else:
            cues = [
                (_vtt_seconds(c.start), _vtt_seconds(c.end), c.raw_text)
                for c in webvtt.from_buffer(io.StringIO(text))
            ]
        underlined = [re.findall(r"<u>(.*?)</u>", c[2]) for c in cues]
        assert all(len(found) <= 1 for found in underlined)
        spoken = [w.word.strip() for w in long_transcript.words]
        assert [found[0] for found in underlined if found] == spoken
        assert all(start < end for start, end, _ in cues)
        assert all(a[1] <= b[0] + MS for a, b in itertools.pairwise(cues))


def _sentence(start: float, words: str, step: float = 0.3) -> tuple[Word, ...]:
    out, at = [], start
    for word in words.split():
        out.append(Word(start=at, end=at + step * 0.9, word=" " + word, probability=1.0))
        at += step
    return tuple(out)


def _transcript(*parts: tuple[Word, ...]) -> Transcript:
    segments = tuple(
        Segment(id=n, start=w[0].start, end=w[-1].end, text="".join(x.word for x in w), words=w)
        for n, w in enumerate(parts)
    )
    return Transcript(
        text=" ".join(s.text for s in segments),
        segments=segments,
        language="en",
        language_probability=1.0,
        duration=segments[-1].end + 1,
        model="tiny.en",
    )


def test_lines_break_after_punctuation_and_never_after_an_article() -> None:
    words = _sentence(0.0, "We looked at the numbers, and the budget is fine for the year.")
    cues = subtitle_cues(_transcript(words), SubtitleOptions(max_line_width=36))
    lines = [line for c in cues for line in c.text.split("\n")]
    assert lines[0] == "We looked at the numbers,"
    assert not any(line.split()[-1] in {"the", "a", "an"} for line in lines)


def test_a_pause_starts_a_new_cue() -> None:
    first = _sentence(0.0, "one two three")
    second = _sentence(first[-1].end + 2.5, "four five six")
    cues = subtitle_cues(_transcript(first + second), SubtitleOptions(max_line_width=40))
    assert [c.text for c in cues] == ["one two three", "four five six"]
    closer = _sentence(first[-1].end + 0.5, "four five six")
    cues = subtitle_cues(_transcript(first + closer), SubtitleOptions(max_line_width=40))
    assert [c.text for c in cues] == ["one two three four five six"]


def test_a_short_cue_is_held_for_the_shortest_duration_where_the_pause_allows() -> None:
    words = _sentence(0.0, "Yes.") + _sentence(3.0, "Then we go on.")
    cues = subtitle_cues(_transcript(words), SubtitleOptions.preset("netflix"))
    assert cues[0].text == "Yes."
    assert cues[0].end == pytest.approx(5 / 6)


def test_a_clipped_transcript_keeps_its_cues_on_the_file_timeline() -> None:
    """A clip's times are those of the file, past the clip's ``duration``."""
    words = _sentence(60.0, "From the middle of the file.")
    clipped = attrs.evolve(_transcript(words), duration=3.0)
    cues = subtitle_cues(clipped, SubtitleOptions.preset("netflix"))
    assert [(c.start, c.end) for c in cues] == [(60.0, pytest.approx(words[-1].end))]


def test_each_speaker_starts_a_cue_with_their_label_inside_the_width() -> None:
    def said(start: float, text: str, speaker: str) -> tuple[Word, ...]:
        return tuple(attrs.evolve(w, speaker=speaker) for w in _sentence(start, text))

    asked = said(0.0, "Did the supplier send the parts for the new machine yet?", "A")
    answer = said(asked[-1].end + 0.2, "No, they said the parts arrive late next week.", "B")
    segments = tuple(
        Segment(id=n, start=w[0].start, end=w[-1].end, text="".join(x.word for x in w),
                words=w, speaker=w[0].speaker)
        for n, w in enumerate((asked, answer))
    )  # fmt: skip
    two = attrs.evolve(
        _transcript(asked, answer),
        segments=segments,
        speakers=(Speaker(id="A", talk_time=3.3), Speaker(id="B", name="Bob", talk_time=3.0)),
    )
    options = SubtitleOptions.preset("bbc")
    cues = list(srt.parse(render(two, "srt", options)))
    assert [c.content.split(":")[0] for c in cues] == ["Speaker 1", "Bob"]
    assert all(len(line) <= 37 for c in cues for line in c.content.split("\n"))
    captions = list(webvtt.from_buffer(io.StringIO(render(two, "vtt", options))))
    assert [c.voice for c in captions] == ["Speaker 1", "Bob"]
    assert captions[1].text.startswith("No, they said")


def test_vtt_text_is_escaped_before_markup() -> None:
    words = _sentence(0.0, "a <b> & c")
    text = render(_transcript(words), "vtt", SubtitleOptions(highlight_words=True))
    assert "<u>&lt;b&gt;</u>" in text
    assert "<u>&amp;</u>" in text
    captions = list(webvtt.from_buffer(io.StringIO(text)))
    assert html.unescape(captions[1].text) == "a <b> & c"


def test_without_word_timestamps_cues_are_reflowed_from_estimated_times() -> None:
    segment = Segment(
        id=0,
        start=0.0,
        end=6.0,
        text=" The schedule slipped by one week because the "
        "supplier delivered the parts late, so we wait.",
    )
    transcript = Transcript(
        text=segment.text,
        segments=(segment,),
        language="en",
        language_probability=1.0,
        duration=6.0,
        model="tiny.en",
    )
    assert words_are_estimated(transcript)
    options = SubtitleOptions.preset("bbc")
    cues = list(srt.parse(render(transcript, "srt", options)))
    assert all(len(line) <= 37 for c in cues for line in c.content.split("\n"))
    assert _seconds(cues[0].start) == 0.0
    assert _seconds(cues[-1].end) == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_line_width": 0}, "max_line_width must be a whole number from 1"),
        ({"max_line_count": 11}, "max_line_count must be a whole number from 1 to 10"),
        ({"max_line_width": 4.5}, "max_line_width must be a whole number"),
        ({"max_line_count": True}, "max_line_count must be a whole number"),
        ({"max_cue_duration": -1.0}, "max_cue_duration must be greater than 0"),
        ({"max_chars_per_second": float("nan")}, "max_chars_per_second must be"),
        ({"min_cue_duration": 8.0, "max_cue_duration": 7.0}, "must not be more than"),
    ],
)
def test_invalid_options_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidOptionsError, match=message):
        SubtitleOptions(**kwargs)  # type: ignore[arg-type]


def test_presets_are_named_and_overridable() -> None:
    with pytest.raises(InvalidOptionsError, match="Unknown subtitle preset 'youtube'") as info:
        SubtitleOptions.preset("youtube")
    assert info.value.hint == "Choose one of: netflix, bbc."
    custom = SubtitleOptions.preset("Netflix", max_line_width=32, max_line_count=None)
    assert custom.max_line_width == 32
    assert custom.max_line_count == 2
    assert custom.max_chars_per_second == 17
    assert not SubtitleOptions().reflows
    assert SubtitleOptions(highlight_words=True).needs_words
