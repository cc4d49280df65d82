"""The front door under a burst of short uploads: how many a worker-less ``cesar serve``
accepts per second, and how long GET /jobs/{id} takes meanwhile.

    python bench/http_burst.py --repeats 5 [--uploads 200 --audio tests/data/speech_en.opus]
    python bench/http_api.py --mode burst --repeats 5     (the same, as a mode of http_api)

One ``cesar serve --no-worker`` (SQLite, its defaults) per repeat, on a fresh data directory,
so that every burst meets the same empty queue. After one upload that warms the server
(its first request imports what requests need), ``--uploads`` POST /transcribe of the same
short clip start at once, each on its own connection (httpx, asyncio). Meanwhile a second
process polls GET /jobs/{id} of the warm-up job every ``--poll-ms`` on one keep-alive
connection, so that its latencies are not those of this process's busy event loop.

- accepted per second: uploads / seconds from the first POST sent to the last 202 received;
- server CPU per upload: the server's user + system CPU time over the burst / uploads, a
  figure that holds on a machine that other work shares (where seconds do not);
- submit latency: each POST's seconds, p50 and p99;
- poll latency: GET /jobs/{id} answered while the burst ran, p50, p99 and max.

Each figure is reported per repeat, with min and median over the repeats. To compare two
versions of the code, run this alternately with ``PYTHONPATH`` pointing at each one's
``src`` (the server inherits the environment).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx
import numpy as np

from bench.common import DATA, SERVE, free_port, wait_healthy

CLIP = DATA / "speech_en.opus"  # 41 KB, 8 s of speech


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def poller(url: str, job_id: str, every: float, stop: Event, out: Connection) -> None:
    """GET /jobs/{id} every ``every`` seconds until ``stop``; sends (start, ms) pairs."""
    samples: list[tuple[float, float]] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        due = time.perf_counter()
        while not stop.is_set():
            started = time.perf_counter()
            answer = client.get(f"/jobs/{job_id}")
            samples.append((started, (time.perf_counter() - started) * 1000))
            assert answer.status_code == 200, answer.text
            due += every
            time.sleep(max(0.0, due - time.perf_counter()))
    out.send(samples)


async def burst(
    url: str, audio: bytes, name: str, uploads: int
) -> tuple[float, float, list[float]]:
    """``uploads`` concurrent POSTs; returns (first sent, last answered, seconds of each)."""
    limits = httpx.Limits(max_connections=uploads, max_keepalive_connections=uploads)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one() -> float:
            started = time.perf_counter()
            answer = await client.post("/transcribe", files={"file": (name, audio)})
            assert answer.status_code == 202, answer.text
            return time.perf_counter() - started

        started = time.perf_counter()
        took = await asyncio.gather(*(one() for _ in range(uploads)))
        return started, time.perf_counter(), list(took)


def one_repeat(root: Path, audio: Path, uploads: int, every: float) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    root.mkdir(parents=True)
    log = root / "serve.log"
    with log.open("ab") as err:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port), "--no-worker"],
            env={**os.environ, "CESAR_DATA_DIR": str(root)},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_healthy(process, url, lambda: f"see {log}")
        data = audio.read_bytes()
        warm = httpx.post(f"{url}/transcribe", files={"file": (audio.name, data)}, timeout=60)
        assert warm.status_code == 202, warm.text
        stop = multiprocessing.Event()
        receive, send = multiprocessing.Pipe(duplex=False)
        polling = multiprocessing.Process(
            target=poller, args=(url, warm.json()["id"], every, stop, send)
        )
        polling.start()
        time.sleep(0.5)
        cpu = cpu_seconds(process.pid)
        first, last, took = asyncio.run(burst(url, data, audio.name, uploads))
        cpu = cpu_seconds(process.pid) - cpu
        time.sleep(0.2)
        stop.set()
        polls = receive.recv()
        polling.join()
    finally:
        process.terminate()
        process.wait(timeout=60)
    during = [ms for at, ms in polls if first <= at <= last] or [0.0]
    submit_p50, submit_p99 = np.percentile(took, [50, 99])
    poll_p50, poll_p99 = np.percentile(during, [50, 99])
    return {
        "seconds": last - first,
        "accepted_per_s": uploads / (last - first),
        "server_cpu_ms_per_upload": cpu * 1000 / uploads,
        "submit_p50_s": float(submit_p50),
        "submit_p99_s": float(submit_p99),
        "poll_p50_ms": float(poll_p50),
        "poll_p99_ms": float(poll_p99),
        "poll_max_ms": max(during),
        "polls": len(during),
    }


def run(repeats: int, uploads: int, audio: Path, poll_ms: float, out: Path) -> dict[str, object]:
    """Run the repeats, print each and the min / median, and write the results to ``out``."""
    work = Path(tempfile.mkdtemp(prefix="cesar-bench-burst-"))
    runs = []
    for repeat in range(repeats):
        row = one_repeat(work / f"r{repeat}", audio, uploads, poll_ms / 1000)
        runs.append(row)
        print(
            f"repeat {repeat + 1}: {row['accepted_per_s']:6.1f} accepted/s "
            f"({row['seconds']:.2f} s; server CPU {row['server_cpu_ms_per_upload']:.1f} ms "
            f"per upload), submit p50 {row['submit_p50_s'] * 1000:.0f} ms "
            f"p99 {row['submit_p99_s'] * 1000:.0f} ms; GET /jobs/{{id}} p50 "
            f"{row['poll_p50_ms']:.1f} ms p99 {row['poll_p99_ms']:.1f} ms "
            f"max {row['poll_max_ms']:.1f} ms (n {row['polls']:.0f})",
            flush=True,
        )
    stats = {
        key: {
            "min": min(row[key] for row in runs),
            "median": statistics.median(row[key] for row in runs),
        }
        for key in runs[0]
    }
    results: dict[str, object] = {
        "cpu_count": os.cpu_count(),
        "uploads": uploads,
        "audio": audio.name,
        "audio_bytes": audio.stat().st_size,
        "poll_ms": poll_ms,
        "runs": runs,
        "stats": stats,
        "targets_met": {
            "accepted_ge_500_per_s": stats["accepted_per_s"]["median"] >= 500,
            "poll_p99_lt_50ms": stats["poll_p99_ms"]["median"] < 50,
        },
    }
    for key, row in stats.items():
        print(f"{key:15} min {row['min']:9.3f}  median {row['median']:9.3f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The burst's options (shared with ``bench/http_api.py --mode burst``)."""
    parser.add_argument("--uploads", type=int, default=200, help="concurrent uploads")
    parser.add_argument("--audio", type=Path, default=CLIP, help="the clip uploaded")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poll-ms", type=float, default=10.0, help="GET /jobs/{id} interval")
    parser.add_argument("--out", type=Path, default=Path("bench/results/http_burst.json"))
    args = parser.parse_args()
    run(args.repeats, args.uploads, args.audio, args.poll_ms, args.out)


if __name__ == "__main__":
    main()
