"""Batched decoding on this CPU: does running several windows at once give more throughput
at equal accuracy? Shared windows of short clips, and the windows of a long file, in one run.

    python bench/batched.py --repeats 3 [--threads 1 2] [--clips 48] [--minutes 10]

Shared windows: ``--clips`` espeak-ng sentences (those of ``bench/throughput.py``, with
their text as reference) laid out as the worker packs them (``pack_layout.plan``: at most
6 clips and 30 s a window, 1 s of silence between clips). Contenders, on one warm
faster-whisper model (tiny.en, int8, beam 5, English, word timestamps, as a packed
window is decoded):

- one window after another: ``WhisperModel.transcribe`` on each window, as the worker does;
- batched: every window laid end to end and handed to faster-whisper's
  ``BatchedInferencePipeline`` at once, one clip (``clip_timestamps``) a window, at each
  ``--batch-sizes``.

Each word is given back to the clip whose part of its window (from the middle of the
silence before it to the middle of the silence after it) holds the word's middle, for
both contenders alike; WER over all clips against their sentences.

A long file: ``--minutes`` of the long fixture repeated, through ``cesar_core.transcribe``
as it is (unbatched, in 10-minute windows) and with ``batched=True`` (windows of 60 s, each
cut into clips of at most 30 s at pauses, decoded together) at each batch size, and batched
in windows of 600 s (so that a batch can be full); WER against the known text.

Contenders alternate within each repeat; per contender the CPU seconds (process time, all
threads: what a busy server pays) and wall seconds, min and median, and the median's ratio
to the unbatched contender. ``--threads``: CTranslate2's ``intra_threads`` for every
contender (1: the default worker slot; 2: the machine's cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from bench.common import long_audio, long_reference, wer
from bench.throughput import make_clips
from cesar_core import default_transcriber
from cesar_core.pack_layout import GAP_S, join, plan
from cesar_core.transcription import windows
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio
from cesar_core.transcription.windows import FALLBACK_TEMPERATURES

DECODE = {
    "language": "en",
    "beam_size": 5,
    "temperature": FALLBACK_TEMPERATURES,
    "word_timestamps": True,
    "vad_filter": False,
}


class Packed:
    """The clips laid out in shared windows, and where each clip's part of its window lies."""

    def __init__(self, clips: list[tuple[Path, str]], max_clips: int = 6) -> None:
        samples = [load_audio(path) for path, _ in clips]
        self.references = [text for _, text in clips]
        self.groups = plan([len(s) / SAMPLE_RATE for s in samples], max_clips, GAP_S)
        self.windows: list[np.ndarray[Any, np.dtype[np.float32]]] = []
        #: per window, the (window-relative) seconds where each of its clips' parts end.
        self.bounds: list[list[float]] = []
        for group in self.groups:
            audio, starts = join([samples[i] for i in group], GAP_S)
            ends = [
                start + len(samples[i]) / SAMPLE_RATE
                for start, i in zip(starts, group, strict=True)
            ]
            self.windows.append(audio)
            self.bounds.append([end + GAP_S / 2 for end in ends[:-1]] + [float("inf")])
        self.seconds = sum(len(s) for s in samples) / SAMPLE_RATE

    def texts(self, words_per_window: list[list[Any]]) -> list[str]:
        """Each clip's text, from its window's words (each with ``start``, ``end`` and
        ``word`` in window seconds)."""
        texts = [""] * len(self.references)
        for group, bounds, words in zip(self.groups, self.bounds, words_per_window, strict=True):
            for word in words:
                middle = (word.start + word.end) / 2
                part = next(k for k, bound in enumerate(bounds) if middle < bound)
                texts[group[part]] += word.word
        return texts

    def score(self, words_per_window: list[list[Any]]) -> float:
        return wer(" ".join(self.references), " ".join(self.texts(words_per_window)))


def one_by_one(model: Any, packed: Packed) -> float:
    words = []
    for audio in packed.windows:
        segments, _ = model.transcribe(audio, **DECODE)
        words.append([w for s in segments for w in s.words or ()])
    return packed.score(words)


def batched(model: Any, packed: Packed, batch_size: int) -> float:
    from faster_whisper import BatchedInferencePipeline

    audio = np.concatenate(packed.windows)
    clips, at = [], 0.0
    for window in packed.windows:
        clips.append({"start": at, "end": at + len(window) / SAMPLE_RATE})
        at += len(window) / SAMPLE_RATE
    segments, _ = BatchedInferencePipeline(model).transcribe(
        audio, clip_timestamps=clips, batch_size=batch_size, **DECODE
    )
    words: list[list[Any]] = [[] for _ in packed.windows]
    for segment in segments:
        # A segment lies in one clip (one window): find it, and put its words on that
        # window's own timeline.
        index = next(k for k, clip in enumerate(clips) if segment.start < clip["end"])
        offset = clips[index]["start"]
        for word in segment.words or ():
            words[index].append(replace(word, start=word.start - offset, end=word.end - offset))
    return packed.score(words)


