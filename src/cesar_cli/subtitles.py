"""Subtitle options of ``cesar transcribe``: how srt and vtt cues are shaped, and which
formats one run writes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from cesar_core import FORMATS, InvalidOptionsError
from cesar_core.transcription.subtitles import PRESETS, SubtitleOptions

_F = TypeVar("_F", bound=Callable[..., Any])

#: The option names this module adds, as the command receives them.
NAMES = (
    "subtitle_preset",
    "max_line_width",
    "max_line_count",
    "max_cue_duration",
    "min_cue_duration",
    "max_chars_per_second",
    "pause_threshold",
    "highlight_words",
)

_OPTIONS = (
    click.option(
        "--subtitle-preset",
        type=click.Choice(list(PRESETS), case_sensitive=False),
        help="Named srt/vtt limits: netflix (42 characters, 2 lines, 17 a second) or bbc "
        "(37 characters). The options below override its values.",
    ),
    click.option("--max-line-width", type=click.IntRange(1, 1000), help="Characters a line."),
    click.option("--max-line-count", type=click.IntRange(1, 10), help="Lines a cue (2)."),
    click.option(
        "--max-cue-duration", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS"
    ),
    click.option("--min-cue-duration", type=click.FloatRange(min=0), metavar="SECONDS"),
    click.option(
        "--max-chars-per-second",
        type=click.FloatRange(min=0, min_open=True),
        help="Reading speed: cues stay longer where the speech leaves room.",
    ),
    click.option(
        "--pause-threshold",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="Silence that starts a new cue (2).",
    ),
    click.option(
        "--highlight-words", is_flag=True, help="Karaoke: underline each word as it is spoken."
    ),
)


def subtitle_options(command: _F) -> _F:
    """Add the subtitle options to ``command``."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def take_subtitles(options: dict[str, Any]) -> SubtitleOptions:
    """Remove the subtitle options from a command's ``options`` and build them."""
    values = {name: options.pop(name) for name in NAMES}
    preset = values.pop("subtitle_preset")
    values["highlight_words"] = values["highlight_words"] or None
    try:
        return SubtitleOptions.preset(preset, **values)
    except InvalidOptionsError as exc:
        raise click.UsageError(str(exc)) from None


def formats_to_write(
    chosen: tuple[str, ...], output: str | None, several_inputs: bool
) -> list[str]:
    """The formats one run writes: those of ``-f`` (``all`` is every one), else the one the
    ``-o`` file's extension names, else txt. An extension no format has is refused rather
    than written as txt under a misleading name."""
    several = list(FORMATS) if "all" in chosen else list(dict.fromkeys(chosen))
    if len(several) > 1 and output not in (None, "-"):
        named = Path(str(output))
        if named.suffix.lstrip(".").lower() in FORMATS and not named.is_dir():
            raise click.UsageError(
                f"-o {output} names one file, but several formats are written: "
                "give a directory (-o DIR/), where each goes to DIR/FILE-STEM.FORMAT."
            )
    if several:
        return several
    if output is None or output == "-" or several_inputs:
        return ["txt"]
    target = Path(output)
    if target.is_dir() or output.endswith(("/", os.sep)) or not target.suffix:
        return ["txt"]
    suffix = target.suffix.lstrip(".").lower()
    if suffix not in FORMATS:
        raise click.UsageError(
            f"unknown output extension {target.suffix!r} in -o {output}: name the format with "
            f"-f ({', '.join(FORMATS)}, all) or end the file name with one of them."
        )
    return [suffix]
