"""The job model: one transcription request as the queue keeps it.

A job is created ``queued``, claimed by a worker (``processing``, with a lease), and ends in
exactly one terminal state: ``completed`` with a transcript, ``error`` with a code and a
message, or ``cancelled``. The names are the ones HTTP clients see.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from attrs import field, frozen

from .transcript import Segment, TranscribeOptions, Transcript

#: A job whose worker vanished this many times is failed instead of re-queued.
DEFAULT_MAX_ATTEMPTS = 3


class JobState(enum.StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether the job is finished for good."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.ERROR, JobState.CANCELLED})


class SourceKind(enum.StrEnum):
    """How the audio reached Cesar."""

    UPLOAD = "upload"
    URL = "url"


@frozen(kw_only=True)
class JobSource:
    """The audio of a job: a key in storage (uploads) or the URL it is fetched from."""

    kind: SourceKind
    #: The storage key of an upload, or the URL.
    location: str
    #: The name the caller gave the file, for messages and output names.
    filename: str | None = None
    size: int | None = None
    #: The audio is kept with the job in the store (a small upload) instead of in storage:
    #: it is written in the same transaction as the job, reaches the worker with its claim
    #: and is dropped when the job ends, with no file to create, copy or remove.
    inline: bool = False
    #: The audio stays with the job once it ends (``keep_audio``), to be played back, and
    #: goes only when the job is deleted or pruned.
    keep: bool = False

    @property
    def uses_storage(self) -> bool:
        """Whether the job may have files in storage, to be removed when it ends: uploads
        not kept inline, and URL audio (downloaded there by the worker)."""
        return self.kind is SourceKind.URL or not self.inline

    @property
    def files_end_with_job(self) -> bool:
        """Whether the job's files in storage go as soon as it ends, not only with it."""
        return self.uses_storage and not self.keep


@frozen(kw_only=True)
class JobError:
    """Why a job failed: a stable ``code`` for programs and a message for people."""

    code: str
    message: str


class DeliveryStatus(enum.StrEnum):
    """How a job's webhook went."""

    DELIVERED = "delivered"
    FAILED = "failed"


@frozen(kw_only=True)
class WebhookDelivery:
    """The outcome of notifying a job's webhook, recorded on the job."""

    #: The event that was sent (its ``webhook-id`` header).
    event_id: str
    status: DeliveryStatus
    #: Requests made, retries included.
    attempts: int
    #: The HTTP status of the last answer, if any came.
    status_code: int | None = None
    #: Why the last attempt failed; None once delivered.
    error: str | None = None
    finished_at: datetime | None = None


@frozen(kw_only=True)
class Lease:
    """A worker's claim on a running job; only the holder of ``token`` may finish it."""

    token: str
    worker: str
    expires_at: datetime


@frozen(kw_only=True)
class NewJob:
    """What a caller asks for; the store adds the id, state and times."""

    source: JobSource
    options: TranscribeOptions = field(factory=TranscribeOptions)
    metadata: dict[str, Any] = field(factory=dict)
    idempotency_key: str | None = None
    webhook_url: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    id: str = field(factory=lambda: new_job_id())
    #: The audio itself when ``source.inline``; None otherwise.
    audio: bytes | None = field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.source.inline != (self.audio is not None):
            raise ValueError("a job's audio is given exactly when its source is inline")


@frozen(kw_only=True)
class Job:
    """A job as stored."""

    id: str
    state: JobState
    source: JobSource
    options: TranscribeOptions
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    #: 0 to 100.
    progress: int = 0
    attempts: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    #: A queued job is not claimed before this time (retries back off).
    run_after: datetime | None = None
    result: Transcript | None = None
    #: While the job runs: the segments transcribed so far (live, without words), from a
    #: store that keeps them (:class:`~cesar_core.protocols.LiveStore`); empty otherwise.
    segments: tuple[Segment, ...] = ()
    error: JobError | None = None
    metadata: dict[str, Any] = field(factory=dict)
    idempotency_key: str | None = None
    webhook_url: str | None = None
    #: How notifying ``webhook_url`` went, once it is over.
    webhook: WebhookDelivery | None = None
    lease: Lease | None = None
    #: The audio of an inline source, on a job returned by ``claim`` only: the worker
    #: needs it, nobody else reads it (``get`` and ``list`` leave it out).
    audio: bytes | None = field(default=None, repr=False, eq=False)


def new_job_id() -> str:
    """A random id that is safe in URLs and file names."""
    return uuid.uuid4().hex
