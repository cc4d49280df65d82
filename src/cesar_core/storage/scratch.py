"""Scratch files named after the process writing them, and the start-up clean-up of those
a crashed process left behind.

Partial uploads (``.part`` files) and local copies of audio kept elsewhere are scratch:
they matter only while their writer lives. A name carries the writer's host and process
id, so a process starting up removes exactly the scratch of dead processes on its own
host, while several live processes (and machines, on a shared mount) use one directory.
Scratch of another host, or in a name this module did not make, goes once it is older
than :data:`STALE_SECONDS`: no writer keeps a file that long.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Protocol, runtime_checkable

logger = logging.getLogger(__name__)

#: Scratch not provably owned by a live process on this host goes after this long.
STALE_SECONDS = 2 * 24 * 3600.0
_OWNER = re.compile(r"~(?P<host>[A-Za-z0-9-]{1,63})~(?P<pid>[0-9]{1,10})~[0-9a-f]{32}")


@runtime_checkable
class LeftoverCleaner(Protocol):
    """A storage whose writers keep scratch files (partial uploads, local copies) and
    that can remove those of processes that died; optional, like a store's extras."""

    async def clean_leftovers(self) -> int:
        """Remove scratch files no live process owns; return how many went."""
        ...


@runtime_checkable
class CopiesLocally(Protocol):
    """A storage that hands out local copies of files kept elsewhere; ``scratch_dir`` is
    where it puts them, a directory the next process to start looks in again."""

    scratch_dir: Path


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:63] or "host"


def scratch_name(prefix: str, suffix: str) -> str:
    """A file name unique to this process: ``<prefix>~<host>~<pid>~<random><suffix>``."""
    return f"{prefix}~{_host()}~{os.getpid()}~{uuid.uuid4().hex}{suffix}"


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie, dead but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    with suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def is_leftover(path: Path, now: float | None = None) -> bool:
    """Whether the scratch file ``path`` belongs to no live process."""
    match = _OWNER.search(path.name)
    if match and match["host"] == _host():
        return not alive(int(match["pid"]))
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age > STALE_SECONDS


def remove_leftovers(paths: Iterable[Path]) -> list[Path]:
    """Remove those of ``paths`` that are leftovers; return them."""
    now = time.time()
    removed = []
    for path in paths:
        if is_leftover(path, now):
            with suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    if removed:
        logger.info("removed %d scratch file(s) left by stopped processes", len(removed))
    return removed
