"""The benchmarks run as docs/performance.md shows them: each answers ``--help`` as a fresh
process started the documented way (``python bench/X.py`` from the repository root), and
the ones that can finish in seconds do a small real run.

A benchmark that shadows a module of the standard library or imports from ``tests/``
fails here, not on the day someone wants its figures.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name not in ("__init__.py", "common.py"))


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
    )


def test_the_benchmarks_are_found() -> None:
    assert {
        "chaos.py",
        "http_api.py",
        "http_followers.py",
        "jobqueue.py",
        "models.py",
        "noop_worker.py",
        "postgres_workers.py",
        "transcribe.py",
        "windows.py",
    } <= set(SCRIPTS)


def documented_commands() -> list[tuple[str, list[str]]]:
    """Each ``python bench/X.py ...`` of docs/performance.md: the script and its options."""
    text = (ROOT / "docs" / "performance.md").read_text()
    return [
        (script, re.findall(r"(?<!\S)--[a-z][a-z-]*", rest))
        for script, rest in re.findall(r"python bench/(\S+\.py)([^`\n]*)", text)
    ]


def test_the_documented_commands_name_real_scripts() -> None:
    documented = {script for script, _ in documented_commands()}
    assert documented <= set(SCRIPTS)
    assert documented >= {
        "chaos.py",
        "http_api.py",
        "jobqueue.py",
        "models.py",
        "postgres_workers.py",
        "transcribe.py",
        "windows.py",
    }


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_and_the_documented_options(script: str) -> None:
    result = bench(f"bench/{script}", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout.lower()
    documented = {o for name, options in documented_commands() if name == script for o in options}
    assert not [option for option in documented if option not in result.stdout]


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_benchmark_imports_the_tests(script: str) -> None:
    tree = ast.parse((BENCH / script).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.split(".")[0] == "tests"]


def test_no_test_imports_the_benchmarks() -> None:
    for path in Path(__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] != "bench", path.name
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "bench" for a in node.names), path.name


def test_no_benchmark_is_named_like_a_standard_module() -> None:
    assert not {Path(s).stem for s in SCRIPTS} & sys.stdlib_module_names


def test_jobqueue_small_run(tmp_path: Path) -> None:
    out = tmp_path / "queue.json"
    result = bench("bench/jobqueue.py", "--jobs", "50", "--repeats", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rates = json.loads(out.read_text())["jobs_per_s"]
    assert set(rates) == {"memory", "sqlite"}
    assert all(row["median"] > 0 for row in rates.values())


def test_postgres_workers_small_run(postgres_url: str) -> None:
    result = bench(
        "bench/postgres_workers.py",
        "--postgres",
        postgres_url,
        "--jobs",
        "30",
        "--repeats",
        "1",
        "--workers",
        "1",
        "--slots",
        "2",
        "--events",
        "on",
        "off",
    )
    assert result.returncode == 0, result.stderr
    for mode in ("drain", "e2e"):
        for events in ("on", "off"):
            assert f"{mode} 1w x 2 slots, events {events}: " in result.stdout


def test_chaos_small_run(tmp_path: Path) -> None:
    """SQLite only: on PostgreSQL each worker takes longer to start and the same run takes
    twice as long (``python bench/chaos.py`` runs both)."""
    out = tmp_path / "chaos.json"
    result = bench(
        "bench/chaos.py",
        "--jobs",
        "20",
        "--stores",
        "sqlite",
        "--workers",
        "2",
        "--job-seconds",
        "0.5",
        "--kill-every",
        "1",
        "1.5",
        "--lease",
        "1",
        "--seed",
        "7",
        "--out",
        str(out),
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [run] = json.loads(out.read_text())["results"]
    assert run["completed"] == run["submitted"] == 20
    assert run["lost"] == run["completed twice"] == 0
    assert run["workers killed"] >= 1  # the run did what it says
    assert run["worker exit codes at the end"] == [0, 0]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng to speak")
def test_diarize_small_run(tmp_path: Path) -> None:
    """Half a minute of the generated two-voice conversation, no fixtures, no baseline:
    the channels diarizer finds the generated reference (so the reference's times are
    where the voices are), and the plain run hears the text that was read."""
    out = tmp_path / "diarize.json"
    result = bench(
        "bench/diarize.py",
        "--minutes",
        "0.5",
        "--no-fixtures",
        "--modes",
        "plain",
        "channels",
        "--rounds",
        "0",
        "--out",
        str(out),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(out.read_text())["conversation_0.5min"]
    assert rows["channels"]["speakers"] == 2
    assert rows["channels"]["der"] < 0.1
    assert rows["plain"]["wer"] < 0.4
    assert rows["channels"]["ratio"] < 0.2  # channels costs next to nothing


@pytest.mark.parametrize("client", ["async", "threads"])
def test_followers_small_run(tmp_path: Path, client: str) -> None:
    """A short job followed by three clients of each kind: every follower got every
    segment (the benchmark asserts it), and the figures it reports are there."""
    out = tmp_path / "followers.json"
    result = bench(
        "bench/http_followers.py",
        "--followers",
        "3",
        "--minutes",
        "0.25",
        "--repeats",
        "1",
        "--client",
        client,
        "--out",
        str(out),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(out.read_text())
    assert figures["client"] == client
    assert figures["server_exit_codes"] == [0]
    assert figures["cpu_s"]["clients"]["min"] > 0
    assert figures["latency_ms_jobs_while_followed"]["n"] > 0


def test_upload_cost_small_run(tmp_path: Path) -> None:
    """Both sides of a short run answer every upload with a 202 and report a cost."""
    out = tmp_path / "upload_cost.json"
    result = bench(
        "bench/upload_cost.py",
        "--baseline",
        "HEAD",
        "--rounds",
        "1",
        "--uploads",
        "100",
        "--out",
        str(out),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stats = json.loads(out.read_text())["stats"]
    assert stats["baseline"]["min"] > 0
    assert stats["here"]["min"] > 0


def test_pack_confidence_small_run(tmp_path: Path) -> None:
    """24 clips in 4 windows: every limit is reported, and redoing more clips alone never
    shrinks the count."""
    out = tmp_path / "confidence.json"
    result = bench(
        "bench/pack_confidence.py",
        "--combinations",
        "1",
        "--no-fixture",
        "--out",
        str(out),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(out.read_text())
    assert figures["clips"] == 24
    redone = [figures[f"limit {limit}"]["redone"] for limit in (0.0, 0.6, 0.7, 0.8)]
    assert redone == sorted(redone)
    assert redone[0] == 0
