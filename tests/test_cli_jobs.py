"""``cesar worker`` and ``cesar jobs`` as real processes on a real SQLite store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from cesar_core import Settings
from cesar_core.jobs import JobState
from cesar_core.plugins import make_manager
from cesar_core.service import JobService

from .conftest import REFERENCES, wer
from .queue_helpers import eventually, run

CESAR = [sys.executable, "-m", "cesar_cli"]


def env_for(root: Path) -> dict[str, str]:
    return {**os.environ, "CESAR_DATA_DIR": str(root), "CESAR_STORE": f"sqlite:///{root}/jobs.db"}


def cesar(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CESAR, *args], capture_output=True, text=True, env=env_for(root), timeout=120, check=False
    )


def submit(root: Path, audio: Path) -> str:
    async def go() -> str:
        settings = Settings(data_dir=root, store=f"sqlite:///{root}/jobs.db")
        service = await JobService.open(settings, make_manager({}))
        job, _ = await service.submit_file(audio)
        await service.close()
        return job.id

    return run(go())


def test_worker_runs_jobs_and_jobs_commands_show_them(tmp_path: Path, data: Path) -> None:
    job_id = submit(tmp_path, data / "speech_en.opus")
    worker = subprocess.Popen(
        [*CESAR, "worker", "--lease", "5"],
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(
            lambda: (
                json.loads(cesar(tmp_path, "jobs", "show", job_id, "--json").stdout)["state"]
                == "completed"
            ),
            timeout=120,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "stopped after 1 job(s)" in err
    shown = cesar(tmp_path, "jobs", "show", job_id)
    assert shown.returncode == 0
    assert wer(REFERENCES["speech_en"], shown.stdout.splitlines()[-1]) < 0.5
    listed = cesar(tmp_path, "jobs", "list", "--state", "completed")
    assert job_id in listed.stdout
    assert "speech_en.opus" in listed.stdout
    page = json.loads(cesar(tmp_path, "jobs", "list", "--json").stdout)
    assert [job["id"] for job in page["jobs"]] == [job_id]
    assert page["jobs"][0]["result"] is None  # listings leave results out


def test_cancel_delete_and_unknown_ids(tmp_path: Path, data: Path) -> None:
    job_id = submit(tmp_path, data / "speech_en.opus")
    cancelled = cesar(tmp_path, "jobs", "cancel", job_id)
    assert cancelled.stdout.strip() == f"{job_id} {JobState.CANCELLED.value}"
    assert cesar(tmp_path, "jobs", "delete", job_id).stdout.strip() == f"{job_id} deleted"
    again = cesar(tmp_path, "jobs", "delete", job_id)
    assert again.returncode == 0
    assert "was already gone" in again.stdout
    missing = cesar(tmp_path, "jobs", "show", job_id)
    assert missing.returncode == 1
    assert f"No job has the id '{job_id}'" in missing.stderr
    bad_store = cesar(tmp_path, "jobs", "list", "--store", "redis://nowhere")
    assert bad_store.returncode == 2
    assert "No job store handles 'redis://nowhere'" in bad_store.stderr
