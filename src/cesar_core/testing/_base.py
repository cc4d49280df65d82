"""What every part of the contract shares: sample data, the store each test gets, and the
timing knobs a store's test class may raise."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ..jobs import Job, JobError, JobSource, NewJob, SourceKind
from ..protocols import JobStore
from ..transcript import Segment, TranscribeOptions, Transcript

Scenario = Callable[[JobStore], Awaitable[Any]]
T = TypeVar("T")

TRANSCRIPT = Transcript(
    text="Hello.",
    segments=(Segment(id=0, start=0.0, end=1.0, text="Hello."),),
    language="en",
    language_probability=0.9,
    duration=1.0,
    model="tiny.en",
)
ERROR = JobError(code="invalid_audio", message="not audio")


def new_job(**changes: Any) -> NewJob:
    """A queued job as a caller would submit it."""
    values: dict[str, Any] = {
        "source": JobSource(kind=SourceKind.UPLOAD, location="uploads/a.wav", filename="a.wav"),
        "options": TranscribeOptions(language="en", word_timestamps=True),
        "metadata": {"customer": "acme", "tags": ["x"]},
    }
    values.update(changes)
    return NewJob(**values)


async def claimed(store: JobStore, lease: float = 30.0, worker: str = "w1") -> Job:
    """Create a job and claim it; the contract's usual starting point."""
    await store.create(new_job())
    job = await store.claim(worker, lease)
    assert job is not None
    assert job.lease is not None
    return job


class ContractBase:
    """The store under test and the contract's sense of time.

    The timing knobs are class attributes, so that a store whose every call crosses a
    network can raise them in its test class instead of flaking. A store's expiry is
    judged by its own clock (the database's), so the tests never sleep a fixed time and
    hope: they ask again until the store acts, for at most the expected time plus
    ``patience``.
    """

    #: Lease, in seconds, of the job the expiry test lets run out. The test makes two
    #: round trips to the store between claiming it and checking it has not expired yet.
    short_lease: float = 1.0
    #: Delay, in seconds, of the retry the back-off test schedules; it checks, one round
    #: trip after scheduling it, that the job cannot be claimed yet.
    retry_delay: float = 1.0
    #: How long past a lease or a delay the store may take to act on it before a test
    #: fails (slow round trips, a busy server).
    patience: float = 10.0
    #: Seconds between two questions while a test waits for the store to act.
    poll_interval: float = 0.05
    #: How far the store's clock may be from the test machine's, in seconds, for the
    #: checks that compare the times a store records with the test's own clock.
    clock_tolerance: float = 5.0

    async def open_store(self, tmp_path: Path) -> JobStore:
        """Return a new, empty, open store."""
        raise NotImplementedError

    async def inline_audio_kept(self, store: JobStore) -> int | None:
        """How many jobs' inline audio the store still holds, or None when a subclass
        cannot tell: then the contract cannot check that ended jobs leave none behind."""
        return None

    async def eventually(self, check: Callable[[], Awaitable[T]], after: float, what: str) -> T:
        """Ask ``check`` until it answers something truthy, for ``after`` seconds (when
        the store should act) plus ``patience``; fail saying ``what`` never happened."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + after + self.patience
        while True:
            value = await check()
            if value:
                return value
            if loop.time() > deadline:
                pytest.fail(
                    f"{what} within {after + self.patience:.1f} s (raise the test class's "
                    "patience if the store is only slow)"
                )
            await asyncio.sleep(self.poll_interval)

    @pytest.fixture
    def run(self, tmp_path: Path) -> Callable[[Scenario], Any]:
        def runner(scenario: Scenario) -> Any:
            async def main() -> Any:
                store = await self.open_store(tmp_path)
                try:
                    return await scenario(store)
                finally:
                    await store.close()

            return asyncio.run(main())

        return runner
