"""Append every Cesar job event to the JSON-lines file named by ``CESAR_AUDIT_LOG``."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Awaitable
from pathlib import Path

import cesar_core
from cesar_core.events import JobEvent
from cesar_core.protocols import JobStore

#: Several jobs may end at once; their lines must not interleave.
_write_lock = threading.Lock()


def _append(path: Path, line: str) -> None:
    with _write_lock, path.open("a", encoding="utf-8") as log:
        log.write(line + "\n")


async def _record(event: JobEvent, store: JobStore, path: Path) -> None:
    job = await store.get(event.job_id)
    entry = {
        "event": event.id,
        "type": event.type.value,
        "job_id": event.job_id,
        "state": event.state.value,
        "at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "host": socket.gethostname(),
        "audio_seconds": job.result.duration if job and job.result else None,
        "error": event.error.code if event.error else None,
    }
    await asyncio.to_thread(_append, path, json.dumps(entry))


@cesar_core.hookimpl
def cesar_job_event(
    event: JobEvent, store: JobStore, settings: cesar_core.Settings
) -> Awaitable[None] | None:
    target = os.environ.get("CESAR_AUDIT_LOG")
    if not target:
        return None
    return _record(event, store, Path(target))
