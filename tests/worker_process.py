"""A worker process for the queue tests: a real Worker on a real store (SQLite, PostgreSQL).

The transcribers here stand in for faster-whisper where a test needs a job to take a known
time, crash its process, or cost nothing (the queue is what is under test):

- ``noop``: returns a one-word transcript at once;
- ``slow:SECONDS``: reports progress for SECONDS, then returns the worker's name as text;
- ``poison``: kills its own process (SIGKILL) on jobs whose metadata says ``poison``;
- ``whisper``: the real faster-whisper transcriber.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from cesar_core import Settings, Transcript, WhisperTranscriber
from cesar_core.plugins import make_manager
from cesar_core.storage import open_storage
from cesar_core.stores import open_store
from cesar_core.worker import Worker, WorkerConfig


def transcript(text: str) -> Transcript:
    return Transcript(
        text=text, segments=(), language="en", language_probability=1.0, duration=1.0, model="x"
    )


class NoopTranscriber:
    def transcribe(self, audio: Any, options: Any, progress: Any = None) -> Transcript:
        return transcript("ok")


class SlowTranscriber:
    def __init__(self, seconds: float, name: str) -> None:
        self.seconds = seconds
        self.name = name

    def transcribe(self, audio: Any, options: Any, progress: Any = None) -> Transcript:
        steps = max(1, int(self.seconds / 0.05))
        for step in range(steps):
            time.sleep(self.seconds / steps)
            if progress:
                progress((step + 1) / steps)
        return transcript(self.name)


class PoisonTranscriber(NoopTranscriber):
    def transcribe(self, audio: Any, options: Any, progress: Any = None) -> Transcript:
        # A path in storage, or the bytes of inline audio named after the upload.
        if "poison" in Path(str(getattr(audio, "name", audio))).name:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().transcribe(audio, options, progress)


def make_transcriber(spec: str, name: str) -> Any:
    if spec == "noop":
        return NoopTranscriber()
    if spec.startswith("slow:"):
        return SlowTranscriber(float(spec.split(":", 1)[1]), name)
    if spec == "poison":
        return PoisonTranscriber()
    if spec == "whisper":
        return WhisperTranscriber(Settings.load())
    raise SystemExit(f"unknown transcriber {spec}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True, help="store URL")
    parser.add_argument("--storage", required=True, help="storage URL")
    parser.add_argument("--transcriber", default="noop")
    parser.add_argument("--name", default=f"worker-{os.getpid()}")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--lease", type=float, default=30)
    parser.add_argument("--heartbeat", type=float, default=0.2)
    parser.add_argument("--sweep", type=float, default=0.2)
    parser.add_argument("--grace", type=float, default=30)
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--until-idle", action="store_true")
    args = parser.parse_args()
    # The worker's decisions (a job taken over, handed back, leases swept) on stderr, where
    # a test can wait for the one it needs; other loggers keep Python's default (warnings).
    decisions = logging.StreamHandler()
    logging.getLogger("cesar_core.worker").addHandler(decisions)
    logging.getLogger("cesar_core.worker").setLevel(logging.INFO)
    manager = make_manager({})
    store = await open_store(args.store, manager)
    storage = await open_storage(args.storage, manager)
    worker = Worker(
        store,
        storage,
        make_transcriber(args.transcriber, args.name),
        WorkerConfig(
            concurrency=args.concurrency,
            lease_seconds=args.lease,
            heartbeat_seconds=args.heartbeat,
            sweep_seconds=args.sweep,
            grace_seconds=args.grace,
            poll_seconds=args.poll,
            retry_base_seconds=0.05,
        ),
        name=args.name,
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, worker.request_stop)
    print("ready", flush=True)
    await worker.run(until_idle=args.until_idle)
    await storage.close()
    await store.close()
    print(f"completed {worker.completed}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
