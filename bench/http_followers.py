"""Live events with many followers: what following a job costs the job, and GET /jobs/{id}
meanwhile.

    python bench/http_followers.py --followers 50 --minutes 3 --repeats 5
    python bench/http_api.py --followers 50 --minutes 3 --repeats 5   (the same)

One ``cesar serve`` with its embedded worker (SQLite, tiny.en, int8, 1 thread), warmed up by
a short job; in each repeat, alternately, a job of the ``--minutes`` WAV runs with nobody
following it, then another with ``--followers`` clients reading its ``GET /jobs/{id}/events``
to the end, while GET /jobs/{id} is polled every ``--poll-ms`` on a connection of its own in
both. The job's time is the server's (``started_at`` to ``completed_at``); every follower
must receive every segment.

The followers run on the server's machine, so whatever CPU they take is taken from the
worker too: on 2 cores, 50 httpx clients in 50 threads cost about a fifth of a core while
segments arrive, which the job's time shows although the server does no more work. So by
default (``--client async``) the followers are one asyncio process with one httpx client and
httpx-sse (the same SSE parser), which costs a fraction of that; ``--client threads`` is the
thread per follower used before. Followers in browsers on other machines cost the server's
machine nothing at all.

Reported per repeat: the job's time alone and followed, the server's CPU time (all its
threads, from /proc) and the followers' own, and the poll latencies while the job was
processing (p50, p99, max).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

from bench.common import long_audio, summary
from bench.http_api import (
    TERMINAL,
    WARM_UP,
    cesar_serve,
    cpu_seconds,
    http_run,
    percentiles,
    poll_latencies,
    seconds_between,
    submit,
)

CLIENTS = ("async", "threads")


def follow(url: str, job_id: str, segments: list[int], ready: threading.Barrier) -> None:
    """Read the job's events to the end; append how many segments came (one thread)."""
    from httpx_sse import connect_sse

    with (
        httpx.Client(base_url=url, timeout=600) as client,
        connect_sse(client, "GET", f"/jobs/{job_id}/events") as source,
    ):
        ready.wait()
        count = 0
        for event in source.iter_sse():
            count += event.event == "segment"
            if event.event in TERMINAL:
                break
        segments.append(count)


async def _follow_all(url: str, job_id: str, followers: int, pipe: Connection) -> list[int]:
    from httpx_sse import aconnect_sse

    connected = 0
    everyone = asyncio.Event()

    async def one(client: httpx.AsyncClient) -> int:
        nonlocal connected
        async with aconnect_sse(client, "GET", f"/jobs/{job_id}/events") as source:
            connected += 1
            if connected == followers:
                everyone.set()
            count = 0
            async for event in source.aiter_sse():
                count += event.event == "segment"
                if event.event in TERMINAL:
                    break
            return count

    limits = httpx.Limits(max_connections=followers + 1)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        tasks = [asyncio.create_task(one(client)) for _ in range(followers)]
        await asyncio.wait_for(everyone.wait(), 60)
        pipe.send("ready")
        return list(await asyncio.gather(*tasks))


def async_followers(url: str, job_id: str, followers: int, pipe: Connection) -> None:
    """A process of its own: ``followers`` streams on one event loop; sends "ready" once all
    are connected, then each one's segment count and the process's CPU seconds."""
    counts = asyncio.run(_follow_all(url, job_id, followers, pipe))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    pipe.send((counts, usage.ru_utime + usage.ru_stime))


def followed_run(
    client: httpx.Client, audio: Path, followers: int, every: float, kind: str
) -> tuple[dict[str, object], list[float], list[int], float]:
    """A job of ``audio`` with ``followers`` clients on its events, polled meanwhile: the
    job, the poll latencies (ms, while it was processing), each follower's segments and the
    followers' CPU seconds."""
    job_id = submit(client, audio)
    if followers and kind == "async":
        parent, child = multiprocessing.get_context("spawn").Pipe()
        process = multiprocessing.get_context("spawn").Process(
            target=async_followers, args=(str(client.base_url), job_id, followers, child)
        )
        process.start()
        if not parent.poll(120):
            raise RuntimeError("the followers did not connect within 120 s")
        assert parent.recv() == "ready"
        polls, _ = poll_latencies(client, job_id, every)
        segments, used = parent.recv()
        process.join(60)
        return client.get(f"/jobs/{job_id}").json(), polls, segments, used
    own = cpu_seconds(os.getpid())
    segments = []
    ready = threading.Barrier(followers + 1)
    threads = [
        threading.Thread(target=follow, args=(str(client.base_url), job_id, segments, ready))
        for _ in range(followers)
    ]
    for thread in threads:
        thread.start()
    ready.wait(timeout=60)
    polls, _ = poll_latencies(client, job_id, every)
    for thread in threads:
        thread.join(timeout=600)
    # The thread followers share this process with the poller: their CPU includes its.
    used = cpu_seconds(os.getpid()) - own if followers else 0.0
    return client.get(f"/jobs/{job_id}").json(), polls, segments, used


