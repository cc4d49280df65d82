"""Connections to PostgreSQL: a pool, retries through a lost connection, migrations.

Every operation of the store runs through :meth:`Database.run`, which retries it on a
fresh connection when the server goes away (a restart, a failover, a killed backend),
with exponential backoff up to ``reconnect_seconds``. The operation is told whether it is
a retry, because the first attempt may have committed before its answer was lost; each
operation then checks for its own earlier effect rather than doing it twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from cesar_core.errors import CesarError, InvalidOptionsError, StoreUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")
Connection = AsyncConnection[DictRow]
#: One operation: ``work(connection, retried)``.
Work = Callable[[Connection, bool], Awaitable[T]]

#: Advisory lock keys (any 64-bit numbers, fixed for good): one node migrates at a time.
MIGRATION_LOCK = 0x63_65_73_61_72_00_00_01
CONNECT_TIMEOUT = 10
RECONNECT_SECONDS = 60.0


def describe(url: str) -> str:
    """``host:port/database`` of a URL, for messages: never its password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise InvalidOptionsError(
            f"Invalid PostgreSQL URL: {exc}.",
            hint="Write it as postgresql://user:password@host:5432/database.",
        ) from None
    host = parts.get("host") or "localhost"
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or parts.get('user') or ''}"


def _reason(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Database:
    """A pool of autocommit connections to one database, shared by one store or storage."""

    def __init__(
        self,
        where: str,
        pool: AsyncConnectionPool[Connection],
        reconnect_seconds: float = RECONNECT_SECONDS,
    ) -> None:
        self.where = where
        self.pool = pool
        self.reconnect_seconds = reconnect_seconds

    @classmethod
    async def open(
        cls,
        url: str,
        component: str,
        migrations: Sequence[Sequence[str]],
        *,
        max_size: int = 10,
    ) -> Database:
        """Connect, apply ``component``'s migrations, and open the pool.

        The first connection is made directly, so that a wrong URL or a stopped server
        fails at once with the driver's own reason rather than after a pool timeout.
        """
        where = describe(url)
        try:
            first = await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            )
        except psycopg.Error as exc:
            raise StoreUnavailableError(
                f"Cannot connect to PostgreSQL at {where}: {_reason(exc)}.",
                hint="Check that the server is running and that the URL's user, password "
                "and database are right (postgresql://user:password@host:5432/database).",
            ) from None
        async with first:
            await migrate(first, component, migrations, where)
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            url,
            connection_class=AsyncConnection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row},
            min_size=1,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT,
            name=f"cesar-{component}",
            open=False,
        )
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        return cls(where, pool)

    async def run(self, work: Work[T]) -> T:
        """Run ``work`` on a pooled connection, retrying through connection loss."""
        deadline = time.monotonic() + self.reconnect_seconds
        delay = 0.05
        retried = False
        while True:
            try:
                async with self.pool.connection() as connection:
                    return await work(connection, retried)
            except psycopg.OperationalError as exc:
                if time.monotonic() + delay >= deadline:
                    raise StoreUnavailableError(
                        f"PostgreSQL at {self.where} has not answered for "
                        f"{self.reconnect_seconds:g} s: {_reason(exc)}.",
                        hint="Check that the server is running and reachable; queued jobs "
                        "are safe in the database and go on once it is back.",
                    ) from exc
                logger.warning(
                    "PostgreSQL at %s: %s; retrying in %.2f s", self.where, _reason(exc), delay
                )
                await self.pool.check()  # drop every broken idle connection at once
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 2.0)
                retried = True

    async def close(self) -> None:
        await self.pool.close()


async def migrate(
    connection: AsyncConnection[Any],
    component: str,
    migrations: Sequence[Sequence[str]],
    where: str,
) -> None:
    """Apply the numbered ``migrations`` of ``component`` that this database lacks.

    Nodes starting together queue on an advisory lock held by the migrating transaction,
    so each migration is applied once, and a node never sees half a schema.
    """
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS cesar_migrations ("
            "component TEXT NOT NULL, version INTEGER NOT NULL, "
            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (component, version))"
        )
        cursor = await connection.execute(
            "SELECT COALESCE(MAX(version), 0) FROM cesar_migrations WHERE component = %s",
            (component,),
        )
        row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        if current > len(migrations):
            raise CesarError(
                f"The {component} tables in PostgreSQL at {where} have schema version "
                f"{current}, newer than this Cesar knows ({len(migrations)}).",
                hint="Upgrade Cesar on this machine to the version the other nodes run.",
            )
        for version, statements in enumerate(migrations, start=1):
            if version <= current:
                continue
            for statement in statements:
                await connection.execute(statement)
            await connection.execute(
                "INSERT INTO cesar_migrations (component, version) VALUES (%s, %s)",
                (component, version),
            )
