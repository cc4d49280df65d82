"""Short jobs: raw faster-whisper one clip at a time against ``cesar serve`` with every clip
submitted at once (short jobs sharing the model's 30-second windows), in one run.

    python bench/throughput.py [--clips 24] [--repeats 2] [--sweep]

The clips are made here with espeak-ng: one sentence each (3 to 7 s), in several voices and
speeds, with the sentence as the reference text. tiny.en, int8, 1 CPU thread, beam 5 and the
language fixed (English) everywhere.

- Raw: a WhisperModel on the same model directory, warmed on one clip, transcribes each clip
  in turn, in this process; audio seconds per wall second and WER over all clips.
- Served: ``cesar serve`` (one worker slot of 1 thread; then 2 slots of 1 thread each) with
  packing on (its defaults), warmed by one job; every clip is POSTed to /transcribe at once (a
  thread per clip) and GET /jobs polled until all are completed; audio seconds per wall
  second from the first POST to the last completion, WER, and the server's peak RSS.
  The same with packing off (``CESAR_PACK_MAX_CLIPS=1``), as today's server, and with a
  200 ms wait for company (``CESAR_PACK_WAIT_MS=200``).
- Latency: one clip submitted alone to an idle server, POST to completed, packing on and off.
- ``--sweep``: the gap between clips and the clips per window, measured directly on the
  transcriber (no server): speed and WER of each choice against clips transcribed alone.
- ``--multilingual``: as many English as Spanish clips (``--clips`` in all), interleaved,
  submitted without a language on the multilingual ``base`` model (int8, 1 thread) and run
  by an in-process worker on SQLite, packing on (each job's language detected first, then
  packed by language) against packing off; audio seconds per wall second from the worker's
  start to its last job, the CPU seconds this process spent meanwhile (steadier than wall
  time on a shared machine), WER per language, how many jobs shared a window, the time of
  one language detection alone, and the CPU seconds of transcribing a clip alone after its
  detection, the transcription detecting again or handed the detection.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx

from bench.common import SERVE, free_port, wait_healthy, wer
from cesar_core import TranscribeOptions, default_transcriber
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio
from cesar_core.transcription.windows import FALLBACK_TEMPERATURES

SENTENCES = [
    "Please call me back after lunch.",
    "The train to Boston leaves at nine tomorrow morning.",
    "I left my keys on the kitchen table.",
    "Can you send the report to the whole team before Friday?",
    "The weather was cold and windy all week.",
    "We need more paper for the printer in the office.",
    "My sister bought a new bicycle last weekend.",
    "The meeting has been moved to Thursday afternoon.",
    "Don't forget to water the plants while I am away.",
    "He plays the piano every evening after dinner.",
    "The store closes early on Sundays.",
    "Our flight was delayed by two hours because of the storm.",
    "She read three books during the summer holiday.",
    "Please turn off the lights when you leave the room.",
    "The children are playing football in the park.",
    "I would like a cup of coffee with milk and no sugar.",
    "The doctor said I should rest for a few days.",
    "We are planning a trip to the mountains in August.",
    "The new software update fixed most of the problems.",
    "Remember to bring your passport to the airport.",
    "The restaurant on the corner serves excellent fish.",
    "Let me know if you need any help with the move.",
    "The package arrived this morning in good condition.",
    "It took me an hour to drive home in the traffic.",
]
SPANISH = [
    "Mañana vamos a la playa con los niños.",
    "La reunión empieza a las diez de la mañana.",
    "Mi hermano trabaja en un hospital del centro.",
    "Hace mucho frío y está lloviendo otra vez.",
    "Necesito comprar pan y leche para el desayuno.",
    "El tren sale de la estación a las ocho.",
    "Por favor, cierra la ventana antes de salir.",
    "Los estudiantes leen un libro cada semana.",
]
VOICES = ["en", "en-us", "en-gb-x-rp", "en+m3", "en-us+f2", "en+f4", "en-gb-scotland", "en+m7"]
SPEEDS = [150, 140, 160, 130, 155, 145, 135, 165]
FIELDS = {
    "model": "tiny.en",
    "language": "en",
    "compute_type": "int8",
    "cpu_threads": "1",
    "beam_size": "5",
}
RAW_OPTIONS = {
    "language": "en",
    "task": "transcribe",
    "beam_size": 5,
    "temperature": FALLBACK_TEMPERATURES,
    "word_timestamps": False,
    "vad_filter": False,
}


def make_clips(directory: Path, count: int) -> list[tuple[Path, str]]:
    """``count`` WAV clips of one sentence each, cycling through voices and speeds."""
    clips = []
    for index in range(count):
        text = SENTENCES[index % len(SENTENCES)]
        voice, speed = VOICES[index % len(VOICES)], SPEEDS[index % len(SPEEDS)]
        clips.append((speak(directory / f"clip_{index:02d}.wav", voice, speed, text), text))
    return clips


def speak(path: Path, voice: str, speed: int, text: str) -> Path:
    """``text`` spoken by espeak-ng's ``voice`` at ``speed`` words a minute, as a 16 kHz
    mono WAV at ``path``."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(path)], check=True)
    raw.unlink()
    return path


