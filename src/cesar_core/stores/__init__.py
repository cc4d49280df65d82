"""Job stores, chosen by URL: ``memory://``, ``sqlite:///path/to/jobs.db``, or a scheme a
plugin adds through the ``cesar_job_stores`` hook."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pluggy

from ..protocols import JobStore

#: Opens a store from its full URL.
JobStoreOpener = Callable[[str], Awaitable[JobStore]]


async def open_store(url: str, manager: pluggy.PluginManager | None = None) -> JobStore:
    """Open the job store ``url`` names, through the plugin that handles its scheme."""
    from ..plugins import get_manager, named, pick, url_scheme

    openers = named(manager or get_manager(), "cesar_job_stores")
    opener: JobStoreOpener = pick(
        openers,
        url_scheme(url),
        missing=f"No job store handles {url!r}",
        hint="Use a URL such as sqlite:////var/lib/cesar/jobs.db.",
    )
    return await opener(url)
