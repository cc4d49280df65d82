"""``cesar jobs watch``: a job's segments printed as a worker in another process
transcribes them (real SQLite store, real processes, the real model)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

from .speech_helpers import long_audio
from .test_cli_jobs import CESAR, cesar, env_for, submit

LINE = re.compile(r"^\[(\d\d):(\d\d\.\d\d\d) --> (\d\d):(\d\d\.\d\d\d)\] (.*)$")


def test_watch_prints_segments_as_a_worker_transcribes_them(tmp_path: Path, data: Path) -> None:
    # Four 30-second windows: the first window's lines must come well before the job ends,
    # even where followers of a worker in another process poll SQLite once a second (one
    # window and a short tail end too soon after it on a fast machine).
    job_id = submit(tmp_path, long_audio(2, tmp_path))
    watch = subprocess.Popen(
        [*CESAR, "jobs", "watch", job_id],
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = subprocess.Popen(
        [*CESAR, "worker"], env=env_for(tmp_path), stderr=subprocess.PIPE, text=True
    )
    lines: list[tuple[float, str]] = []
    try:
        assert watch.stdout is not None
        for line in watch.stdout:
            lines.append((time.time(), line.rstrip("\n")))
        _, err = watch.communicate(timeout=120)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
    assert watch.returncode == 0, err
    assert f"{job_id} processing" in err
    assert err.rstrip().endswith(f"{job_id} completed")
    job = json.loads(cesar(tmp_path, "jobs", "show", job_id, "--json").stdout)
    matches = [LINE.match(line) for _, line in lines]
    assert all(matches), lines
    assert " ".join(m.group(5) for m in matches if m) == job["result"]["text"]
    assert len(lines) == len(job["result"]["segments"])
    # The first lines came while the job ran (the worker publishes each window's segments).
    assert lines[0][0] < datetime.fromisoformat(job["completed_at"]).timestamp() - 0.2


def test_watch_of_a_job_that_ends_unfinished_or_does_not_exist(tmp_path: Path, data: Path) -> None:
    job_id = submit(tmp_path, data / "speech_en.opus")
    assert cesar(tmp_path, "jobs", "cancel", job_id).returncode == 0
    watched = cesar(tmp_path, "jobs", "watch", job_id)
    assert watched.returncode == 1
    assert f"Job {job_id} ended cancelled" in watched.stderr
    missing = cesar(tmp_path, "jobs", "watch", "0" * 32)
    assert missing.returncode != 0
    assert "No job has the id" in missing.stderr
    as_json = cesar(tmp_path, "jobs", "watch", job_id, "--json")
    assert [json.loads(line)["event"] for line in as_json.stdout.splitlines()] == [
        "progress",
        "cancelled",
    ]
