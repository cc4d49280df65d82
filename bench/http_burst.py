"""The front door under a burst of short uploads: how many a worker-less ``cesar serve``
accepts per second, and how long GET /jobs/{id} takes meanwhile.

    python bench/http_burst.py --repeats 5 [--uploads 200 --audio tests/data/speech_en.opus]
    python bench/http_burst.py --client wrk --seconds 8 --repeats 5   (wrk's C client)
    python bench/http_api.py --burst 200 --repeats 5     (the same, as a mode of http_api)

One ``cesar serve --no-worker`` (SQLite, its defaults) per repeat, on a fresh data directory,
so that every burst meets the same empty queue. After one upload that warms the server
(its first request imports what requests need), ``--uploads`` POST /transcribe of the same
short clip start at once, each on its own connection (httpx, asyncio). Meanwhile a second
process polls GET /jobs/{id} of the warm-up job every ``--poll-ms`` on one keep-alive
connection, so that its latencies are not those of this process's busy event loop.

The client must cost less than the server, or it is the client that is measured: 200
connections in one httpx process took more CPU per upload than the server did. So by default
(``--client raw``) each upload is written as prepared bytes on its own plain asyncio
connection (``Connection: close``), all at once; ``--client httpx`` is the httpx client used
before. ``--client wrk`` measures the sustained rate instead, with wrk (Debian's ``wrk``, in
C): ``--uploads`` connections, each POSTing the clip again as soon as its last one was
answered, for ``--seconds``; each upload on a new connection, or, with ``--reuse``, on kept
ones. Any answer other than 202, or a socket error, fails the run.

- accepted per second: uploads / seconds from the first POST sent to the last 202 received
  (with wrk: 202s / its run time);
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
import shutil
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


#: wrk's script: the clip as a multipart upload, and a JSON summary of the run at the end.
WRK_SCRIPT = """
local f = assert(io.open(os.getenv("CESAR_BENCH_BODY"), "rb"))
wrk.body = f:read("*all")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("CESAR_BENCH_TYPE")
if os.getenv("CESAR_BENCH_CLOSE") == "1" then wrk.headers["Connection"] = "close" end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "non_2xx": %d, "socket_errors": %d, '
    .. '"p50_s": %f, "p99_s": %f}\\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1e6, latency:percentile(99) / 1e6))
end
"""


def wrk_burst(
    url: str, audio: Path, connections: int, seconds: int, reuse: bool, work: Path
) -> tuple[float, float, dict[str, float]]:
    """``connections`` wrk connections uploading ``audio`` for ``seconds``; returns (first
    sent, last answered, wrk's summary), after checking that every upload got a 2xx."""
    content_type, data = multipart(audio)
    body = work / "upload.bin"
    body.write_bytes(data)
    script = work / "upload.lua"
    script.write_text(WRK_SCRIPT)
    env = {
        **os.environ,
        "CESAR_BENCH_BODY": str(body),
        "CESAR_BENCH_TYPE": content_type,
        "CESAR_BENCH_CLOSE": "0" if reuse else "1",
    }
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script)]
    started = time.perf_counter()
    ran = subprocess.run([*command, f"{url}/transcribe"], env=env, capture_output=True, text=True)
    if ran.returncode:
        raise SystemExit(f"wrk failed ({ran.returncode}): {ran.stderr or ran.stdout}")
    finished = time.perf_counter()
    result: dict[str, float] = json.loads(ran.stdout.strip().splitlines()[-1])
    if result["non_2xx"] or result["socket_errors"]:
        raise SystemExit(f"wrk saw failed uploads: {result}\n{ran.stdout}")
    return started, finished, result


def multipart(audio: Path) -> tuple[str, bytes]:
    """The clip as a multipart/form-data body, and its content type."""
    boundary = "cesarbench7f3a"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{audio.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )
    body = head.encode() + audio.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


