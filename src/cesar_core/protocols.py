"""The seams of the library, as structural protocols.

Anything with these methods plugs in: a third-party package does not subclass anything of
ours, it only has to look right to a type checker and pass the behaviour tests.
"""

from __future__ import annotations

import builtins
import functools
import inspect
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from attrs import frozen

from .jobs import Job, JobError, JobState, NewJob, WebhookDelivery
from .settings import Settings
from .transcript import DetectedLanguage, Segment, SpeakerTurn, TranscribeOptions, Transcript

#: Called with the fraction of the audio done, from 0.0 to 1.0. Raising from it stops the
#: transcription: that is how a cancelled job stops its worker thread.
ProgressCallback = Callable[[float], None]

#: A path, or an open binary file positioned at the start of the audio.
AudioInput = str | Path | BinaryIO
#: Called with segments as soon as they are transcribed (the worker publishes them live to
#: the job's followers). A transcriber that offers it takes it as its ``on_segments``
#: keyword argument; one that does not (``Transcriber`` does not require it) still works,
#: its job's segments then appear when it completes.
SegmentsCallback = Callable[[Sequence[Segment]], None]


@frozen(kw_only=True)
class ModelLocation:
    """Where a model is, or would be, and how it got there.

    ``path`` is None for a model a source knows about but cannot provide yet (a carrier
    package that is not installed); ``note`` then says how to get it.
    """

    name: str
    source: str
    path: Path | None
    multilingual: bool | None = None
    note: str = ""


@runtime_checkable
class Transcriber(Protocol):
    """Turns audio into a :class:`Transcript`.

    Implementations must be safe to call from several threads at once: the job worker runs
    each job in its own thread and shares one transcriber (and so one warm model).
    """

    def transcribe(
        self,
        audio: AudioInput,
        options: TranscribeOptions,
        progress: ProgressCallback | None = None,
    ) -> Transcript:
        """Transcribe ``audio``; raise a :class:`cesar_core.errors.CesarError` on bad input."""
        ...


@runtime_checkable
class Diarizer(Protocol):
    """Tells who speaks when: the speaker turns of a recording.

    Like a transcriber, one diarizer is shared by every thread of a worker (its model
    stays loaded between jobs), so implementations must be safe to call from several
    threads at once.
    """

    def diarize(
        self,
        audio: AudioInput,
        options: TranscribeOptions,
        progress: ProgressCallback | None = None,
    ) -> Sequence[SpeakerTurn]:
        """The speaker turns of ``audio`` between ``options.clip_start`` and
        ``options.clip_end``, timed in seconds from the start of the audio, with labels
        ``SPEAKER_00``, ``SPEAKER_01``... Honour ``options.num_speakers``,
        ``min_speakers`` and ``max_speakers`` where the engine can. Raise a
        :class:`cesar_core.errors.CesarError` on bad input (a mono recording given to a
        diarizer that needs channels, for example)."""
        ...


@runtime_checkable
class ModelSource(Protocol):
    """One place models can come from: a directory, a package, a cache, a hub.

    Sources are asked in ascending ``priority`` (built-ins: path 10, package 20, cache 30,
    hub 90) and the first that resolves a name wins.
    """

    name: str
    priority: int

    def resolve(self, model: str) -> ModelLocation | None:
        """Return where ``model`` lives, or None when this source does not have it.

        Raise :class:`cesar_core.errors.ModelIntegrityError` when the source has the model
        but its files are damaged, so that a broken copy is never silently skipped.
        """
        ...

    def available(self) -> Iterable[ModelLocation]:
        """Every model this source can provide right now (or could, once installed)."""
        ...


@frozen(kw_only=True)
class Page:
    """One page of a job listing, newest first; pass ``next_cursor`` to get the next."""

    jobs: tuple[Job, ...]
    next_cursor: str | None


