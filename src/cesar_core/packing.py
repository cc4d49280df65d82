"""Short jobs share the model's 30-second windows: a worker slot's way of running them.

A slot that claims a short job asks the store for company (a
:class:`~cesar_core.protocols.BatchClaimingStore`) and hands back at once what cannot share
with it. In a burst of jobs (the worker found jobs queued behind one it claimed less than
:data:`BUSY_SECONDS` ago) it waits at most ``wait_seconds`` for company when none is queued
yet; outside one a job never waits, so a lone request, or a client's requests one after
another, are as fast as without packing.

The jobs that share are read and laid end to end with silence between them
(:mod:`cesar_core.pack_layout`), each window is transcribed in one call of the unchanged
transcriber, and the result is split back: each job gets its own text, segments and words
on its own timeline, and completes, fails or is cancelled on its own, under its own lease.
A job that cannot be read, is too long, or whose words the split cannot place with
certainty runs alone, exactly as without packing (measured in bench/throughput.py and
docs/performance.md).

Jobs on a multilingual model that did not fix their language have their language detected
first, one encoder pass each, when the transcriber can (a
:class:`~cesar_core.detection.LanguageDetecting`): jobs heard in one language share windows
transcribed in it, and each gets the language, probability and top languages it would get
alone. One the model is unsure of (below :data:`SURE_LANGUAGE`) runs alone. A job that runs
alone after its detection hands it to its transcription, which reports it rather than
detect again where that finds the same (:class:`~cesar_core.detection.LanguageDetecting`).

While a window is transcribed, each job's segments are published live (through a
:class:`~cesar_core.protocols.LiveStore`) on its own timeline as soon as the window has
moved past its clip (:class:`~cesar_core.pack_layout.LiveSplit`); a job that runs alone
afterwards publishes only the segments beyond those, so none is published twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from contextlib import AbstractAsyncContextManager, suppress
from typing import Any, Protocol

import attrs
from attrs import define

from . import live
from . import pack_layout as layout
from .detection import DetectedLanguage, LanguageDetecting
from .jobs import Job, JobState
from .protocols import (
    AudioInput,
    BatchClaimingStore,
    JobStore,
    LiveStore,
    Transcriber,
    transcribe_with_segments,
)
from .transcript import Segment, TranscribeOptions, Transcript
from .transcription.audio import SAMPLE_RATE

logger = logging.getLogger(__name__)

#: A worker that found jobs queued behind the one it claimed less than this many seconds
#: before is in a burst, where waiting a moment for company pays; outside one, a short job
#: starts at once.
BUSY_SECONDS = 2.0
#: A detected language less likely than this is unsure: the job runs alone rather than
#: share a window decoded in a language it may not be in (faster-whisper's own threshold
#: for a detected language).
SURE_LANGUAGE = 0.5


class _Running(Protocol):
    """What the worker keeps of a running job (its ``_Running``)."""

    job: Job
    token: str
    abort: threading.Event
    progress: int
    handback: bool
    next: Job | None
    segments: live.LiveSegments | None
    detected: DetectedLanguage | None


class _Config(Protocol):
    @property
    def lease_seconds(self) -> float: ...


class _Host(Protocol):
    """The worker, as seen from here: its parts and the steps of running one job."""

    store: JobStore
    transcriber: Transcriber
    name: str
    completed: int
    _executor: Executor
    _running: dict[str, Any]

    @property
    def config(self) -> _Config: ...

    async def _run(self, job: Job) -> Job | None: ...
    async def _attempt(self, running: Any) -> object: ...
    async def _after(self, job: Job, outcome: Any) -> None: ...
    async def _heartbeat(self, running: Any) -> None: ...
    async def _hand_back(self, job: Job) -> None: ...
    def _audio(
        self, job: Job, stop: Callable[[], bool]
    ) -> AbstractAsyncContextManager[AudioInput]: ...


class _WindowStopped(Exception):
    """Every job of a window was cancelled or handed back: its transcription stops."""


class _PackedLive(live.LiveSegments):
    """A packed job's live segments: those its shared window settled, then, should it run
    alone after all, only the ones beyond them (the store keeps what was published for the
    whole attempt, so none may be published twice)."""

    _skip = 0

    def add_shared(self, segments: Sequence[Segment]) -> None:
        """Take the segments a shared window settled for this job."""
        super().add(segments)
        self._skip += len(segments)

    def add(self, segments: Sequence[Segment]) -> None:
        skipped = min(self._skip, len(segments))
        self._skip -= skipped
        super().add(segments[skipped:])


@define
class _Member:
    """A job of a pack: what the worker tracks, its heartbeat, its audio once read, and
    the language detected in it (when it did not fix one; sure or not)."""

    running: _Running
    beat: asyncio.Task[None]
    samples: layout.Samples | None = None
    guess: DetectedLanguage | None = None


class Packer:
    """Runs a worker slot's short jobs in shared windows (see the module's docstring).

    ``running`` builds the worker's record of a running job and ``unknown`` is its outcome
    of a job whose lease was lost: the worker owns both, this module only passes them on.
    """

    def __init__(
        self,
        host: _Host,
        store: BatchClaimingStore,
        running: Callable[..., _Running],
        unknown: object,
        *,
        max_clips: int,
        wait_seconds: float,
        gap_seconds: float = layout.GAP_S,
    ) -> None:
        self.host = host
        self.store = store
        self.running = running
        self.unknown = unknown
        self.max_clips = max_clips
        self.wait_seconds = wait_seconds
        self.gap_seconds = gap_seconds
        #: Jobs completed from a shared window (the rest of ``host.completed`` ran alone).
        self.packed = 0
        self._burst_until = -math.inf
        transcriber = host.transcriber
        self._detector = transcriber if isinstance(transcriber, LanguageDetecting) else None
        self._live = store if isinstance(store, LiveStore) else None

    async def run(self, first: Job) -> Job | None:
        """Run ``first``, with company when it can share; return the job the slot runs
        next (claimed along with a completion), if any."""
        key = layout.share_key(first)
        if key is not None and key.language is None and self._detector is None:
            key = None  # its language cannot be told before transcribing: alone
        company = await self._company(key) if key is not None else []
        if key is None or not company:
            return await self.host._run(first)
        members = [self._track(job) for job in (first, *company)]
        following: list[Job] = []
        try:
            alone = await self._read(members)
            ready = [m for m in members if m.samples is not None]
            groups, unsure = await self._by_language(ready, key)
            alone += unsure
            for options, group in groups:
                durations = [len(m.samples) / SAMPLE_RATE for m in group if m.samples is not None]
                for window in layout.plan(durations, self.max_clips, self.gap_seconds):
                    chosen = [group[i] for i in window]
                    alone += chosen if len(chosen) == 1 else await self._window(chosen, options)
            for member in sorted(alone, key=members.index):
                # Its language, detected already: not detected a second time.
                member.running.detected = member.guess
                outcome = self.unknown
                try:
                    outcome = await self.host._attempt(member.running)
                except Exception:
                    logger.exception(
                        "job %s: the worker failed while finishing it", member.running.job.id
                    )
                await self._end(member, outcome)
                if member.running.next is not None:
                    following.append(member.running.next)
        finally:
            for member in members:  # after an error, whatever is left is the sweep's
                await self._untrack(member)
        for job in following[1:]:
            await self.host._hand_back(job)
        return following[0] if following else None

    async def _company(self, key: TranscribeOptions) -> list[Job]:
        """Jobs claimed to share a window with one whose sharing key is ``key`` (waiting for
        them in a burst); the others claimed with them go back to the queue at once."""
        host = self.host
        limit = self.max_clips - 1
        clock = asyncio.get_running_loop().time
        try:
            jobs = await self.store.claim_batch(host.name, host.config.lease_seconds, limit)
            if not jobs and clock() < self._burst_until and self.wait_seconds > 0:
                await asyncio.sleep(self.wait_seconds)
                jobs = await self.store.claim_batch(host.name, host.config.lease_seconds, limit)
            if jobs:
                self._burst_until = clock() + BUSY_SECONDS
        except Exception:
            logger.exception("claiming company for a short job failed; it runs alone")
            return []
        company = [job for job in jobs if layout.share_key(job) == key]
        for job in jobs:
            if job not in company:
                await host._hand_back(job)
        return company

    def _track(self, job: Job) -> _Member:
        assert job.lease is not None
        running = self.running(job=job, token=job.lease.token, abort=threading.Event())
        running.segments = _PackedLive.start(self._live, job, running.token)
        self.host._running[job.id] = running
        return _Member(running, asyncio.create_task(self.host._heartbeat(running)))

    async def _untrack(self, member: _Member) -> None:
        member.beat.cancel()
        with suppress(asyncio.CancelledError):
            await member.beat
        await live.stop(member.running.segments)
        self.host._running.pop(member.running.job.id, None)

    async def _end(self, member: _Member, outcome: object) -> None:
        await self._untrack(member)
        await self.host._after(member.running.job, outcome)

    async def _read(self, members: Sequence[_Member]) -> list[_Member]:
        """Read each job's audio; return the jobs that run alone (too long, silent, or not
        readable: alone, a bad file fails its own job with the usual error)."""
        loop = asyncio.get_running_loop()
        alone = []
        for member in members:
            job = member.running.job
            try:
                async with self.host._audio(job, member.running.abort.is_set) as audio:
                    member.samples = await loop.run_in_executor(
                        self.host._executor,
                        layout.decode_short,
                        audio,
                        job.options,
                        layout.MAX_SHARED_S,
                    )
            except Exception as exc:
                logger.info("job %s runs alone: its audio could not be read (%s)", job.id, exc)
            if member.samples is None:
                alone.append(member)
        return alone

    async def _by_language(
        self, members: list[_Member], key: TranscribeOptions | None
    ) -> tuple[list[tuple[TranscribeOptions, list[_Member]]], list[_Member]]:
        """The jobs by the language their windows are transcribed in (with the options to
        transcribe them with), and those that run alone: when ``key`` fixes no language,
        each job's is detected first, and a job whose language is unsure, or cannot be
        detected, runs alone."""
        if key is None or key.language is not None or self._detector is None:
            return ([(key, members)] if key is not None else []), []
        loop = asyncio.get_running_loop()
        groups: dict[str, list[_Member]] = {}
        alone = []
        for member in members:
            job = member.running.job
            guess = None
            if member.samples is not None and not member.running.abort.is_set():
                try:
                    audio = layout.wav(member.samples)
                    detect = self._detector.detect_language
                    guess = await loop.run_in_executor(self.host._executor, detect, audio, key)
                except Exception as exc:
                    logger.info(
                        "job %s runs alone: its language was not detected (%s)", job.id, exc
                    )
            member.guess = guess
            if guess is None or guess.probability < SURE_LANGUAGE:
                if guess is not None:
                    logger.info(
                        "job %s runs alone: its language is unsure (%s, %.2f)",
                        job.id,
                        guess.language,
                        guess.probability,
                    )
                alone.append(member)
                continue
            groups.setdefault(guess.language, []).append(member)
        return [(attrs.evolve(key, language=code), group) for code, group in groups.items()], alone

    async def _window(self, members: list[_Member], options: TranscribeOptions) -> list[_Member]:
        """Transcribe one window of ``members``; finish each job it settles and return the
        ones to run alone."""
        host = self.host
        clips = [m.samples for m in members if m.samples is not None]
        samples, starts = layout.join(clips, self.gap_seconds)
        durations = [len(clip) / SAMPLE_RATE for clip in clips]
        total = len(samples) / SAMPLE_RATE

        def progress(fraction: float) -> None:
            if all(m.running.abort.is_set() for m in members):
                raise _WindowStopped
            done = fraction * total
            for member, start, length in zip(members, starts, durations, strict=True):
                share = min(99, int(max(0.0, done - start) / length * 100))
                member.running.progress = max(member.running.progress, share)

        loop = asyncio.get_running_loop()
        asked = [m.running.job.options for m in members]
        settle = layout.LiveSplit(starts, durations, asked)
        flushes: list[Future[None]] = []

        def on_segments(segments: Sequence[Segment]) -> None:
            # In the transcription thread: publish each clip the window settles, at once.
            for index, settled in settle.add(segments):
                member = members[index]
                published = member.running.segments
                if isinstance(published, _PackedLive) and not member.running.abort.is_set():
                    published.add_shared(settled)
                    flushes.append(asyncio.run_coroutine_threadsafe(published.flush(), loop))

        def transcribe() -> Transcript:
            audio = layout.wav(samples)
            return transcribe_with_segments(host.transcriber, audio, options, progress, on_segments)

        try:
            result: Transcript = await loop.run_in_executor(host._executor, transcribe)
        except Exception as exc:
            if not isinstance(exc, _WindowStopped):
                logger.warning("a shared window failed (%s); its jobs run alone", exc)
            return members
        finally:  # what was published goes before any completion
            for outcome in await asyncio.gather(
                *map(asyncio.wrap_future, flushes), return_exceptions=True
            ):
                if isinstance(outcome, Exception):
                    logger.warning("publishing a packed job's live segments failed (%s)", outcome)
        parts = layout.split(result, starts, durations, asked)
        alone = []
        for member, part in zip(members, parts, strict=True):
            if part is None or member.running.abort.is_set():
                alone.append(member)  # alone, an aborted job hands back or stops at once
                continue
            if member.guess is not None:  # as it would be alone, not the window's
                guess = member.guess
                part = attrs.evolve(
                    part,
                    language=guess.language,
                    language_probability=guess.probability,
                    top_languages=guess.top_languages,
                )
            running = member.running
            try:
                done = await self.store_complete(running, part)
            except Exception:
                logger.exception("job %s: completing it failed", running.job.id)
                done = False
            if done:
                host.completed += 1
                self.packed += 1
            await self._end(member, (JobState.COMPLETED, None) if done else self.unknown)
        if len(alone) < len(members):
            logger.info("%d job(s) shared a %.1f s window", len(members) - len(alone), total)
        return alone

    async def store_complete(self, running: _Running, result: Transcript) -> bool:
        """Complete one job of a window under its own lease (False: the lease was lost,
        the job cancelled or taken over)."""
        return await self.host.store.complete(running.job.id, running.token, result)
