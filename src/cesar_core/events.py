"""Job events: what the ``cesar_job_event`` hook is told when a job ends.

The process that ends a job announces it: the worker for ``completed`` and ``error`` (the
sweep too, for a job whose workers kept dying), the service for ``cancelled``. Each event
has a stable id (the job id and the state), so a receiver that sees it twice (a cancel
racing a worker, a retried webhook) can recognise it.

Hook implementations run on the event loop and must return at once; slow work (a webhook
request) is returned as an awaitable, which runs as a background task. A failing or hanging
plugin therefore never delays a heartbeat, a job or another plugin. :meth:`JobEvents.drain`
gives those tasks a bounded time to finish when the process stops.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime

import pluggy
from attrs import frozen

from .jobs import Job, JobError, JobState
from .protocols import JobStore
from .settings import Settings

logger = logging.getLogger(__name__)

#: How long a stopping process waits for event handlers (webhooks) still running.
DRAIN_SECONDS = 10.0


class JobEventType(enum.StrEnum):
    """What happened to the job."""

    COMPLETED = "job.completed"
    FAILED = "job.failed"
    CANCELLED = "job.cancelled"


_TYPES = {
    JobState.COMPLETED: JobEventType.COMPLETED,
    JobState.ERROR: JobEventType.FAILED,
    JobState.CANCELLED: JobEventType.CANCELLED,
}


@frozen(kw_only=True)
class JobEvent:
    """A job reached a terminal state."""

    #: ``<job id>.<state>``: the same for every announcement of the same outcome.
    id: str
    type: JobEventType
    job_id: str
    state: JobState
    occurred_at: datetime
    #: Where the job's owner asked to be notified, if anywhere.
    webhook_url: str | None = None
    error: JobError | None = None

    @classmethod
    def for_job(cls, job: Job, state: JobState, error: JobError | None = None) -> JobEvent:
        """The event of ``job`` ending in ``state``; ``job`` may be the claimed copy."""
        return cls(
            id=f"{job.id}.{state.value}",
            type=_TYPES[state],
            job_id=job.id,
            state=state,
            occurred_at=datetime.fromtimestamp(time.time(), UTC),
            webhook_url=job.webhook_url,
            error=error,
        )


class JobEvents:
    """Calls every ``cesar_job_event`` implementation and keeps their background work.

    The plugin manager is handed in by whoever builds the service (``cesar serve``, ``cesar
    worker``, :meth:`JobService.open <cesar_core.service.JobService.open>`); without one, no
    plugin is told of anything, which is what a bare :class:`~cesar_core.worker.Worker` or
    :class:`~cesar_core.service.JobService` in a script or a test gets.
    """

    def __init__(
        self,
        store: JobStore,
        settings: Settings | None = None,
        manager: pluggy.PluginManager | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self._manager = manager
        self._tasks: set[asyncio.Task[None]] = set()

    def emit(self, event: JobEvent) -> None:
        """Tell every plugin; must be called from the running event loop.

        Each implementation is called on its own, in pluggy's order (the last registered
        first), so one that raises does not keep the event from the others. Hook wrappers
        are not supported on this hook.
        """
        if self._manager is None:
            return
        arguments = {"event": event, "store": self.store, "settings": self.settings}
        for impl in reversed(self._manager.hook.cesar_job_event.get_hookimpls()):
            try:
                outcome = impl.function(*(arguments[name] for name in impl.argnames))
            except Exception:
                logger.exception("plugin %s failed on event %s", impl.plugin_name, event.id)
                continue
            if inspect.isawaitable(outcome):
                task = asyncio.ensure_future(self._guard(outcome, impl.plugin_name, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(work: Awaitable[None], plugin: str, event: JobEvent) -> None:
        try:
            await work
        except Exception:
            logger.exception("plugin %s failed on event %s", plugin, event.id)

    @property
    def pending(self) -> int:
        """Background handlers still running."""
        return len(self._tasks)

    async def drain(self, timeout: float = DRAIN_SECONDS) -> None:
        """Wait up to ``timeout`` seconds for running handlers, then cancel the rest."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in late:
            logger.warning("an event handler was still running at shutdown; cancelling it")
            task.cancel()
        if late:
            await asyncio.wait(late)
