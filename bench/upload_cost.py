"""What one upload costs the server: CPU seconds of a worker-less ``cesar serve`` per
``POST /transcribe`` of a short clip, for the code here against a baseline revision, in one
run.

    python bench/upload_cost.py --baseline HEAD~1             # 5 alternating rounds
    python bench/upload_cost.py --baseline 0485a2d --rounds 8 --uploads 2000

The uploads go one after another on one kept connection, so that nothing but the server's
own work is measured: no connection set-up, no other request waiting, no contention for the
interpreter's lock between the event loop and the probe's thread (all of which a burst adds,
see ``bench/http_burst.py``). After 100 uploads that warm the server up, ``--uploads`` more
are sent and the server's user + system CPU time over them (``/proc``, all its threads) is
divided by their number.

The baseline is checked out with ``git worktree`` into a temporary directory and run by the
same interpreter with its ``src`` first on ``PYTHONPATH``, so both sides share every
installed dependency and differ only in Cesar's own code. Rounds alternate the two sides
(this machine is noisy); the figures are the minimum and median milliseconds of each, and
the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import SERVE, baseline_checkout, free_port, side_environment, wait_healthy
from bench.http_burst import CLIP, cpu_seconds, multipart

WARM_UPS = 100


def upload_request(audio: Path, port: int) -> bytes:
    """The upload as bytes, ready to be written again and again on a kept connection."""
    content_type, body = multipart(audio)
    head = (
        f"POST /transcribe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}"
        f"\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def send(connection: socket.socket, request: bytes) -> None:
    """Write ``request`` and read its answer, which must be a 202."""
    connection.sendall(request)
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, body = received.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    if " 202 " not in lines[0]:
        raise SystemExit(f"the upload was answered {lines[0]!r}: {body[:300]!r}")
    length = next(
        int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length")
    )
    while len(body) < length:
        body += connection.recv(65536)


def cost(env: dict[str, str], audio: Path, uploads: int) -> float:
    """Milliseconds of the server's CPU per upload, over ``uploads`` after the warm-ups."""
    port = free_port()
    process = subprocess.Popen(
        [*SERVE, "--no-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}", lambda: "see its stderr")
        request = upload_request(audio, port)
        with socket.create_connection(("127.0.0.1", port)) as connection:
            for _ in range(WARM_UPS):
                send(connection, request)
            before = cpu_seconds(process.pid)
            for _ in range(uploads):
                send(connection, request)
            return (cpu_seconds(process.pid) - before) * 1000 / uploads
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default="HEAD~1", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--uploads", type=int, default=1000, help="measured uploads a round")
    parser.add_argument("--audio", type=Path, default=CLIP, help="the clip uploaded")
    parser.add_argument("--out", type=Path, default=Path("bench/results/upload_cost.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cesar-bench-upload-"))
    sides: dict[str, list[float]] = {"baseline": [], "here": []}
    with baseline_checkout(args.baseline) as tree:
        for round_ in range(args.rounds):
            for side, src in (("baseline", tree / "src"), ("here", None)):
                env = side_environment(src, work / f"{side}-{round_}")
                ms = cost(env, args.audio, args.uploads)
                sides[side].append(ms)
                print(f"round {round_ + 1} {side:8} {ms:.3f} ms of server CPU per upload")
    stats = {
        side: {"min": min(values), "median": statistics.median(values), "runs": values}
        for side, values in sides.items()
    }
    ratio = stats["here"]["median"] / stats["baseline"]["median"]
    for side, row in stats.items():
        print(f"{side:8} min {row['min']:.3f} ms  median {row['median']:.3f} ms")
    print(f"here / baseline (medians): x{ratio:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"baseline": args.baseline, "uploads": args.uploads, "stats": stats, "ratio": ratio},
            indent=2,
        )
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
