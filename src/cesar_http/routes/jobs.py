"""The job API: submit audio, follow the job, fetch the transcript, cancel or delete."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from cesar_core import render
from cesar_core.jobs import JobState
from cesar_core.speakers import rename_speakers
from cesar_core.transcription.formats import FORMATS, MEDIA_TYPES, SUBTITLE_FORMATS
from cesar_core.transcription.subtitles import SubtitleOptions, words_are_estimated

from ..downloads import (
    ESTIMATED_HEADER,
    content_disposition,
    download_name,
    subtitle_query,
)
from ..errors import error_response
from ..options import check_cursor, job_options, read_json
from ..runtime import Runtime, only_query, runtime
from ..schemas import (
    ErrorBody,
    JobOut,
    JobPage,
    TranscribeFields,
    UrlSubmission,
    inline_schema,
    job_out,
)
from ..uploads import FILE_FIELD, receive_upload

router = APIRouter(tags=["jobs"])

#: How long a client should wait before polling a new job.
RETRY_AFTER_SECONDS = 2

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "The body is malformed, or the URL is refused."),
        (413, "The upload or the JSON body is larger than the server accepts."),
        (422, "A field is invalid, the model is unknown, or the file is not audio."),
    )
}

_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary"},
                        **{
                            name: {"type": "string", "description": f"see {name} below"}
                            for name in TranscribeFields.model_fields
                        },
                    },
                }
            },
            "application/json": {"schema": inline_schema(UrlSubmission)},
        },
    }
}


@router.post(
    "/transcribe",
    status_code=202,
    response_model=JobOut,
    summary="Submit audio: an upload (multipart) or a URL (JSON)",
    responses={
        200: {"model": JobOut, "description": "The job an idempotency key already named."},
        **_ERRORS,
    },
    openapi_extra=_SUBMIT_BODY,
)
async def submit(request: Request, state: Annotated[Runtime, Depends(runtime)]) -> Response:
    """Queue a transcription and answer at once with the job (``202``), its URL in
    ``Location``. Upload the audio as the form field ``file`` with the options as other form
    fields, or send JSON ``{"url": ..., options}`` to have a worker fetch it. The upload is
    streamed to storage and refused (``413``) as soon as it passes the size limit."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        job, created = await _submit_url(request, state)
    else:
        job, created = await _submit_upload(request, state)
    headers = {"Location": f"/jobs/{job.id}", "Retry-After": str(RETRY_AFTER_SECONDS)}
    body = job_out(job).model_dump(mode="json")
    return JSONResponse(body, status_code=202 if created else 200, headers=headers)


async def _submit_url(request: Request, state: Runtime) -> Any:
    payload = await read_json(request, state.settings.max_json_bytes)
    submission = UrlSubmission.model_validate(payload)
    return await state.service.submit_url(submission.url, **await job_options(submission, state))


async def _submit_upload(request: Request, state: Runtime) -> Any:
    async with receive_upload(request, state) as (stored, fields):
        values = TranscribeFields.model_validate({name: v[-1] for name, v in fields.items()})
        job_settings = await job_options(values, state)
    return await state.service.submit_stored(stored, **job_settings)


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="A job, with its transcript once completed",
    responses={404: {"model": ErrorBody, "description": "No job has this id."}},
)
async def get_job(job_id: str, state: Annotated[Runtime, Depends(runtime)]) -> JobOut:
    """The job's ``status``, progress and times; once ``completed`` also its text, language,
    segments and words; once failed (``error``, still a 200) its ``error``."""
    return job_out(await state.service.get(job_id))


@router.get(
    "/jobs",
    response_model=JobPage,
    summary="Jobs, newest first, a page at a time",
    dependencies=[Depends(only_query("status", "limit", "cursor"))],
    responses={400: {"model": ErrorBody, "description": "An unknown query parameter."}},
)
async def list_jobs(
    state: Annotated[Runtime, Depends(runtime)],
    status: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=100, description="next_cursor of the previous page.")
    ] = None,
) -> JobPage:
    """A page of jobs without their transcripts; ``next_cursor`` continues the listing."""
    check_cursor(cursor)
    page = await state.service.list(state=status, limit=limit, cursor=cursor)
    return JobPage(jobs=[job_out(job) for job in page.jobs], next_cursor=page.next_cursor)


