"""The plugin manager: plugins from the ``cesar`` entry points, then the built-ins.

``CESAR_PLUGINS`` (a comma-separated list of entry-point names) loads only those external
plugins, and an empty value loads none; ``CESAR_BLOCK_PLUGINS`` names plugins never to load.
Plugins that Cesar's own distribution ships as entry points (``postgres``) are loaded whatever
``CESAR_PLUGINS`` says, unless blocked. The built-in defaults are always registered, after
the others, so that they are asked first.

This module sits above the engines: it imports the built-in plugin modules, and nothing
below it imports it back. The edges (``cesar serve``, ``cesar worker``, the library's
one-call :func:`cesar_core.transcribe`) build a manager and pass it on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from . import hookspecs, webhooks
from .diarization import builtin as builtin_diarizers
from .errors import InvalidOptionsError
from .registry import named, pick, url_scheme
from .storage import builtin as builtin_storage
from .stores import builtin as builtin_stores
from .transcription import sources as builtin_sources
from .transcription.builtin import BuiltinTranscribers

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "get_manager",
    "make_manager",
    "named",
    "pick",
    "url_scheme",
]

ENTRY_POINT_GROUP = "cesar"
#: The distribution whose own entry points are part of Cesar rather than external plugins.
DISTRIBUTION = "cesar"

#: The modules that implement Cesar's own behaviour through the same hooks as plugins.
_BUILTIN_MODULES: tuple[ModuleType, ...] = (
    builtin_sources,
    builtin_stores,
    builtin_storage,
    webhooks,
    builtin_diarizers,
)
_TRANSCRIBERS = "cesar_core.transcription.builtin"
#: The names the built-ins are registered under (``cesar plugins`` marks them).
BUILTIN_PLUGINS = (
    builtin_sources.__name__,
    _TRANSCRIBERS,
    builtin_stores.__name__,
    builtin_storage.__name__,
    webhooks.__name__,
    builtin_diarizers.__name__,
)

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _entry_points() -> tuple[list[str], list[str]]:
    """The names of the ``cesar`` entry points: other distributions', then Cesar's own."""
    points = entry_points(group=ENTRY_POINT_GROUP)
    own = [p.name for p in points if p.dist is not None and p.dist.name == DISTRIBUTION]
    return [p.name for p in points if p.name not in own], own


def make_manager(environ: Mapping[str, str] | None = None) -> pluggy.PluginManager:
    """Build a fresh plugin manager; tests use this to avoid sharing state.

    ``environ`` defaults to :data:`os.environ`; only ``CESAR_PLUGINS`` and
    ``CESAR_BLOCK_PLUGINS`` are read from it. Registration order is call order reversed:
    external plugins first, then the plugins Cesar ships as entry points, then the
    built-ins, so that neither of Cesar's own can have its names taken over.
    """
    env = os.environ if environ is None else environ
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    allowed = _names(env.get("CESAR_PLUGINS"))
    blocked = _names(env.get("CESAR_BLOCK_PLUGINS")) or set()
    for name in blocked:
        manager.set_blocked(name)
    external, bundled = _entry_points()
    # pluggy's own loader skips blocked names and records each plugin's distribution
    # (shown by `cesar plugins`).
    for name in sorted(set(external) if allowed is None else allowed - set(bundled)):
        loaded = manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        if not loaded and name not in blocked and manager.get_plugin(name) is None:
            raise InvalidOptionsError(
                f"CESAR_PLUGINS names {name!r}, but no installed package provides a "
                "plugin of that name.",
                hint="Check the spelling against the names `cesar plugins` lists when "
                "CESAR_PLUGINS is unset, or install the plugin.",
            )
    for name in bundled:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
    for module in _BUILTIN_MODULES:
        manager.register(module, name=module.__name__)
    manager.register(BuiltinTranscribers(manager), name=_TRANSCRIBERS)
    manager.check_pending()
    return manager


def get_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created on first use; for the edges only."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = make_manager()
        return _manager
