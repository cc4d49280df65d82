"""OpenAI-compatible endpoints, so that OpenAI's SDKs and tools work against Cesar unchanged.

``/v1/audio/transcriptions`` and ``/v1/audio/translations`` are synchronous, as OpenAI's are:
the request queues a job like ``POST /transcribe`` and answers once a worker finished it.
The model ``whisper-1`` (what OpenAI clients send) means the server's default model; any
other name is a Cesar model name.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from cesar_core import TranscribeOptions, render
from cesar_core.jobs import Job, JobState
from cesar_core.transcript import Task, Transcript
from cesar_core.transcription.formats import MEDIA_TYPES

from ..app import Runtime, runtime
from ..multipart import FormError
from ..schemas import ErrorBody
from ..uploads import receive_upload

router = APIRouter(prefix="/v1", tags=["openai"])

OPENAI_MODEL = "whisper-1"
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
#: The longest a synchronous request waits for its job.
WAIT_SECONDS = 3600.0

_FIELDS = {
    "file": {"type": "string", "format": "binary"},
    "model": {"type": "string", "description": "whisper-1 (the default model) or a Cesar model"},
    "language": {"type": "string"},
    "prompt": {"type": "string"},
    "response_format": {"type": "string", "enum": list(FORMATS)},
    "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    "timestamp_granularities[]": {
        "type": "array",
        "items": {"type": "string", "enum": ["word", "segment"]},
    },
}


def _body(translate: bool) -> dict[str, Any]:
    fields = {k: v for k, v in _FIELDS.items() if not (translate and k == "language")}
    schema = {"type": "object", "required": ["file", "model"], "properties": fields}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/plain": {}}},
    400: {"model": ErrorBody, "description": "The form is malformed."},
    413: {"model": ErrorBody, "description": "The upload is too large."},
    422: {"model": ErrorBody, "description": "A field is invalid, or the file is not audio."},
    500: {"model": ErrorBody, "description": "The transcription failed."},
}


@router.post(
    "/audio/transcriptions",
    summary="OpenAI-compatible transcription (waits for the result)",
    responses=_RESPONSES,
    openapi_extra=_body(translate=False),
)
async def transcriptions(request: Request, state: Annotated[Runtime, Depends(runtime)]) -> Response:
    """Transcribe an upload and answer with the result in ``response_format``."""
    return await _run(request, state, Task.TRANSCRIBE)


@router.post(
    "/audio/translations",
    summary="OpenAI-compatible translation to English (waits for the result)",
    responses=_RESPONSES,
    openapi_extra=_body(translate=True),
)
async def translations(request: Request, state: Annotated[Runtime, Depends(runtime)]) -> Response:
    """Translate an upload's speech into English text."""
    return await _run(request, state, Task.TRANSLATE)


@router.get("/models", summary="OpenAI-compatible model list")
async def models(state: Annotated[Runtime, Depends(runtime)]) -> dict[str, Any]:
    """``whisper-1`` (the default model) and every model available offline."""
    import asyncio

    names = [OPENAI_MODEL]
    for location in await asyncio.to_thread(state.resolver.available):
        if location.path is not None and location.name not in names:
            names.append(location.name)
    created = int(time.time())
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "cesar"}
            for name in names
        ],
    }


async def _run(request: Request, state: Runtime, task: Task) -> Response:
    async with receive_upload(request, state) as (stored, form):
        fields = {name: values[-1] for name, values in form.items()}
        granularities = set(form.get("timestamp_granularities[]", []))
        response_format = fields.get("response_format") or "json"
        if response_format not in FORMATS:
            raise FormError(
                f"response_format must be one of {', '.join(FORMATS)}, not {response_format!r}."
            )
        model = fields.get("model") or OPENAI_MODEL
        options = TranscribeOptions(
            model=state.settings.model if model == OPENAI_MODEL else model,
            language=None if task is Task.TRANSLATE else (fields.get("language") or None),
            task=task,
            initial_prompt=fields.get("prompt") or None,
            temperature=_number(fields.get("temperature")),
            word_timestamps="word" in granularities,
        )
        await state.check_model(options.model)
    job, _ = await state.service.submit_stored(stored, options=options)
    done = await state.service.wait(job.id, timeout=WAIT_SECONDS)
    return _answer(done, response_format, granularities)


def _number(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise FormError(f"temperature must be a number, not {value!r}.") from None


def _answer(job: Job, response_format: str, granularities: set[str]) -> Response:
    if job.state is not JobState.COMPLETED or job.result is None:
        error = job.error
        status = 422 if error is not None and error.code.endswith("audio") else 500
        body = {
            "error": {
                "code": error.code if error else job.state.value,
                "message": error.message if error else f"The job was {job.state.value}.",
                "hint": None,
                "field": None,
            }
        }
        return JSONResponse(body, status_code=status)
    result = job.result
    if response_format == "json":
        return JSONResponse({"text": result.text})
    if response_format == "text":
        return PlainTextResponse(result.text)
    if response_format in ("srt", "vtt"):
        return Response(render(result, response_format), media_type=MEDIA_TYPES[response_format])
    return JSONResponse(_verbose(result, granularities))


def _verbose(result: Transcript, granularities: set[str]) -> dict[str, Any]:
    """OpenAI's ``verbose_json``: segments always, words when asked for."""
    body: dict[str, Any] = {
        "task": result.task.value,
        "language": result.language,
        "duration": result.duration,
        "text": result.text,
        "segments": [
            {
                "id": segment.id,
                "seek": 0,
                "start": segment.start,
                "end": segment.end,
                "text": segment.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": segment.avg_logprob,
                "compression_ratio": 0.0,
                "no_speech_prob": segment.no_speech_prob,
            }
            for segment in result.segments
        ],
    }
    if "word" in granularities:
        body["words"] = [
            {"word": word.word.strip(), "start": word.start, "end": word.end}
            for segment in result.segments
            for word in segment.words
        ]
    return body
