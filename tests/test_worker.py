"""The worker and the service in one process, on a real SQLite file."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import pytest

from cesar_core import TranscribeOptions, TranscriptionError, WhisperTranscriber
from cesar_core.errors import AudioError, EmptyAudioError, UploadTooLargeError
from cesar_core.jobs import Job, JobState
from cesar_core.service import JobNotFoundError, JobService
from cesar_core.storage.local import LocalStorage
from cesar_core.stores.memory import MemoryJobStore
from cesar_core.worker import Worker, WorkerConfig

from .conftest import REFERENCES, wer
from .queue_helpers import open_service, work_until_finished
from .worker_process import NoopTranscriber, SlowTranscriber, transcript

FAST = WorkerConfig(
    heartbeat_seconds=0.05, poll_seconds=0.02, sweep_seconds=0.1, retry_base_seconds=0.01
)


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "in-storage"])
def test_upload_to_completed_with_the_real_model(
    tmp_path: Path, data: Path, transcriber: WhisperTranscriber, inline: bool
) -> None:
    async def scenario() -> None:
        service = await open_service(tmp_path, inline_bytes=1024**2 if inline else 0)
        with (data / "speech_en.flac").open("rb") as handle:
            job, created = await service.submit_file(
                handle,
                filename="talk.flac",
                options=TranscribeOptions(word_timestamps=True),
                metadata={"ticket": 7},
            )
        assert created
        assert job.state is JobState.QUEUED
        assert job.source.size == (data / "speech_en.flac").stat().st_size
        assert job.source.inline is inline
        # Inline audio is only in the job store; the other kind is a file in storage.
        assert (tmp_path / "audio" / job.id / "audio.flac").is_file() is not inline
        finished: list[str] = []

        async def on_finished(done) -> None:  # type: ignore[no-untyped-def]
            finished.append(done.id)

        worker = Worker(service.store, service.storage, transcriber, FAST, on_finished=on_finished)
        await worker.run(until_idle=True)
        done = await service.wait(job.id, timeout=5)
        assert done.state is JobState.COMPLETED
        assert done.result is not None
        assert wer(REFERENCES["speech_en"], done.result.text) < 0.5
        assert done.result.words
        assert done.metadata == {"ticket": 7}
        assert done.progress == 100
        assert finished == [job.id]
        assert not (tmp_path / "audio" / job.id).exists()  # its audio is gone with it
        await service.close()

    asyncio.run(scenario())


def test_bad_audio_fails_at_once_and_other_jobs_go_on(
    tmp_path: Path, data: Path, transcriber: WhisperTranscriber
) -> None:
    async def scenario() -> None:
        service = await open_service(tmp_path)
        notes = tmp_path / "notes.mp3"
        notes.write_text("not audio at all\n" * 100)
        bad, _ = await service.submit_file(notes)
        good, _ = await service.submit_file(data / "speech_en.ogg")
        await Worker(service.store, service.storage, transcriber, FAST).run(until_idle=True)
        failed = await service.get(bad.id)
        assert failed.state is JobState.ERROR
        assert failed.attempts == 1  # permanent: not retried
        assert failed.error is not None
        assert failed.error.code == "invalid_audio"
        assert "notes.mp3" not in failed.error.message or "decoded" in failed.error.message
        assert (await service.get(good.id)).state is JobState.COMPLETED
        await service.close()

    asyncio.run(scenario())


class FlakyTranscriber(NoopTranscriber):
    def __init__(self, failures: int) -> None:
        self.failures = failures

    def transcribe(self, audio, options, progress=None):  # type: ignore[no-untyped-def]
        if self.failures:
            self.failures -= 1
            raise TranscriptionError("CUDA out of memory (simulated)")
        return transcript("ok")


def test_transient_failures_are_retried_with_backoff(tmp_path: Path, data: Path) -> None:
    async def scenario() -> None:
        service = await open_service(tmp_path)
        job, _ = await service.submit_file(data / "speech_en.ogg")
        worker = Worker(service.store, service.storage, FlakyTranscriber(2), FAST)
        done = await work_until_finished(worker, service, job.id, timeout=10)
        assert done.state is JobState.COMPLETED
        assert done.attempts == 3
        assert done.error is None  # a completed job carries no error
        always = await service.submit_file(data / "speech_en.ogg", max_attempts=2)
        worker = Worker(service.store, service.storage, FlakyTranscriber(5), FAST)
        failed = await work_until_finished(worker, service, always[0].id, timeout=10)
        assert failed.state is JobState.ERROR
        assert failed.attempts == 2
        assert failed.error is not None
        assert failed.error.code == "transcription_failed"
        await service.close()

    asyncio.run(scenario())


def test_cancelling_a_running_job_stops_it(tmp_path: Path, data: Path) -> None:
    async def scenario() -> None:
        service = await open_service(tmp_path)
        long_job, _ = await service.submit_file(data / "speech_en.ogg")
        next_job, _ = await service.submit_file(data / "speech_en.ogg")
        slow = SlowTranscriber(30, "slow")
        worker = Worker(service.store, service.storage, slow, FAST)
        task = asyncio.create_task(worker.run())
        while (await service.get(long_job.id)).state is not JobState.PROCESSING:
            await asyncio.sleep(0.02)
        started = asyncio.get_running_loop().time()
        cancelled = await service.cancel(long_job.id)
        assert cancelled.state is JobState.CANCELLED
        slow.seconds = 0.1  # the next job is quick
        done = await service.wait(next_job.id, timeout=10)
        assert done.state is JobState.COMPLETED
        assert asyncio.get_running_loop().time() - started < 5  # not after 30 s
        worker.request_stop()
        await task
        final = await service.get(long_job.id)
        assert final.state is JobState.CANCELLED
        assert final.result is None
        assert not (tmp_path / "audio" / long_job.id).exists()
        await service.close()

    asyncio.run(scenario())


def test_heartbeats_keep_a_job_three_times_its_lease(tmp_path: Path, data: Path) -> None:
    async def scenario() -> None:
        service = await open_service(tmp_path)
        job, _ = await service.submit_file(data / "speech_en.ogg")
        config = WorkerConfig(
            lease_seconds=0.5, heartbeat_seconds=0.1, sweep_seconds=0.05, poll_seconds=0.02
        )
        worker = Worker(service.store, service.storage, SlowTranscriber(1.6, "w"), config)
        sweeper = Worker(service.store, service.storage, NoopTranscriber(), config)
        tasks = [asyncio.create_task(w.run()) for w in (worker, sweeper)]
        done = await service.wait(job.id, timeout=10)
        for w in (worker, sweeper):
            w.request_stop()
        await asyncio.gather(*tasks)
        assert done.state is JobState.COMPLETED
        assert done.attempts == 1  # never swept back to the queue
        assert done.result is not None
        assert done.result.text == "w"
        await service.close()

    asyncio.run(scenario())


def test_idempotency_delete_prune_and_limits(tmp_path: Path, data: Path) -> None:
    async def scenario() -> None:
        service = await open_service(tmp_path, inline_bytes=0)  # every upload is a file
        first, created = await service.submit_file(data / "speech_en.ogg", idempotency_key="k")
        again, created_again = await service.submit_file(
            data / "speech_en.mp3", idempotency_key="k"
        )
        assert created
        assert not created_again
        assert again.id == first.id
        assert sorted(p.name for p in (tmp_path / "audio").iterdir()) == [first.id]
        with pytest.raises(UploadTooLargeError, match="larger than the limit of 1,000 bytes"):
            await service.submit_file(data / "speech_en.wav", max_bytes=1000)
        assert sorted(p.name for p in (tmp_path / "audio").iterdir()) == [first.id]
        assert (await service.store.counts())[JobState.QUEUED] == 1
        await Worker(service.store, service.storage, NoopTranscriber(), FAST).run(until_idle=True)
        queued, _ = await service.submit_file(data / "speech_en.ogg")
        assert await service.prune(timedelta(hours=1)) == []
        assert await service.prune(timedelta(seconds=-1)) == [first.id]
        assert (await service.get(queued.id)).state is JobState.QUEUED
        assert await service.delete(queued.id)
        assert not await service.delete(queued.id)
        assert list((tmp_path / "audio").iterdir()) == []
        with pytest.raises(JobNotFoundError, match="No job has the id"):
            await service.get(queued.id)
        await service.close()

    asyncio.run(scenario())


def test_small_uploads_stay_with_their_job_and_large_ones_go_to_storage(
    tmp_path: Path, data: Path
) -> None:
    audio = data / "speech_en.ogg"
    size = audio.stat().st_size

    async def scenario() -> None:
        service = await open_service(tmp_path, inline_bytes=size)
        small, _ = await service.submit_file(audio)
        assert small.source.inline
        assert small.source.size == size
        assert not (tmp_path / "audio").exists()  # no file, no directory
        service.inline_bytes = size - 1  # one byte over: streamed to storage instead
        large, _ = await service.submit_file(audio)
        assert not large.source.inline
        assert (tmp_path / "audio" / large.id / "audio.ogg").stat().st_size == size
        # The size cap holds for audio kept inline too, and refuses it before any write.
        service.inline_bytes = size
        with pytest.raises(UploadTooLargeError, match="larger than the limit of 1,000 bytes"):
            await service.submit_file(audio, max_bytes=1000)
        # A second submission with a used key stores nothing and returns the first job.
        again, created = await service.submit_file(audio, idempotency_key="k")
        repeat, created_again = await service.submit_file(audio, idempotency_key="k")
        assert created
        assert not created_again
        assert repeat.id == again.id
        with pytest.raises(EmptyAudioError, match="is empty"):
            await service.submit_file(tmp_path / "empty.wav", check_audio=True)
        (tmp_path / "notes.wav").write_text("not audio\n" * 10)
        with pytest.raises(AudioError, match=r"can be decoded"):
            await service.submit_file(tmp_path / "notes.wav", check_audio=True)
        counts = await service.store.counts()
        assert counts[JobState.QUEUED] == 3  # the refused uploads made no job
        worker = Worker(service.store, service.storage, NoopTranscriber(), FAST)
        await worker.run(until_idle=True)
        assert worker.completed == 3
        assert list((tmp_path / "audio").iterdir()) == []  # the large one's file is gone
        await service.close()

    (tmp_path / "empty.wav").write_bytes(b"")
    asyncio.run(scenario())


def test_inline_audio_that_is_bad_fails_its_job_with_a_clear_error(
    tmp_path: Path, data: Path, transcriber: WhisperTranscriber
) -> None:
    """Truncation is caught before transcribing audio held in memory, as for a file."""
    whole = (data / "speech_en.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])  # the header still announces all of it

    async def scenario() -> None:
        service = await open_service(tmp_path)
        job, _ = await service.submit_file(cut)
        assert job.source.inline
        await Worker(service.store, service.storage, transcriber, FAST).run(until_idle=True)
        failed = await service.get(job.id)
        await service.close()
        assert failed.state is JobState.ERROR
        assert failed.attempts == 1
        assert failed.error is not None
        assert failed.error.code == "truncated_audio"
        assert "cut.wav is truncated" in failed.error.message

    asyncio.run(scenario())


def test_a_job_claimed_with_the_last_completion_is_handed_back_on_stop() -> None:
    """The stop request comes between the step that completed one job and claimed the
    next, and the start of that next job: it goes back to the queue, unstarted."""

    class StopsWhileChaining(MemoryJobStore):
        worker: Worker

        async def complete_and_claim(  # type: ignore[no-untyped-def]
            self, *args
        ) -> tuple[bool, Job | None]:
            outcome = await super().complete_and_claim(*args)
            self.worker.request_stop()
            await asyncio.sleep(0)  # the stop request lands before the slot looks
            return outcome

    async def scenario() -> None:
        store = StopsWhileChaining()
        service = JobService(store, LocalStorage(Path("/nonexistent")))
        first, _ = await service.submit_file(io.BytesIO(b"RIFF one"))
        second, _ = await service.submit_file(io.BytesIO(b"RIFF two"))
        assert first.source.inline
        assert second.source.inline
        store.worker = Worker(store, service.storage, NoopTranscriber(), FAST)
        await store.worker.run()
        assert store.worker.completed == 1
        assert (await service.get(first.id)).state is JobState.COMPLETED
        again = await service.get(second.id)
        assert again.state is JobState.QUEUED
        assert again.attempts == 0  # the claim that was never started does not count
        assert again.lease is None
        claimed = await store.claim("next", 30)
        assert claimed is not None
        assert claimed.id == second.id
        assert claimed.audio == b"RIFF two"  # its audio is still there

    asyncio.run(scenario())
