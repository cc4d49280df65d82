"""Jobs per second through the queue with a no-op transcriber, one process.

    python bench/jobqueue.py --jobs 5000 --repeats 3 [--submitters 8 --concurrency 4]

Each run submits ``--jobs`` jobs through ``JobService.submit_file`` (1 KiB of audio, kept
inline with its job, which is created) and completes them with one ``Worker`` (claim, run
the no-op transcriber in its thread, complete). With ``--inline-bytes 0`` the audio goes
to local storage instead (written, fsynced and renamed; removed after the job), and with
several values each store runs with each. With the defaults the
jobs are all submitted first, by one caller, then run by a one-slot worker; with
``--submitters N`` that many callers submit while the worker (``--concurrency`` slots)
already runs, as on a busy server. The figure is jobs / wall time of the whole run, submit
included. Stores alternate within each repeat.

With ``--postgres URL`` (a database where this user may create others, e.g. the local
server's ``postgresql://127.0.0.1:5432/test``), the same run also measures PostgreSQL with
``--workers`` worker processes (default 1, 2 and 4) of ``--slots`` slots each (default 1
and 8: a worker's slots that finish together share a statement), each combination
alternating with the others within a repeat; see ``bench/postgres_workers.py`` for what is
timed.

    python bench/jobqueue.py --jobs 5000 --repeats 3 --postgres postgresql://127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.noop_worker import NoopTranscriber
from cesar_core.protocols import JobStore
from cesar_core.service import JobService
from cesar_core.settings import DEFAULT_INLINE_AUDIO_BYTES
from cesar_core.storage.local import LocalStorage
from cesar_core.stores.memory import MemoryJobStore
from cesar_core.stores.sqlite import SQLiteJobStore
from cesar_core.worker import Worker, WorkerConfig

AUDIO = b"RIFF" + b"\0" * 1020  # the no-op transcriber never reads it


async def open_store(kind: str, root: Path) -> JobStore:
    if kind == "memory":
        return MemoryJobStore()
    return await SQLiteJobStore.open(root / "jobs.db")


async def one_run(
    kind: str, jobs: int, submitters: int, concurrency: int, inline_bytes: int
) -> float:
    root = Path(tempfile.mkdtemp(prefix=f"cesar-queue-{kind}-"))
    store = await open_store(kind, root)
    service = JobService(store, LocalStorage(root / "audio"), inline_bytes=inline_bytes)
    worker = Worker(
        store,
        service.storage,
        NoopTranscriber(),
        WorkerConfig(
            concurrency=concurrency, poll_seconds=0.01, heartbeat_seconds=5, sweep_seconds=60
        ),
    )

    async def chunks():  # type: ignore[no-untyped-def]
        yield AUDIO

    async def submit(count: int) -> None:
        for _ in range(count):
            await service.submit_file(chunks(), filename="a.wav")

    shares = [jobs // submitters + (i < jobs % submitters) for i in range(submitters)]
    started = time.perf_counter()
    if submitters == 1 and concurrency == 1:  # all submitted, then all run
        await submit(jobs)
        await worker.run(until_idle=True)
    else:
        running = asyncio.create_task(worker.run())
        async with asyncio.TaskGroup() as group:
            for share in shares:
                group.create_task(submit(share))
        while worker.completed < jobs:
            await asyncio.sleep(0.002)
        worker.request_stop()
        await running
    elapsed = time.perf_counter() - started
    assert worker.completed == jobs, (worker.completed, jobs)
    await store.close()
    return jobs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--submitters", type=int, default=1, help="concurrent submitters")
    parser.add_argument("--concurrency", type=int, default=1, help="worker slots")
    parser.add_argument("--postgres", metavar="URL", help="also measure PostgreSQL")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--slots", type=int, nargs="+", default=[1, 8], help="slots per PostgreSQL worker"
    )
    parser.add_argument(
        "--inline-bytes",
        type=int,
        nargs="+",
        default=[DEFAULT_INLINE_AUDIO_BYTES],
        help="uploads up to this size stay with their job; 0: all to storage",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/jobqueue.json"))
    args = parser.parse_args()
    # label: store, mode, workers, slots, inline
    runs: dict[str, tuple[str, str, int, int, int]] = {}
    for inline in args.inline_bytes:
        suffix = "" if inline == DEFAULT_INLINE_AUDIO_BYTES else f" inline={inline}"
        runs[f"memory{suffix}"] = ("memory", "", 1, 1, inline)
        runs[f"sqlite{suffix}"] = ("sqlite", "", 1, 1, inline)
        if args.postgres:
            for slots in args.slots:
                for count in args.workers:
                    for mode in ("drain", "e2e"):
                        label = f"postgres {mode} {count}w x {slots} slots{suffix}"
                        runs[label] = ("postgres", mode, count, slots, inline)
    rates: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(args.repeats):
        for label, (kind, mode, count, slots, inline) in runs.items():
            if kind == "postgres":
                from bench import postgres_workers  # psycopg: only with --postgres

                rate = postgres_workers.one_run(
                    args.postgres, args.jobs, count, mode, inline, slots
                )
            else:
                rate = asyncio.run(
                    one_run(kind, args.jobs, args.submitters, args.concurrency, inline)
                )
            rates[label].append(rate)
            print(f"{label}: {rate:.0f} jobs/s", flush=True)
    results = {
        kind: {"max": max(r), "median": statistics.median(r), "runs": r}
        for kind, r in rates.items()
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "jobs": args.jobs,
                "submitters": args.submitters,
                "concurrency": args.concurrency,
                "inline_bytes": args.inline_bytes,
                "slots": args.slots,
                "cpu_count": os.cpu_count(),
                "jobs_per_s": results,
            }
        )
    )
    for kind, row in results.items():
        print(f"{kind:40} {row['median']:8.0f} jobs/s median, {row['max']:8.0f} best")


if __name__ == "__main__":
    main()
