"""Long audio in windows against one raw faster-whisper call: accuracy and time, in one run.

    python bench/windows.py --minutes 10 --repeats 2
    python bench/windows.py --voices 4 --windows 60 120 300 --prompt-tokens 0 223
    python bench/windows.py --voices 0 --repeats 0 --windows 60 120 300 --rss-minutes 10 30
    python bench/windows.py --minutes 0 --voices 8 --repeats 1 --windows 60 600 --prompt-tokens 0
    python bench/windows.py --minutes 0 --voices 8 --joined --repeats 1 --windows 60 600

Several long recordings: the long fixture repeated with pauses (``--minutes`` of it), and
the public-domain text of ``bench/long_text.txt`` read by espeak-ng in other voices (about
7 minutes each; each voice starts at a different paragraph). Each is transcribed by raw
faster-whisper (all audio in one call, tiny.en or ``--model``, int8, 1 thread, beam 5) and
by cesar_core with the same settings at each window length and each prompt cap
(``windows.PROMPT_TOKENS``: 0 starts each window fresh, as windows did before; 223 primes
each window with the tokens decoded before it, as faster-whisper primes each 30 s).
``--first-voice`` and ``--voices`` choose among eight voices (to share them between
processes); ``--joined`` transcribes them as one recording, one after another 1 s apart
(about 49 minutes for all eight), longer than a window.
Contenders alternate within each repeat; per recording and contender, the word error
rate against the known text (median over repeats) and min / median seconds (wall clock and
CPU: process time, all threads) are reported,
and the word error rate of all recordings together. Decoding at a fallback temperature
samples: repeat ``r`` seeds CTranslate2's generator with ``r`` before every contender, so
each repeat is reproducible and every contender draws from the same stream.

Where the errors are: per recording and window length, the errors (substituted, deleted
and inserted words) within 20 words of a window's cut, against those elsewhere, for each
contender with windows of that length and for the raw call on the same words. Cuts are
placed on the reference by time, so "within 20 words" is approximate.

``--rss-minutes``: peak resident memory (VmHWM) of a fresh process transcribing that many
minutes of the long fixture at each window length (memory must stay flat).
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

import ctranslate2

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench import transcribe as bench
from bench.common import ROOT, long_audio, long_reference, wer
from cesar_core.evaluation import normalise
from cesar_core.transcription import windows
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio

TEXT = Path(__file__).resolve().parent / "long_text.txt"
#: espeak-ng voices and speeds (words per minute) of the spoken recordings.
VOICES = [
    ("en-us", 165),
    ("en+f3", 175),
    ("en-gb-x-rp+m3", 160),
    ("en-029+f2", 170),
    ("en-us-nyc+m1", 170),
    ("en-gb-scotland+f4", 160),
    ("en-gb-x-gbcwmd+m7", 165),
    ("en-us+f5", 180),
]


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
    # -R: the same dither every run (without it sox seeds its dither afresh, and each run
    # transcribed a different recording).
    subprocess.run(
        ["sox", "-R", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(path)], check=True
    )
    raw.unlink()
    return path, text


def joined(parts: list[tuple[Path, str]], directory: Path) -> tuple[Path, str]:
    """The recordings ``parts`` one after another with 1 s of silence between them (longer
    than a window, so that windows are cut inside them), and their texts together."""
    silence, path = directory / "second.wav", directory / "joined.wav"
    make = ["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(silence), "trim", "0", "1"]
    subprocess.run(make, check=True)
    files = [str(name) for p, _ in parts for name in (p, silence)][:-1]
    subprocess.run(["sox", *files, str(path)], check=True)
    return path, "\n\n".join(text for _, text in parts)


def cuts(audio: Path, window: float) -> list[float]:
    """Where windows of ``window`` seconds end in ``audio``, in seconds (as cesar cuts)."""
    samples, ends, start = load_audio(audio), [], 0
    length = round(window * SAMPLE_RATE)
    while len(samples) - start >= length:
        start += windows._cut(samples[start : start + length])
        ends.append(start / SAMPLE_RATE)
    return ends


def boundary_errors(reference: str, text: str, near: list[int]) -> tuple[int, int]:
    """Errors of ``text`` within 20 words of the reference positions ``near``, and elsewhere."""
    import jiwer

    words = normalise(reference).split()
    alignment = jiwer.process_words(" ".join(words), normalise(text) or "<empty>")
    close = [any(abs(i - n) < 20 for n in near) for i in range(len(words) + 1)]
    counts = [0, 0]
    for chunk in alignment.alignments[0]:
        if chunk.type == "insert":
            counts[not close[chunk.ref_start_idx]] += chunk.hyp_end_idx - chunk.hyp_start_idx
        elif chunk.type != "equal":
            for i in range(chunk.ref_start_idx, chunk.ref_end_idx):
                counts[not close[i]] += 1
    return counts[0], counts[1]


def peak_rss(audio: Path, window: float) -> float:
    """Peak RSS in MiB of a fresh process that transcribes ``audio`` in ``window``-s windows."""
    code = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from bench import transcribe as bench
from cesar_core.transcription import windows
windows.WINDOW_S = {window!r}
bench.library_run(Path({str(audio)!r}))
status = open("/proc/self/status").read()
print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return round(int(out.split()[-1]) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="of the repeated fixture")
    parser.add_argument(
        "--voices", type=int, default=3, help=f"espeak-ng recordings (0 to {len(VOICES)})"
    )
    parser.add_argument(
        "--first-voice",
        type=int,
        default=0,
        help="start at this voice (to split the voices between processes)",
    )
    parser.add_argument("--model", default="tiny.en", help="a multilingual one is told English")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--windows", type=float, nargs="+", default=[60.0])
    parser.add_argument("--prompt-tokens", type=int, nargs="+", default=[0, 223])
    parser.add_argument(
        "--joined",
        action="store_true",
        help="one recording: the voices' recordings one after another, 1 s apart",
    )
    parser.add_argument(
        "--reverse", action="store_true", help="with --joined: the voices in reverse order"
    )
    parser.add_argument(
        "--no-raw", action="store_true", help="leave the raw call out (measured already)"
    )
    parser.add_argument("--rss-minutes", type=float, nargs="*", default=[])
    parser.add_argument("--out", type=Path, default=Path("bench/results/windows.json"))
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="cesar-bench-"))
    rss = {
        f"{minutes:g} min": {
            f"{window:g}s": peak_rss(long_audio(minutes, directory), window)
            for window in args.windows
        }
        for minutes in args.rss_minutes
    }
    for minutes, row in rss.items():
        print(f"peak RSS, {minutes}: " + ", ".join(f"{w} {mib} MiB" for w, mib in row.items()))
    recordings = {}
    if args.minutes > 0:
        recordings["long_en"] = (long_audio(args.minutes, directory), long_reference(args.minutes))
    chosen = list(enumerate(VOICES))[args.first_voice : args.first_voice + args.voices]
    for index, (voice, speed) in chosen:
        recordings[voice] = spoken(voice, speed, 3 * index, directory)
    if args.joined:
        voices = [voice for _, (voice, _) in chosen][:: -1 if args.reverse else 1]
        recordings = {"joined": joined([recordings[v] for v in voices], directory)}
    from faster_whisper import WhisperModel

    import cesar_core

    path = cesar_core.default_transcriber().resolver.resolve(args.model).path
    model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=1)
    language = {} if args.model.endswith(".en") else {"language": "en"}
    contenders: dict[str, tuple[float, int] | None] = {} if args.no_raw else {"raw": None}
    for window in args.windows:
        for cap in args.prompt_tokens:
            contenders[f"{window:g}s, prompt {cap}"] = (window, cap)
    seconds = {(r, c): [] for r in recordings for c in contenders}  # type: ignore[var-annotated]
    errors = {(r, c): [] for r in recordings for c in contenders}  # type: ignore[var-annotated]
    cpu = {(r, c): [] for r in recordings for c in contenders}  # type: ignore[var-annotated]
    texts: dict[tuple[str, str], str] = {}
    for repeat in range(args.repeats):
        for recording, (audio, reference) in recordings.items():
            for name, setting in contenders.items():
                ctranslate2.set_random_seed(repeat)
                started, used = time.perf_counter(), time.process_time()
                if setting is None:
                    segments, _ = model.transcribe(str(audio), beam_size=5, **language)
                    text = " ".join(segment.text for segment in segments)
                else:
                    windows.WINDOW_S, windows.PROMPT_TOKENS = setting
                    options = {"model": args.model, **language, **bench.SETTINGS}
                    text = cesar_core.transcribe(audio, **options).text
                seconds[recording, name].append(time.perf_counter() - started)
                cpu[recording, name].append(time.process_time() - used)
                errors[recording, name].append(wer(reference, text))
                texts[recording, name] = text
                print(
                    f"{recording} / {name}: WER {errors[recording, name][-1]:.4f}, "
                    f"{seconds[recording, name][-1]:.1f} s, CPU {cpu[recording, name][-1]:.1f} s",
                    flush=True,
                )
    results: dict[str, dict[str, dict[str, float]]] = {}
    for recording in recordings if texts else ():  # none with --repeats 0
        results[recording] = {
            name: {
                "wer": round(statistics.median(errors[recording, name]), 4),
                "wer_min": round(min(errors[recording, name]), 4),
                "wer_max": round(max(errors[recording, name]), 4),
                "min_s": round(min(seconds[recording, name]), 2),
                "median_s": round(statistics.median(seconds[recording, name]), 2),
                "cpu_min_s": round(min(cpu[recording, name]), 2),
                "cpu_median_s": round(statistics.median(cpu[recording, name]), 2),
            }
            for name in contenders
        }
    every = " ".join(reference for _, reference in recordings.values())
    if texts:
        results["all (last repeat)"] = {
            name: {"wer": round(wer(every, " ".join(texts[r, name] for r in recordings)), 4)}
            for name in contenders
        }
    near: dict[str, dict[str, list[int]]] = {}
    for recording, (audio, reference) in recordings.items() if texts else ():
        total = len(load_audio(audio)) / SAMPLE_RATE
        size = len(normalise(reference).split())
        for window in args.windows:
            at = [round(cut / total * size) for cut in cuts(audio, window)]
            for name, setting in contenders.items():
                if setting is None or setting[0] == window:
                    key = name if setting else f"raw, on the {window:g}s cuts"
                    errors_at = boundary_errors(reference, texts[recording, name], at)
                    near.setdefault(recording, {})[key] = list(errors_at)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    transcripts = {f"{r} / {name}": text for (r, name), text in texts.items()}
    args.out.write_text(
        json.dumps(
            {
                "minutes": args.minutes,
                "results": results,
                "errors_near_cuts_and_elsewhere": near,
                "peak_rss_mib": rss,
                "transcripts": transcripts,
            },
            indent=2,
        )
    )
    for recording, rows in results.items():
        print(recording)
        for name, row in rows.items():
            timing = ""
            if "min_s" in row:
                timing = (
                    f"  min {row['min_s']:6.2f} s  median {row['median_s']:6.2f} s"
                    f"  CPU min {row['cpu_min_s']:6.2f} s  median {row['cpu_median_s']:6.2f} s"
                )
            print(f"  {name:>18}  WER {row['wer']:.4f}{timing}")
    for recording, rows in near.items():
        print(f"{recording}: errors within 20 words of a cut / elsewhere")
        for name, (close, far) in rows.items():
            print(f"  {name:>22}  {close:4d} / {far:4d}")


if __name__ == "__main__":
    main()
