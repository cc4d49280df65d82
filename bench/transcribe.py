"""Raw faster-whisper against cesar_core and the `cesar` command, on the same audio.

    python bench/transcribe.py                 # timing on 1 minute, RSS at 1 and 30 minutes
    python bench/transcribe.py --rss-minutes 1 10 30 --repeats 7

Timing: the same warm model settings (tiny.en, int8, 1 CPU thread, beam 5) for every
contender; raw and library runs alternate so drift on a noisy machine hits both alike. The
CLI figure includes process start and model load, which a library call does not pay.
RSS: each transcription runs in a fresh process that reports its peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import ROOT, long_audio, summary, timed

SETTINGS = {"compute_type": "int8", "cpu_threads": 1, "beam_size": 5}


def raw_model():
    from faster_whisper import WhisperModel

    from cesar_core import default_transcriber

    path = default_transcriber().resolver.resolve("tiny.en").path
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=1)


def raw_run(model, audio: Path) -> str:
    segments, _ = model.transcribe(str(audio), beam_size=5)
    return " ".join(s.text for s in segments)


def library_run(audio: Path) -> str:
    import cesar_core

    return cesar_core.transcribe(audio, **SETTINGS).text


def cli_run(audio: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cesar_cli",
            "transcribe",
            str(audio),
            "-q",
            "--compute-type",
            "int8",
            "--cpu-threads",
            "1",
        ],
        check=True,
        capture_output=True,
    )


def peak_rss(kind: str, audio: Path) -> float:
    """Peak RSS in MiB of a fresh process that transcribes ``audio``."""
    # ru_maxrss survives fork and exec on Linux (a child reports at least its parent's peak),
    # so the child reads its own high-water mark, VmHWM, which starts afresh at exec.
    code = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from bench import transcribe as bench
from pathlib import Path
audio = Path({str(audio)!r})
if {kind!r} == "raw":
    bench.raw_run(bench.raw_model(), audio)
else:
    bench.library_run(audio)
status = open("/proc/self/status").read()
print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return int(out.split()[-1]) / 1024


def timing(audio: Path, minutes: float, repeats: int) -> dict[str, object]:
    """Warm model timings of raw faster-whisper, the library and the command line."""
    model = raw_model()
    raw_run(model, audio)  # warm both
    library_run(audio)
    raw, lib, cli = [], [], []
    for _ in range(repeats):
        raw.append(timed(lambda: raw_run(model, audio)))
        lib.append(timed(lambda: library_run(audio)))
    for _ in range(max(2, repeats // 2)):
        cli.append(timed(lambda: cli_run(audio)))
    return {
        "audio_minutes": minutes,
        "raw_s": summary(raw),
        "library_s": summary(lib),
        "cli_s": summary(cli),
        "library_over_raw": {
            "min": min(lib) / min(raw),
            "median": summary(lib)["median"] / summary(raw)["median"],
        },
        "cli_over_raw": {
            "min": min(cli) / min(raw),
            "median": summary(cli)["median"] / summary(raw)["median"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=1.0, help="audio length for timing")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rss-minutes", type=float, nargs="*", default=[1.0, 30.0])
    parser.add_argument("--rss-raw", action="store_true", help="also measure raw RSS")
    parser.add_argument("--skip-timing", action="store_true", help="measure memory only")
    parser.add_argument("--out", type=Path, default=Path("bench/results/transcribe.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cesar-bench-"))
    results: dict[str, object] = {"cpu_count": os.cpu_count(), "settings": SETTINGS}
    if not args.skip_timing:
        results.update(timing(long_audio(args.minutes, work), args.minutes, args.repeats))
    rss: dict[str, dict[str, float]] = {"library": {}, "raw": {}}
    for minutes in args.rss_minutes:
        path = long_audio(minutes, work)
        rss["library"][f"{minutes:g}min"] = peak_rss("library", path)
        if args.rss_raw:
            rss["raw"][f"{minutes:g}min"] = peak_rss("raw", path)
    results["peak_rss_mib"] = rss
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
