"""How long should the windows of long audio be? Accuracy and time against one raw call.

    python bench/windows.py --minutes 10 --repeats 2 --windows 60 120 300

Transcribes the same long speech with raw faster-whisper (all audio in one call) and with
cesar_core at each window length, alternating within each repeat; reports word error rate
against the known text and min / median seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench import transcribe as bench
from bench.common import long_audio, long_reference, wer
from cesar_core.transcription import windows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--windows", type=float, nargs="+", default=[60.0, 120.0, 300.0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/windows.json"))
    args = parser.parse_args()
    audio = long_audio(args.minutes, Path(tempfile.mkdtemp(prefix="cesar-bench-")))
    reference = long_reference(args.minutes)
    model = bench.raw_model()
    contenders: dict[str, object] = {"raw": None, **{f"{w:g}s": w for w in args.windows}}
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    errors: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, window in contenders.items():
            started = time.perf_counter()
            if window is None:
                text = bench.raw_run(model, audio)
            else:
                windows.WINDOW_S = float(window)  # type: ignore[arg-type]
                text = bench.library_run(audio)
            seconds[name].append(time.perf_counter() - started)
            errors[name] = round(wer(reference, text), 3)
    results = {
        name: {
            "wer": errors[name],
            "min_s": min(seconds[name]),
            "median_s": statistics.median(seconds[name]),
            "median_over_raw": statistics.median(seconds[name]) / statistics.median(seconds["raw"]),
        }
        for name in contenders
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"minutes": args.minutes, "results": results}, indent=2))
    for name, row in results.items():
        print(
            f"{name:>6}  WER {row['wer']:.3f}  min {row['min_s']:6.2f} s  "
            f"median {row['median_s']:6.2f} s  x{row['median_over_raw']:.3f}"
        )


if __name__ == "__main__":
    main()
