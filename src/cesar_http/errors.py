"""Core errors as HTTP answers: one status per kind of error, one JSON body for all.

HTTP status codes describe the request, not the job: a job that failed is still fetched
with 200 and carries its own ``error``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse

from cesar_core.errors import (
    AudioError,
    CesarError,
    InvalidJobIdError,
    InvalidOptionsError,
    ModelNotFoundError,
    StoreUnavailableError,
    UploadTooLargeError,
)
from cesar_core.fetch import UrlRefusedError
from cesar_core.service import JobNotFoundError

from .multipart import FormError

#: The first matching class decides (subclasses before their bases).
_STATUSES: tuple[tuple[type[CesarError], int], ...] = (
    (JobNotFoundError, 404),
    (UploadTooLargeError, 413),
    (UrlRefusedError, 400),
    (FormError, 400),
    (InvalidJobIdError, 422),
    (InvalidOptionsError, 422),
    (ModelNotFoundError, 422),
    (AudioError, 422),
    (StoreUnavailableError, 503),
)


def status_for(error: CesarError) -> int:
    """The HTTP status for a core error: 503 while the store is out of reach, and 500 for
    anything else not caused by the request."""
    for kind, status in _STATUSES:
        if isinstance(error, kind):
            return status
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    hint: str | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error body: ``{"error": {"code", "message", "hint", "field"}}``."""
    detail = {"code": code, "message": message, "hint": hint, "field": field}
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


def validation_response(errors: Sequence[Any]) -> JSONResponse:
    """422 for input that does not match the schema, naming the first field at fault."""
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
    field = ".".join(location) or None
    reason = first.get("msg", "invalid input")
    if first.get("type") == "extra_forbidden":
        reason = "unknown field"
    message = f"{field}: {reason}." if field else f"{reason}."
    if len(errors) > 1:
        message += f" ({len(errors) - 1} more problem(s) in the request.)"
    return error_response(
        422, "invalid_request", message, "See /docs for the fields each endpoint takes.", field
    )
