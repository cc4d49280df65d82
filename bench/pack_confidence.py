"""Which clips of a shared window to transcribe alone after all: the mean probability of a
clip's words in the window, against the word error rate of the clip shared and alone.

    python bench/pack_confidence.py                # 72 espeak-ng clips and the 6 test clips
    python bench/pack_confidence.py --combinations 1 --no-fixture

Whisper decodes a window as one sequence, so the clips before a clip can lead it astray.
This lays the clips out as the worker does (1 s of silence between them, 6 a window, in
order), transcribes each window once and each clip alone (tiny.en, int8, 1 thread, beam 5,
English, word timestamps), and splits each window with the confidence limit off, so that
every clip has its shared transcript. For each limit it then reports how many clips would
have been transcribed alone (their words' mean probability below it), for how many of those
alone was better or worse, and the corpus WER of the clips as the worker would return them.

The clips: ``bench/throughput.py``'s 24 sentences, each in ``--combinations`` pairs of voice
and speed (3 by default: 72 clips), then ``tests/data/short``'s 6 clips (read as data).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import DATA
from bench.throughput import SENTENCES, SPEEDS, VOICES, corpus_wer, speak
from cesar_core import TranscribeOptions, default_transcriber, pack_layout
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio

LIMITS = (0.6, 0.65, 0.7, 0.75, 0.8)


def clips(work: Path, combinations: int, fixture: bool) -> list[tuple[Path, str]]:
    """The sentences in ``combinations`` voice and speed pairs each, and the test clips."""
    made = []
    for combination in range(combinations):
        for index, text in enumerate(SENTENCES):
            voice = VOICES[(index + 3 * combination) % len(VOICES)]
            speed = SPEEDS[(index + 5 * combination) % len(SPEEDS)]
            path = work / f"c{combination}_{index:02d}.wav"
            made.append((speak(path, voice, speed, text), text))
    if fixture:
        short = DATA / "short"
        references = json.loads((short / "references.json").read_text())
        made += [(path, references[path.stem]) for path in sorted(short.glob("clip_*.opus"))]
    return made


def measure(clip_list: list[tuple[Path, str]]) -> list[dict[str, object]]:
    """Each clip's shared and lone transcripts and its words' mean probability shared."""
    engine = default_transcriber()
    options = TranscribeOptions(
        model="tiny.en", language="en", compute_type="int8", cpu_threads=1, word_timestamps=True
    )
    samples = [load_audio(path) for path, _ in clip_list]
    durations = [len(s) / SAMPLE_RATE for s in samples]
    rows: list[dict[str, object]] = []
    limit, pack_layout.MIN_WORD_PROBABILITY = pack_layout.MIN_WORD_PROBABILITY, 0.0
    try:
        for window in pack_layout.plan(durations, 6, pack_layout.GAP_S):
            audio, starts = pack_layout.join([samples[i] for i in window], pack_layout.GAP_S)
            result = engine.transcribe(pack_layout.wav(audio), options)
            parts = pack_layout.split(
                result, starts, [durations[i] for i in window], [options] * len(window)
            )
            for index, part in zip(window, parts, strict=True):
                alone = engine.transcribe(clip_list[index][0], options).text
                rows.append(
                    {
                        "clip": clip_list[index][0].name,
                        "reference": clip_list[index][1],
                        "shared": part.text if part else None,  # None: straddled, redone
                        "alone": alone,
                        "mean_probability": (
                            pack_layout.mean_word_probability(part.segments) if part else None
                        ),
                    }
                )
    finally:
        pack_layout.MIN_WORD_PROBABILITY = limit
    return rows


def report(rows: list[dict[str, object]]) -> dict[str, object]:
    """For each limit: the clips redone alone, and the corpus WER as the worker returns it."""
    references = [str(row["reference"]) for row in rows]
    alone = [str(row["alone"]) for row in rows]
    results: dict[str, object] = {"clips": len(rows), "alone_wer": corpus_wer(references, alone)}
    for limit in (0.0, *LIMITS):
        texts, redone, better, worse = [], 0, 0, 0
        for row in rows:
            mean = row["mean_probability"]
            shared = row["shared"]
            if shared is None or (isinstance(mean, float) and mean < limit):
                if shared is not None:
                    redone += 1
                    ref = str(row["reference"])
                    lone_wer = corpus_wer([ref], [str(row["alone"])])
                    shared_wer = corpus_wer([ref], [str(shared)])
                    better += lone_wer < shared_wer
                    worse += lone_wer > shared_wer
                texts.append(str(row["alone"]))
            else:
                texts.append(str(shared))
        results[f"limit {limit}"] = {
            "redone": redone,
            "alone_better": better,
            "alone_worse": worse,
            "wer": corpus_wer(references, texts),
        }
        print(f"limit {limit:4}: {results[f'limit {limit}']}", flush=True)
    print(f"every clip alone: WER {results['alone_wer']:.4f}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--combinations", type=int, default=3, help="voice-speed pairs a sentence")
    parser.add_argument("--no-fixture", action="store_true", help="leave out tests/data/short")
    parser.add_argument("--out", type=Path, default=Path("bench/results/pack_confidence.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cesar-bench-confidence-"))
    rows = measure(clips(work, args.combinations, not args.no_fixture))
    results = {"rows": rows, **report(rows)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
