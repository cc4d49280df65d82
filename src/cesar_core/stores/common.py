"""Pieces every store shares: cursors and the error of a job whose worker vanished."""

from __future__ import annotations

import base64

from ..errors import InvalidOptionsError
from ..jobs import JobError


def encode_cursor(position: int) -> str:
    """An opaque cursor for the job at ``position`` in creation order."""
    return base64.urlsafe_b64encode(f"j{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The position a cursor stands for; a malformed cursor is the caller's error."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("j"):
            raise ValueError(text)
        return int(text[1:])
    except ValueError:
        raise InvalidOptionsError(
            f"Invalid cursor {cursor!r}.", hint="Pass the next_cursor of a previous page."
        ) from None


def expired_error(attempts: int) -> JobError:
    """Why a job is failed after its workers stopped responding ``attempts`` times."""
    return JobError(
        code="worker_lost",
        message=f"The worker running this job stopped responding {attempts} times (the job "
        "may crash or exhaust its worker); giving up. Check the worker logs.",
    )
