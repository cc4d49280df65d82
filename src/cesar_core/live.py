"""Live jobs: segments published while a job runs, and one stream of a job's events.

A worker's transcriber reports each segment as soon as it is transcribed
(:data:`~cesar_core.protocols.SegmentsCallback`); :class:`LiveSegments` collects them in the
transcription thread and publishes them through the store
(:class:`~cesar_core.protocols.LiveStore`) at most every :data:`PUBLISH_SECONDS`, without
their words and with their text bounded, so that followers on any node see them, and a long
job cannot grow its record without limit while it runs.

:class:`LiveEvent` is one event of a job's stream, which :mod:`cesar_core.following` makes
for the adapters.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from attrs import evolve, frozen

from .detection import DetectedLanguage
from .jobs import Job
from .protocols import (
    AudioInput,
    LiveStore,
    ProgressCallback,
    Transcriber,
    transcribe_with_segments,
)
from .transcript import Segment, TranscribeOptions, Transcript

logger = logging.getLogger(__name__)

#: A running job's new segments are written at most this often (the throttle).
PUBLISH_SECONDS = 0.5
#: A live segment's text is cut to this many characters (the final result keeps it whole).
MAX_SEGMENT_TEXT = 2000
#: Segments published per job at most; later ones appear with the result.
MAX_LIVE_SEGMENTS = 20_000
#: A follower of all jobs lists them at most this often, however fast jobs change.
LIST_SECONDS = 0.25
#: How often a follower reads the job when no wake-up comes (another process's writes on
#: SQLite, a store without :class:`LiveStore`).
POLL_SECONDS = 1.0


def _live(segment: Segment) -> Segment:
    """What is published of a segment: no words nor tokens, a bounded text."""
    return evolve(segment, words=(), tokens=(), text=segment.text[:MAX_SEGMENT_TEXT])


class LiveSegments:
    """The segments of one running job on their way to the store.

    The publishing task starts with the first segments, not with the job: a job that
    yields none (a transcriber without ``on_segments``, a failure before the first) costs
    the worker no task, which a queue of many short jobs would feel.
    """

    def __init__(self, store: LiveStore, job_id: str, token: str) -> None:
        self.store = store
        self.job_id = job_id
        self.token = token
        self._pending: list[Segment] = []
        self._count = 0
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._starting = False
        self._stopped = False

    @classmethod
    def start(cls, store: LiveStore | None, job: Job, token: str) -> LiveSegments | None:
        """Publish ``job``'s segments while it runs, when there is a store that keeps them
        (the caller checks once that its store is a :class:`LiveStore`)."""
        return None if store is None else cls(store, job.id, token)

    def add(self, segments: Sequence[Segment]) -> None:
        """Take new segments (from the transcription thread, or the event loop's)."""
        with self._lock:
            room = MAX_LIVE_SEGMENTS - self._count
            taken = [_live(segment) for segment in segments[: max(0, room)]]
            self._pending.extend(taken)
            self._count += len(taken)
            starting, self._starting = self._starting, True
        if not starting and not self._stopped:
            with suppress(RuntimeError):  # the loop closed (shutting down): nothing to publish
                self._loop.call_soon_threadsafe(self._start_task)

    def _start_task(self) -> None:
        if not self._stopped:
            self._task = asyncio.create_task(self._run(), name=f"cesar-live-{self.job_id}")

    async def flush(self) -> None:
        """Write what is pending now."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending and not await self.store.publish(self.job_id, self.token, pending):
            logger.debug("job %s: live segments not kept (lease lost)", self.job_id)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_SECONDS)
            try:
                await self.flush()
            except Exception:
                logger.exception("job %s: publishing live segments failed", self.job_id)

    async def stop(self) -> None:
        """Stop publishing (the job ended: its result holds every segment)."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task


async def stop(live: LiveSegments | None) -> None:
    """Stop ``live`` (None: nothing was published)."""
    if live is not None:
        await live.stop()


def run(
    transcriber: Transcriber,
    audio: AudioInput,
    options: TranscribeOptions,
    progress: ProgressCallback,
    live: LiveSegments | None,
    detected: DetectedLanguage | None = None,
) -> Transcript:
    """Run ``transcriber``, handing it ``live``'s callback and the language ``detected``
    in the audio beforehand when it takes them (a third-party transcriber without
    ``on_segments`` is called as before)."""
    return transcribe_with_segments(
        transcriber, audio, options, progress, None if live is None else live.add, detected
    )


@frozen(kw_only=True)
class LiveEvent:
    """One event of a job's stream: ``status``, ``progress``, ``segment``, then one of
    ``completed``, ``error`` or ``cancelled``.

    ``id`` is set on segments only: the number of segments seen with this one, which a
    client that reconnects names (``Last-Event-ID``) to get only what it missed.
    """

    event: str
    data: dict[str, Any]
    id: str | None = None


def segment_data(segment: Segment) -> dict[str, Any]:
    """A segment as an event carries it: id, times, text, and the speaker when known."""
    data: dict[str, Any] = {
        "id": segment.id,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
    }
    speaker = getattr(segment, "speaker", None)
    if speaker is not None:
        data["speaker"] = speaker
    return data


async def wait_for_change(store: object, job_id: str | None, timeout: float) -> None:
    """Wait for the store's wake-up where it has one, else for ``timeout``."""
    if isinstance(store, LiveStore):
        await store.wait_for_change(job_id, timeout)
    else:
        await asyncio.sleep(timeout)
