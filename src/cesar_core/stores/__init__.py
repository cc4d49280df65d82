"""Job stores, chosen by URL: ``memory://``, ``sqlite:///path/to/jobs.db``, or a scheme a
plugin adds through the ``cesar_job_stores`` hook."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pluggy

from ..errors import InvalidOptionsError
from ..protocols import JobStore

#: Opens a store from its full URL.
JobStoreOpener = Callable[[str], Awaitable[JobStore]]


def store_openers(manager: pluggy.PluginManager) -> dict[str, JobStoreOpener]:
    """Every URL scheme the loaded plugins can open; the first plugin to name one wins."""
    openers: dict[str, JobStoreOpener] = {}
    for provided in manager.hook.cesar_job_stores():
        for scheme, opener in provided.items():
            openers.setdefault(scheme.lower(), opener)
    return openers


async def open_store(url: str, manager: pluggy.PluginManager | None = None) -> JobStore:
    """Open the job store ``url`` names, through the plugin that handles its scheme."""
    if manager is None:
        from ..plugins import get_manager

        manager = get_manager()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    openers = store_openers(manager)
    if scheme not in openers:
        known = ", ".join(f"{name}://" for name in sorted(openers))
        raise InvalidOptionsError(
            f"No job store handles {url!r}.",
            hint=f"Use one of: {known} (for example sqlite:///var/lib/cesar/jobs.db), or "
            "install the plugin that provides the store.",
        )
    return await openers[scheme](url)
