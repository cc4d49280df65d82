"""Output formats, checked with independent parsers (srt, webvtt-py)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import srt
import webvtt

from cesar_core import FORMATS, InvalidOptionsError, Segment, Transcript, from_dict, render

HOUR = 3600.0


def make_transcript() -> Transcript:
    segments = (
        Segment(id=0, start=0.0, end=2.5, text="First line."),
        Segment(id=1, start=59.999, end=61.0, text="Across a minute --> boundary."),
        Segment(id=2, start=HOUR + 2.004, end=HOUR + 5.5, text="Past the hour,\nwith a break."),
        Segment(id=3, start=10 * HOUR + 61.25, end=10 * HOUR + 62.0, text="Ten hours in."),
    )
    return Transcript(
        text=" ".join(s.text for s in segments),
        segments=segments,
        language="en",
        language_probability=1.0,
        duration=10 * HOUR + 63,
        model="tiny.en",
    )


def test_srt_parses_with_the_srt_library_and_keeps_hour_long_times() -> None:
    cues = list(srt.parse(render(make_transcript(), "srt")))
    assert [c.index for c in cues] == [1, 2, 3, 4]
    assert cues[1].start == timedelta(seconds=59.999)
    assert cues[2].start == timedelta(hours=1, seconds=2.004)
    assert cues[2].end == timedelta(hours=1, seconds=5.5)
    assert cues[3].start == timedelta(hours=10, minutes=1, seconds=1.25)
    assert cues[2].content == "Past the hour, with a break."
    assert "-->" not in cues[1].content


def test_vtt_parses_with_webvtt_py_and_keeps_hour_long_times() -> None:
    text = render(make_transcript(), "vtt")
    assert text.startswith("WEBVTT\n\n")
    captions = list(webvtt.from_buffer(io.StringIO(text)))
    assert [c.start for c in captions] == [
        "00:00:00.000",
        "00:00:59.999",
        "01:00:02.004",
        "10:01:01.250",
    ]
    assert captions[2].end == "01:00:05.500"
    assert captions[3].text == "Ten hours in."


def test_tsv_has_millisecond_columns() -> None:
    lines = render(make_transcript(), "tsv").splitlines()
    assert lines[0] == "start\tend\ttext"
    assert lines[3] == "3602004\t3605500\tPast the hour, with a break."
    assert all(len(line.split("\t")) == 3 for line in lines)


def test_txt_is_one_segment_a_line() -> None:
    assert render(make_transcript(), "txt").splitlines()[2] == "Past the hour, with a break."


def test_json_carries_everything() -> None:
    original = make_transcript()
    assert from_dict(json.loads(render(original, "json")), Transcript) == original


def test_empty_transcript_renders_in_every_format() -> None:
    empty = Transcript(
        text="", segments=(), language="en", language_probability=0, duration=3, model="x"
    )
    assert render(empty, "txt") == ""
    assert list(srt.parse(render(empty, "srt"))) == []
    assert list(webvtt.from_buffer(io.StringIO(render(empty, "vtt")))) == []
    assert set(FORMATS) == {"txt", "srt", "vtt", "json", "tsv"}


def test_unknown_format_is_explained() -> None:
    with pytest.raises(InvalidOptionsError, match="Choose one of: txt, srt, vtt, json, tsv"):
        render(make_transcript(), "docx")
