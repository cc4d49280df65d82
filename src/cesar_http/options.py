"""What a remote caller may ask of the server, checked before any job exists.

The CLI's user owns the machine; an HTTP caller does not. So a request's options are held
to the server's own bounds here, for ``POST /transcribe`` and the OpenAI-compatible
endpoints alike: the model must be one the server lists (never a path, which would let a
caller probe the file system), the language one the model understands, speakers (``diarize``)
only of a kind the embedded worker can tell apart, and the costly
knobs (``beam_size``, ``batch_size``, ``cpu_threads``) within the settings' maxima. A bad
option is answered at once with a 4xx instead of becoming a job that fails later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from cesar_core import make_options
from cesar_core.errors import InvalidOptionsError, ModelNotFoundError, UnsupportedLanguageError
from cesar_core.stores.common import decode_cursor
from cesar_core.transcript import TranscribeOptions
from cesar_core.transcription.whisper import needs_multilingual

from .errors import RequestTooLargeError
from .multipart import FormError
from .runtime import Runtime
from .schemas import TranscribeFields

#: Where HTTP callers learn the model names they may use.
MODELS_HINT = "Send one of the names GET /v1/models lists in the model field."
#: How to keep to English, for each option that asks for more than an English-only model does.
_ENGLISH_ONLY_WAY = {
    "language": "leave language unset for English",
    "languages": "leave languages unset for English",
    "task": "transcribe the English speech instead of translating",
    "multilingual": "leave multilingual unset for English throughout",
}


def field_error(field: str, message: str, hint: str | None = None) -> InvalidOptionsError:
    """An :class:`InvalidOptionsError` that names the request field at fault."""
    return InvalidOptionsError(message, hint=hint, field=field)


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request's JSON body, read no further than ``max_bytes``.

    Whatever the body holds, the answer is a value or a :class:`FormError` (400): a body
    too deep for the parser or an integer too long to convert are the caller's mistakes,
    not the server's failure.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    try:
        return json.loads(body)
    except RecursionError:
        raise FormError("The JSON body is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, or a huge integer
        raise FormError(f"The body is not valid JSON: {exc}.") from None


def _too_large(max_bytes: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"The JSON body is larger than the limit of {max_bytes:,} bytes.",
        hint="Send less metadata; the server's limit is max_json_bytes.",
    )


def check_cursor(cursor: str | None) -> None:
    """Refuse a malformed cursor, or one for a position no store can hold, before a store
    is asked, naming the query parameter."""
    try:
        decode_cursor(cursor)
    except InvalidOptionsError:
        raise field_error(
            "cursor", "Invalid cursor.", hint="Pass the next_cursor of a previous page."
        ) from None


async def job_options(
    fields: TranscribeFields, state: Runtime, fixed: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The job settings for :meth:`JobService.submit_stored` or ``submit_url``, every
    option checked against what this server allows. ``fixed`` names the options the
    endpoint sets itself (see :func:`check_model`)."""
    settings = state.settings
    size = len(json.dumps(fields.metadata, ensure_ascii=False).encode())
    if size > settings.max_metadata_bytes:
        raise field_error(
            "metadata",
            f"metadata is {size:,} bytes as JSON; the limit is {settings.max_metadata_bytes:,}.",
            hint="Keep metadata to a few identifiers; the server's limit is max_metadata_bytes.",
        )
    options = make_options(settings, **fields.options())
    check_bounds(options, state)
    await check_model(options, state, fixed)
    if options.diarize is not None:
        error = await state.diarize_error(options.diarize)
        if error is not None:  # the embedded worker would fail the job: say so now
            raise error
    return {
        "options": options,
        "metadata": fields.metadata,
        "idempotency_key": fields.idempotency_key,
        "webhook_url": fields.webhook_url,
    }


#: The machine's CPUs, read once: ``os.cpu_count()`` reads a file each time.
CPUS = os.cpu_count() or 1


def check_bounds(options: TranscribeOptions, state: Runtime) -> None:
    """Refuse options that would cost the server more than its settings allow."""
    settings = state.settings
    cpus = settings.max_cpu_threads or CPUS
    for name, value, limit in (
        ("beam_size", options.beam_size, settings.max_beam_size),
        ("batch_size", options.batch_size, settings.max_batch_size),
        ("cpu_threads", options.cpu_threads, cpus),
    ):
        if value > limit:
            raise field_error(
                name,
                f"{name} must be at most {limit} on this server, not {value}.",
                hint=f"Send a {name} of {limit} or less (the server's max_{name}), or leave it "
                "unset for the default.",
            )


async def check_model(
    options: TranscribeOptions, state: Runtime, fixed: Mapping[str, str] | None = None
) -> None:
    """The model must be the server's default or a name it lists, and able to do what the
    options ask (an English-only model neither translates nor hears French).

    ``fixed`` maps each option the endpoint sets itself (``task`` on
    ``/v1/audio/translations``), which the client never sent, to what the client can do
    instead: a model that cannot do it is then the field at fault.
    """
    name = options.model
    listed = await state.models.available()
    if name != state.settings.model and name not in {location.name for location in listed}:
        # A path is refused like any unknown name, without looking at the file system.
        names = sorted({location.name for location in listed if location.path is not None})
        shown = name if len(name) <= 60 else f"{name[:60]}..."
        raise ModelNotFoundError(
            f"Model {shown!r} is not available on this server. Available: "
            f"{', '.join(names) or 'none'}.",
            hint=MODELS_HINT,
        )
    try:
        location = await state.models.resolve(name)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(exc.message, hint=MODELS_HINT) from None
    asked = needs_multilingual(options)
    if location.multilingual is False and asked is not None:
        multilingual = sorted(
            {loc.name for loc in listed if loc.multilingual and loc.path is not None}
        )
        what, field = asked
        way = _ENGLISH_ONLY_WAY[field]
        if fixed and field in fixed:
            field, way = "model", fixed[field]
        others = f"one of: {', '.join(multilingual)}" if multilingual else "a multilingual model"
        raise UnsupportedLanguageError(
            f"Model {location.name!r} understands English only, so it cannot {what}.",
            hint=f"Send model as {others}; or {way}.",
            field=field,
        )
