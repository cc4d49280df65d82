"""Subtitle options over HTTP: the job API's download (query parameters, file name) and the
OpenAI-compatible endpoint (extra form fields), against a real ``cesar serve`` with the real
model, read by real clients (httpx, the OpenAI SDK) and independent parsers."""

from __future__ import annotations

import io
import re

import httpx
import openai
import pytest
import srt
import webvtt

from cesar_core.transcription.subtitles import SubtitleOptions

from .conftest import DATA
from .http_helpers import wait_for
from .test_http import api  # noqa: F401  (the served API fixture)
from .test_subtitles import _assert_limits, _seconds


@pytest.fixture(scope="module")
def long_job(api: httpx.Client) -> str:  # noqa: F811
    """The long fixture, uploaded under a name with a space and an accent, with words."""
    with (DATA / "long_en.opus").open("rb") as audio:
        submitted = api.post(
            "/transcribe",
            files={"file": ("Réunion hebdo.opus", audio)},
            data={"word_timestamps": "true"},
        )
    assert submitted.status_code == 202, submitted.text
    job_id = str(submitted.json()["id"])
    assert wait_for(api, job_id)["status"] == "completed"
    return job_id


def test_download_with_a_preset_keeps_its_limits_and_the_upload_name(
    api: httpx.Client,  # noqa: F811
    long_job: str,
) -> None:
    answer = api.get(f"/jobs/{long_job}/transcript", params={"format": "srt", "preset": "netflix"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == (
        "attachment; filename=\"R_union hebdo.srt\"; filename*=UTF-8''R%C3%A9union%20hebdo.srt"
    )
    assert "cesar-subtitle-timing" not in answer.headers
    cues = [(_seconds(c.start), _seconds(c.end), c.content) for c in srt.parse(answer.text)]
    _assert_limits(cues, SubtitleOptions.preset("netflix"))
    plain = api.get(f"/jobs/{long_job}/transcript", params={"format": "srt"})
    assert max(len(c.content) for c in srt.parse(plain.text)) > 42  # as whisper segments them
    txt = api.get(f"/jobs/{long_job}/transcript")
    assert 'filename="R_union hebdo.txt"' in txt.headers["content-disposition"]


def test_download_with_single_options_and_highlighted_words(
    api: httpx.Client,  # noqa: F811
    long_job: str,
) -> None:
    params = {"format": "vtt", "max_line_width": "24", "max_line_count": "1"}
    answer = api.get(f"/jobs/{long_job}/transcript", params=params)
    captions = list(webvtt.from_buffer(io.StringIO(answer.text)))
    assert len(captions) > 10
    assert all(len(c.text) <= 24 and "\n" not in c.text for c in captions)
    karaoke = api.get(
        f"/jobs/{long_job}/transcript", params={**params, "highlight_words": "true"}
    ).text
    underlined = [
        re.findall(r"<u>(.*?)</u>", c.raw_text) for c in webvtt.from_buffer(io.StringIO(karaoke))
    ]
    assert sum(len(found) for found in underlined) == len(
        [w for c in captions for w in c.text.split()]
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"preset": "youtube"}, "preset"),
        ({"max_line_width": "0"}, "max_line_width"),
        ({"max_line_width": "wide"}, "max_line_width"),
        ({"max_cue_duration": "-2"}, "max_cue_duration"),
        ({"min_cue_duration": "9", "max_cue_duration": "3"}, "min_cue_duration"),
        ({"highlight_words": "maybe"}, "highlight_words"),
    ],
)
def test_bad_subtitle_options_are_refused_with_the_field(
    api: httpx.Client,  # noqa: F811
    long_job: str,
    params: dict[str, str],
    field: str,
) -> None:
    answer = api.get(f"/jobs/{long_job}/transcript", params={"format": "srt", **params})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field


def test_a_job_without_words_gets_estimated_cues_and_says_so(
    api: httpx.Client,  # noqa: F811
) -> None:
    with (DATA / "speech_en.wav").open("rb") as audio:
        job_id = api.post("/transcribe", files={"file": ("talk.wav", audio)}).json()["id"]
    assert wait_for(api, job_id)["status"] == "completed"
    answer = api.get(f"/jobs/{job_id}/transcript", params={"format": "srt", "preset": "bbc"})
    assert answer.status_code == 200
    assert answer.headers["cesar-subtitle-timing"] == "estimated"
    assert answer.headers["content-disposition"] == 'attachment; filename="talk.srt"'
    cues = list(srt.parse(answer.text))
    assert all(len(line) <= 37 for c in cues for line in c.content.split("\n"))
    assert len(cues) >= 2


def test_openai_endpoint_takes_subtitle_options_as_extra_fields(
    api: httpx.Client,  # noqa: F811
) -> None:
    base = str(api.base_url).rstrip("/")
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0)
    with (DATA / "long_en.opus").open("rb") as audio:
        text = client.audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="srt",
            extra_body={"preset": "netflix", "max_line_width": "32"},
        )
    options = SubtitleOptions.preset("netflix", max_line_width=32)
    cues = [(_seconds(c.start), _seconds(c.end), c.content) for c in srt.parse(str(text))]
    _assert_limits(cues, options)
    with (DATA / "speech_en.wav").open("rb") as audio:
        refused = api.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", audio)},
            data={"model": "whisper-1", "response_format": "vtt", "max_line_count": "two"},
        )
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "max_line_count"
