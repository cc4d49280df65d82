"""Language and decoding options of ``cesar transcribe``: which languages to detect among,
a language per segment, and faster-whisper's hallucination guards (with its meaning)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from cesar_core.languages import language_code

_F = TypeVar("_F", bound=Callable[..., Any])

_UNKNOWN = "use a code such as en, fr, de, or a name such as German"


def language(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    """``--language``: a code (``de``) or a name (``German``), as whisper's CLI takes;
    ``auto`` (or nothing) detects it."""
    if value is None or value.strip().lower() == "auto":
        return None
    code = language_code(value)
    if code is None:
        raise click.BadParameter(f"unknown language code {value!r}; {_UNKNOWN}, or auto.")
    return code


def _languages(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    codes = []
    for item in (part.strip() for part in value.split(",")):
        if item:
            code = language_code(item)
            if code is None:
                raise click.BadParameter(f"unknown language {item!r}; {_UNKNOWN}.")
            codes.append(code)
    if not codes:
        raise click.BadParameter("name at least one language, such as de,fr,it.")
    return ",".join(codes)


_OPTIONS = (
    click.option(
        "--languages",
        metavar="LIST",
        callback=_languages,
        help="Detect the language among these only (codes or names, comma-separated: de,fr,it).",
    ),
    click.option(
        "--multilingual",
        is_flag=True,
        default=None,
        help="Detect the language again every 30 seconds decoded, for recordings that switch "
        "language; json says each segment's (see docs/cli.md for what to expect).",
    ),
    click.option(
        "--condition-on-previous-text/--no-condition-on-previous-text",
        default=None,
        help="Prime each 30 seconds with the text before it (default on); off stops a "
        "repetition loop from carrying on.",
    ),
    click.option(
        "--compression-ratio-threshold",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        metavar="VALUE",
        help="Retry (hotter) a decode whose text compresses more than this. [2.4]",
    ),
    click.option(
        "--log-prob-threshold",
        type=float,
        default=None,
        metavar="VALUE",
        help="Retry a decode whose average log probability is below this. [-1.0]",
    ),
    click.option(
        "--no-speech-threshold",
        type=click.FloatRange(0, 1),
        default=None,
        metavar="VALUE",
        help="Skip a window more likely silent than this whose decode failed the log "
        "probability threshold. [0.6]",
    ),
    click.option(
        "--hallucination-silence-threshold",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        metavar="SECONDS",
        help="Skip silences longer than this around doubtful segments (turns word timestamps on).",
    ),
)


def decoding_options(command: _F) -> _F:
    """Add the options above to ``command``."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def take_decoding(options: dict[str, object]) -> None:
    """Adjust ``options`` in place: the hallucination guard needs word timestamps."""
    if options.get("hallucination_silence_threshold") is not None:
        options["word_timestamps"] = True
