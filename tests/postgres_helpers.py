"""A fresh PostgreSQL database for each test run, emptied before each test that uses it.

The server is a real one: ``CESAR_TEST_POSTGRES_URL`` (default: the local server's ``test``
database) is where the run connects to create ``cesar_test_<random>``, which it drops at
the end. There is no skip: a suite that cannot reach PostgreSQL fails and says why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ADMIN_URL = os.environ.get("CESAR_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
TABLES = ("cesar_job_audio", "cesar_blob_parts", "cesar_blobs", "cesar_jobs")


def admin(url: str = ADMIN_URL) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {url} is not reachable ({exc}). Start it (.ci/run shows how) "
            "or point CESAR_TEST_POSTGRES_URL at a server where this user may create databases.",
            pytrace=False,
        )


def database_url(name: str, admin_url: str = ADMIN_URL) -> str:
    """``admin_url`` with another database name, as a ``postgresql://`` URL."""
    parts = conninfo_to_dict(admin_url)
    parts["dbname"] = name
    host = parts.get("host", "127.0.0.1")
    port = parts.get("port", "5432")
    user = f"{parts['user']}@" if parts.get("user") else ""
    assert "password" not in parts or parts["password"] is None, make_conninfo(**parts)
    return f"postgresql://{user}{host}:{port}/{name}"


@contextmanager
def scratch_database(prefix: str = "cesar_test", admin_url: str = ADMIN_URL) -> Iterator[str]:
    """A new, empty database on ``admin_url``'s server, dropped when the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin(admin_url) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name, admin_url)
    finally:
        with admin(admin_url) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
