"""Live jobs on PostgreSQL: a running job's segments, and wake-ups from every node.

Segments wait in ``cesar_job_segments`` while their job runs; a trigger drops them when it
leaves ``processing`` (the result holds them, or the next attempt starts afresh), the cascade
when it is deleted. Every change a follower cares about (a job created, its state or progress
changed, segments added) sends ``NOTIFY cesar_job_events`` with the job's id, in the
transaction that made it: a node that follows jobs LISTENs on a connection of its own,
opened on the first follow, so API nodes see what workers on other machines publish.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from typing import Any

from attrs import evolve

from cesar_core.convert import from_dict, to_dict
from cesar_core.jobs import Job, JobState
from cesar_core.stores.common import Changes
from cesar_core.transcript import Segment

from .database import Connection, Database
from .listen import Listener

#: The channel on which changed jobs are announced (payload: the job's id).
EVENTS_CHANNEL = "cesar_job_events"

MIGRATION: tuple[str, ...] = (
    "CREATE TABLE cesar_job_segments (job_id TEXT NOT NULL "
    "REFERENCES cesar_jobs (id) ON DELETE CASCADE, n INTEGER NOT NULL, data JSON NOT NULL, "
    "PRIMARY KEY (job_id, n))",
    "CREATE FUNCTION cesar_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP = 'UPDATE' AND NEW.state <> 'processing' THEN "
    "DELETE FROM cesar_job_segments WHERE job_id = NEW.id; END IF; "
    "IF TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM NEW.state "
    "OR OLD.progress IS DISTINCT FROM NEW.progress THEN "
    f"PERFORM pg_notify('{EVENTS_CHANNEL}', NEW.id); END IF; RETURN NULL; END $$",
    "CREATE TRIGGER cesar_job_changed AFTER INSERT OR UPDATE OF state, progress ON cesar_jobs "
    "FOR EACH ROW EXECUTE FUNCTION cesar_job_changed()",
)

#: Append segments while the caller holds the job, and announce them.
PUBLISH = (
    "WITH owned AS (UPDATE cesar_jobs SET progress = COALESCE(%(progress)s, progress) "
    "WHERE id = %(id)s AND state = 'processing' AND lease_token = %(token)s RETURNING id), "
    "base AS (SELECT COALESCE(MAX(n) + 1, 0) AS n FROM cesar_job_segments "
    "WHERE job_id = %(id)s), "
    "added AS (INSERT INTO cesar_job_segments (job_id, n, data) "
    "SELECT owned.id, base.n + s.ord - 1, s.data FROM owned, base, "
    "unnest(%(segments)s::json[]) WITH ORDINALITY AS s(data, ord) RETURNING 1) "
    "SELECT (SELECT count(*) FROM owned) AS owned, (SELECT count(*) FROM added) AS added, "
    f"pg_notify('{EVENTS_CHANNEL}', %(id)s)"
)


class LiveJobs:
    """The :class:`~cesar_core.protocols.LiveStore` half of
    :class:`~cesar_postgres.store.PostgresJobStore`."""

    _db: Database

    def _follow_changes(self, url: str, where: str) -> None:
        self._changes = Changes()
        self._change_listener = Listener(
            url, where, channel=EVENTS_CHANNEL, on_notify=self._changes.notify
        )

    async def publish(
        self, job_id: str, token: str, segments: Sequence[Segment], progress: int | None = None
    ) -> bool:
        params: dict[str, Any] = {
            "id": job_id,
            "token": token,
            "progress": progress,
            "segments": [json.dumps(to_dict(segment)) for segment in segments],
        }

        async def work(db: Connection, retried: bool) -> bool:
            if retried and segments and await _published(db, job_id, params["segments"]):
                params["segments"] = []  # the first try committed: record the progress only
            row = await (await db.execute(PUBLISH, params)).fetchone()
            return row is not None and row["owned"] == 1

        return await self._db.run(work)

    async def live_segments(self, job_id: str, after: int = 0) -> builtins.list[Segment]:
        params = {"id": job_id, "after": after}

        async def work(db: Connection, retried: bool) -> builtins.list[Segment]:
            cursor = await db.execute(
                "SELECT data FROM cesar_job_segments WHERE job_id = %(id)s "
                "AND n >= %(after)s ORDER BY n",
                params,
            )
            return [from_dict(row["data"], Segment) for row in await cursor.fetchall()]

        return await self._db.run(work)

    async def wait_for_change(self, job_id: str | None, timeout: float) -> None:
        self._change_listener.start()
        await self._changes.wait(job_id, timeout)

    async def _with_segments(self, job: Job | None, include_result: bool) -> Job | None:
        """``job`` with its live segments, when it runs and its result was asked for."""
        if job is None or not include_result or job.state is not JobState.PROCESSING:
            return job
        return evolve(job, segments=tuple(await self.live_segments(job.id)))

    async def _stop_following(self) -> None:
        await self._change_listener.close()


async def _published(db: Connection, job_id: str, segments: list[str]) -> bool:
    """Whether the job's last segments are ``segments``: a retried publish whose answer was
    lost after its commit finds its own segments there. Two publishes never carry the same
    segments (each carries the segments that came since the last), so this is exact."""
    cursor = await db.execute(
        "SELECT data FROM cesar_job_segments WHERE job_id = %(id)s ORDER BY n DESC LIMIT %(count)s",
        {"id": job_id, "count": len(segments)},
    )
    last = [row["data"] for row in reversed(await cursor.fetchall())]
    return last == [json.loads(segment) for segment in segments]
