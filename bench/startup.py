"""Start-up time of the commands that never transcribe: ``cesar jobs list`` and an API-only
``cesar serve`` (no worker), for the code here against a baseline revision, in one run.

    python bench/startup.py                       # against df921fc, 7 alternating rounds
    python bench/startup.py --baseline HEAD~5 --rounds 11

The baseline is checked out with ``git worktree`` into a temporary directory and run by the
same interpreter with its ``src`` first on ``PYTHONPATH``, so both sides share every
installed dependency and differ only in Cesar's own code. Rounds alternate the two sides
(this machine is noisy); the figures are the minimum and median seconds of each, and the
ratio of the medians. ``serve`` is timed from the process start until ``/health`` answers.

Besides the times, it prints which heavy modules each side imports for ``jobs list``
(faster-whisper, CTranslate2, PyAV, NumPy, pluggy).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import baseline_checkout, free_port, side_environment, summary

HEAVY = ("faster_whisper", "ctranslate2", "av", "numpy", "pluggy")


def jobs_list(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cesar_cli", "jobs", "list"],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def api_only_serve(env: dict[str, str]) -> float:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "cesar_cli", "serve", "--no-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = started + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"cesar serve exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError("cesar serve did not answer within 60 s")
            time.sleep(0.01)
    finally:
        process.terminate()
        process.wait(timeout=30)


def heavy_imports(env: dict[str, str]) -> list[str]:
    """Which of :data:`HEAVY` ``cesar jobs list`` imports (run in-process by click)."""
    code = (
        "import sys\n"
        "from cesar_cli.main import cli\n"
        "try:\n"
        "    cli(['jobs', 'list'], standalone_mode=False)\n"
        "finally:\n"
        f"    print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    lines = result.stdout.strip().splitlines()
    return [name for name in (lines[-1] if lines else "").split(",") if name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="df921fc", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per side")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="cesar-startup-") as tmp,
        baseline_checkout(args.baseline) as tree,
    ):
        root = Path(tmp)
        sides = {
            "baseline": side_environment(tree / "src", root / "home-baseline"),
            "current": side_environment(None, root / "home-current"),
        }
        measures: dict[str, Callable[[dict[str, str]], float]] = {
            "cesar jobs list": jobs_list,
            "cesar serve --no-worker (to /health)": api_only_serve,
        }
        for env in sides.values():  # create the stores, warm the file cache
            jobs_list(env)
        samples = {(m, s): [] for m in measures for s in sides}  # type: ignore[var-annotated]
        for _ in range(args.rounds):
            for measure, run in measures.items():
                for side, env in sides.items():
                    samples[measure, side].append(run(env))
        print(f"baseline {args.baseline}, {args.rounds} alternating rounds, seconds")
        for measure in measures:
            base = summary(samples[measure, "baseline"])
            now = summary(samples[measure, "current"])
            print(
                f"{measure:40} baseline min {base['min']:.3f} median {base['median']:.3f}"
                f" | current min {now['min']:.3f} median {now['median']:.3f}"
                f" | ratio {now['median'] / base['median']:.2f}"
            )
        for side, env in sides.items():
            print(f"{side:8} jobs list imports: {', '.join(heavy_imports(env)) or 'none'}")


if __name__ == "__main__":
    main()