async def raw_burst(url: str, audio: Path, uploads: int) -> tuple[float, float, list[float]]:
    """Like :func:`burst`, with the request written as bytes on plain asyncio streams: a
    client that costs far less CPU per upload than httpx, so the server is what is measured."""
    host, port = url.removeprefix("http://").split(":")
    content_type, body = multipart(audio)
    request = (
        f"POST /transcribe HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}"
        f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body

    async def one() -> float:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        answer = await reader.read()  # the server closes after its answer
        writer.close()
        status = answer.split(b" ", 2)[1]
        assert status == b"202", answer[:500]
        return time.perf_counter() - started

    started = time.perf_counter()
    took = await asyncio.gather(*(one() for _ in range(uploads)))
    return started, time.perf_counter(), list(took)


def one_repeat(
    root: Path,
    audio: Path,
    uploads: int,
    every: float,
    client: str = "raw",
    seconds: int = 8,
    reuse: bool = False,
) -> dict[str, float]:
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
        if client == "wrk":
            first, last, summary = wrk_burst(url, audio, uploads, seconds, reuse, root)
            accepted = int(summary["requests"])
            last = first + summary["seconds"]  # wrk's own clock: its start-up excluded
            submit_p50, submit_p99 = summary["p50_s"], summary["p99_s"]
        else:
            sender = raw_burst(url, audio, uploads) if client == "raw" else None
            first, last, took = asyncio.run(sender or burst(url, data, audio.name, uploads))
            accepted = uploads
            submit_p50, submit_p99 = (float(v) for v in np.percentile(took, [50, 99]))
        cpu = cpu_seconds(process.pid) - cpu
        time.sleep(0.2)
        stop.set()
        polls = receive.recv()
        polling.join()
    finally:
        process.terminate()
        process.wait(timeout=60)
    during = [ms for at, ms in polls if first <= at <= last] or [0.0]
    poll_p50, poll_p99 = np.percentile(during, [50, 99])
    return {
        "seconds": last - first,
        "accepted": accepted,
        "accepted_per_s": accepted / (last - first),
        "server_cpu_ms_per_upload": cpu * 1000 / accepted,
        "submit_p50_s": float(submit_p50),
        "submit_p99_s": float(submit_p99),
        "poll_p50_ms": float(poll_p50),
        "poll_p99_ms": float(poll_p99),
        "poll_max_ms": max(during),
        "polls": len(during),
    }


def run(
    repeats: int,
    uploads: int,
    audio: Path,
    poll_ms: float,
    out: Path,
    client: str = "raw",
    seconds: int = 8,
    reuse: bool = False,
) -> dict[str, object]:
    """Run the repeats, print each and the min / median, and write the results to ``out``."""
    if client == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("--client wrk needs wrk on PATH: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="cesar-bench-burst-"))
    runs = []
    for repeat in range(repeats):
        row = one_repeat(
            work / f"r{repeat}", audio, uploads, poll_ms / 1000, client, seconds, reuse
        )
        runs.append(row)
        print(
            f"repeat {repeat + 1}: {row['accepted_per_s']:6.1f} accepted/s "
            f"({row['accepted']:.0f} in {row['seconds']:.2f} s; server CPU "
            f"{row['server_cpu_ms_per_upload']:.1f} ms per upload), "
            f"submit p50 {row['submit_p50_s'] * 1000:.0f} ms "
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
        "client": client,
        "connections_reused": reuse if client == "wrk" else False,
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
    parser.add_argument(
        "--client", choices=("raw", "httpx", "wrk"), default="raw", help="who sends the uploads"
    )
    parser.add_argument("--seconds", type=int, default=8, help="wrk: how long to upload")
    parser.add_argument(
        "--reuse", action="store_true", help="wrk: keep connections open between uploads"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poll-ms", type=float, default=10.0, help="GET /jobs/{id} interval")
    parser.add_argument("--out", type=Path, default=Path("bench/results/http_burst.json"))
    args = parser.parse_args()
    run(
        args.repeats,
        args.uploads,
        args.audio,
        args.poll_ms,
        args.out,
        args.client,
        args.seconds,
        args.reuse,
    )


if __name__ == "__main__":
    main()