@runtime_checkable
class JobStore(Protocol):
    """Durable job state, shared by every process that serves or runs jobs.

    Every method is atomic. Methods that take a lease ``token`` succeed only while that
    token still owns the job (it is ``processing`` and the lease was not swept or the job
    cancelled); they return False otherwise, so a stale worker can never overwrite a newer
    result. Times come from the store's own clock, so workers' clocks do not matter.
    ``cesar_core.testing.JobStoreContract`` is the executable form of this contract.
    """

    async def create(self, job: NewJob) -> tuple[Job, bool]:
        """Store a queued job; with an ``idempotency_key`` already used, return that job.

        :return: the job, and whether it was created (False: an earlier job with the key).
        """
        ...

    async def get(self, job_id: str, *, include_result: bool = True) -> Job | None:
        """The job, or None when there is no such id."""
        ...

    async def list(
        self,
        *,
        state: JobState | None = None,
        limit: int = 50,
        cursor: str | None = None,
        include_result: bool = False,
    ) -> Page:
        """Jobs newest first, optionally in one state; ``cursor`` continues a listing."""
        ...

    async def claim(self, worker: str, lease_seconds: float) -> Job | None:
        """Take the oldest runnable queued job: ``processing``, one more attempt, a lease.

        :return: the job with its :class:`~cesar_core.jobs.Lease`, or None when none waits.
        """
        ...

    async def heartbeat(
        self, job_id: str, token: str, lease_seconds: float, progress: int | None = None
    ) -> bool:
        """Extend the lease (and record progress, 0-100); False when the lease is lost."""
        ...

    async def complete(self, job_id: str, token: str, result: Transcript) -> bool:
        """Finish the job with its transcript; False when the lease is lost."""
        ...

    async def fail(self, job_id: str, token: str, error: JobError) -> bool:
        """Finish the job as ``error`` for good; False when the lease is lost."""
        ...

    async def retry(
        self, job_id: str, token: str, error: JobError, delay_seconds: float
    ) -> JobState | None:
        """Queue the job again after ``delay_seconds``, or end it in ``error`` when it has
        used all its attempts.

        :return: the state the job is now in, or None when the lease is lost.
        """
        ...

    async def release(self, job_id: str, token: str) -> bool:
        """Hand a running job back to the queue without counting the attempt (a worker
        shutting down); False when the lease is lost."""
        ...

    async def release_expired(self) -> builtins.list[Job]:
        """Return jobs whose lease expired to ``queued`` (``error`` once out of attempts).

        :return: the released jobs as they are now (without results), so that the caller
            can announce the ones that ended in ``error``.
        """
        ...

    async def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (its lease ends); a finished job is unchanged.

        :return: the job as it is afterwards, or None when there is no such id.
        """
        ...

    async def record_webhook(self, job_id: str, delivery: WebhookDelivery) -> bool:
        """Record how notifying the job's webhook went (whatever the job's state, and
        without touching it); False when there is no such job any more."""
        ...

    async def delete(self, job_id: str) -> bool:
        """Forget the job whatever its state; False when there was no such id."""
        ...

    async def prune(self, older_than: datetime) -> builtins.list[str]:
        """Delete finished jobs completed before ``older_than``; return their ids."""
        ...

    async def counts(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state present, zeros included)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


@runtime_checkable
class JobNotifier(Protocol):
    """What a :class:`JobStore` may also offer: a wake-up when work may have arrived.

    Optional: a worker whose store has it sleeps until woken (or ``timeout`` passes)
    instead of only polling, so a job submitted to an idle worker starts at once. A wake-up
    is a hint, never a promise: the worker claims afterwards, and may find nothing.
    """

    async def wait_for_jobs(self, timeout: float) -> None:
        """Return when a job may have become claimable, or after ``timeout`` seconds."""
        ...


@runtime_checkable
class ChainingStore(Protocol):
    """What a :class:`JobStore` may also offer: finishing a job and claiming the next at once.

    Optional: a worker slot that has just run a job, and goes on working, completes it and
    claims its next job with this one call when its store has it: one round trip and one
    commit per job instead of two, which is most of what a short job costs a worker.
    """

    async def complete_and_claim(
        self, job_id: str, token: str, result: Transcript, worker: str, lease_seconds: float
    ) -> tuple[bool, Job | None]:
        """:meth:`JobStore.complete` then :meth:`JobStore.claim`, in one transaction.

        The claim is made whether or not the completion succeeds (a lost lease does not
        stop the worker wanting more work).

        :return: whether the job was completed, and the next job claimed (or None).
        """
        ...


@runtime_checkable
class BatchClaimingStore(Protocol):
    """What a :class:`JobStore` may also offer: claiming several jobs in one step.

    Optional: a worker that packs short jobs into one window of the model (see
    :mod:`cesar_core.packing`) asks for the company of a job it has claimed with this call.
    Each job claimed gets a lease of its own, so that each still completes, fails, is
    cancelled or expires on its own.
    """

    async def claim_batch(
        self, worker: str, lease_seconds: float, limit: int
    ) -> builtins.list[Job]:
        """:meth:`JobStore.claim` up to ``limit`` times, in one transaction.

        :return: the claimed jobs, oldest first, each with its own lease (empty when none
            waits).
        """
        ...


@runtime_checkable
class AudioStore(Protocol):
    """What a :class:`JobStore` that keeps small uploads inline offers to play them back.

    Optional: without it, a job's inline audio cannot be served (``GET /jobs/{id}/audio``).
    """

    async def inline_audio(self, job_id: str) -> bytes | None:
        """The inline audio the store still holds for the job (None: none, or gone)."""
        ...


@runtime_checkable
class LiveStore(Protocol):
    """What a :class:`JobStore` may also offer: a running job's segments, live, and a
    wake-up for those who follow jobs.

    Optional: with it, a worker publishes each segment while the job runs and
    ``GET /jobs/{id}/events`` streams it; without it, followers see the status and progress
    (polled) and the segments once the job completes. The store keeps the segments with
    the job while it runs only: they go when it ends (its result holds them) or goes back
    to the queue (its next attempt starts afresh).
    """

    async def publish(
        self, job_id: str, token: str, segments: Sequence[Segment], progress: int | None = None
    ) -> bool:
        """Append ``segments`` to the running job's (and record ``progress``), then wake
        its followers; False when the lease is lost, and nothing is kept."""
        ...

    async def live_segments(self, job_id: str, after: int = 0) -> builtins.list[Segment]:
        """The running job's segments from the ``after``-th on (none once it ended)."""
        ...

    async def wait_for_change(self, job_id: str | None, timeout: float) -> None:
        """Return when the job (any job, for None) may have changed (state, progress,
        segments), or after ``timeout`` seconds. A hint, never a promise: read again."""
        ...