class SpeakerNames(BaseModel):
    """Names for the speakers of a completed job, by label."""

    model_config = ConfigDict(extra="forbid")

    speakers: dict[
        Annotated[str, Field(max_length=40)],
        Annotated[str, Field(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")],
    ] = Field(max_length=64, examples=[{"SPEAKER_00": "Alice", "SPEAKER_01": "Bob"}])


@router.patch(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="Name a completed job's speakers",
    responses={
        404: {"model": ErrorBody, "description": "No job has this id."},
        409: {"model": ErrorBody, "description": "The job is not completed."},
        422: {"model": ErrorBody, "description": "A label the transcript does not have."},
        501: {"model": ErrorBody, "description": "The store cannot change transcripts."},
    },
)
async def name_speakers(
    job_id: str, names: SpeakerNames, state: Annotated[Runtime, Depends(runtime)]
) -> JobOut:
    """``{"speakers": {"SPEAKER_00": "Alice"}}`` names speakers (an empty name takes a name
    back); the job and every format of its transcript show the names from then on."""
    return job_out(await rename_speakers(state.service, job_id, names.speakers))


@router.delete(
    "/jobs/{job_id}",
    summary="Cancel a queued or running job; delete a finished one",
    responses={
        200: {"model": JobOut, "description": "The job was cancelled; it is kept."},
        204: {"description": "The job and its files are deleted (or were already gone)."},
    },
)
async def delete_job(job_id: str, state: Annotated[Runtime, Depends(runtime)]) -> Response:
    """Idempotent: a running or queued job is cancelled (answer: the job); a finished job is
    deleted with its files, and an unknown id is already gone (both answer ``204``)."""
    cancelled = await state.service.cancel_or_delete(job_id)
    if cancelled is not None:
        return JSONResponse(job_out(cancelled).model_dump(mode="json"))
    return Response(status_code=204)


@router.get(
    "/jobs/{job_id}/transcript",
    summary="The transcript as txt, srt, vtt, json or tsv",
    responses={
        200: {"content": {MEDIA_TYPES[fmt].split(";")[0]: {} for fmt in FORMATS}},
        404: {"model": ErrorBody, "description": "No job has this id."},
        409: {"model": ErrorBody, "description": "The job is not completed (yet)."},
    },
)
async def transcript(
    job_id: str,
    state: Annotated[Runtime, Depends(runtime)],
    subtitles: Annotated[SubtitleOptions, Depends(subtitle_query)],
    format: Annotated[str, Query(pattern=f"^({'|'.join(FORMATS)})$")] = "txt",
) -> Response:
    """The result of a completed job, with the format's media type, to be saved under the
    upload's name (``Content-Disposition``). The subtitle options (``preset``,
    ``max_line_width``, ...) shape srt and vtt cues; for a job transcribed without word
    timestamps the words' times are estimated, and the header ``Cesar-Subtitle-Timing:
    estimated`` says so."""
    job = await state.service.get(job_id)
    if job.state is not JobState.COMPLETED or job.result is None:
        if job.state.terminal:  # cancelled or failed: it never will be completed
            return error_response(
                409,
                "job_not_completed",
                f"The job is {job.state.value}; it has no transcript and never will.",
                f"GET /jobs/{job_id} says why; submit the audio again for a transcript.",
            )
        return error_response(
            409,
            "job_not_completed",
            f"The job is {job.state.value}; its transcript exists once it is completed.",
            f"Poll /jobs/{job_id} until its status is completed.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    headers = {
        "Content-Disposition": content_disposition(
            download_name(job.source.filename, format, job.id)
        )
    }
    shaped = subtitles.needs_words and format in SUBTITLE_FORMATS
    if shaped and words_are_estimated(job.result):
        headers[ESTIMATED_HEADER] = "estimated"
    # Re-flowing an hour of words takes a moment: off the event loop.
    text = await asyncio.to_thread(render, job.result, format, subtitles)
    return Response(text, media_type=MEDIA_TYPES[format], headers=headers)
