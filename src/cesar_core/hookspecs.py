"""Every hook a plugin can implement.

A plugin is a module or object with functions marked ``@cesar_core.hookimpl`` and named like
the specifications below, made known through the ``cesar`` entry-point group::

    [project.entry-points.cesar]
    my_plugin = "my_package.cesar_plugin"

Each hook is documented in ``docs/plugins.md``; a test fails when one is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pluggy

from .protocols import ModelSource
from .settings import Settings

if TYPE_CHECKING:
    from .stores import JobStoreOpener

hookspec = pluggy.HookspecMarker("cesar")
hookimpl = pluggy.HookimplMarker("cesar")


@hookspec
def cesar_model_sources(settings: Settings) -> Iterable[ModelSource]:
    """Return the model sources this plugin provides.

    Called each time a model name is resolved or listed (``cesar models``), so a source may
    reflect files that appeared since start-up. All sources of all plugins are merged and
    asked in ascending ``priority``; the first whose ``resolve`` returns a location wins.
    Built-in priorities: a local directory path 10, a model carried by a Python package 20,
    Cesar's model cache 30, the Hugging Face hub 90 (only with ``allow_download``).

    :param settings: the active settings (cache directory, whether downloads are allowed).
    :return: zero or more objects following :class:`cesar_core.protocols.ModelSource`.
    """
    raise NotImplementedError


@hookspec
def cesar_job_stores() -> Mapping[str, JobStoreOpener]:
    """Return the job stores this plugin provides, by URL scheme.

    Called whenever a store is opened from a URL (``--store``, ``CESAR_STORE``). Each value
    is a coroutine function that takes the whole URL and returns an open object following
    :class:`cesar_core.protocols.JobStore`; it should raise
    :class:`cesar_core.errors.InvalidOptionsError` for a malformed URL. A store must pass
    ``cesar_core.testing.JobStoreContract``. When two plugins name the same scheme, the one
    called first wins (the built-ins: ``memory`` and ``sqlite``).

    :return: a mapping of scheme (without ``://``) to opener.
    """
    raise NotImplementedError
