"""The server's models as a request checks them: looked up once per few seconds, not per job.

Checking the model of every submitted job lists every source's models and resolves the
name: importlib lookups of the packages that carry models and scans of the model cache.
That is about a millisecond, but under the interpreter's import lock, which every thread
shares: in a burst of 200 short uploads it was a quarter of the server's time, with the
threads queued on that lock. A listing a few seconds old is as good an answer; a model
installed or removed while the server runs shows within :data:`MAX_AGE_S`, and a job whose
model vanished in between fails in the worker with ``model_not_found``.
"""

from __future__ import annotations

import asyncio
import time

from cesar_core import ModelResolver
from cesar_core.protocols import ModelLocation

#: How long a listing, or a name resolved, is reused.
MAX_AGE_S = 5.0


class ModelListing:
    """:meth:`ModelResolver.available` and :meth:`ModelResolver.resolve`, each kept for
    ``max_age`` seconds (a name that does not resolve is asked again every time, so that
    its error message is always the resolver's own)."""

    def __init__(self, resolver: ModelResolver, max_age: float = MAX_AGE_S) -> None:
        self.resolver = resolver
        self.max_age = max_age
        self._listed: tuple[float, list[ModelLocation]] | None = None
        self._resolved: dict[str, tuple[float, ModelLocation]] = {}
        self._lock = asyncio.Lock()  # concurrent requests share one lookup

    def _fresh(self, at: float) -> bool:
        return time.monotonic() - at < self.max_age

    async def available(self) -> list[ModelLocation]:
        """Every model the sources list (as :meth:`ModelResolver.available`)."""
        if self._listed is None or not self._fresh(self._listed[0]):
            async with self._lock:
                if self._listed is None or not self._fresh(self._listed[0]):
                    listed = await asyncio.to_thread(self.resolver.available)
                    self._listed = (time.monotonic(), listed)
        return self._listed[1]

    async def resolve(self, name: str) -> ModelLocation:
        """Where ``name`` is; raises :class:`~cesar_core.errors.ModelNotFoundError`."""
        kept = self._resolved.get(name)
        if kept is not None and self._fresh(kept[0]):
            return kept[1]
        async with self._lock:
            kept = self._resolved.get(name)
            if kept is None or not self._fresh(kept[0]):
                location = await asyncio.to_thread(self.resolver.resolve, name)
                kept = (time.monotonic(), location)
                self._resolved[name] = kept
        return kept[1]
