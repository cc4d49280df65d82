"""Job stores, chosen by URL: ``memory://``, ``sqlite:///path/to/jobs.db``, or a scheme a
plugin adds through the ``cesar_job_stores`` hook."""

from __future__ import annotations

import pluggy

from ..protocols import JobStore, JobStoreOpener
from ..registry import named, pick, url_scheme

__all__ = ["JobStoreOpener", "open_store"]


async def open_store(url: str, manager: pluggy.PluginManager) -> JobStore:
    """Open the job store ``url`` names, through the plugin of ``manager`` that handles its
    scheme."""
    opener: JobStoreOpener = pick(
        named(manager, "cesar_job_stores"),
        url_scheme(url),
        missing=f"No job store handles {url!r}",
        hint="Use a URL such as sqlite:////var/lib/cesar/jobs.db.",
    )
    return await opener(url)
