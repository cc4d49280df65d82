"""Worker processes killed at random while they run jobs: is every job completed exactly once,
and what do the dead leave behind?

    python bench/chaos.py --jobs 300 [--stores sqlite postgres --postgres URL]

For each store, ``--workers`` ``cesar worker`` processes (``bench/noop_worker.py``: the
real command with a transcriber that sleeps ``--job-seconds``) of ``--slots`` slots are
started, then ``--jobs`` no-op jobs submitted (half with their 1 KiB of audio inline in the
store, half in storage: files for SQLite, the blob tables for PostgreSQL, where store and
audio share the database as separate machines would). The workers run them while, every
``--kill-every`` seconds (a random time between the two values), one of them chosen at
random is killed with SIGKILL and a new one started in its place. Leases of ``--lease``
seconds bring a dead worker's jobs back to the queue. Once every job has ended the workers
are stopped (SIGTERM) and the run reports:

- **submitted**, **completed**, **lost** (any job not completed: still queued or running
  after ``--timeout``, or failed because its workers kept dying, which ``--max-attempts``
  makes unlikely);
- **completed twice**: jobs for which two workers each completed a claim and announced it
  (every worker appends each job event it emits to a shared log, one ``O_APPEND`` write a
  line), and **announced but not completed**: events for jobs the store does not show as
  completed;
- how many errors the workers logged (their logs stay in the run's directory, named in
  the report);
- what the dead left: **temporary audio copies** in the workers' temporary and scratch
  directories, ``.part`` files and job audio still in storage, and inline audio rows still
  in the store.

Exits 1 when any job was lost or completed twice (or announced and not completed).
Writes the figures to ``--out`` as JSON too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import noop_worker
from bench.common import scratch_database
from cesar_core.jobs import JobState
from cesar_core.plugins import make_manager
from cesar_core.service import JobService
from cesar_core.settings import DEFAULT_INLINE_AUDIO_BYTES
from cesar_core.storage import open_storage
from cesar_core.stores import open_store

AUDIO = b"RIFF" + b"\0" * 1020  # the no-op transcriber never reads it
TERMINAL = ("completed", "error", "cancelled")


@dataclass
class Site:
    """Where one run's queue lives, and how to look at it from outside."""

    kind: str
    store: str
    storage: str
    work: Path
    sqlite: Path | None = None

    def rows(self, sql_sqlite: str, sql_postgres: str) -> list[tuple[Any, ...]]:
        if self.sqlite is not None:
            with sqlite3.connect(self.sqlite, timeout=30) as db:
                return db.execute(sql_sqlite).fetchall()
        import psycopg

        with psycopg.connect(self.store, autocommit=True) as db:
            return db.execute(sql_postgres).fetchall()  # type: ignore[arg-type]

    def states(self) -> Counter[str]:
        return Counter(
            dict(
                self.rows(
                    "SELECT state, count(*) FROM jobs GROUP BY state",
                    "SELECT state, count(*) FROM cesar_jobs GROUP BY state",
                )
            )
        )

    def leftovers(self) -> dict[str, int]:
        """What is left once every job has ended and every worker is gone."""
        scratch = [self.work / "tmp", self.work / "cache" / "scratch"]
        found = {
            "temporary audio copies": sum(
                1 for where in scratch for p in where.rglob("*") if p.is_file()
            )
        }
        inline = self.rows("SELECT count(*) FROM job_audio", "SELECT count(*) FROM cesar_job_audio")
        if self.sqlite is not None:
            audio = self.work / "audio"
            files = [p for p in audio.rglob("*") if p.is_file()] if audio.exists() else []
            found[".part files in storage"] = sum(1 for p in files if p.name.endswith(".part"))
            found["job audio left in storage"] = sum(
                1 for p in files if not p.name.endswith(".part")
            )
        else:
            [(blobs,)] = self.rows("", "SELECT count(*) FROM cesar_blobs")
            found[".part files in storage"] = 0  # the blob tables write in one transaction
            found["job audio left in storage"] = blobs
        found["inline audio rows"] = inline[0][0]
        return found


@contextmanager
def site(kind: str, postgres: str) -> Iterator[Site]:
    work = Path(tempfile.mkdtemp(prefix=f"cesar-chaos-{kind}-"))
    (work / "tmp").mkdir()
    if kind == "sqlite":
        db = work / "jobs.db"
        yield Site(kind, f"sqlite:///{db}", (work / "audio").as_uri(), work, db)
        return
    with scratch_database(postgres, prefix="cesar_chaos") as url:
        yield Site(kind, url, url, work)


async def open_service(where: Site) -> JobService:
    manager = make_manager({})  # the built-in stores and storage, no other plugin
    store = await open_store(where.store, manager)
    return JobService(store, await open_storage(where.storage, manager))


async def submit(where: Site, jobs: int, max_attempts: int) -> list[str]:
    """Half the jobs with their audio inline, half with it in storage."""
    service = await open_service(where)

    async def chunks():  # type: ignore[no-untyped-def]
        yield AUDIO

    ids = []
    for n in range(jobs):
        service.inline_bytes = DEFAULT_INLINE_AUDIO_BYTES if n % 2 else 0
        job, _ = await service.submit_file(chunks(), filename="a.wav", max_attempts=max_attempts)
        ids.append(job.id)
    await service.close()
    return ids


async def final_states(where: Site, ids: list[str]) -> list[tuple[str, JobState, int]]:
    """Each job's id, state and attempts, as the store's own API tells them."""
    service = await open_service(where)
    found = [await service.get(job_id) for job_id in ids]
    await service.close()
    return [(job.id, job.state, job.attempts) for job in found]


