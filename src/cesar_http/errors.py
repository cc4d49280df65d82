"""Core errors as HTTP answers: one status per kind of error, one JSON body for all.

HTTP status codes describe the request, not the job: a job that failed is still fetched
with 200 and carries its own ``error``. Only the synchronous (OpenAI-compatible) endpoints
answer with their job's error, and they take its status from the same table as every
other error (:func:`status_for_code`), so that a permanent failure is a 4xx a client does
not retry and a transient one a 503 it may.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi.responses import JSONResponse

from cesar_core.errors import (
    AudioError,
    CesarError,
    InvalidJobIdError,
    InvalidOptionsError,
    ModelIntegrityError,
    ModelNotFoundError,
    StoreUnavailableError,
    UploadTooLargeError,
)
from cesar_core.fetch import DownloadRejectedError, UrlRefusedError
from cesar_core.jobs import JobError
from cesar_core.service import JobNotFoundError
from cesar_core.speakers import JobNotCompletedError, ResultsReadOnlyError

from .multipart import FormError
from .schemas import ErrorDetail


class RequestTooLargeError(CesarError):
    """A request body (other than an upload's audio) is larger than the server reads."""

    code = "request_too_large"


class WaitTimeoutError(CesarError):
    """A synchronous request's job did not finish in time; the job was cancelled."""

    code = "timeout"
    permanent = False


#: The first matching class decides (subclasses before their bases).
_STATUSES: tuple[tuple[type[CesarError], int], ...] = (
    (JobNotFoundError, 404),
    (JobNotCompletedError, 409),
    (ResultsReadOnlyError, 501),
    (UploadTooLargeError, 413),
    (RequestTooLargeError, 413),
    (UrlRefusedError, 400),
    (FormError, 400),
    (InvalidJobIdError, 422),
    (InvalidOptionsError, 422),
    (ModelNotFoundError, 422),
    (AudioError, 422),
    (DownloadRejectedError, 422),
    (ModelIntegrityError, 500),
    (WaitTimeoutError, 504),
    (StoreUnavailableError, 503),
)

#: The request field an error is about, where one field is to blame.
_FIELDS = {
    "diarizer_not_installed": "diarize",
    "model_not_found": "model",
    "unsupported_language": "language",
    "upload_too_large": "file",
    "url_refused": "url",
    "url_unresolvable": "url",
}


def status_for(error: CesarError | type[CesarError]) -> int:
    """The HTTP status for a core error (or its class): the table above, then 422 for any
    other permanent error (the request asked for something that cannot be done) and 503
    for a transient one (the server may manage it later)."""
    kind = error if isinstance(error, type) else type(error)
    for known, status in _STATUSES:
        if issubclass(kind, known):
            return status
    return 422 if kind.permanent else 503


def _subclasses(kind: type[CesarError]) -> Iterator[type[CesarError]]:
    for sub in kind.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def status_for_code(code: str) -> int:
    """The status for an error known only by its ``code`` (a failed job's): that of the
    error class with this code; 500 for a code no class has (the server's own failure)."""
    for kind in _subclasses(CesarError):
        if kind.code == code:
            return status_for(kind)
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


def error_detail(error: CesarError) -> ErrorDetail:
    """The body's ``error`` for a core error, with the field it is about when one is to
    blame (also where an answer reports an error without failing: ``GET /diarizers``)."""
    field = error.field or _FIELDS.get(error.code)
    return ErrorDetail(code=error.code, message=error.message, hint=error.hint, field=field)


def cesar_error_response(error: CesarError, status: int | None = None) -> JSONResponse:
    """The answer to a core error, with the field it is about when one is to blame."""
    detail = error_detail(error)
    return error_response(
        status or status_for(error), detail.code, detail.message, detail.hint, detail.field
    )


def job_error_response(error: JobError | None, state: str) -> JSONResponse:
    """The answer of a synchronous request whose job did not complete."""
    if error is None:  # cancelled meanwhile (by DELETE /jobs/{id})
        return error_response(
            409, "job_cancelled", f"The job was {state} before it finished.", field=None
        )
    status = status_for_code(error.code)
    hint = None if status < 500 else "The server may manage it later; send the request again."
    return error_response(status, error.code, error.message, hint, _FIELDS.get(error.code))


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
