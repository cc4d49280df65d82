"""The plugin manager: external plugins from the ``cesar`` entry points, then the built-ins.

``CESAR_PLUGINS`` (a comma-separated list of entry-point names) loads only those external
plugins, and an empty value loads none; ``CESAR_BLOCK_PLUGINS`` names plugins never to load.
The built-in defaults are always registered, after the external ones.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Mapping
from typing import Any

import pluggy

from . import hookspecs
from .errors import InvalidOptionsError

ENTRY_POINT_GROUP = "cesar"

#: The modules that implement Cesar's own behaviour through the same hooks as plugins.
BUILTIN_PLUGINS = (
    "cesar_core.transcription.sources",
    "cesar_core.transcription.builtin",
    "cesar_core.stores.builtin",
    "cesar_core.storage.builtin",
    "cesar_core.webhooks",
    # A package of its own so that the core never imports psycopg; it imports psycopg only
    # when a postgresql:// URL is opened (the ``postgres`` extra).
    "cesar_postgres.plugin",
)

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
    # pluggy's own loader skips blocked names and records each plugin's distribution
    # (shown by `cesar plugins`).
    if allowed is None:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for name in sorted(allowed or ()):
        loaded = manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        if not loaded and name not in blocked and manager.get_plugin(name) is None:
            raise InvalidOptionsError(
                f"CESAR_PLUGINS names {name!r}, but no installed package provides a "
                "plugin of that name.",
                hint="Check the spelling against the names `cesar plugins` lists when "
                "CESAR_PLUGINS is unset, or install the plugin.",
            )
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


def named(manager: pluggy.PluginManager, hook: str) -> dict[str, Any]:
    """Merge what a naming hook (stores, storage, transcribers) returns from every plugin.

    Pluggy calls the most recently registered plugin first; the built-ins are registered
    last, so they are asked first and their names cannot be taken over by accident. The
    first plugin to name a key wins.
    """
    merged: dict[str, Any] = {}
    for provided in getattr(manager.hook, hook)():
        for name, value in provided.items():
            merged.setdefault(name.lower(), value)
    return merged


def pick(choices: Mapping[str, Any], name: str, *, missing: str, hint: str) -> Any:
    """``choices[name]``, or an error that says ``missing``, lists what there is, and says
    how to get more."""
    if name.lower() in choices:
        return choices[name.lower()]
    known = ", ".join(sorted(choices)) or "none"
    raise InvalidOptionsError(
        f"{missing} (available: {known}).",
        hint=f"{hint} Install the plugin that provides it, and check `cesar plugins`.",
    )


def url_scheme(url: str) -> str:
    """The scheme of a store or storage URL (``""`` when there is none)."""
    return url.split("://", 1)[0].lower() if "://" in url else ""