@dataclass
class Workers:
    """The worker processes of one run, replaced as they are killed."""

    where: Site
    args: argparse.Namespace
    started: int = 0
    kills: int = 0
    live: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[int, Path] = field(default_factory=dict)  # each process's own, by pid

    def start(self, wait: bool = True) -> None:
        n = self.started
        self.started += 1
        env = {
            "TMPDIR": str(self.where.work / "tmp"),
            "CESAR_CACHE_DIR": str(self.where.work / "cache"),
            noop_worker.LOG: str(self.where.work / "events.log"),
            noop_worker.JOB_SECONDS: str(self.args.job_seconds),
            "CESAR_CONFIG": str(self.where.work / "cesar.toml"),
        }
        log = self.where.work / f"worker{n}.log"
        self.live.append(
            noop_worker.start(
                self.where.store,
                self.where.storage,
                log,
                "--transcriber",
                "noop",
                "--name",
                f"chaos{n}",
                "--concurrency",
                str(self.args.slots),
                "--lease",
                str(self.args.lease),
                env=env,
                wait=wait,
            )
        )
        self.logs[self.live[-1].pid] = log

    def kill_one(self, rng: random.Random) -> None:
        victim = self.live.pop(rng.randrange(len(self.live)))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.kills += 1

    def stop(self) -> list[int]:
        """SIGTERM each worker once it has started (before, it would die of the signal,
        which says nothing of how it stops) and return the exit codes."""
        deadline = time.monotonic() + 60
        for process in self.live:
            log = self.logs[process.pid]
            while process.poll() is None and time.monotonic() < deadline:
                if noop_worker.READY in log.read_bytes():
                    break
                time.sleep(0.05)
        for process in self.live:
            process.send_signal(signal.SIGTERM)
        return [process.wait(timeout=120) for process in self.live]


def one_run(kind: str, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    with site(kind, args.postgres) as where:
        (where.work / "cesar.toml").write_text("")  # no user config file changes the run
        asyncio.run(submit(where, 0, args.max_attempts))  # the tables, before workers race
        workers = Workers(where, args)
        try:
            for _ in range(args.workers):
                workers.start()
            # The jobs arrive once every worker is ready, submitted from another thread
            # while the kills begin; a killed worker's successor is not waited for (it may
            # be killed while it starts, too).
            started = time.monotonic()
            ids: list[str] = []
            failed: list[BaseException] = []

            def submit_all() -> None:
                try:
                    ids.extend(asyncio.run(submit(where, args.jobs, args.max_attempts)))
                except BaseException as exc:
                    failed.append(exc)

            submitter = threading.Thread(target=submit_all)
            submitter.start()
            low, high = args.kill_every
            next_kill = time.monotonic() + rng.uniform(low, high)
            while submitter.is_alive() or sum(where.states()[s] for s in TERMINAL) < len(ids):
                if time.monotonic() - started > args.timeout:
                    break
                if time.monotonic() >= next_kill:
                    workers.kill_one(rng)
                    workers.start(wait=False)
                    next_kill = time.monotonic() + rng.uniform(low, high)
                time.sleep(0.05)
            took = time.monotonic() - started
            submitter.join()
            if failed:
                raise failed[0]
        finally:
            exits = workers.stop()
        jobs = asyncio.run(final_states(where, ids))
        log_path = where.work / "events.log"
        lines = log_path.read_text().splitlines() if log_path.exists() else []
        completed_events = Counter(
            line.split()[1] for line in lines if line.startswith("completed ")
        )
        completed = {job_id for job_id, state, _ in jobs if state is JobState.COMPLETED}
        result = {
            "store": kind,
            "submitted": len(ids),
            "completed": len(completed),
            "lost": len(ids) - len(completed),
            "failed": sum(1 for _, state, _ in jobs if state is JobState.ERROR),
            "completed twice": sum(1 for n in completed_events.values() if n > 1),
            "announced but not completed": sum(
                1 for job_id in completed_events if job_id not in completed
            ),
            "completed, announcement lost with its worker": len(completed - set(completed_events)),
            "workers killed": workers.kills,
            "jobs run again after a kill": sum(1 for _, _, attempts in jobs if attempts > 1),
            "transcriptions started": sum(1 for line in lines if line == "run"),
            "errors the workers logged": sum(
                line.startswith("ERROR ")
                for log in where.work.glob("worker*.log")
                for line in log.read_text(errors="replace").splitlines()
            ),
            "seconds": round(took, 2),
            "worker exit codes at the end": exits,
            **where.leftovers(),
            "directory": str(where.work),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument(
        "--stores", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="postgresql://127.0.0.1:5432/test",
        help="a database on the server where each run creates its own (default: %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=3, help="worker processes at a time")
    parser.add_argument("--slots", type=int, default=2, help="slots per worker")
    parser.add_argument("--job-seconds", type=float, default=0.1, help="each job's sleep")
    parser.add_argument(
        "--kill-every",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=[0.5, 1.5],
        help="seconds between kills, drawn at random in this range",
    )
    parser.add_argument("--lease", type=float, default=2.0, help="seconds (at least 1)")
    parser.add_argument("--max-attempts", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per store")
    parser.add_argument("--seed", type=int, help="for the random kills (default: random)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/chaos.json"))
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    print(f"seed {seed}", flush=True)
    results = []
    for kind in args.stores:
        result = one_run(kind, args, rng)
        results.append(result)
        print(f"\n{kind} (worker logs in {result['directory']}):")
        for name, value in result.items():
            if name not in ("store", "directory"):
                print(f"  {name:48} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seed": seed, "results": results}, indent=2))
    failures = [
        r["store"]
        for r in results
        if r["lost"] or r["completed twice"] or r["announced but not completed"]
    ]
    if failures:
        print(f"\nFAILED on {', '.join(failures)}: jobs lost or completed twice", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
