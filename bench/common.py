"""Helpers shared by the benchmarks: the fixtures' audio and texts, long speech, timing,
statistics, ``cesar serve`` on a free port, and scratch PostgreSQL databases.

The benchmarks import nothing from ``tests/`` (nor the tests from here): what both need,
word error rates and long speech, lives in :mod:`cesar_core.evaluation`. The few lines
below that resemble test helpers (a free port, waiting for ``/health``, a scratch
database) are the benchmarks' own, so that neither side can break the other.

Each benchmark is a script (``python bench/X.py``) that puts the repository root first on
``sys.path`` and imports the others as ``bench.*``; no file here may be named like a
module of the standard library or of a dependency.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from cesar_core import evaluation
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"  # the committed fixtures (read as data, never imported)
REFERENCES: dict[str, str] = json.loads((DATA / "references.json").read_text())
LONG_SPEECH = DATA / "long_en.opus"
#: ``cesar serve`` in the interpreter running the benchmark.
SERVE = [sys.executable, "-m", "cesar_cli", "serve"]
wer = evaluation.wer


def long_audio(minutes: float, directory: Path) -> Path:
    """A 16 kHz WAV of ``minutes`` of real speech: the long fixture repeated with pauses."""
    return evaluation.long_audio(LONG_SPEECH, minutes, directory)


def long_reference(minutes: float) -> str:
    """The known text of :func:`long_audio` of ``minutes``."""
    seconds = len(load_audio(LONG_SPEECH)) / SAMPLE_RATE
    return evaluation.repeated_text(REFERENCES["long_en"], seconds, minutes)


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def summary(samples: list[float]) -> dict[str, float]:
    return {"min": min(samples), "median": statistics.median(samples), "n": len(samples)}


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
            raise RuntimeError(f"cesar serve exited with {process.returncode}: {why_exited()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("cesar serve did not answer within 60 s")
        time.sleep(0.1)


@contextmanager
def scratch_database(admin_url: str, prefix: str = "cesar_bench") -> Iterator[str]:
    """A new, empty database on the server of ``admin_url`` (a ``postgresql://`` URL),
    dropped when the block ends; yields its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"PostgreSQL at {admin_url} is not reachable ({exc}); start it, or pass the URL "
            "of a server where this user may create databases."
        ) from None
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def baseline_checkout(revision: str) -> Iterator[Path]:
    """Cesar at git ``revision``, checked out with ``git worktree`` into a temporary
    directory (removed when the block ends); yields the checkout's root."""
    with tempfile.TemporaryDirectory(prefix="cesar-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(tree), revision], cwd=ROOT, check=True
        )
        try:
            yield tree
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
            )


def side_environment(src: Path | None, home: Path) -> dict[str, str]:
    """The environment of a benchmarked Cesar process: a private data directory (an empty
    SQLite store) under ``home`` and, for a baseline revision, its ``src`` first on
    ``PYTHONPATH``, so that both sides share every installed dependency and differ only in
    Cesar's own code."""
    env = {
        **os.environ,
        "CESAR_DATA_DIR": str(home / "data"),
        "CESAR_CACHE_DIR": str(home / "cache"),
        "CESAR_CONFIG": str(home / "cesar.toml"),
        "HF_HUB_OFFLINE": "1",
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / "cesar.toml").write_text("")
    if src is not None:
        env["PYTHONPATH"] = str(src)
        # The installed distribution declares the PostgreSQL plugin as an entry point; the
        # older core registers the same module itself, and pluggy refuses it twice.
        env["CESAR_BLOCK_PLUGINS"] = "postgres"
    return env
