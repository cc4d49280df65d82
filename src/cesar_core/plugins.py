"""The plugin manager: external plugins from the ``cesar`` entry points, then the built-ins.

``CESAR_PLUGINS`` (a comma-separated list of entry-point names) loads only those external
plugins, and an empty value loads none; ``CESAR_BLOCK_PLUGINS`` names plugins never to load.
The built-in defaults are always registered, after the external ones.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from collections.abc import Mapping

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "cesar"

#: The modules that implement Cesar's own behaviour through the same hooks as plugins.
BUILTIN_PLUGINS = ("cesar_core.transcription.sources", "cesar_core.stores.builtin")

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def make_manager(environ: Mapping[str, str] | None = None) -> pluggy.PluginManager:
    """Build a fresh plugin manager; tests use this to avoid sharing state."""
    env = os.environ if environ is None else environ
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    allowed = _names(env.get("CESAR_PLUGINS"))
    blocked = _names(env.get("CESAR_BLOCK_PLUGINS")) or set()
    for name in blocked:
        manager.set_blocked(name)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in blocked or (allowed is not None and entry_point.name not in allowed):
            continue
        if manager.get_plugin(entry_point.name) is None:
            manager.register(entry_point.load(), name=entry_point.name)
    for module_name in BUILTIN_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    manager.check_pending()
    return manager


def get_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created on first use."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = make_manager()
        return _manager
