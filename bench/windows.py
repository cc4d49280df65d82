"""Long audio in windows against one raw faster-whisper call: accuracy and time, in one run.

    python bench/windows.py --minutes 10 --repeats 2
    python bench/windows.py --windows 60 120 --prompt-tokens 0 64 223

Several long recordings: the long fixture repeated with pauses (``--minutes`` of it), and
the public-domain text of ``bench/long_text.txt`` read by espeak-ng in other voices (about
7 minutes each; each voice starts at a different paragraph). Each is transcribed by raw
faster-whisper (all audio in one call, tiny.en, int8, 1 thread, beam 5) and by cesar_core
with the same settings at each window length and each prompt cap
(``windows.PROMPT_TOKENS``: 0 starts each window fresh, as windows did before; 223 primes
each window with the tokens decoded before it, as faster-whisper primes each 30 s).
Contenders alternate within each repeat; per recording and contender, the word error
rate against the known text (median over repeats; decoding at a fallback temperature
samples, so repeats can differ) and min / median seconds are reported, and the word error
rate of all recordings together.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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

TEXT = Path(__file__).resolve().parent / "long_text.txt"
#: espeak-ng voices and speeds (words per minute) of the spoken recordings.
VOICES = [("en-us", 165), ("en+f3", 175), ("en-gb-x-rp+m3", 160), ("en-029+f2", 170)]


def spoken(voice: str, speed: int, start: int, directory: Path) -> tuple[Path, str]:
    """``bench/long_text.txt`` read by espeak-ng ``voice`` from paragraph ``start`` on (and
    round to the paragraph before it): a 16 kHz WAV in ``directory`` and its text."""
    paragraphs = [p.strip() for p in TEXT.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    start %= len(paragraphs)
    text = "\n\n".join(paragraphs[start:] + paragraphs[:start])
    name = voice.replace("+", "_")
    source, raw, path = (directory / f"{name}{suffix}" for suffix in (".txt", ".raw.wav", ".wav"))
    source.write_text(text, encoding="utf-8")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-f", str(source), "-w", str(raw)], check=True
    )
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(path)], check=True)
    raw.unlink()
    return path, text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="of the repeated fixture")
    parser.add_argument("--voices", type=int, default=3, help="espeak-ng recordings (0 to 4)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--windows", type=float, nargs="+", default=[60.0])
    parser.add_argument("--prompt-tokens", type=int, nargs="+", default=[0, 223])
    parser.add_argument("--out", type=Path, default=Path("bench/results/windows.json"))
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="cesar-bench-"))
    recordings = {"long_en": (long_audio(args.minutes, directory), long_reference(args.minutes))}
    for index, (voice, speed) in enumerate(VOICES[: args.voices]):
        recordings[voice] = spoken(voice, speed, 3 * index, directory)
    model = bench.raw_model()
    contenders: dict[str, tuple[float, int] | None] = {"raw": None}
    for window in args.windows:
        for cap in args.prompt_tokens:
            contenders[f"{window:g}s, prompt {cap}"] = (window, cap)
    seconds = {(r, c): [] for r in recordings for c in contenders}  # type: ignore[var-annotated]
    errors = {(r, c): [] for r in recordings for c in contenders}  # type: ignore[var-annotated]
    texts: dict[tuple[str, str], str] = {}
    for _ in range(args.repeats):
        for recording, (audio, reference) in recordings.items():
            for name, setting in contenders.items():
                started = time.perf_counter()
                if setting is None:
                    text = bench.raw_run(model, audio)
                else:
                    windows.WINDOW_S, windows.PROMPT_TOKENS = setting
                    text = bench.library_run(audio)
                seconds[recording, name].append(time.perf_counter() - started)
                errors[recording, name].append(wer(reference, text))
                texts[recording, name] = text
                print(
                    f"{recording} / {name}: WER {errors[recording, name][-1]:.4f}, "
                    f"{seconds[recording, name][-1]:.1f} s",
                    flush=True,
                )
    results: dict[str, dict[str, dict[str, float]]] = {}
    for recording in recordings:
        results[recording] = {
            name: {
                "wer": round(statistics.median(errors[recording, name]), 4),
                "wer_min": round(min(errors[recording, name]), 4),
                "wer_max": round(max(errors[recording, name]), 4),
                "min_s": round(min(seconds[recording, name]), 2),
                "median_s": round(statistics.median(seconds[recording, name]), 2),
            }
            for name in contenders
        }
    every = " ".join(reference for _, reference in recordings.values())
    results["all (last repeat)"] = {
        name: {"wer": round(wer(every, " ".join(texts[r, name] for r in recordings)), 4)}
        for name in contenders
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    transcripts = {f"{r} / {name}": text for (r, name), text in texts.items()}
    args.out.write_text(
        json.dumps(
            {"minutes": args.minutes, "results": results, "transcripts": transcripts}, indent=2
        )
    )
    for recording, rows in results.items():
        print(recording)
        for name, row in rows.items():
            timing = ""
            if "min_s" in row:
                timing = f"  min {row['min_s']:6.2f} s  median {row['median_s']:6.2f} s"
            print(f"  {name:>18}  WER {row['wer']:.4f}{timing}")


if __name__ == "__main__":
    main()
