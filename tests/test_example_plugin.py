"""The example third-party plugin (``examples/cesar-audit-log``), installed as a package and
found through its entry point, proves the job-event hook end to end: real ``cesar``
processes, a real SQLite store and the real model."""

from __future__ import annotations

import importlib.metadata
import json
import signal
import subprocess
from pathlib import Path

import pytest

from .queue_helpers import eventually
from .test_cli_jobs import CESAR, cesar, env_for, submit


def audit_lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(autouse=True)
def _installed() -> None:
    names = [ep.name for ep in importlib.metadata.entry_points(group="cesar")]
    assert "audit_log" in names, (
        "the example plugin is not installed: pip install ./examples/cesar-audit-log "
        "(tox does this)"
    )


def test_cesar_plugins_lists_it_and_honours_the_block_list(tmp_path: Path) -> None:
    rows = json.loads(cesar(tmp_path, "plugins", "--json").stdout)
    [row] = [row for row in rows if row["name"] == "audit_log"]
    assert row["distribution"] == "cesar-audit-log"
    assert row["hooks"] == ["cesar_job_event"]
    assert not row["builtin"]
    assert rows[0]["name"] == "audit_log"  # external plugins come before the built-ins
    blocked = subprocess.run(
        [*CESAR, "plugins"],
        capture_output=True,
        text=True,
        env={**env_for(tmp_path), "CESAR_BLOCK_PLUGINS": "audit_log"},
        check=True,
    )
    assert "audit_log  (blocked by CESAR_BLOCK_PLUGINS)" in blocked.stdout
    chosen = subprocess.run(
        [*CESAR, "plugins"],
        capture_output=True,
        text=True,
        env={**env_for(tmp_path), "CESAR_PLUGINS": "no_such_plugin"},
        check=False,
    )
    assert chosen.returncode == 2
    assert "CESAR_PLUGINS names 'no_such_plugin'" in chosen.stderr


def test_job_events_reach_the_plugin_from_a_worker_and_the_cli(tmp_path: Path, data: Path) -> None:
    log = tmp_path / "audit.jsonl"
    env = {**env_for(tmp_path), "CESAR_AUDIT_LOG": str(log)}
    cancelled = submit(tmp_path, data / "speech_en.opus")
    subprocess.run([*CESAR, "jobs", "cancel", cancelled], env=env, check=True, timeout=60)
    completed = submit(tmp_path, data / "speech_en.wav")
    worker = subprocess.Popen(
        [*CESAR, "worker", "--lease", "5"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        eventually(lambda: len(audit_lines(log)) == 2, timeout=120)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    first, second = audit_lines(log)
    assert (first["job_id"], first["type"], first["event"]) == (
        cancelled,
        "job.cancelled",
        f"{cancelled}.cancelled",
    )
    assert first["audio_seconds"] is None
    assert (second["job_id"], second["type"]) == (completed, "job.completed")
    assert isinstance(second["audio_seconds"], float)
    assert 3 < second["audio_seconds"] < 30  # read from the job's stored transcript

    # Blocked, the plugin hears nothing.
    ignored = submit(tmp_path, data / "speech_en.opus")
    subprocess.run(
        [*CESAR, "jobs", "cancel", ignored],
        env={**env, "CESAR_BLOCK_PLUGINS": "audit_log"},
        check=True,
        timeout=60,
    )
    assert len(audit_lines(log)) == 2
