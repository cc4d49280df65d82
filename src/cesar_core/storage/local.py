"""Job audio in a local directory: streamed writes, atomic renames, cleanup by job.

Uploads are written chunk by chunk (never whole in memory) to a scratch file in the same
directory tree, checked against a size cap as they arrive, and renamed into place only
once complete, so a reader never sees half an upload and a failed upload leaves nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from ..errors import CesarError

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Upload chunks are gathered up to this size before each write.
WRITE_BYTES = 1 << 20


class UploadTooLargeError(CesarError):
    """The upload grew past the configured size cap."""

    code = "upload_too_large"


def check_size(size: int, max_bytes: int | None) -> None:
    """Stop an upload that has grown past ``max_bytes`` (every storage checks as it streams)."""
    if max_bytes is not None and size > max_bytes:
        raise UploadTooLargeError(
            f"The upload is larger than the limit of {max_bytes:,} bytes.",
            hint="Send a smaller file, or raise the limit (max_upload_bytes).",
        )


def audio_key(job_id: str, filename: str | None) -> str:
    """The storage key of a job's audio: its id, and a suffix kept for decoders' sake."""
    suffix = Path(filename or "").suffix.lower()
    suffix = _SAFE.sub("", suffix)[:10] if suffix else ""
    return f"{job_id}/audio{suffix}"


def key_job_id(key: str) -> str:
    """The job a storage key belongs to (the inverse of :func:`audio_key`)."""
    return key.split("/", 1)[0]


class LocalStorage:
    """Files under ``root``; keys are relative paths of the form ``<job id>/<name>``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()

    def _path(self, key: str) -> Path:
        if os.path.isabs(key) or ".." in Path(key).parts:
            raise ValueError(f"storage key {key!r} escapes the storage directory")
        return self.root / key

    async def save(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> int:
        """Stream ``chunks`` into ``key``; returns the size. Raises when over ``max_bytes``.

        Chunks are gathered up to :data:`WRITE_BYTES` and written in one call off the event
        loop. The scratch file is only opened with the first such write, so an upload under
        a MiB is stored in a single hand-off to a thread (open, write, fsync, rename), a
        large one in one per MiB.
        """
        target = self._path(key)
        scratch = target.parent / f".{target.name}.{uuid.uuid4().hex}.part"
        handle: BinaryIO | None = None
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                check_size(size, max_bytes)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= WRITE_BYTES:
                    handle = await asyncio.to_thread(_write, handle, scratch, pending)
                    pending, pending_size = [], 0
            await asyncio.to_thread(_finish, handle, scratch, pending, target)
        except BaseException:
            await asyncio.to_thread(_discard, handle, scratch)
            raise
        return size

    @asynccontextmanager
    async def local_path(self, key: str) -> AsyncIterator[Path]:
        """A path the transcriber can open; local storage hands out the file itself."""
        yield self._path(key)

    async def exists(self, key: str) -> bool:
        """Whether ``key`` holds a complete file."""
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete_job(self, job_id: str) -> None:
        """Remove every file of a job (missing files are fine)."""
        await asyncio.to_thread(shutil.rmtree, self._path(job_id), True)

    async def close(self) -> None:
        """Nothing to release: files need no connection."""


def _write(handle: BinaryIO | None, scratch: Path, chunks: list[bytes]) -> BinaryIO:
    if handle is None:
        scratch.parent.mkdir(parents=True, exist_ok=True)
        handle = scratch.open("wb")
    handle.writelines(chunks)
    return handle


def _finish(handle: BinaryIO | None, scratch: Path, chunks: list[bytes], target: Path) -> None:
    with _write(handle, scratch, chunks) as written:
        written.flush()
        os.fsync(written.fileno())  # the job row that points here must not outlive the bytes
    os.replace(scratch, target)


def _discard(handle: BinaryIO | None, scratch: Path) -> None:
    if handle is not None:
        handle.close()
    scratch.unlink(missing_ok=True)
    _remove_empty(scratch.parent)


def _remove_empty(directory: Path) -> None:
    with suppress(OSError):
        directory.rmdir()
