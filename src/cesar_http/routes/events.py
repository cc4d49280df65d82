"""Live jobs as Server-Sent Events: one job's events, and the state changes of all jobs.

The service says what happens (:mod:`cesar_core.live`); this module only frames it, with
sse-starlette (framing, keep-alive comments, disconnects). Each event's data is JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from cesar_core.live import LiveEvent

from ..multipart import FormError
from ..runtime import Runtime, only_query, runtime
from ..schemas import ErrorBody

logger = logging.getLogger(__name__)
router = APIRouter(tags=["jobs"])

#: A comment line is sent on a quiet stream this often, so that proxies keep it open.
PING_SECONDS = 15
#: Headers that keep proxies (nginx) from buffering the stream.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_STREAM = {
    "content": {
        "text/event-stream": {
            "schema": {"type": "string", "description": "Server-Sent Events; data is JSON."}
        }
    }
}


class LastEventIdError(FormError):
    """A ``Last-Event-ID`` that no event of ours carried (it counts segments: 0 or more)."""

    code = "invalid_last_event_id"


def _after(last_event_id: str | None) -> int:
    if last_event_id is None or not last_event_id.strip():
        return 0
    value = last_event_id.strip()
    if not value.isdigit() or len(value) > 9:
        raise LastEventIdError(
            f"Invalid Last-Event-ID {last_event_id[:40]!r}.",
            hint="Send back the id of the last event received (a number), or none to "
            "start from the beginning.",
        )
    return int(value)


async def frame(events: AsyncIterator[LiveEvent]) -> AsyncIterator[ServerSentEvent]:
    """``events`` as Server-Sent Events, with JSON data."""
    async for event in events:
        yield ServerSentEvent(
            data=json.dumps(event.data, separators=(",", ":"), ensure_ascii=False),
            event=event.event,
            id=event.id,
        )


def event_stream(events: AsyncIterator[Any]) -> EventSourceResponse:
    """The response that streams ``events`` (already framed or :class:`LiveEvent`)."""
    return EventSourceResponse(events, ping=PING_SECONDS, headers=STREAM_HEADERS)


@router.get(
    "/jobs/events",
    summary="Follow the state changes of all jobs (Server-Sent Events)",
    response_class=EventSourceResponse,
    dependencies=[Depends(only_query("limit"))],
    responses={200: _STREAM, 400: {"model": ErrorBody, "description": "A bad parameter."}},
)
async def all_job_events(
    state: Annotated[Runtime, Depends(runtime)],
    limit: Annotated[int, Query(ge=1, le=1000, description="How many newest jobs.")] = 100,
) -> EventSourceResponse:
    """A ``job`` event (``id``, ``status``, ``progress``) for each of the newest ``limit``
    jobs when the stream starts, then whenever one changes status or progress, and for
    each new job: what a list of jobs needs to stay current. The stream does not end."""
    return event_stream(frame(state.service.follow_all(limit=limit)))


@router.get(
    "/jobs/{job_id}/events",
    summary="Follow a job live: status, progress and segments (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={
        200: _STREAM,
        400: {"model": ErrorBody, "description": "A malformed Last-Event-ID."},
        404: {"model": ErrorBody, "description": "No job has this id."},
    },
)
async def job_events(
    job_id: str,
    state: Annotated[Runtime, Depends(runtime)],
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
) -> EventSourceResponse:
    """``status`` first (and at each change), ``progress`` at each change, each
    ``segment`` (``id``, ``start``, ``end``, ``text``, ``speaker`` when known) as soon as a
    worker transcribed it, then one of ``completed``, ``error`` or ``cancelled``, and the
    stream ends. Segment events carry an id (the number of segments so far): a client that
    reconnects with ``Last-Event-ID`` gets only the segments it missed. Comment lines keep
    a quiet stream open."""
    events = await state.service.follow(job_id, after=_after(last_event_id))
    return event_stream(frame(events))


async def _openai_events(state: Runtime, job_id: str) -> AsyncIterator[str]:
    """A job's segments as OpenAI's transcription stream: ``transcript.text.delta`` for
    each (the deltas join into the text), then ``transcript.text.done``; a job that fails
    sends OpenAI's ``{"error": ...}``, which the SDK raises. A client that goes away, or a
    job not finished within ``sync_timeout``, cancels the job, as the synchronous answer
    does."""
    done = False
    timeout = state.settings.sync_timeout
    try:
        sent = 0
        async with asyncio.timeout(timeout):
            async for event in await state.service.follow(job_id):
                if event.event == "segment":
                    text = str(event.data["text"])
                    delta = text if sent == 0 or not text else " " + text
                    sent += 1 if text else 0
                    yield _json({"type": "transcript.text.delta", "delta": delta})
                elif event.event == "completed":
                    text = event.data.get("text", "")
                    yield _json({"type": "transcript.text.done", "text": text})
                elif event.event in ("error", "cancelled"):
                    error = event.data.get("error") or {
                        "code": "job_cancelled",
                        "message": "The job was cancelled before it completed.",
                    }
                    yield _json({"error": {**error, "type": "server_error"}})
        done = True
    except TimeoutError:  # as the synchronous answer: nobody waits longer for this job
        logger.warning("job %s not finished within %g s; cancelled", job_id, timeout)
        message = f"The job was not finished within {timeout:g} s, so it was cancelled."
        yield _json({"error": {"code": "timeout", "message": message, "type": "server_error"}})
    finally:
        if not done:  # timed out, or the client went away: nobody will read the result
            await asyncio.shield(state.service.cancel(job_id))


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def openai_stream(state: Runtime, job_id: str) -> EventSourceResponse:
    """The answer to ``stream=true`` on the OpenAI-compatible endpoints."""
    return event_stream(_openai_events(state, job_id))
