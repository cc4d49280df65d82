"""Naming a completed job's speakers (``PATCH /jobs/{id}``, ``cesar jobs rename``).

A diarizer labels voices ``SPEAKER_00``, ``SPEAKER_01``...; people know them as Alice and
Bob. The names are kept in the job's transcript (each :class:`~cesar_core.transcript.Speaker`
has a ``name``), so every format rendered afterwards shows them, wherever it is rendered.
Only stores that can replace a completed job's transcript (:class:`ResultStore`, which the
built-in stores are) take names; naming twice at once keeps the last write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import attrs

from .errors import CesarError
from .jobs import Job, JobState
from .service import JobNotFoundError, JobService
from .transcript import Transcript


@runtime_checkable
class ResultStore(Protocol):
    """What a :class:`~cesar_core.protocols.JobStore` may also offer: changing a completed
    job's transcript. Optional: without it, naming speakers is refused."""

    async def replace_result(self, job_id: str, result: Transcript) -> bool:
        """Replace the transcript of a completed job (nothing else changes); False when
        there is no such job or it is not completed."""
        ...


class JobNotCompletedError(CesarError):
    """The job has no transcript (yet, or ever) whose speakers could be named."""

    code = "job_not_completed"


class ResultsReadOnlyError(CesarError):
    """The job store cannot change a completed job's transcript."""

    code = "results_read_only"


async def rename_speakers(service: JobService, job_id: str, names: Mapping[str, str]) -> Job:
    """The job after naming its speakers (``{"SPEAKER_00": "Alice"}``; an empty name takes
    a name back). Unknown labels, and names that are too long or not plain text, raise
    :class:`~cesar_core.errors.InvalidOptionsError` before anything is written."""
    job = await service.get(job_id)
    if job.state is not JobState.COMPLETED or job.result is None:
        raise JobNotCompletedError(
            f"The job is {job.state.value}; only a completed job's speakers can be named.",
            hint="Wait until the job is completed (a job that failed has no speakers).",
        )
    renamed = job.result.renamed(dict(names))
    if not isinstance(service.store, ResultStore):
        raise ResultsReadOnlyError(
            "This job store cannot change a completed job's transcript, so speakers "
            "cannot be named here.",
            hint="Use the built-in SQLite or PostgreSQL store, or name the speakers when "
            "rendering (Transcript.renamed in the library).",
        )
    if not await service.store.replace_result(job.id, renamed):
        raise JobNotFoundError(
            f"No completed job has the id {job_id!r} any more.",
            hint="It may have been deleted or pruned meanwhile.",
        )
    return attrs.evolve(job, result=renamed)