@runtime_checkable
class Storage(Protocol):
    """Where the audio of uploaded jobs waits for a worker.

    Keys are ``<job id>/<name>``; everything under a job's id belongs to that job and is
    removed with it.
    """

    async def save(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> int:
        """Stream ``chunks`` into ``key`` and return the size; nothing is visible under
        ``key`` until the last chunk is written, and nothing is left on failure."""
        ...

    def local_path(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A local file with the content of ``key`` for as long as the context lasts."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether ``key`` holds a complete file."""
        ...

    async def delete_job(self, job_id: str) -> None:
        """Remove every file of the job; missing files are not an error."""
        ...

    async def close(self) -> None:
        """Release connections; the storage is unusable afterwards."""
        ...


@functools.lru_cache(maxsize=64)
def _takes(kind: type, keyword: str) -> bool:
    try:
        parameters = inspect.signature(kind.transcribe).parameters  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return False
    return keyword in parameters


def transcribe_with_segments(
    transcriber: Transcriber,
    audio: AudioInput,
    options: TranscribeOptions,
    progress: ProgressCallback | None,
    on_segments: SegmentsCallback | None,
    detected: DetectedLanguage | None = None,
) -> Transcript:
    """``transcriber.transcribe``, with ``on_segments`` when the transcriber takes it
    (see :data:`SegmentsCallback`), and with the language ``detected`` in the audio
    beforehand when it takes that (see :class:`~cesar_core.detection.LanguageDetecting`);
    one that takes neither is called as it always was."""
    given = {"on_segments": on_segments, "detected": detected}
    extras = {k: v for k, v in given.items() if v is not None and _takes(type(transcriber), k)}
    if not extras:
        return transcriber.transcribe(audio, options, progress)
    method: Any = transcriber.transcribe
    result: Transcript = method(audio, options, progress, **extras)
    return result


#: Opens a job store from its full URL (what the ``cesar_job_stores`` hook provides).
JobStoreOpener = Callable[[str], Awaitable[JobStore]]
#: Opens a storage from its full URL (what the ``cesar_storage`` hook provides).
StorageOpener = Callable[[str], Awaitable[Storage]]
#: Builds a transcriber from the settings (what the ``cesar_transcribers`` hook provides).
TranscriberFactory = Callable[[Settings], Transcriber]
#: Builds a diarizer from the settings (what the ``cesar_diarizers`` hook provides).
DiarizerFactory = Callable[[Settings], Diarizer]
