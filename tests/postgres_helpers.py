"""A fresh PostgreSQL database for each test run, emptied before each test that uses it.

The server is a real one: ``CESAR_TEST_POSTGRES_URL`` (default: the local server's ``test``
database) is where the run connects to create ``cesar_test_<random>``, which it drops at
the end. There is no skip: a suite that cannot reach PostgreSQL fails and says why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ADMIN_URL = os.environ.get("CESAR_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
TABLES = ("cesar_blob_parts", "cesar_blobs", "cesar_jobs")


def admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {ADMIN_URL} is not reachable ({exc}). Start it (.ci/run shows how) "
            "or point CESAR_TEST_POSTGRES_URL at a server where this user may create databases.",
            pytrace=False,
        )


def database_url(name: str) -> str:
    """``ADMIN_URL`` with another database name, as a ``postgresql://`` URL."""
    parts = conninfo_to_dict(ADMIN_URL)
    parts["dbname"] = name
    host = parts.get("host", "127.0.0.1")
    port = parts.get("port", "5432")
    user = f"{parts['user']}@" if parts.get("user") else ""
    assert "password" not in parts or parts["password"] is None, make_conninfo(**parts)
    return f"postgresql://{user}{host}:{port}/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this run's own, dropped afterwards."""
    name = f"cesar_test_{uuid.uuid4().hex[:12]}"
    with admin() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        with admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
