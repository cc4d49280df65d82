"""What word timestamps cost a shared window: six short clips joined with 1 s of silence
(as the worker packs them), transcribed with and without word timestamps, alternately.

    python bench/packed_words.py --rounds 6

tiny.en, int8, 1 thread, English, warm; CPU seconds (process time) of each transcription,
min and median over the rounds, and each variant's segment times (the worker splits a window
back into its jobs by word times, or by segment times where there are no words).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import attrs
import numpy as np

from bench.common import DATA
from cesar_core import default_transcriber
from cesar_core.transcript import TranscribeOptions
from cesar_core.transcription.audio import SAMPLE_RATE, AudioStream

CLIPS = sorted((DATA / "short").glob("clip_*.opus"))[:6]
GAP_S = 1.0


def window(path: Path) -> float:
    """Write the clips joined with silence to ``path`` (16 kHz WAV); return its seconds."""
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), dtype=np.float32)
    parts = []
    for clip in CLIPS:
        with AudioStream(clip) as stream:
            parts += [*stream.blocks(60), gap]
    samples = np.concatenate(parts)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return len(samples) / SAMPLE_RATE


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6, help="alternated runs of each")
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="cesar-bench-words-")) / "window.wav"
    seconds = window(path)
    transcriber = default_transcriber()
    plain = TranscribeOptions(model="tiny.en", compute_type="int8", cpu_threads=1, language="en")
    variants = {"segments": plain, "words": attrs.evolve(plain, word_timestamps=True)}
    transcriber.transcribe(path, plain)  # loads the model
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        for name, options in variants.items():
            started = time.process_time()
            result = transcriber.transcribe(path, options)
            cpu[name].append(time.process_time() - started)
            if round_ == 0:
                times = [(round(s.start, 2), round(s.end, 2)) for s in result.segments]
                print(f"{name}: segments {times}")
    print(f"window: {len(CLIPS)} clips, {seconds:.1f} s")
    for name, runs in cpu.items():
        print(f"{name}: CPU s min {min(runs):.3f} median {statistics.median(runs):.3f}")
    ratio = statistics.median(cpu["words"]) / statistics.median(cpu["segments"])
    print(f"words / segments, medians: x{ratio:.3f}")


if __name__ == "__main__":
    main()
