"""The live segments of running jobs in SQLite: their table, and what publishes and reads
them (on the connection's thread, like :mod:`.sqlite_work`).

Segments are kept in ``job_segments`` while their job runs; triggers drop them when it leaves
``processing`` (its result holds them, or its next attempt starts afresh) or is deleted.
"""

from __future__ import annotations

import builtins
import json
import sqlite3

from ..convert import from_dict, to_dict
from ..transcript import Segment

#: The migration that adds the table (one of :data:`.sqlite_work.MIGRATIONS`).
MIGRATION: tuple[str, ...] = (
    "CREATE TABLE job_segments (job_id TEXT NOT NULL, n INTEGER NOT NULL, "
    "data TEXT NOT NULL, PRIMARY KEY (job_id, n)) WITHOUT ROWID",
    "CREATE TRIGGER job_segments_left AFTER UPDATE OF state ON jobs "
    "WHEN NEW.state <> 'processing' "
    "BEGIN DELETE FROM job_segments WHERE job_id = NEW.id; END",
    "CREATE TRIGGER job_segments_deleted AFTER DELETE ON jobs "
    "BEGIN DELETE FROM job_segments WHERE job_id = OLD.id; END",
)


def publish(
    db: sqlite3.Connection,
    job_id: str,
    token: str,
    segments: builtins.list[Segment],
    progress: int | None,
) -> bool:
    """Append ``segments`` (and set ``progress``) while ``token`` holds the job."""
    owned = db.execute(
        "UPDATE jobs SET progress = COALESCE(?, progress) "
        "WHERE id = ? AND state = 'processing' AND lease_token = ?",
        (progress, job_id, token),
    )
    if owned.rowcount != 1:
        return False
    start = db.execute(
        "SELECT COALESCE(MAX(n) + 1, 0) FROM job_segments WHERE job_id = ?", (job_id,)
    ).fetchone()[0]
    db.executemany(
        "INSERT INTO job_segments (job_id, n, data) VALUES (?, ?, ?)",
        [
            (job_id, start + i, json.dumps(to_dict(segment), separators=(",", ":")))
            for i, segment in enumerate(segments)
        ],
    )
    return True


def live_segments(db: sqlite3.Connection, job_id: str, after: int) -> builtins.list[Segment]:
    """The job's segments from the ``after``-th on."""
    rows = db.execute(
        "SELECT data FROM job_segments WHERE job_id = ? AND n >= ? ORDER BY n", (job_id, after)
    ).fetchall()
    return [from_dict(json.loads(row[0]), Segment) for row in rows]
