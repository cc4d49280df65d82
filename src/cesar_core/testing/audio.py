"""The contract for inline audio: a small upload's bytes travel with its job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..jobs import JobSource, JobState, NewJob, SourceKind
from ..protocols import AudioStore, JobStore
from ._base import ERROR, TRANSCRIPT, ContractBase, Scenario, new_job


class InlineAudioContract(ContractBase):
    """A claim brings the job's audio; ``get`` and ``list`` never do; an ended job's goes."""

    def test_inline_audio_reaches_the_worker_with_its_claim(
        self, run: Callable[[Scenario], Any]
    ) -> None:
        async def scenario(store: JobStore) -> None:
            audio = bytes(range(256)) * 8 + b"\0end"  # every byte value, NULs included

            def inline(name: str) -> NewJob:
                source = JobSource(
                    kind=SourceKind.UPLOAD,
                    location=f"{name}/audio.wav",
                    filename="a.wav",
                    size=len(audio),
                    inline=True,
                )
                return new_job(source=source, audio=audio + name.encode())

            job, _ = await store.create(inline("one"))
            plain, _ = await store.create(new_job())
            assert job.audio is None  # only a claim brings the audio
            fetched = await store.get(job.id)
            assert fetched is not None
            assert fetched.source.inline
            assert fetched.audio is None
            assert all(j.audio is None for j in (await store.list(include_result=True)).jobs)
            first = await store.claim("w1", 30)
            assert first is not None
            assert first.id == job.id
            assert first.audio == audio + b"one"
            # A retried job brings its audio again.
            assert await store.retry(job.id, first.lease.token, ERROR, 0) is JobState.QUEUED  # type: ignore[union-attr]
            again = await store.claim("w2", 30)
            assert again is not None
            assert again.id == job.id
            assert again.audio == audio + b"one"
            other = await store.claim("w1", 30)
            assert other is not None
            assert other.id == plain.id
            assert other.audio is None
            # The audio goes once the job ends, whichever way it ends.
            assert await store.complete(job.id, again.lease.token, TRANSCRIPT)  # type: ignore[union-attr]
            failed, _ = await store.create(inline("two"))
            cancelled, _ = await store.create(inline("three"))
            deleted, _ = await store.create(inline("four"))
            assert await self.inline_audio_kept(store) in (None, 3)
            running = await store.claim("w1", 30)
            assert running is not None
            assert running.id == failed.id
            assert await store.fail(failed.id, running.lease.token, ERROR)  # type: ignore[union-attr]
            await store.cancel(cancelled.id)
            assert await store.delete(deleted.id)
            assert await self.inline_audio_kept(store) in (None, 0)

        run(scenario)

    def test_kept_audio_outlives_its_job_until_deleted(
        self, run: Callable[[Scenario], Any]
    ) -> None:
        """With ``source.keep`` (the ``keep_audio`` setting) the inline audio stays when
        the job ends, whichever way, so it can be played back; it goes with the job."""

        async def scenario(store: JobStore) -> None:
            def kept(name: str) -> NewJob:
                source = JobSource(
                    kind=SourceKind.UPLOAD,
                    location=f"{name}/audio.wav",
                    size=4,
                    inline=True,
                    keep=True,
                )
                return new_job(source=source, audio=name.encode()[:4].ljust(4, b"\0"))

            done, _ = await store.create(kept("done"))
            failed, _ = await store.create(kept("fail"))
            cancelled, _ = await store.create(kept("cncl"))
            for job, end in ((done, "complete"), (failed, "fail")):
                claimed = await store.claim("w1", 30)
                assert claimed is not None
                assert claimed.id == job.id
                assert claimed.lease is not None
                if end == "complete":
                    assert await store.complete(job.id, claimed.lease.token, TRANSCRIPT)
                else:
                    assert await store.fail(job.id, claimed.lease.token, ERROR)
            await store.cancel(cancelled.id)
            ended = await store.get(done.id)
            assert ended is not None
            assert ended.state is JobState.COMPLETED
            assert ended.source.keep
            assert await self.inline_audio_kept(store) in (None, 3)
            if isinstance(store, AudioStore):
                assert await store.inline_audio(done.id) == b"done"
                assert await store.inline_audio(cancelled.id) == b"cncl"
            for job in (done, failed, cancelled):
                assert await store.delete(job.id)
            assert await self.inline_audio_kept(store) in (None, 0)
            if isinstance(store, AudioStore):
                assert await store.inline_audio(done.id) is None

        run(scenario)
