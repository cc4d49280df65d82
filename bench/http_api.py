"""The HTTP API: poll latency during a long job, server memory during a big upload, and
submit-to-completed time against raw faster-whisper. One run measures all three.

    python bench/http_api.py --repeats 3 [--minutes 10 --upload-gib 1.0 --poll-ms 50]

Real ``cesar serve`` processes on loopback ports, driven by httpx from this process;
tiny.en, int8, 1 CPU thread, beam 5 everywhere.

- Submit to completed: one server with its embedded worker (one slot), warmed by a short job
  so that its model is loaded. In each repeat, alternately: the ``--minutes`` WAV of speech
  is POSTed to /transcribe and GET /jobs/{id} polled every ``--poll-ms`` until it is
  completed (upload, audio check, the worker's claim, transcription and polling all count);
  then raw faster-whisper transcribes the same file in one call, in this process, with a
  WhisperModel on the same model directory (same compute type and threads, the options
  Cesar passes), loaded and run once on the warm-up file before any timing. Raw runs here
  rather than in a subprocess so that it pays no process start or model load either.
- Poll latency: in each repeat, one more job of the same file on the same server; while it
  is ``processing``, GET /jobs/{id} and GET /health alternate every ``--poll-ms`` on one
  keep-alive connection, and each answer's latency (as the client sees it) is kept. For
  comparison, the same polls of the idle server (the warm-up job's GET /jobs/{id}, which
  carries its short transcript) are timed once before the repeats.
- Upload memory: a fresh server without a worker (so no model loads when the job exists)
  receives one ``--upload-gib`` multipart upload (a WAV header, then silence) streamed from
  a generator, with its size limit raised to fit. Its resident memory (VmRSS) is sampled
  every 50 ms from before the request to the answer; the baseline is taken after a small
  upload, so that the one-time cost of a first request is not counted as growth.

With ``--burst N`` it runs ``bench/http_burst.py`` (``--uploads N``, the 41 KB clip, polls
every 10 ms) instead: N short uploads at once to a worker-less server, and GET /jobs/{id}
meanwhile.

With ``--followers N`` it runs ``bench/http_followers.py`` instead (``--client async``): a
job's time with and without ``N`` clients following its live events, and GET /jobs/{id}
meanwhile.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx
import numpy as np

from bench.common import (
    DATA,
    SERVE,
    free_port,
    long_audio,
    long_reference,
    summary,
    wait_healthy,
    wer,
)
from cesar_core import default_transcriber
from cesar_core.transcription.audio import SAMPLE_RATE
from cesar_core.transcription.windows import FALLBACK_TEMPERATURES

#: What every HTTP job asks for (beam 5 and tiny.en are also the defaults).
FIELDS = {"model": "tiny.en", "compute_type": "int8", "cpu_threads": "1", "beam_size": "5"}
#: What Cesar passes to WhisperModel.transcribe for these options (windows.py).
RAW_OPTIONS = {
    "language": None,
    "task": "transcribe",
    "beam_size": 5,
    "temperature": FALLBACK_TEMPERATURES,
    "initial_prompt": None,
    "word_timestamps": False,
    "vad_filter": False,
}
WARM_UP = DATA / "speech_en.wav"
TERMINAL = ("completed", "error", "cancelled")
RSS_EVERY_S = 0.05
#: Polls of the idle server (after the warm-up job), for comparison with the busy ones.
IDLE_POLLS = 200


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def cesar_serve(
    root: Path, log: Path, exits: list[int], *args: str, **env: str
) -> Iterator[Server]:
    """``cesar serve`` on ``root`` until the block ends (then SIGTERM); its exit status is
    appended to ``exits``. Its log goes to ``log``, not to a pipe nobody reads."""
    port = free_port()
    with log.open("ab") as err:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port), *args],
            env={**os.environ, "CESAR_DATA_DIR": str(root), **env},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, url, lambda: f"see {log}")
        yield Server(url, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            exits.append(process.wait(timeout=120))
        except subprocess.TimeoutExpired:
            process.kill()
            exits.append(process.wait())


def memory_mib(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of ``/proc/<pid>/status`` in MiB (VmRSS: resident now; VmHWM: peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def submit(client: httpx.Client, audio: Path) -> str:
    with audio.open("rb") as handle:
        answer = client.post("/transcribe", files={"file": (audio.name, handle)}, data=FIELDS)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def http_run(
    client: httpx.Client, audio: Path, every: float
) -> tuple[float, float, dict[str, object]]:
    """Seconds from before the POST to the poll that sees the job completed, seconds the
    POST took, and the job."""
    started = time.perf_counter()
    job_id = submit(client, audio)
    posted = time.perf_counter() - started
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in TERMINAL:
            break
        time.sleep(every)
    elapsed = time.perf_counter() - started
    assert job["status"] == "completed", job
    return elapsed, posted, job


def raw_run(model: object, audio: Path) -> tuple[float, str]:
    started = time.perf_counter()
    segments, _ = model.transcribe(str(audio), **RAW_OPTIONS)  # type: ignore[attr-defined]
    text = " ".join(segment.text.strip() for segment in segments)
    return time.perf_counter() - started, text


def poll_latencies(
    client: httpx.Client, job_id: str, every: float, idle_polls: int = 0
) -> tuple[list[float], list[float]]:
    """Milliseconds of GET /jobs/{id} and GET /health, alternating every ``every`` seconds,
    answered while the job is processing; with ``idle_polls``, that many answers of a
    server with nothing to do (the job long finished)."""
    jobs: list[float] = []
    health: list[float] = []
    status = "queued"
    due = time.perf_counter()
    for turn in itertools.count():
        path = f"/jobs/{job_id}" if turn % 2 == 0 else "/health"
        started = time.perf_counter()
        answer = client.get(path)
        took = (time.perf_counter() - started) * 1000
        assert answer.status_code == 200, answer.text
        if turn % 2 == 0:
            status = answer.json()["status"]
        if idle_polls or status == "processing":
            (jobs if turn % 2 == 0 else health).append(took)
        if (idle_polls and turn + 1 >= idle_polls) or (not idle_polls and status in TERMINAL):
            break
        due += every
        time.sleep(max(0.0, due - time.perf_counter()))
    assert status == "completed", status
    return jobs, health


def percentiles(samples: list[float]) -> dict[str, float]:
    p50, p99 = np.percentile(samples, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "max": max(samples), "n": len(samples)}


def wav_header(data_bytes: int) -> bytes:
    """The 44-byte header of a 16 kHz mono 16-bit PCM WAV holding ``data_bytes``."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        SAMPLE_RATE,
        SAMPLE_RATE * 2,
        2,
        16,
        b"data",
        data_bytes,
    )


