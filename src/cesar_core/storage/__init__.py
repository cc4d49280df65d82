"""Where job audio lives between submission and transcription, chosen by URL:
``file:///var/lib/cesar/audio`` (the default, in the data directory) or a scheme a plugin adds
through the ``cesar_storage`` hook."""

from __future__ import annotations

import pluggy

from ..protocols import Storage, StorageOpener
from ..registry import named, pick, url_scheme

__all__ = ["StorageOpener", "open_storage"]


async def open_storage(url: str, manager: pluggy.PluginManager) -> Storage:
    """Open the storage ``url`` names, through the plugin of ``manager`` that handles its
    scheme."""
    opener: StorageOpener = pick(
        named(manager, "cesar_storage"),
        url_scheme(url),
        missing=f"No storage handles {url!r}",
        hint="Use a URL such as file:///var/lib/cesar/audio.",
    )
    return await opener(url)
