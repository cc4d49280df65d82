"""A fresh PostgreSQL database for each test run, emptied before each test that uses it.

The server is a real one. ``CESAR_TEST_POSTGRES_URL`` names an existing server where the
run may create ``cesar_test_<random>`` (dropped at the end); ``.ci/run`` points it at the
machine's. Unset, the run starts a throwaway server of its own on a free loopback port the
first time a test needs one (see ``postgres_server.py``) and removes it at the end: never a
silent guess at a server on the usual port. There is no skip: a suite that cannot get
PostgreSQL fails and says why.
"""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .postgres_server import PrivateServer, private_server

URL_VARIABLE = "CESAR_TEST_POSTGRES_URL"
TABLES = (
    "cesar_job_audio",
    "cesar_job_segments",
    "cesar_blob_parts",
    "cesar_blobs",
    "cesar_jobs",
)
# A server nobody keeps: durability would only cost the run time.
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

_throwaway = ExitStack()
_server: list[PrivateServer] = []  # the run's throwaway server, once started


def server_url() -> str:
    """Where the run creates its databases: ``CESAR_TEST_POSTGRES_URL`` when set, otherwise
    the run's throwaway server, started on the first call."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        return url
    if not _server:
        _server.append(_throwaway.enter_context(private_server(THROWAWAY_SETTINGS)))
        atexit.register(stop_throwaway)  # in case the session fixture never ran
    return _server[0].url


def stop_throwaway() -> None:
    """Stop and remove the run's throwaway server, if it started one."""
    _throwaway.close()
    _server.clear()


def admin(url: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
    url = url or server_url()
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {url} is not reachable ({exc}). Start it (.ci/run shows how), point "
            f"{URL_VARIABLE} at a server where this user may create databases, or unset it to "
            "let the tests start a throwaway server of their own.",
            pytrace=False,
        )


def database_url(name: str, admin_url: str | None = None) -> str:
    """``admin_url`` (default: the run's server) with another database name, as a
    ``postgresql://`` URL."""
    parts = conninfo_to_dict(admin_url or server_url())
    parts["dbname"] = name
    host = parts.get("host", "127.0.0.1")
    port = parts.get("port", "5432")
    user = f"{parts['user']}@" if parts.get("user") else ""
    assert "password" not in parts or parts["password"] is None, make_conninfo(**parts)
    return f"postgresql://{user}{host}:{port}/{name}"


@contextmanager
def scratch_database(prefix: str = "cesar_test", admin_url: str | None = None) -> Iterator[str]:
    """A new, empty database on ``admin_url``'s server (default: the run's), dropped when
    the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin(admin_url) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name, admin_url)
    finally:
        with admin(admin_url) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def _throwaway_postgres() -> Iterator[None]:
    """Stops the throwaway server after every other session fixture (autouse fixtures are
    set up first, so torn down last); starts nothing itself, so runs that need no
    PostgreSQL start none."""
    yield
    stop_throwaway()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this run's own, dropped afterwards."""
    with scratch_database() as url:
        yield url


@pytest.fixture
def empty_postgres(postgres_url: str) -> str:
    """The run's database with Cesar's tables (when they exist yet) emptied."""
    empty(postgres_url)
    return postgres_url


def empty(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        present = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE tablename = ANY(%s)", (list(TABLES),)
            )
        ]
        if present:
            connection.execute(f"TRUNCATE {', '.join(present)}")
