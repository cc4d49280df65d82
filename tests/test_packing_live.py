"""Short jobs sharing a window publish live segments, each job its own, on its own timeline."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cesar_core import WhisperTranscriber
from cesar_core.jobs import JobState
from cesar_core.live import LiveEvent
from cesar_core.pack_layout import LiveSplit, join, split
from cesar_core.packing import _PackedLive
from cesar_core.service import JobService
from cesar_core.transcript import Segment, Transcript, Word
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio
from cesar_core.worker import Worker

from .queue_helpers import Site, open_service
from .test_packing import CLIPS, OPTIONS, PACKED


class _Journal:
    """What the real store was asked, in order: live segments published, jobs completed."""

    def __init__(self, service: JobService) -> None:
        self.entries: list[tuple[str, str, Any]] = []
        store: Any = service.store
        publish, complete = store.publish, store.complete

        async def publishing(job_id: str, token: str, segments: Sequence[Segment]) -> bool:
            kept: bool = await publish(job_id, token, segments)
            self.entries.append(("publish", job_id, (list(segments), kept)))
            return kept

        async def completing(job_id: str, token: str, result: Transcript) -> bool:
            done: bool = await complete(job_id, token, result)
            self.entries.append(("complete", job_id, done))
            return done

        store.publish, store.complete = publishing, completing

    def published(self, job_id: str) -> list[Segment]:
        """The segments of ``job_id`` the store kept, before it completed."""
        kept: list[Segment] = []
        for kind, job, detail in self.entries:
            if job != job_id:
                continue
            if kind == "complete":
                return kept
            segments, ok = detail
            kept += segments if ok else []
        raise AssertionError(f"job {job_id} never completed")


async def _follow(service: JobService, job_id: str) -> list[LiveEvent]:
    return [event async for event in await service.follow(job_id)]


@pytest.mark.usefixtures("packing_ignores_confidence")
def test_jobs_sharing_a_window_publish_their_own_segments_live(
    tmp_path: Path, transcriber: WhisperTranscriber
) -> None:
    """Followed live, each job of the window gets its own segments, numbered and timed on
    its own clip, before or at its completion, and they add up to its final text; the
    clips the window moved past are published before any job completes."""
    asyncio.run(_followed_live(tmp_path, transcriber))


@pytest.mark.usefixtures("packing_ignores_confidence")
def test_jobs_sharing_a_window_publish_their_own_segments_live_on_postgresql(
    empty_postgres: str, tmp_path: Path, transcriber: WhisperTranscriber
) -> None:
    """The same through PostgreSQL, whose followers are woken by NOTIFY."""
    asyncio.run(_followed_live(Site(empty_postgres, (tmp_path / "audio").as_uri()), transcriber))


async def _followed_live(where: Path | Site, transcriber: WhisperTranscriber) -> None:
    service = await open_service(where)
    journal = _Journal(service)
    clips = CLIPS[:4]
    jobs = [(await service.submit_file(clip, options=OPTIONS))[0] for clip in clips]
    followers = [asyncio.create_task(_follow(service, job.id)) for job in jobs]
    worker = Worker(service.store, service.storage, transcriber, PACKED)
    await worker.run(until_idle=True)
    streams = await asyncio.wait_for(asyncio.gather(*followers), timeout=30)
    assert worker._packer is not None
    packed = worker._packer.packed
    assert packed >= 3, "most of the four shared a window"
    early = 0
    for job, clip, events in zip(jobs, clips, streams, strict=True):
        done = await service.get(job.id)
        assert done.state is JobState.COMPLETED
        assert done.result is not None
        segments = [event.data for event in events if event.event == "segment"]
        assert [event.id for event in events if event.event == "segment"] == [
            str(n) for n in range(1, len(segments) + 1)
        ]
        assert " ".join(s["text"] for s in segments if s["text"]) == done.result.text
        assert events[-1].event == "completed"
        published = journal.published(job.id)
        final = done.result.segments[: len(published)]
        assert [(s.id, s.start, s.end, s.text) for s in published] == [
            (s.id, s.start, s.end, s.text) for s in final
        ], "what was published live is the start of the job's own transcript"
        duration = len(load_audio(clip)) / SAMPLE_RATE
        assert all(0 <= s.start <= s.end <= duration for s in published)
        early += bool(published)
    first_completion = next(i for i, e in enumerate(journal.entries) if e[0] == "complete")
    assert any(e[0] == "publish" for e in journal.entries[:first_completion])
    # Every clip of the window but its last is settled before the window ends.
    assert early >= packed - 1, journal.entries
    await service.close()


def _word(start: float, end: float, text: str) -> Word:
    return Word(start=start, end=end, word=text, probability=0.9)


def _segment(number: int, words: tuple[Word, ...]) -> Segment:
    text = "".join(word.word for word in words).strip()
    return Segment(id=number, start=words[0].start, end=words[-1].end, text=text, words=words)


def test_a_clip_is_handed_its_segments_once_the_window_moves_past_it() -> None:
    """:class:`LiveSplit` hands a clip what :func:`split` gives it, no sooner than nothing
    later can change it, and never a clip that a segment straddles."""
    clips = [load_audio(path) for path in CLIPS[:3]]
    _, starts = join(clips, 1.0)
    durations = [len(c) / SAMPLE_RATE for c in clips]
    options = [OPTIONS] * 3
    gap_one = starts[1] - 0.5  # the middle of the silence after the first clip
    gap_two = starts[2] - 0.5
    window = [
        _segment(0, (_word(0.2, 0.6, " Please"), _word(0.7, 1.0, " call"))),
        _segment(1, (_word(1.1, 1.5, " me"),)),
        # reaches from the second clip into the third: both run alone
        _segment(
            2,
            (_word(starts[1] + 0.1, starts[1] + 0.5, " The"), _word(gap_two, gap_two + 0.2, " x")),
        ),
        _segment(3, (_word(starts[2] + 0.6, starts[2] + 0.9, " keys"),)),
    ]
    live = LiveSplit(starts, durations, options)
    assert live.add(window[:2]) == []  # the window may not have left the first clip yet
    settled = live.add(window[2:3])
    assert [index for index, _ in settled] == [0]
    assert live.add(window[3:]) == []  # the second and third clips are broken
    transcript = Transcript(
        text="",
        segments=tuple(window),
        language="en",
        language_probability=1.0,
        duration=starts[2] + durations[2],
        model="tiny.en",
    )
    parts = split(transcript, starts, durations, options)
    assert parts[1] is None
    assert parts[2] is None
    assert parts[0] is not None
    assert settled[0][1] == parts[0].segments
    assert gap_one > 1.0


def test_a_job_redone_alone_after_its_window_published_publishes_nothing_twice(
    tmp_path: Path,
) -> None:
    """What a shared window published for a job stays for the attempt (the store drops a
    job's live segments only when it ends or goes back to the queue): if the job is then
    transcribed alone, its first segments, published already, are not published again."""

    async def scenario() -> None:
        service = await open_service(tmp_path)
        job, _ = await service.submit_file(CLIPS[0], options=OPTIONS)
        store: Any = service.store
        claimed = await store.claim("w", 30.0)
        assert claimed is not None
        assert claimed.lease is not None
        published = _PackedLive.start(store, claimed, claimed.lease.token)
        assert isinstance(published, _PackedLive)
        window = [_segment(0, (_word(0.1, 0.5, " Please"), _word(0.6, 0.9, " call")))]
        published.add_shared(window)
        await published.flush()
        alone = [
            _segment(0, (_word(0.1, 0.5, " Please"), _word(0.6, 0.8, " call"))),
            _segment(1, (_word(1.0, 1.4, " me"), _word(1.5, 1.9, " back"))),
        ]
        published.add(alone[:1])
        published.add(alone[1:])
        await published.flush()
        await published.stop()
        kept = await store.live_segments(job.id)
        assert [(s.id, s.text) for s in kept] == [(0, "Please call"), (1, "me back")]
        await service.close()

    asyncio.run(scenario())
