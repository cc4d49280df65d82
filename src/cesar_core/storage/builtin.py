"""The built-in storage, registered through the ``cesar_storage`` hook like any plugin."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import InvalidOptionsError
from ..hookspecs import hookimpl
from ..protocols import Storage
from . import StorageOpener
from .local import LocalStorage


def file_path(url: str) -> Path:
    """``file:///var/lib/cesar/audio`` to a path; only local, absolute paths are valid."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise InvalidOptionsError(
            f"Invalid storage URL {url!r}.",
            hint="Write file:///absolute/path/to/audio (three slashes, an absolute path).",
        )
    return Path(unquote(parts.path))


async def open_file(url: str) -> Storage:
    """``file:///path``: audio in a local directory (one machine, or a shared mount)."""
    return LocalStorage(file_path(url))


@hookimpl
def cesar_storage() -> dict[str, StorageOpener]:
    return {"file": open_file}
