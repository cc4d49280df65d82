"""A PostgreSQL server of a test's own, which the test may stop and start at will.

The shared server (``CESAR_TEST_POSTGRES_URL``) serves every other test, so a test that
restarts PostgreSQL gets a private cluster instead: ``initdb`` into a temporary directory,
started with ``pg_ctl`` on a free loopback port, removed afterwards. It needs PostgreSQL's
server programs (Debian's ``postgresql`` package, which ``.ci/postgres`` installs); as
root, they run as the ``postgres`` user, since the server refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateServer:
    """One cluster in ``root``, listening on ``127.0.0.1:port`` only."""

    def __init__(self, bin_dir: Path, root: Path, port: int, user: str | None) -> None:
        self.bin_dir = bin_dir
        self.data = root / "data"
        self.port = port
        self.user = user  # run the server programs as this user (when we are root)
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.data / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed:\n{done.stderr}\n{tail}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        log = str(self.data / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``immediate`` kills it as a crash would (recovery at start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


@contextmanager
def private_server() -> Iterator[PrivateServer]:
    """A running private cluster, stopped and removed when the block ends; the test is
    skipped (saying why) where PostgreSQL's server programs are not installed."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed here")
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="cesar-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = PrivateServer(bin_dir, root, _free_port(), user)
    try:
        server.init()
        server.start()
        yield server
    finally:
        with suppress(RuntimeError):  # not running
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
