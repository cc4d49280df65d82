"""``cesar worker`` with a transcriber that costs (almost) nothing, for measuring the queue.

    python bench/noop_worker.py --store URL --storage URL --transcriber noop [cesar worker options]

The real command (settings, store, storage, signals, grace, job events) with one plugin
added to the process's plugin manager before it starts, the way an installed plugin
would add it: the ``noop`` transcriber, which returns a one-word transcript after
``CESAR_BENCH_JOB_SECONDS`` (default 0) of sleep. With ``CESAR_BENCH_LOG`` set, the
plugin also appends a line to that file for each transcription started (``run``) and each
job event this process announces (``<state> <job id>``), with one ``write`` of an
``O_APPEND`` file each, so that lines from many processes never mix and a process killed
at any moment loses at most the line it had not yet written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from cesar_core import Transcript
from cesar_core.events import JobEvent
from cesar_core.hookspecs import hookimpl

JOB_SECONDS = "CESAR_BENCH_JOB_SECONDS"
LOG = "CESAR_BENCH_LOG"  # the file each worker appends its runs and events to
PATH = os.environ.get(LOG)
#: What ``cesar worker`` writes to stderr once its store and storage are open.
READY = b"stop with Ctrl-C"


def _log(line: str) -> None:
    if PATH:
        fd = os.open(PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{line}\n".encode())
        finally:
            os.close(fd)


class NoopTranscriber:
    """Reads nothing, returns ``ok``: the queue, not the model, is what is measured."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds

    def transcribe(self, audio: Any, options: Any, progress: Any = None) -> Transcript:
        _log("run")
        if self.seconds:
            time.sleep(self.seconds)
        return Transcript(
            text="ok",
            segments=(),
            language="en",
            language_probability=1.0,
            duration=1.0,
            model="noop",
        )


class NoopPlugin:
    """What this script adds to ``cesar worker``."""

    @hookimpl
    def cesar_transcribers(self) -> dict[str, Any]:
        return {"noop": lambda settings: NoopTranscriber(float(os.environ.get(JOB_SECONDS, 0)))}

    @hookimpl
    def cesar_job_event(self, event: JobEvent) -> None:
        _log(f"{event.state.value} {event.job_id}")


def start(
    store: str,
    storage: str,
    log: Path,
    *args: str,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> subprocess.Popen[bytes]:
    """This script as a worker process on ``store`` and ``storage``, its stderr appended to
    ``log`` (the process's own); returns once it has opened both and is about to claim
    jobs, or at once without ``wait``."""
    with log.open("ab") as err:
        start_at = err.tell()
        process = subprocess.Popen(
            [sys.executable, __file__, "--store", store, "--storage", storage, *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, **(env or {})},
        )
    deadline = time.monotonic() + 60
    while wait and READY not in log.read_bytes()[start_at:]:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            tail = log.read_bytes()[start_at:].decode(errors="replace")[-2000:]
            raise RuntimeError(f"a worker did not start (exit {process.wait()}): {tail}")
        time.sleep(0.02)
    return process


def main() -> None:
    from cesar_cli.worker import worker
    from cesar_core.plugins import get_manager

    get_manager().register(NoopPlugin(), name="bench-noop")
    worker(prog_name="noop_worker.py")


if __name__ == "__main__":
    main()
