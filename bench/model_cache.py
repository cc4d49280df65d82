"""Memory of the model cache: resident memory after jobs that each pick another thread count.

    python bench/model_cache.py                  # cpu_threads 1..6, each cache setting
    python bench/model_cache.py --threads 4

Each distinct (model, compute type, cpu_threads) is a copy of the weights in memory. Every
configuration runs in a fresh process: one job of tests/data/speech_en.wav with each
cpu_threads from 1 to --threads, in order, on tiny.en; it reports the resident memory after
the first job and after the last, and how many models are still loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import ROOT

#: (max_loaded_models, model_ttl_seconds) pairs; 100 models stands for "no bound".
CONFIGURATIONS = [(100, -1.0), (2, -1.0), (1, -1.0), (2, 0.0)]

_ONE_RUN = """
import gc, json, os, sys
from cesar_core import Settings, TranscribeOptions, WhisperTranscriber
max_models, ttl, threads = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
audio = sys.argv[4]
settings = Settings.load(max_loaded_models=max_models, model_ttl_seconds=ttl)
transcriber = WhisperTranscriber(settings)
rss = []
for n in range(1, threads + 1):
    transcriber.transcribe(audio, TranscribeOptions(model="tiny.en", cpu_threads=n))
    gc.collect()
    with open("/proc/self/statm") as statm:  # resident pages, second field (Linux)
        rss.append(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20)
print(json.dumps({"first": rss[0], "last": rss[-1], "loaded": len(transcriber.models)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=6, help="jobs, with cpu_threads 1..N")
    args = parser.parse_args()
    audio = str(ROOT / "tests" / "data" / "speech_en.wav")
    print("| max_loaded_models | model_ttl_seconds | after 1 job | after the last | loaded |")
    print("| --- | --- | --- | --- | --- |")
    for max_models, ttl in CONFIGURATIONS:
        out = subprocess.run(
            [sys.executable, "-c", _ONE_RUN, str(max_models), str(ttl), str(args.threads), audio],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found = json.loads(out.strip().splitlines()[-1])
        bound = "none" if max_models >= 100 else str(max_models)
        print(
            f"| {bound} | {ttl:g} | {found['first']:.0f} MiB | {found['last']:.0f} MiB "
            f"| {found['loaded']} |"
        )


if __name__ == "__main__":
    main()
