"""What every storage shares: the key scheme and the upload size cap.

Keys are ``<job id>/<name>``, everything under a job's id being its own. Every storage
checks keys with :func:`check_key` before touching anything, so a key can never name a
file outside its job's directory (no ``..``, no absolute path, no empty or dotted part),
whatever reached the storage.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ..errors import InvalidStorageKeyError, UploadTooLargeError
from ..ids import JOB_ID, check_job_id

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: A file name inside a job's directory: no leading dot (``.``, ``..``, scratch files).
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")


def audio_key(job_id: str, filename: str | None) -> str:
    """The storage key of a job's audio: its id, and a suffix kept for decoders' sake."""
    suffix = PurePosixPath(filename or "").suffix.lower()
    suffix = _SAFE.sub("", suffix)[:10] if suffix else ""
    return check_key(f"{check_job_id(job_id)}/audio{suffix}")


def check_key(key: str) -> str:
    """``key`` if it is ``<job id>/<name>``; :class:`InvalidStorageKeyError` otherwise."""
    job_id, slash, name = key.partition("/") if isinstance(key, str) else ("", "", "")
    if slash and JOB_ID.fullmatch(job_id) and _NAME.fullmatch(name):
        return key
    raise InvalidStorageKeyError(
        f"{key!r} is not a storage key.",
        hint="Keys are <job id>/<file name>, as audio_key makes them.",
    )


def key_job_id(key: str) -> str:
    """The job a storage key belongs to (the inverse of :func:`audio_key`)."""
    return check_key(key).partition("/")[0]


def check_size(size: int, max_bytes: int | None) -> None:
    """Stop an upload that has grown past ``max_bytes`` (every storage checks as it streams)."""
    if max_bytes is not None and size > max_bytes:
        raise UploadTooLargeError(
            f"The upload is larger than the limit of {max_bytes:,} bytes.",
            hint="Send a smaller file, or raise the limit (max_upload_bytes).",
        )