def silent_upload(file_bytes: int, boundary: str) -> tuple[int, Iterator[bytes]]:
    """A multipart body with one field, ``file``: a WAV of ``file_bytes`` (silence), made as
    it is sent. Returns the body's length and its chunks."""
    data_bytes = (file_bytes - 44) // 2 * 2
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="silence.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    zeros = bytes(1 << 20)

    def chunks() -> Iterator[bytes]:
        yield head + wav_header(data_bytes)
        left = data_bytes
        while left > 0:
            yield zeros if left >= len(zeros) else zeros[:left]
            left -= len(zeros)
        yield tail

    return len(head) + 44 + data_bytes + len(tail), chunks()


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every ``RSS_EVERY_S`` until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append(memory_mib(self.pid))
            self.done.wait(RSS_EVERY_S)
        self.samples.append(memory_mib(self.pid))


def upload_memory(root: Path, log: Path, exits: list[int], gib: float) -> dict[str, float]:
    """Resident memory of a fresh, worker-less server while ``gib`` GiB stream in."""
    file_bytes = round(gib * 1024**3)
    limit = str(max(2 * 1024**3, file_bytes + 1024**2))
    with (
        cesar_serve(root, log, exits, "--no-worker", CESAR_MAX_UPLOAD_BYTES=limit) as server,
        httpx.Client(base_url=server.url, timeout=600) as client,
    ):
        pid = server.process.pid
        time.sleep(1.0)
        start = memory_mib(pid)
        cancel = client.delete(f"/jobs/{submit(client, WARM_UP)}")  # first-request imports
        assert cancel.status_code == 200, cancel.text
        time.sleep(1.0)
        baseline = memory_mib(pid)
        boundary = "cesar-bench-boundary-7d3f"
        length, body = silent_upload(file_bytes, boundary)
        sampler = RssSampler(pid)
        sampler.start()
        started = time.perf_counter()
        answer = client.post(
            "/transcribe",
            content=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length),
            },
        )
        seconds = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
        assert answer.status_code == 202, answer.text
        job = answer.json()
        assert job["source"]["size"] == file_bytes // 2 * 2, job["source"]
        assert client.delete(f"/jobs/{job['id']}").status_code == 200  # cancel
        assert client.delete(f"/jobs/{job['id']}").status_code == 204  # and remove the audio
        peak = max(sampler.samples)
        return {
            "bytes": file_bytes,
            "seconds": seconds,
            "mib_per_s": file_bytes / 1024**2 / seconds,
            "rss_start_mib": start,
            "rss_baseline_mib": baseline,
            "rss_peak_mib": peak,
            "growth_mib": peak - baseline,
            "growth_from_start_mib": peak - start,
            "samples": len(sampler.samples),
            "hwm_mib": memory_mib(pid, "VmHWM"),
        }


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seconds_between(job: dict[str, object], first: str, last: str) -> float:
    return (
        datetime.fromisoformat(str(job[last])) - datetime.fromisoformat(str(job[first]))
    ).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--burst", type=int, default=0, help="measure N concurrent short uploads instead"
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the speech")
    parser.add_argument("--upload-gib", type=float, default=1.0, help="size of the upload")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poll-ms", type=float, default=50.0, help="client poll interval")
    parser.add_argument("--out", type=Path, help="default bench/results/http.json")
    parser.add_argument(
        "--followers", type=int, default=0, help="measure N clients following live events"
    )
    args = parser.parse_args()
    if args.burst:  # the front door under a burst: bench/http_burst.py
        from bench.http_burst import CLIP, run

        run(args.repeats, args.burst, CLIP, 10.0, args.out or Path("bench/results/burst.json"))
        return
    every = args.poll_ms / 1000
    work = Path(tempfile.mkdtemp(prefix="cesar-bench-http-"))
    log = work / "serve.log"
    audio = long_audio(args.minutes, work)
    if args.followers:  # live events with followers: bench/http_followers.py
        from bench.http_followers import followers_main

        args.client = "async"
        args.out = args.out or Path("bench/results/http_followers.json")
        followers_main(args, work, audio, log)
        return
    args.out = args.out or Path("bench/results/http.json")
    reference = long_reference(args.minutes)
    exits: list[int] = []

    from faster_whisper import WhisperModel

    model_dir = default_transcriber().resolver.resolve(FIELDS["model"]).path
    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=1)
    raw_run(model, WARM_UP)

    seconds: dict[str, list[float]] = {"http": [], "raw": []}
    phases: dict[str, list[float]] = {"post": [], "to_started": [], "running": []}
    jobs_ms: list[float] = []
    health_ms: list[float] = []
    texts: dict[str, str] = {}
    with (
        cesar_serve(work / "served", log, exits) as server,
        httpx.Client(base_url=server.url, timeout=600) as client,
    ):
        _, _, warm = http_run(client, WARM_UP, every)  # loads the server's model
        idle = poll_latencies(client, str(warm["id"]), every, idle_polls=IDLE_POLLS)
        for repeat in range(args.repeats):
            took, posted, job = http_run(client, audio, every)
            seconds["http"].append(took)
            phases["post"].append(posted)
            texts["http"] = str(job["text"])
            phases["to_started"].append(seconds_between(job, "created_at", "started_at"))
            phases["running"].append(seconds_between(job, "started_at", "completed_at"))
            took, texts["raw"] = raw_run(model, audio)
            seconds["raw"].append(took)
            jobs, health = poll_latencies(client, submit(client, audio), every)
            jobs_ms += jobs
            health_ms += health
            print(
                f"repeat {repeat + 1}: http {seconds['http'][-1]:.2f} s "
                f"(job ran {phases['running'][-1]:.2f} s), raw {seconds['raw'][-1]:.2f} s, "
                f"{len(jobs) + len(health)} polls",
                flush=True,
            )
        server_hwm = memory_mib(server.process.pid, "VmHWM")
        options = job["options"]
    del model
    upload = upload_memory(work / "upload", log, exits, args.upload_gib)

    http, raw = summary(seconds["http"]), summary(seconds["raw"])
    latency = {"jobs": percentiles(jobs_ms), "health": percentiles(health_ms)}
    latency_idle = {"jobs": percentiles(idle[0]), "health": percentiles(idle[1])}
    ratio = {"min": http["min"] / raw["min"], "median": http["median"] / raw["median"]}
    results = {
        "cpu_count": os.cpu_count(),
        "minutes": args.minutes,
        "repeats": args.repeats,
        "poll_ms": args.poll_ms,
        "job_options": options,
        "latency_ms": latency,
        "latency_idle_ms": latency_idle,
        "upload": upload,
        "submit_to_completed_s": {
            "http": {**http, "runs": seconds["http"]},
            "raw": {**raw, "runs": seconds["raw"]},
            "http_over_raw": ratio,
            "http_post_s": phases["post"],
            "http_job_to_started_s": phases["to_started"],
            "http_job_running_s": phases["running"],
        },
        "wer": {name: round(wer(reference, text), 3) for name, text in texts.items()},
        "server_peak_rss_mib": server_hwm,
        "server_exit_codes": exits,
        "targets_met": {
            "p99_le_20ms": max(row["p99"] for row in latency.values()) <= 20,
            "rss_growth_le_50mib": upload["growth_mib"] <= 50,
            "http_over_raw_le_1.05": ratio["median"] <= 1.05,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    for when, rows in (("busy", latency), ("idle", latency_idle)):
        for name, row in rows.items():
            print(
                f"{when} GET {'/jobs/{id}' if name == 'jobs' else '/health':11} "
                f"p50 {row['p50']:6.2f} ms  p99 {row['p99']:6.2f} ms  "
                f"max {row['max']:7.2f} ms  n {row['n']}"
            )
    print(
        f"upload {upload['bytes'] / 1024**3:g} GiB in {upload['seconds']:.1f} s: RSS "
        f"{upload['rss_baseline_mib']:.1f} -> peak {upload['rss_peak_mib']:.1f} MiB "
        f"(+{upload['growth_mib']:.1f}; +{upload['growth_from_start_mib']:.1f} from start)"
    )
    for name, row in (("http", http), ("raw", raw)):
        print(f"{name:5} min {row['min']:6.2f} s  median {row['median']:6.2f} s")
    print(f"http / raw: min x{ratio['min']:.3f}, median x{ratio['median']:.3f}")
    print(f"WER {results['wer']}; server exits {exits} (log: {log}); written to {args.out}")


if __name__ == "__main__":
    main()
