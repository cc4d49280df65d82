"""Which model, compute type and thread count should be the defaults? Measured, not guessed.

    python bench/models.py --repeats 3

For each configuration: word error rate on the committed English fixtures and the time to
transcribe them on a warm model (min and median of the repeats; configurations alternate
within each repeat so that machine noise is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import DATA, REFERENCES, summary, timed, wer
from cesar_core import Settings, TranscribeOptions, WhisperTranscriber

CONFIGS = {
    "tiny.en int8 1 thread": TranscribeOptions(model="tiny.en", compute_type="int8", cpu_threads=1),
    "tiny.en int8 2 threads": TranscribeOptions(
        model="tiny.en", compute_type="int8", cpu_threads=2
    ),
    "tiny.en float32 1 thread": TranscribeOptions(
        model="tiny.en", compute_type="float32", cpu_threads=1
    ),
    "base int8 1 thread": TranscribeOptions(model="base", compute_type="int8", cpu_threads=1),
}
FILES = {"speech_en": DATA / "speech_en.wav", "long_en": DATA / "long_en.opus"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/models.json"))
    args = parser.parse_args()
    transcriber = WhisperTranscriber(Settings.load())
    errors: dict[str, dict[str, float]] = {}
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for name, options in CONFIGS.items():  # warm every model, record accuracy
        errors[name] = {
            key: round(wer(REFERENCES[key], transcriber.transcribe(path, options).text), 3)
            for key, path in FILES.items()
        }
    for _ in range(args.repeats):
        for name, options in CONFIGS.items():
            times[name].append(
                timed(lambda o=options: [transcriber.transcribe(p, o) for p in FILES.values()])
            )
    audio_s = sum(
        transcriber.transcribe(p, CONFIGS["tiny.en int8 1 thread"]).duration for p in FILES.values()
    )
    results = {
        name: {
            "wer": errors[name],
            "seconds": summary(times[name]),
            "x_realtime_median": audio_s / summary(times[name])["median"],
        }
        for name in CONFIGS
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"audio_seconds": audio_s, "cpu_count": os.cpu_count(), "results": results}, indent=2
        )
    )
    print(f"{'configuration':26} {'WER short':>9} {'WER long':>9} {'min s':>7} {'median s':>9}")
    for name, row in results.items():
        print(
            f"{name:26} {row['wer']['speech_en']:9.3f} {row['wer']['long_en']:9.3f} "
            f"{row['seconds']['min']:7.2f} {row['seconds']['median']:9.2f}"
        )


if __name__ == "__main__":
    main()