def make_spanish(directory: Path, count: int) -> list[tuple[Path, str]]:
    """``count`` Spanish WAV clips of one sentence each, in two voices and four speeds."""
    clips = []
    for index in range(count):
        text = SPANISH[index % len(SPANISH)]
        voice, speed = ("es", "es-419")[index % 2], (140, 150, 130, 160)[index % 4]
        clips.append((speak(directory / f"es_{index:02d}.wav", voice, speed, text), text))
    return clips


def multilingual(work: Path, count: int, repeats: int) -> dict[str, object]:
    """English and Spanish without a language, packed by language or not (see the module's
    docstring)."""
    import asyncio
    import statistics

    from cesar_core.service import JobService
    from cesar_core.storage.local import LocalStorage
    from cesar_core.stores.sqlite import SQLiteJobStore
    from cesar_core.worker import Worker, WorkerConfig

    english, spanish = make_clips(work, count // 2), make_spanish(work, count - count // 2)
    clips = [clip for pair in zip(english, spanish, strict=False) for clip in pair]
    languages = ["en" if clip in english else "es" for clip in clips]
    engine = default_transcriber()
    options = TranscribeOptions(model="base", compute_type="int8", cpu_threads=1)
    for path, _ in (english[0], spanish[0]):  # warm: the model loaded, both languages run
        engine.transcribe(path, options)
    detections = []
    # A lone job whose language was detected first: its transcription detecting it again
    # (as before), or handed the detection; CPU seconds, alternating.
    lone: dict[str, list[float]] = {"detected again": [], "detection handed": []}
    for path, _ in clips:
        started = time.perf_counter()
        guess = engine.detect_language(path, options)
        detections.append(time.perf_counter() - started)
        for name, handed in zip(lone, (None, guess), strict=True):
            cpu = time.process_time()
            engine.transcribe(path, options, detected=handed)
            lone[name].append(time.process_time() - cpu)

    async def one(config: WorkerConfig, where: Path) -> dict[str, float]:
        store = await SQLiteJobStore.open(where / "jobs.db")
        service = JobService(store, LocalStorage(where / "audio"))
        jobs = [(await service.submit_file(path, options=options))[0] for path, _ in clips]
        worker = Worker(store, service.storage, engine, config)
        started, cpu = time.perf_counter(), time.process_time()
        await worker.run(until_idle=True)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        done = [await service.get(job.id) for job in jobs]
        await service.close()
        texts = [job.result.text if job.result else "" for job in done]
        result = {"wall_s": wall, "audio_s_per_s": audio / wall, "cpu_s": cpu}
        result["packed"] = float(worker._packer.packed if worker._packer else 0)
        result["wrong_language"] = float(
            sum(
                job.result is None or job.result.language != code
                for job, code in zip(done, languages, strict=True)
            )
        )
        for code in ("en", "es"):
            pairs = [
                (c[1], t)
                for c, t, lang in zip(clips, texts, languages, strict=True)
                if lang == code
            ]
            result[f"wer_{code}"] = corpus_wer([r for r, _ in pairs], [t for _, t in pairs])
        return result

    audio = sum(seconds_of(path) for path, _ in clips)
    configs = {"packed by language": WorkerConfig(pack_max_clips=6), "alone": WorkerConfig()}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    for repeat in range(repeats):  # contenders alternate, so that noise hits both alike
        for name, config in configs.items():
            where = work / f"multilingual-{repeat}-{len(runs[name])}-{name.split()[0]}"
            runs[name].append(asyncio.run(one(config, where)))
            print(name, json.dumps(runs[name][-1]), flush=True)
    return {
        "clips": len(clips),
        "audio_s": audio,
        "detect_language_s": {
            "median": statistics.median(detections),
            "min": min(detections),
            "max": max(detections),
        },
        "lone_job_cpu_s": {
            name: {"median": statistics.median(found), "min": min(found)}
            for name, found in lone.items()
        },
        "load_average": os.getloadavg(),
        "runs": runs,
    }


def seconds_of(path: Path) -> float:
    return len(load_audio(path)) / SAMPLE_RATE


def corpus_wer(references: list[str], texts: list[str]) -> float:
    """WER over all clips at once (word errors over reference words)."""
    return wer(" ".join(references), " ".join(texts))


def raw(clips: list[tuple[Path, str]]) -> dict[str, float]:
    from faster_whisper import WhisperModel

    model_dir = default_transcriber().resolver.resolve(FIELDS["model"]).path
    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=1)
    list(model.transcribe(str(clips[0][0]), **RAW_OPTIONS)[0])
    started = time.perf_counter()
    texts = []
    for path, _ in clips:
        segments, _ = model.transcribe(str(path), **RAW_OPTIONS)
        texts.append(" ".join(segment.text.strip() for segment in segments))
    wall = time.perf_counter() - started
    audio = sum(seconds_of(path) for path, _ in clips)
    return {
        "audio_s_per_s": audio / wall,
        "wer": corpus_wer([t for _, t in clips], texts),
        "wall_s": wall,
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def served(clips: list[tuple[Path, str]], work: Path, **env: str) -> dict[str, float]:
    """Every clip POSTed at once to a fresh ``cesar serve``; see the module's docstring."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    root = Path(tempfile.mkdtemp(dir=work))
    with (root / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port)],
            env={**os.environ, "CESAR_DATA_DIR": str(root), **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    peak = 0
    try:
        wait_healthy(process, url, lambda: f"see {root / 'serve.log'}")
        with httpx.Client(base_url=url, timeout=120) as client:
            one = submit(client, clips[0][0])
            wait_all(client, [one])
            latency = []
            for path, _ in clips[:3]:  # one clip alone, to an idle server
                started = time.perf_counter()
                wait_all(client, [submit(client, path)])
                latency.append(time.perf_counter() - started)
            ids: list[str] = [""] * len(clips)
            started = time.perf_counter()

            def post(index: int) -> None:
                with httpx.Client(base_url=url, timeout=120) as own:
                    ids[index] = submit(own, clips[index][0])

            threads = [threading.Thread(target=post, args=(i,)) for i in range(len(clips))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            jobs = wait_all(client, ids, lambda: rss_kib(process.pid))
            wall = time.perf_counter() - started
            peak = max(job.pop("_rss", 0) for job in jobs)
    finally:
        process.terminate()
        process.wait(60)
    audio = sum(seconds_of(path) for path, _ in clips)
    return {
        "audio_s_per_s": audio / wall,
        "wer": corpus_wer([t for _, t in clips], [str(job["text"]) for job in jobs]),
        "wall_s": wall,
        "latency_s": min(latency),
        "peak_rss_mib": peak / 1024,
    }


def submit(client: httpx.Client, path: Path) -> str:
    with path.open("rb") as audio:
        answer = client.post("/transcribe", files={"file": (path.name, audio)}, data=FIELDS)
    answer.raise_for_status()
    return str(answer.json()["id"])


def wait_all(client: httpx.Client, ids: list[str], sample: object = None) -> list[dict]:  # type: ignore[type-arg]
    peak = 0
    while True:
        if callable(sample):
            peak = max(peak, sample())
        jobs = [client.get(f"/jobs/{job_id}").json() for job_id in ids]
        if all(job["status"] in ("completed", "error", "cancelled") for job in jobs):
            assert all(job["status"] == "completed" for job in jobs), jobs
            if jobs:
                jobs[0]["_rss"] = peak
            return jobs
        time.sleep(0.02)


def sweep(clips: list[tuple[Path, str]]) -> dict[str, dict[str, float]]:
    """Gap and clips per window, on the transcriber directly (see the module's docstring)."""
    from cesar_core.pack_layout import join, plan, split, wav

    engine = default_transcriber()
    options = TranscribeOptions(
        model="tiny.en", language="en", compute_type="int8", cpu_threads=1, word_timestamps=True
    )
    samples = [load_audio(path) for path, _ in clips]
    durations = [len(s) / SAMPLE_RATE for s in samples]
    references = [text for _, text in clips]
    engine.transcribe(clips[0][0], options)
    started = time.perf_counter()
    alone = [engine.transcribe(path, options).text for path, _ in clips]
    results = {"alone": {"s": time.perf_counter() - started, "wer": corpus_wer(references, alone)}}
    for gap in (0.5, 1.0, 2.0):
        for most in (2, 3, 4, 6, 8):
            texts: list[str | None] = [None] * len(clips)
            redone = 0
            started = time.perf_counter()
            for window in plan(durations, most, gap):
                if len(window) == 1:
                    texts[window[0]] = engine.transcribe(clips[window[0]][0], options).text
                    continue
                audio, starts = join([samples[i] for i in window], gap)
                result = engine.transcribe(wav(audio), options)
                parts = split(
                    result, starts, [durations[i] for i in window], [options] * len(window)
                )
                for index, part in zip(window, parts, strict=True):
                    if part is None:
                        redone += 1
                        texts[index] = engine.transcribe(clips[index][0], options).text
                    else:
                        texts[index] = part.text
            results[f"gap {gap} max {most}"] = {
                "s": time.perf_counter() - started,
                "wer": corpus_wer(references, [t or "" for t in texts]),
                "wer_vs_alone": corpus_wer(alone, [t or "" for t in texts]),
                "redone": redone,
            }
            print(f"gap {gap} max {most}", results[f"gap {gap} max {most}"], flush=True)
    return results


CONFIGS = {
    "packed, 1 slot": {"CESAR_WORKERS": "1"},
    "packed waiting 200 ms, 1 slot": {"CESAR_WORKERS": "1", "CESAR_PACK_WAIT_MS": "200"},
    "unpacked, 1 slot": {"CESAR_WORKERS": "1", "CESAR_PACK_MAX_CLIPS": "1"},
    "packed, 2 slots": {"CESAR_WORKERS": "2"},
    "unpacked, 2 slots": {"CESAR_WORKERS": "2", "CESAR_PACK_MAX_CLIPS": "1"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--multilingual", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/results/throughput.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cesar-bench-throughput-"))
    if args.multilingual:
        print(json.dumps(multilingual(work, args.clips, args.repeats), indent=2))
        return
    clips = make_clips(work, args.clips)
    if args.sweep:
        print(json.dumps(sweep(clips), indent=2))
        return
    runs: dict[str, list[dict[str, float]]] = {"raw": [], **{name: [] for name in CONFIGS}}
    for _ in range(args.repeats):  # contenders alternate, so that noise hits all alike
        runs["raw"].append(raw(clips))
        print("raw", json.dumps(runs["raw"][-1]), flush=True)
        for name, env in CONFIGS.items():
            runs[name].append(served(clips, work, **env))
            print(name, json.dumps(runs[name][-1]), flush=True)
    best = {name: max(found, key=lambda run: run["audio_s_per_s"]) for name, found in runs.items()}
    report = {
        "clips": len(clips),
        "audio_s": sum(seconds_of(path) for path, _ in clips),
        "best": best,
        "speedup_vs_raw": {
            name: run["audio_s_per_s"] / best["raw"]["audio_s_per_s"] for name, run in best.items()
        },
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("best", "speedup_vs_raw")}, indent=2))


if __name__ == "__main__":
    main()
