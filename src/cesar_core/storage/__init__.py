"""Where job audio lives between submission and transcription, chosen by URL:
``file:///var/lib/cesar/audio`` (the default, in the data directory) or a scheme a plugin adds
through the ``cesar_storage`` hook."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pluggy

from ..protocols import Storage

#: Opens a storage from its full URL.
StorageOpener = Callable[[str], Awaitable[Storage]]


async def open_storage(url: str, manager: pluggy.PluginManager | None = None) -> Storage:
    """Open the storage ``url`` names, through the plugin that handles its scheme."""
    from ..plugins import get_manager, named, pick, url_scheme

    opener: StorageOpener = pick(
        named(manager or get_manager(), "cesar_storage"),
        url_scheme(url),
        missing=f"No storage handles {url!r}",
        hint="Use a URL such as file:///var/lib/cesar/audio.",
    )
    return await opener(url)
