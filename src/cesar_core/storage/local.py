"""Job audio in a local directory: streamed writes, atomic renames, cleanup by job.

Uploads are written chunk by chunk (never whole in memory) to a scratch file in the same
directory tree, checked against a size cap as they arrive, and renamed into place only
once complete, so a reader never sees half an upload and a failed upload leaves nothing.
A process killed mid-upload leaves its scratch file; the next process to start on the
directory removes it (:meth:`LocalStorage.clean_leftovers`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from ..ids import check_job_id
from .keys import check_key, check_size
from .scratch import remove_leftovers, scratch_name

#: Upload chunks are gathered up to this size before each write.
WRITE_BYTES = 1 << 20
#: How scratch files end; they also start with a dot, which no key's name does.
PART_SUFFIX = ".part"


class LocalStorage:
    """Files under ``root``; keys are relative paths of the form ``<job id>/<name>``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

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
        scratch = target.parent / scratch_name(f".{target.name}", PART_SUFFIX)
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
        await asyncio.to_thread(shutil.rmtree, self.root / check_job_id(job_id), True)

    async def clean_leftovers(self) -> int:
        """Remove the scratch files of uploads whose process died (killed mid-upload),
        and their job directories when nothing else is in them; return how many files."""
        return await asyncio.to_thread(self._clean_leftovers)

    def _clean_leftovers(self) -> int:
        removed = remove_leftovers(_part_files(self.root))
        for path in removed:
            _remove_empty(path.parent)
        return len(removed)

    async def close(self) -> None:
        """Nothing to release: files need no connection."""


def _write(handle: BinaryIO | None, scratch: Path, chunks: list[bytes]) -> BinaryIO:
    if handle is None:
        scratch.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = scratch.open("wb")
        except FileNotFoundError:  # the empty directory was just cleaned away: once more
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


def _part_files(root: Path) -> list[Path]:
    """The unfinished uploads under ``root`` (``<job id>/.<name>.part``).

    Other processes add and remove job directories while this runs, so a directory that
    vanishes between being listed and being read is skipped; ``Path.glob`` would raise.
    """
    found: list[Path] = []
    with suppress(FileNotFoundError):
        jobs = [entry.path for entry in os.scandir(root) if entry.is_dir(follow_symlinks=False)]
        for job in jobs:
            with suppress(FileNotFoundError, NotADirectoryError), os.scandir(job) as entries:
                found.extend(
                    Path(entry.path)
                    for entry in entries
                    if entry.name.startswith(".") and entry.name.endswith(PART_SUFFIX)
                )
    return found


def _remove_empty(directory: Path) -> None:
    with suppress(OSError):
        directory.rmdir()
