"""Transcript downloads: subtitle options from a query or a form, and a file name to save as.

Subtitle options shape srt and vtt at download time (a finished job is never transcribed
again for them), so the job API takes them as query parameters of
``GET /jobs/{id}/transcript`` and the OpenAI-compatible endpoints as extra form fields.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any
from urllib.parse import quote

import attrs
from fastapi import Query

from cesar_core.errors import InvalidOptionsError
from cesar_core.transcription.subtitles import PRESETS, SubtitleOptions

from .options import field_error

#: Sent with a re-flowed transcript whose word times had to be estimated.
ESTIMATED_HEADER = "Cesar-Subtitle-Timing"

_NUMBERS: dict[str, type] = {
    field.name: int if field.name.endswith(("_width", "_count")) else float
    for field in attrs.fields(SubtitleOptions)
    if field.name != "highlight_words"
}
#: Every option a query or form may carry, ``preset`` first.
SUBTITLE_FIELDS = ("preset", *_NUMBERS, "highlight_words")


def subtitle_query(
    preset: Annotated[
        str | None,
        Query(max_length=40, description=f"Named limits: {', '.join(PRESETS)}."),
    ] = None,
    max_line_width: Annotated[int | None, Query(ge=1, le=1000)] = None,
    max_line_count: Annotated[int | None, Query(ge=1, le=10)] = None,
    max_cue_duration: Annotated[float | None, Query(gt=0, le=3600)] = None,
    min_cue_duration: Annotated[float | None, Query(ge=0, le=3600)] = None,
    max_chars_per_second: Annotated[float | None, Query(gt=0, le=1000)] = None,
    pause_threshold: Annotated[float | None, Query(gt=0, le=3600)] = None,
    highlight_words: Annotated[
        bool, Query(description="One cue per word, the word underlined (karaoke).")
    ] = False,
) -> SubtitleOptions:
    """The subtitle options of ``GET /jobs/{id}/transcript`` (srt and vtt only)."""
    values = dict(locals())
    return _options(values.pop("preset"), values)


def subtitle_form(fields: Mapping[str, str]) -> SubtitleOptions:
    """The subtitle options among a form's fields (the OpenAI-compatible endpoints): each
    checked as the query's are, an empty one meaning unset."""
    values: dict[str, Any] = {}
    for name, kind in _NUMBERS.items():
        raw = fields.get(name, "").strip()
        if not raw:
            continue
        try:
            number = kind(raw)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise field_error(name, f"{name} must be {what}, not {raw!r}.") from None
        if kind is float and not math.isfinite(number):
            raise field_error(name, f"{name} must be a finite number, not {raw!r}.")
        values[name] = number
    flag = fields.get("highlight_words", "").strip().lower()
    if flag not in ("", "true", "false", "1", "0"):
        raise field_error("highlight_words", "highlight_words must be true or false.")
    values["highlight_words"] = flag in ("true", "1")
    return _options(fields.get("preset", "").strip() or None, values)


def _options(preset: str | None, values: dict[str, Any]) -> SubtitleOptions:
    try:
        return SubtitleOptions.preset(preset, **values)
    except InvalidOptionsError as exc:
        at_fault = next((name for name in SUBTITLE_FIELDS if exc.message.startswith(name)), None)
        if exc.message.startswith("Unknown subtitle preset"):
            at_fault = "preset"
        raise field_error(at_fault or "preset", exc.message, exc.hint) from None


def download_name(filename: str | None, fmt: str, fallback: str) -> str:
    """The name to save a transcript as: the upload's name with the format's extension
    (``talk.mp3`` -> ``talk.srt``), else ``fallback`` (the job id)."""
    stem = ""
    if filename:
        base = PureWindowsPath(PurePosixPath(filename).name).name  # no directories, any OS
        stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
        stem = "".join(c for c in stem if unicodedata.category(c)[0] != "C").strip(" .")
    return f"{(stem or fallback)[:200]}.{fmt}"


def content_disposition(name: str) -> str:
    """``attachment`` with ``name``: an ASCII ``filename`` for every client and the exact
    one as ``filename*`` (RFC 6266 and 8187) where it is not ASCII."""
    ascii_name = re.sub(r'[^\x20-\x7e]|["\\]', "_", name)
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header
