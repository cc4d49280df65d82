"""A job's audio, for playing it beside the transcript: ``GET /jobs/{id}/audio``.

Browsers seek in an ``<audio>`` element with range requests, so both kinds of audio answer
them: a file through Starlette's ``FileResponse``, inline bytes through :func:`byte_range`.
"""

from __future__ import annotations

import mimetypes
import re
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from cesar_core.playback import job_audio

from ..runtime import Runtime, runtime
from ..schemas import ErrorBody

router = APIRouter(tags=["jobs"])

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@router.get(
    "/jobs/{job_id}/audio",
    summary="The job's audio, with range requests",
    response_class=Response,
    responses={
        200: {"content": {"audio/*": {}}, "description": "The audio as it was received."},
        206: {"description": "The part of the audio the Range header asked for."},
        404: {"model": ErrorBody, "description": "No such job, or its audio is not kept."},
        416: {"description": "The range lies outside the audio."},
    },
)
async def audio(
    job_id: str, request: Request, state: Annotated[Runtime, Depends(runtime)]
) -> Response:
    """The audio as uploaded (or downloaded from the job's URL), while the job runs and,
    with ``keep_audio`` (the default), after it ended until it is deleted or pruned."""
    job = await state.service.get(job_id, include_result=False)
    media_type = _media_type(job.source.filename)
    stack = AsyncExitStack()
    try:
        found = await stack.enter_async_context(
            job_audio(state.service.store, state.service.storage, job)
        )
    except BaseException:
        await stack.aclose()
        raise
    if isinstance(found, Path):  # closed once the file is sent (a copy is removed then)
        return FileResponse(found, media_type=media_type, background=BackgroundTask(stack.aclose))
    await stack.aclose()
    return byte_range(found, request.headers.get("range"), media_type)


def byte_range(data: bytes, header: str | None, media_type: str) -> Response:
    """``data``, or the one range ``header`` asks for (RFC 9110: a server may answer a
    request for several ranges, or a malformed one, with the whole)."""
    size = len(data)
    headers = {"Accept-Ranges": "bytes"}
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match[1] == match[2] == "":
        return Response(data, headers=headers, media_type=media_type)
    if match[1] == "":  # the last N bytes
        start, end = max(0, size - int(match[2])), size - 1
    else:
        start, end = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
    if start >= size or start > end:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(data[start : end + 1], status_code=206, headers=headers, media_type=media_type)


def _media_type(filename: str | None) -> str:
    guessed = mimetypes.guess_type(filename or "")[0]
    return (
        guessed
        if guessed and guessed.startswith(("audio/", "video/"))
        else "application/octet-stream"
    )
