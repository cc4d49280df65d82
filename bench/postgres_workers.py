"""No-op jobs per second on PostgreSQL with several worker processes.

    python bench/postgres_workers.py --postgres postgresql://127.0.0.1:5432/test --jobs 5000

(``bench/jobqueue.py --postgres URL`` runs the same, alternating with its other runs.)
Each worker is its own ``cesar worker`` process (``bench/noop_worker.py``: the real command
with the no-op transcriber, one slot unless told otherwise) on the PostgreSQL store *and*
storage, as nodes that share nothing but the database run. Two figures per worker count:

- **drain**: the workers are started and paused (SIGSTOP), the jobs submitted, the workers
  resumed, and the clock runs until the last job is completed: the rate of the workers
  alone (claim, run, complete; with audio in the blob tables, also copy it out before and
  delete it after).
- **end to end**: the workers run while this process submits the jobs (8 concurrent
  submitters through ``JobService``, 1 KiB of audio each), clock from the first submit to
  the last completion.

The 1 KiB goes inline with its job unless ``inline_bytes`` is 0 (then to the blob tables).

``--events on off`` alternates each run with one whose database announces no job changes
to followers: the trigger that sends ``NOTIFY cesar_job_events`` at every change of state or
progress (for ``GET /jobs/{id}/events`` on any node) is replaced by one that only drops
live segments, so the pair measures what those announcements cost the queue.
Each run has a database of its own, created on the server of the ``--postgres`` URL (this
user must be allowed to create databases) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import psycopg

from bench import noop_worker
from bench.common import scratch_database
from cesar_core.service import JobService
from cesar_core.settings import DEFAULT_INLINE_AUDIO_BYTES
from cesar_postgres.blobs import PostgresStorage
from cesar_postgres.store import PostgresJobStore

AUDIO = b"RIFF" + b"\0" * 1020  # the no-op transcriber never reads it
SUBMITTERS = 8


def start_workers(
    url: str, count: int, slots: int = 1, pack: bool = False
) -> list[subprocess.Popen[bytes]]:
    """``count`` no-op workers of ``slots`` slots; with packing of short jobs only if
    ``pack``: the no-op jobs' audio is no audio, so a worker that packs claims them in
    batches, fails to read each, and runs each alone without chaining its completion to
    the next claim, which is not what a queue of real jobs costs (see ``--pack``)."""
    logs = Path(tempfile.mkdtemp(prefix="cesar-bench-workers-"))
    env = {} if pack else {"CESAR_PACK_MAX_CLIPS": "1"}
    return [
        noop_worker.start(
            url,
            url,
            logs / f"bench{n}.log",
            "--transcriber",
            "noop",
            "--name",
            f"bench{n}",
            "--concurrency",
            str(slots),
            env=env,
        )
        for n in range(count)
    ]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGCONT)
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=120)


async def submit(url: str, jobs: int, inline_bytes: int) -> None:
    store = await PostgresJobStore.open(url)
    service = JobService(store, await PostgresStorage.open(url), inline_bytes=inline_bytes)

    async def chunks():  # type: ignore[no-untyped-def]
        yield AUDIO

    async def one_submitter(count: int) -> None:
        for _ in range(count):
            await service.submit_file(chunks(), filename="a.wav")

    shares = [jobs // SUBMITTERS + (i < jobs % SUBMITTERS) for i in range(SUBMITTERS)]
    async with asyncio.TaskGroup() as group:
        for share in shares:
            group.create_task(one_submitter(share))
    await service.close()


def wait_completed(url: str, jobs: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(
                "SELECT count(*) FROM cesar_jobs WHERE state = 'completed'"
            ).fetchone()
            if row is not None and row[0] >= jobs:
                return
            time.sleep(0.05)  # often enough to time the run, rarely enough to cost nothing
    raise TimeoutError(f"{jobs} jobs not completed within {timeout} s")


#: ``cesar_job_changed`` without its NOTIFY: what a store would run with no followers.
SILENT_TRIGGER = (
    "CREATE OR REPLACE FUNCTION cesar_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN IF TG_OP = 'UPDATE' AND NEW.state <> 'processing' THEN "
    "DELETE FROM cesar_job_segments WHERE job_id = NEW.id; END IF; RETURN NULL; END $$"
)


def one_run(
    admin_url: str,
    jobs: int,
    workers: int,
    mode: str,
    inline_bytes: int,
    slots: int = 1,
    events: bool = True,
    pack: bool = False,
) -> float:
    """Jobs per second for ``workers`` processes of ``slots`` slots each in ``mode``
    (``drain`` or ``e2e``), with or without the job-change announcements (``events``)."""
    with scratch_database(admin_url) as url:
        asyncio.run(_open_close(url))  # tables exist before workers race to create them
        if not events:
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(SILENT_TRIGGER)
        processes = start_workers(url, workers, slots, pack)
        try:
            if mode == "drain":
                for process in processes:
                    process.send_signal(signal.SIGSTOP)
                asyncio.run(submit(url, jobs, inline_bytes))
                started = time.perf_counter()
                for process in processes:
                    process.send_signal(signal.SIGCONT)
                wait_completed(url, jobs)
            else:
                started = time.perf_counter()
                asyncio.run(_submit_while_waiting(url, jobs, inline_bytes))
            elapsed = time.perf_counter() - started
        finally:
            stop_workers(processes)
        return jobs / elapsed


async def _submit_while_waiting(url: str, jobs: int, inline_bytes: int) -> None:
    await asyncio.gather(
        submit(url, jobs, inline_bytes), asyncio.to_thread(wait_completed, url, jobs)
    )


async def _open_close(url: str) -> None:
    await (await PostgresJobStore.open(url)).close()
    await (await PostgresStorage.open(url)).close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="postgresql://127.0.0.1:5432/test",
        help="a database on the server to use (default: %(default)s)",
    )
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 8], help="slots per worker")
    parser.add_argument("--modes", nargs="+", choices=["drain", "e2e"], default=["drain", "e2e"])
    parser.add_argument(
        "--events",
        nargs="+",
        choices=["on", "off"],
        default=["on"],
        help="announce job changes to followers (off: measure without; both alternate)",
    )
    parser.add_argument(
        "--pack",
        action="store_true",
        help="let the workers pack short jobs (no-op jobs cannot share: see start_workers)",
    )
    parser.add_argument(
        "--inline-bytes",
        type=int,
        default=DEFAULT_INLINE_AUDIO_BYTES,
        help="uploads up to this size stay with their job; 0: all to the blob tables",
    )
    args = parser.parse_args()
    runs = [
        (s, w, m, e)
        for s in args.slots
        for w in args.workers
        for m in args.modes
        for e in args.events
    ]
    rates: dict[tuple[int, int, str, str], list[float]] = {run: [] for run in runs}
    for _ in range(args.repeats):
        for slots, workers, mode, events in runs:
            rate = one_run(
                args.postgres,
                args.jobs,
                workers,
                mode,
                args.inline_bytes,
                slots,
                events == "on",
                args.pack,
            )
            rates[(slots, workers, mode, events)].append(rate)
            print(
                f"{mode} {workers}w x {slots} slots, events {events}: {rate:.0f} jobs/s", flush=True
            )
    for (slots, workers, mode, events), found in rates.items():
        print(
            f"{mode:5} {workers}w x {slots} slots, events {events:3} "
            f"{statistics.median(found):8.0f} jobs/s median, {max(found):8.0f} best"
        )


if __name__ == "__main__":
    main()
