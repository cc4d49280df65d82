"""What a job id and an idempotency key may be, checked where they enter.

Job ids become URL path segments, directory names in storage and database keys, so only
``[A-Za-z0-9_-]``, 1 to 64 of them, are ever accepted: no dot (``.`` and ``..`` would
name the storage root or its parent), no slash, no NUL (PostgreSQL refuses it in text).
The ids Cesar makes (:func:`~cesar_core.jobs.new_job_id`, 32 hex digits) are a subset.
"""

from __future__ import annotations

import re

from .errors import InvalidIdempotencyKeyError, InvalidJobIdError

#: Letters, digits, ``_`` and ``-``; at most 64.
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: The longest idempotency key accepted.
MAX_IDEMPOTENCY_KEY = 200


def check_job_id(job_id: object) -> str:
    """``job_id`` if it is a well-formed id; :class:`InvalidJobIdError` otherwise."""
    if isinstance(job_id, str) and JOB_ID.fullmatch(job_id):
        return job_id
    raise InvalidJobIdError(
        f"{_shown(job_id)} is not a job id.",
        hint="A job id is 1 to 64 letters, digits, '_' or '-', as returned when the job "
        "was submitted.",
    )


def check_idempotency_key(key: str | None) -> str | None:
    """``key`` if a store can keep it: 1 to 200 printable characters (no NUL, no control
    characters, no lone surrogates); :class:`InvalidIdempotencyKeyError` otherwise."""
    if key is None:
        return None
    if 0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable() and _encodable(key):
        return key
    raise InvalidIdempotencyKeyError(
        f"The idempotency key {_shown(key)} is not usable.",
        hint=f"Use 1 to {MAX_IDEMPOTENCY_KEY} printable characters, such as a UUID.",
    )


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _shown(value: object) -> str:
    """The value for a message: quoted, escaped, and cut short."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
