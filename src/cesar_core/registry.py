"""Choosing one of the implementations that plugins name (stores, storage, transcribers).

Kept apart from :mod:`cesar_core.plugins` so that the openers in the engine packages can
choose among what a plugin manager offers without importing the module that builds one:
the manager imports the built-in engines, never the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy

from .errors import InvalidOptionsError


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
