"""Real ``cesar serve`` processes on loopback ports for the HTTP tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

SERVE = [sys.executable, "-m", "cesar_cli", "serve"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(process: subprocess.Popen[Any], url: str, why_exited: Callable[[], str]) -> None:
    """Return once the ``cesar serve`` at ``url`` answers ``/health``; fail if ``process``
    exits first (saying ``why_exited()``) or 60 s pass."""
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise AssertionError(f"cesar serve exited with {process.returncode}: {why_exited()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("cesar serve did not answer within 60 s")
        time.sleep(0.1)


@contextmanager
def serving(root: Path, *args: str, **env: str) -> Iterator[str]:
    """Run ``cesar serve`` on ``root`` as its data directory until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [*SERVE, "--port", str(port), *args],
        env={**os.environ, "CESAR_DATA_DIR": str(root), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, url, lambda: process.stderr.read())  # type: ignore[union-attr]
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            _, err = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert process.returncode == 0, err


def wait_for(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, object]:
    """Poll a job until it is finished; return its last state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("completed", "error", "cancelled"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished within {timeout} s")
