"""The queue under real failure: worker processes killed, paused, stopped, crashing, on
SQLite (one machine) and on PostgreSQL (store and audio in the database, as many machines
would share them)."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cesar_core.jobs import Job, JobState

from .queue_helpers import (
    Site,
    eventually,
    jobs,
    open_service,
    run,
    start_worker,
    state_of,
    stop,
    submit,
)


@pytest.fixture(params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Site:
    if request.param == "sqlite":
        return Site.local(tmp_path)
    url = request.getfixturevalue("empty_postgres")
    return Site(store=url, storage=url)


def test_killed_worker_job_is_requeued_and_completes_once(site: Site, data: Path) -> None:
    [job_id] = submit(site, 1, data / "speech_en.ogg")
    doomed = start_worker(site, "--transcriber", "slow:20", "--lease", "1", "--name", "doomed")
    eventually(lambda: state_of(site, job_id).state is JobState.PROCESSING)
    doomed.kill()  # SIGKILL: no chance to clean up
    doomed.wait()
    rescuer = start_worker(site, "--transcriber", "slow:0.3", "--lease", "1", "--name", "rescuer")
    done = eventually(lambda: (j := state_of(site, job_id)).state.terminal and j)
    stop(rescuer)
    assert isinstance(done, Job)
    assert done.state is JobState.COMPLETED
    assert done.attempts == 2
    assert done.result is not None
    assert done.result.text == "rescuer"


def test_paused_worker_cannot_complete_after_takeover(site: Site, data: Path) -> None:
    [job_id] = submit(site, 1, data / "speech_en.ogg")
    paused = start_worker(site, "--transcriber", "slow:1.5", "--lease", "1", "--name", "paused")
    eventually(lambda: state_of(site, job_id).state is JobState.PROCESSING)
    paused.send_signal(signal.SIGSTOP)
    other = start_worker(site, "--transcriber", "slow:0.2", "--lease", "30", "--name", "other")
    done = eventually(lambda: (j := state_of(site, job_id)).state.terminal and j, timeout=20)
    paused.send_signal(signal.SIGCONT)
    # The paused worker wakes up and finds it lost the job: its heartbeat is refused (it
    # stops the job) or, when its copy finished first, its completion is.
    lost = rf"job {job_id} (was cancelled or taken over|finished after its lease was lost)"
    seen = wait_for_line(paused, lost)
    output = seen + stop(paused) + stop(other)
    final = state_of(site, job_id)
    assert isinstance(done, Job)
    assert final.state is JobState.COMPLETED
    assert final.result is not None
    assert final.result.text == "other"  # the stale worker's result never landed
    assert final.completed_at == done.completed_at
    assert "database is locked" not in output


def wait_for_line(process: subprocess.Popen[str], pattern: str, timeout: float = 20) -> str:
    """What ``process`` wrote on stderr up to a line matching ``pattern``; fails, showing
    what it did write, when no such line comes within ``timeout`` seconds. Reads the raw
    pipe, so that ``stop`` (``communicate``) still gets everything after it."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    seen = ""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, seen):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        chunk = os.read(fd, 65536).decode(errors="replace") if ready else ""
        if not chunk:  # out of time, or the process closed its stderr
            raise AssertionError(
                f"no line matching {pattern!r} within {timeout} s; the process wrote:\n{seen}"
            )
        seen += chunk
    return seen


def stored(root: Site, found: list[Job]) -> list[str]:
    """The jobs whose audio is still in storage."""

    async def go() -> list[str]:
        service = await open_service(root)
        left = [j.id for j in found if await service.storage.exists(j.source.location)]
        await service.close()
        return left

    return run(go())


def test_four_processes_complete_1000_jobs_exactly_once(site: Site, data: Path) -> None:
    ids = submit(site, 1000, data / "speech_en.opus")
    workers = [
        start_worker(site, "--transcriber", "noop", "--until-idle", "--name", f"w{i}")
        for i in range(4)
    ]
    outputs = [stop(worker, sig=0, timeout=300) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    found_counts = [re.search(r"^completed (\d+)$", out, re.MULTILINE) for out in outputs]
    assert all(found_counts), outputs
    counts = [int(match.group(1)) for match in found_counts if match]
    assert sum(counts) == 1000  # each completion was a successful, lease-holding one
    assert all("database is locked" not in out for out in outputs)
    found = jobs(site, ids)
    assert all(job.state is JobState.COMPLETED for job in found)
    assert all(job.attempts == 1 for job in found)
    assert stored(site, found) == []


def test_a_new_worker_never_steals_running_jobs(site: Site, data: Path) -> None:
    [job_id] = submit(site, 1, data / "speech_en.ogg")
    first = start_worker(site, "--transcriber", "slow:2", "--lease", "1", "--name", "first")
    eventually(lambda: state_of(site, job_id).state is JobState.PROCESSING)
    second = start_worker(site, "--transcriber", "slow:0.1", "--lease", "1", "--name", "new")
    done = eventually(lambda: (j := state_of(site, job_id)).state.terminal and j, timeout=20)
    stop(first)
    stop(second)
    assert isinstance(done, Job)
    assert done.attempts == 1
    assert done.result is not None
    assert done.result.text == "first"


def test_sigterm_lets_the_running_job_finish(site: Site, data: Path) -> None:
    [job_id, waiting] = submit(site, 2, data / "speech_en.ogg")
    worker = start_worker(site, "--transcriber", "slow:1.5", "--grace", "30")
    eventually(lambda: state_of(site, job_id).state is JobState.PROCESSING)
    output = stop(worker)
    assert worker.returncode == 0, output
    assert "completed 1" in output
    assert state_of(site, job_id).state is JobState.COMPLETED
    assert state_of(site, waiting).state is JobState.QUEUED  # not claimed after SIGTERM


def test_sigterm_hands_back_a_job_that_outlasts_the_grace(site: Site, data: Path) -> None:
    [job_id] = submit(site, 1, data / "speech_en.ogg")
    worker = start_worker(site, "--transcriber", "slow:60", "--grace", "0.3")
    eventually(lambda: state_of(site, job_id).state is JobState.PROCESSING)
    started = time.monotonic()
    output = stop(worker)
    assert time.monotonic() - started < 10
    assert worker.returncode == 0, output
    job = state_of(site, job_id)
    assert job.state is JobState.QUEUED
    assert job.attempts == 0  # a hand-back does not count against the job
    assert job.lease is None


def test_poison_job_ends_in_error_and_others_go_on(site: Site, data: Path) -> None:
    [poison] = submit(site, 1, data / "speech_en.ogg", filename="crash.poison", max_attempts=2)
    [healthy] = submit(site, 1, data / "speech_en.ogg")
    for _ in range(2):  # each worker dies on the poison job
        worker = start_worker(site, "--transcriber", "poison", "--lease", "0.5")
        worker.wait(timeout=30)
        assert worker.returncode == -signal.SIGKILL
        time.sleep(0.6)  # let the lease run out
    survivor = start_worker(site, "--transcriber", "poison", "--lease", "0.5")
    final = eventually(lambda: (j := state_of(site, poison)).state.terminal and j)
    eventually(lambda: state_of(site, healthy).state is JobState.COMPLETED)
    stop(survivor)
    assert isinstance(final, Job)
    assert final.state is JobState.ERROR
    assert final.attempts == 2
    assert final.error is not None
    assert final.error.code == "worker_lost"
    assert "stopped responding 2 times" in final.error.message