def measure(contenders: dict[str, Callable[[], float]], repeats: int) -> dict[str, Any]:
    """Run the contenders alternately; per contender WER (last run) and CPU / wall seconds."""
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    errors: dict[str, float] = {}
    for repeat in range(repeats):
        for name, run in contenders.items():
            started, used = time.perf_counter(), time.process_time()
            errors[name] = run()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - used)
            print(
                f"  repeat {repeat + 1} {name}: WER {errors[name]:.4f}, "
                f"CPU {cpu[name][-1]:.2f} s, wall {wall[name][-1]:.2f} s",
                flush=True,
            )
    base = next(iter(contenders))
    rows = {}
    for name in contenders:
        rows[name] = {
            "wer": round(errors[name], 4),
            "cpu_min_s": round(min(cpu[name]), 2),
            "cpu_median_s": round(statistics.median(cpu[name]), 2),
            "wall_min_s": round(min(wall[name]), 2),
            "wall_median_s": round(statistics.median(wall[name]), 2),
            "cpu_ratio": round(statistics.median(cpu[name]) / statistics.median(cpu[base]), 3),
            "wall_ratio": round(statistics.median(wall[name]) / statistics.median(wall[base]), 3),
        }
    return rows


def shared_contenders(
    model: Any, packed: Packed, sizes: list[int]
) -> dict[str, Callable[[], float]]:
    contenders: dict[str, Callable[[], float]] = {
        "one window after another": lambda: one_by_one(model, packed)
    }
    for size in sizes:
        contenders[f"batched, {size} at once"] = lambda s=size: batched(model, packed, s)
    return contenders


def long_contenders(
    audio: Path, reference: str, threads: int, sizes: list[int]
) -> dict[str, Callable[[], float]]:
    import cesar_core

    settings = {"compute_type": "int8", "cpu_threads": threads, "beam_size": 5}

    def library(window: float | None = None, **more: Any) -> float:
        default = windows.SHORT_WINDOW_S
        windows.SHORT_WINDOW_S = window or default
        try:
            return wer(reference, cesar_core.transcribe(audio, **settings, **more).text)
        finally:
            windows.SHORT_WINDOW_S = default

    contenders: dict[str, Callable[[], float]] = {"unbatched (the default)": library}
    for size in sizes:
        contenders[f"batched, {size} at once"] = lambda s=size: library(batched=True, batch_size=s)
        contenders[f"batched, {size} at once, 600 s windows"] = lambda s=size: library(
            600.0, batched=True, batch_size=s
        )
    return contenders


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=48, help="short clips (0: none)")
    parser.add_argument("--minutes", type=float, default=10.0, help="long file (0: none)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--out", type=Path, default=Path("bench/results/batched.json"))
    args = parser.parse_args()
    from faster_whisper import WhisperModel

    work = Path(tempfile.mkdtemp(prefix="cesar-bench-batched-"))
    path = str(default_transcriber().resolver.resolve("tiny.en").path)
    results: dict[str, Any] = {}
    packed = Packed(make_clips(work, args.clips)) if args.clips else None
    audio = long_audio(args.minutes, work) if args.minutes else None
    for threads in args.threads:
        model = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=threads)
        if packed is not None:
            print(
                f"{threads} thread(s): {args.clips} clips ({packed.seconds:.0f} s of speech) "
                f"in {len(packed.windows)} shared windows",
                flush=True,
            )
            one_by_one(model, packed)  # warm
            results[f"shared windows, {threads} thread(s)"] = measure(
                shared_contenders(model, packed, args.batch_sizes), args.repeats
            )
        if audio is not None:
            print(f"{threads} thread(s): {args.minutes:g} minutes of speech", flush=True)
            contenders = long_contenders(
                audio, long_reference(args.minutes), threads, args.batch_sizes
            )
            results[f"long file, {threads} thread(s)"] = measure(contenders, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    for title, rows in results.items():
        print(title)
        for name, row in rows.items():
            print(
                f"  {name:>32}  WER {row['wer']:.4f}  CPU min {row['cpu_min_s']:6.2f} "
                f"median {row['cpu_median_s']:6.2f} (x{row['cpu_ratio']:.3f})  wall min "
                f"{row['wall_min_s']:6.2f} median {row['wall_median_s']:6.2f} "
                f"(x{row['wall_ratio']:.3f})"
            )


if __name__ == "__main__":
    main()
