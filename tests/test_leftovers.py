"""What a killed process leaves is removed when the next one starts: the ``.part`` file of
an upload cut short by a ``kill -9`` of ``cesar serve``, and the local copy of the audio a
worker killed mid-job held (PostgreSQL storage). Real processes, killed with SIGKILL; the
scratch of live processes is spared."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from cesar_core.jobs import JobState
from cesar_core.storage.local import LocalStorage
from cesar_core.storage.scratch import STALE_SECONDS, scratch_name

from .http_helpers import free_port, serving, wait_healthy
from .queue_helpers import Site, eventually, start_worker, state_of, stop, submit

BOUNDARY = "cesar-test-boundary"


def parts(root: Path) -> list[Path]:
    return sorted(root.glob("*/.*.part"))


def slow_upload(url: str, sent: threading.Event) -> None:
    """A multipart upload of 64 MiB sent a MiB at a time; never finishes before the kill."""

    def body() -> Iterator[bytes]:
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            'filename="long.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
        for count in range(64):
            yield b"\0" * (1 << 20)
            if count == 3:
                sent.set()
            time.sleep(0.2)
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    with suppress(httpx.HTTPError):  # the server is killed: expected
        httpx.post(f"{url}/transcribe", content=body(), headers=headers, timeout=60)


def test_a_server_killed_mid_upload_leaves_nothing_after_a_restart(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CESAR_DATA_DIR": str(tmp_path), "CESAR_INLINE_AUDIO_BYTES": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "cesar_cli", "serve", "--no-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_healthy(server, url, lambda: server.stderr.read())  # type: ignore[union-attr]
        sent = threading.Event()
        client = threading.Thread(target=slow_upload, args=(url, sent))
        client.start()
        assert sent.wait(30)
        eventually(lambda: parts(audio), timeout=30)
        server.kill()  # SIGKILL: no clean-up of any kind
        server.wait()
        client.join(60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    [left] = parts(audio)
    assert left.stat().st_size >= 1 << 20

    # Scratch of a live process, and of another host, recent: both spared.
    live = audio / "othr-job" / scratch_name(".audio.wav", ".part")
    live.parent.mkdir()
    live.write_bytes(b"a live upload")
    elsewhere = audio / "othr-job" / ".audio.wav~elsewhere~1~0123456789abcdef0123456789abcdef.part"
    elsewhere.write_bytes(b"another machine's upload")
    stale = audio / "old-job" / ".audio.wav~elsewhere~2~0123456789abcdef0123456789abcdef.part"
    stale.parent.mkdir()
    stale.write_bytes(b"abandoned long ago")
    long_ago = time.time() - STALE_SECONDS - 60
    os.utime(stale, (long_ago, long_ago))

    with serving(tmp_path, "--no-worker", CESAR_INLINE_AUDIO_BYTES="0"):
        eventually(lambda: not left.exists(), timeout=10)
        assert not left.parent.exists()  # the job's directory had nothing else
        assert not stale.exists()
        assert live.exists()
        assert elsewhere.exists()


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where worker processes of this test put their local copies (the user cache)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "cesar" / "scratch"


def test_a_worker_killed_mid_job_leaves_no_copy_after_a_restart(
    scratch: Path, empty_postgres: str, data: Path
) -> None:
    site = Site(store=empty_postgres, storage=empty_postgres)
    [job_id] = submit(site, 1, data / "speech_en.ogg", inline_bytes=0)  # audio in the database
    doomed = start_worker(site, "--transcriber", "slow:30", "--lease", "1", "--name", "doomed")
    eventually(lambda: state_of(site, job_id).state is JobState.PROCESSING)
    [copy] = eventually(lambda: list(scratch.glob("cesar~*.ogg")))  # type: ignore[misc]
    assert f"~{doomed.pid}~" in copy.name  # named after the process holding it
    doomed.kill()
    doomed.wait()
    assert copy.exists()  # nobody left to remove it

    rescuer = start_worker(site, "--transcriber", "slow:0.3", "--lease", "1", "--name", "rescuer")
    eventually(lambda: not copy.exists(), timeout=10)
    done = eventually(lambda: (j := state_of(site, job_id)).state.terminal and j, timeout=30)
    stop(rescuer)
    assert done.state is JobState.COMPLETED  # type: ignore[attr-defined]
    assert list(scratch.iterdir()) == []  # the rescuer's own copy went with its job


def test_cleaning_leftovers_copes_with_directories_removed_meanwhile(tmp_path: Path) -> None:
    """Other processes delete job directories while a starting process scans for
    leftovers; a directory gone between being listed and being read is skipped, never an
    error (``Path.glob`` raised FileNotFoundError here)."""
    storage = LocalStorage(tmp_path / "audio")
    stop = threading.Event()

    def churn(worker: int) -> None:
        n = 0
        while not stop.is_set():
            job = storage.root / f"job{worker}-{n % 25}"
            job.mkdir(parents=True, exist_ok=True)
            (job / "audio.wav").write_bytes(b"x")
            shutil.rmtree(job, ignore_errors=True)
            n += 1

    threads = [threading.Thread(target=churn, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            storage._clean_leftovers()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