def followers_main(args: argparse.Namespace, work: Path, audio: Path, log: Path) -> None:
    every = args.poll_ms / 1000
    exits: list[int] = []
    running: dict[str, list[float]] = {"alone": [], "followed": []}
    polls_ms: dict[str, list[float]] = {"alone": [], "followed": []}
    cpu: dict[str, list[float]] = {"alone": [], "followed": [], "clients": []}
    with (
        cesar_serve(work / "served", log, exits) as server,
        httpx.Client(base_url=server.url, timeout=600) as client,
    ):
        http_run(client, WARM_UP, every)  # loads the server's model
        for repeat in range(args.repeats):
            used = cpu_seconds(server.process.pid)
            alone, polls, _, _ = followed_run(client, audio, 0, every, args.client)
            cpu["alone"].append(cpu_seconds(server.process.pid) - used)
            running["alone"].append(seconds_between(alone, "started_at", "completed_at"))
            polls_ms["alone"] += polls
            used = cpu_seconds(server.process.pid)
            job, polls, segments, clients = followed_run(
                client, audio, args.followers, every, args.client
            )
            cpu["followed"].append(cpu_seconds(server.process.pid) - used)
            cpu["clients"].append(clients)
            assert job["status"] == "completed", job
            assert segments == [len(job["segments"])] * args.followers, segments  # type: ignore[arg-type]
            running["followed"].append(seconds_between(job, "started_at", "completed_at"))
            polls_ms["followed"] += polls
            print(
                f"repeat {repeat + 1}: alone {running['alone'][-1]:.2f} s, with "
                f"{args.followers} followers {running['followed'][-1]:.2f} s; server CPU "
                f"{cpu['alone'][-1]:.2f} s and {cpu['followed'][-1]:.2f} s (followers "
                f"{clients:.2f} s); {len(polls)} polls",
                flush=True,
            )
    report(args, running, polls_ms, cpu, exits, log)


def report(
    args: argparse.Namespace,
    running: dict[str, list[float]],
    polls_ms: dict[str, list[float]],
    cpu: dict[str, list[float]],
    exits: list[int],
    log: Path,
) -> None:
    alone, followed = summary(running["alone"]), summary(running["followed"])
    ratio = followed["median"] / alone["median"]
    latency = percentiles(polls_ms["followed"])
    latency_alone = percentiles(polls_ms["alone"])
    results: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "client": args.client,
        "minutes": args.minutes,
        "repeats": args.repeats,
        "followers": args.followers,
        "poll_ms": args.poll_ms,
        "job_running_s": {
            "alone": {**alone, "runs": running["alone"]},
            "followed": {**followed, "runs": running["followed"]},
            "followed_over_alone_median": ratio,
        },
        # The server's CPU time per job, with and without followers, and the followers' own:
        # on a machine of few cores the clients take CPU the worker would have had.
        "cpu_s": {**{name: summary(runs) for name, runs in cpu.items()}, "runs": cpu},
        "latency_ms_jobs_while_followed": latency,
        "latency_ms_jobs_while_not_followed": latency_alone,
        "server_exit_codes": exits,
        "targets_met": {"p99_le_20ms": latency["p99"] <= 20, "time_within_3pct": ratio <= 1.03},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    for name, row in ((f"{args.followers} followers", latency), ("no follower", latency_alone)):
        print(
            f"GET /jobs/{{id}} with {name}: p50 {row['p50']:.2f} ms  "
            f"p99 {row['p99']:.2f} ms  max {row['max']:.2f} ms  n {row['n']}"
        )
    print(
        f"job running median: alone {alone['median']:.2f} s, followed {followed['median']:.2f}"
        f" s (x{ratio:.3f}); server exits {exits} (log: {log}); written to {args.out}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--followers", type=int, default=50, help="clients following the job")
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="async",
        help="followers as one asyncio process (default) or a thread each",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the speech")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poll-ms", type=float, default=50.0, help="GET /jobs/{id} interval")
    parser.add_argument("--out", type=Path, default=Path("bench/results/http_followers.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cesar-bench-followers-"))
    followers_main(args, work, long_audio(args.minutes, work), work / "serve.log")


if __name__ == "__main__":
    main()
