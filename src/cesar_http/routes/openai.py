"""OpenAI-compatible endpoints, so that OpenAI's SDKs and tools work against Cesar unchanged.

``/v1/audio/transcriptions`` and ``/v1/audio/translations`` are synchronous, as OpenAI's are:
the request queues a job like ``POST /transcribe`` and answers once a worker finished it.
The model ``whisper-1`` (what OpenAI clients send) means the server's default model; any
other name is a Cesar model name.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError

from cesar_core import render
from cesar_core.jobs import Job, JobState
from cesar_core.languages import LANGUAGE_NAMES
from cesar_core.transcript import Task, Transcript
from cesar_core.transcription.formats import MEDIA_TYPES, SUBTITLE_FORMATS
from cesar_core.transcription.subtitles import SubtitleOptions

from ..downloads import SUBTITLE_FIELDS, subtitle_form
from ..errors import WaitTimeoutError, job_error_response
from ..multipart import FormError
from ..options import job_options
from ..runtime import Runtime, runtime
from ..schemas import ErrorBody, TranscribeFields
from ..uploads import receive_upload
from .events import openai_stream

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["openai"])

OPENAI_MODEL = "whisper-1"
FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")
#: Cesar's speaker options, taken as extra form fields under their own names.
SPEAKER_FIELDS = ("diarize", "num_speakers", "min_speakers", "max_speakers")
#: Cesar's language and hallucination-guard options, taken as extra form fields too.
DECODING_FIELDS = (
    "languages",
    "multilingual",
    "condition_on_previous_text",
    "compression_ratio_threshold",
    "log_prob_threshold",
    "no_speech_threshold",
    "hallucination_silence_threshold",
)
#: The options each endpoint sets itself (the client sends no ``task``), and what the
#: client can do instead when the model cannot do it (see ``check_model``).
_SET_HERE = {
    Task.TRANSLATE: {"task": "POST English speech to /v1/audio/transcriptions instead"},
}
#: OpenAI's form fields and the Cesar option each one sets.
_OPTION_OF = {"model": "model", "language": "language", "prompt": "initial_prompt"}

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
    "stream": {
        "type": "boolean",
        "description": "true: Server-Sent Events transcript.text.delta, then .done",
    },
    "diarize": {
        "type": "string",
        "enum": ["auto", "channels"],
        "description": "Cesar: label speakers (diarized_json implies auto)",
    },
    **{
        name: {"type": "integer", "minimum": 1, "description": "Cesar: speaker count"}
        for name in SPEAKER_FIELDS[1:]
    },
    "languages": {"type": "string", "description": "Cesar: detect among these (de,fr,it)"},
    "multilingual": {"type": "boolean", "description": "Cesar: a language per segment"},
    "condition_on_previous_text": {"type": "boolean", "description": "Cesar (faster-whisper)"},
    **{
        name: {"type": "number", "description": "Cesar: faster-whisper's guard"}
        for name in DECODING_FIELDS[3:]
    },
    **{  # Cesar's own: shape srt and vtt cues (see docs/subtitles.md)
        name: {"type": "string", "description": "Cesar subtitle option (srt and vtt)"}
        for name in SUBTITLE_FIELDS
    },
}


def _body(translate: bool) -> dict[str, Any]:
    fields = dict(_FIELDS)
    if translate:  # OpenAI's translations take no language; Cesar takes the one spoken
        fields["language"] = {
            "type": "string",
            "description": "Cesar: the language spoken (left out, it is detected)",
        }
    schema = {"type": "object", "required": ["file", "model"], "properties": fields}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/plain": {}, "text/event-stream": {}}},
    400: {"model": ErrorBody, "description": "The form is malformed."},
    413: {"model": ErrorBody, "description": "The upload is too large."},
    422: {
        "model": ErrorBody,
        "description": "A field is invalid, the file is not audio, or the job failed for good.",
    },
    503: {"model": ErrorBody, "description": "The job failed for now; sending again may work."},
    504: {"model": ErrorBody, "description": "No worker finished the job in time; cancelled."},
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
        stream = fields.get("stream", "").strip().lower() in ("true", "1")
        granularities = set(form.get("timestamp_granularities[]", []))
        response_format = fields.get("response_format") or "json"
        if stream and response_format not in ("json", "text"):
            raise FormError(
                f"stream=true streams text: response_format {response_format!r} comes whole.",
                hint="Use response_format json or text with stream=true, or leave stream unset.",
                field="response_format",
            )
        if response_format not in FORMATS:
            raise FormError(
                f"response_format must be one of {', '.join(FORMATS)}, not {response_format!r}.",
                field="response_format",
            )
        subtitles = subtitle_form(fields)
        words = "word" in granularities or (
            subtitles.needs_words and response_format in SUBTITLE_FORMATS
        )
        if response_format == "diarized_json" and not fields.get("diarize"):
            fields["diarize"] = "auto"  # what OpenAI's diarizing model always does
        values = _fields(fields, task, granularities, words)
        job_settings = await job_options(values, state, _SET_HERE.get(task))
    job, _ = await state.service.submit_stored(stored, **job_settings)
    if stream:  # OpenAI's events, each segment as soon as a worker transcribed it
        return openai_stream(state, job.id)
    finished = await _wait(state, job)
    # Subtitles re-flowed from an hour of words, or the JSON of thousands of segments, take
    # a moment of CPU: built in a thread, as GET /jobs/{id}/transcript renders, so that one
    # big answer holds no other request up.
    return await asyncio.to_thread(_answer, finished, response_format, granularities, subtitles)


def _fields(
    fields: dict[str, str], task: Task, granularities: set[str], words: bool = False
) -> TranscribeFields:
    """OpenAI's form as Cesar's options, checked like those of ``POST /transcribe``."""
    values: dict[str, Any] = {
        option: fields[name] for name, option in _OPTION_OF.items() if fields.get(name)
    }
    if values.get("model") == OPENAI_MODEL:
        del values["model"]  # the server's default
    if fields.get("temperature"):
        values["temperature"] = fields["temperature"]
    values.update({name: fields[name] for name in SPEAKER_FIELDS if fields.get(name)})
    values.update({name: fields[name] for name in DECODING_FIELDS if fields.get(name)})
    try:
        return TranscribeFields.model_validate(
            {**values, "task": task, "word_timestamps": words or "word" in granularities}
        )
    except ValidationError as exc:
        raise _renamed(exc) from None


def _renamed(exc: ValidationError) -> FormError:
    """A validation error named by the OpenAI field at fault."""
    first = exc.errors()[0]
    option = str(first["loc"][0]) if first["loc"] else ""
    name = next((name for name, opt in _OPTION_OF.items() if opt == option), option)
    return FormError(f"{name}: {first['msg']}.", field=name)


async def _wait(state: Runtime, job: Job) -> Job:
    """The finished job; past ``sync_timeout`` the job is cancelled (nobody would read its
    result) and the request answered 504."""
    timeout = state.settings.sync_timeout
    try:
        return await state.service.wait(job.id, timeout=timeout)
    except TimeoutError:
        await state.service.cancel(job.id)
        logger.warning("job %s not finished within %g s; cancelled", job.id, timeout)
        raise WaitTimeoutError(
            f"The job was not finished within {timeout:g} s, so it was cancelled.",
            hint="The server may have no worker running, or a long queue; send the audio to "
            "POST /transcribe and poll GET /jobs/{id} instead.",
        ) from None
    except asyncio.CancelledError:  # the client went away: nobody will read the result
        await asyncio.shield(state.service.cancel(job.id))
        raise


def _answer(
    job: Job, response_format: str, granularities: set[str], subtitles: SubtitleOptions
) -> Response:
    """The finished job as OpenAI answers in ``response_format``; run off the event loop."""
    if job.state is not JobState.COMPLETED or job.result is None:
        return job_error_response(job.error, job.state.value)
    result = job.result
    if response_format == "json":
        return JSONResponse({"text": result.text, "usage": _usage(result)})
    if response_format == "text":
        return PlainTextResponse(result.text)
    if response_format in ("srt", "vtt"):
        return Response(
            render(result, response_format, subtitles), media_type=MEDIA_TYPES[response_format]
        )
    if response_format == "diarized_json":
        return JSONResponse(_diarized(result))
    return JSONResponse(_verbose(result, granularities))


def _diarized(result: Transcript) -> dict[str, Any]:
    """OpenAI's ``diarized_json``, as its diarizing model answers: segments with a
    ``speaker``, the names given to speakers or ``A``, ``B``... in order of appearance."""
    letters = {s.id: s.name or _letters(number) for number, s in enumerate(result.speakers)}
    return {
        "task": "transcribe",
        "duration": result.duration,
        "text": result.text,
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{segment.id}",
                "start": segment.start,
                "end": segment.end,
                "text": segment.text.strip(),
                "speaker": letters.get(segment.speaker or "", "A"),
            }
            for segment in result.segments
            if segment.text
        ],
        "usage": {"type": "duration", "seconds": result.duration},
    }


def _letters(number: int) -> str:
    """``A``... ``Z``, then ``AA``, ``AB``...: spreadsheet columns, as OpenAI labels speakers."""
    name = ""
    number += 1
    while number:
        number, rest = divmod(number - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _usage(result: Transcript) -> dict[str, Any]:
    """What the request used, as OpenAI reports it for whisper-1: the seconds of audio,
    rounded up to whole seconds as it bills them."""
    return {"type": "duration", "seconds": math.ceil(result.duration)}


def _verbose(result: Transcript, granularities: set[str]) -> dict[str, Any]:
    """OpenAI's ``verbose_json``: segments always (with the decode's own tokens,
    temperature and compression ratio, and Cesar's ``language`` of each), words when asked
    for, and ``usage`` in seconds of audio as OpenAI reports it.

    The top-level ``language`` is OpenAI's: the lower-case English name (``english``), and
    for a translation the language written, always English, as OpenAI documents it. Each
    segment's ``language`` is Cesar's own field, so it keeps Cesar's code (``es``), as the
    job API and ``json`` transcripts give it.
    """
    spoken = "en" if result.task is Task.TRANSLATE else result.language
    body: dict[str, Any] = {
        "task": result.task.value,
        "language": LANGUAGE_NAMES.get(spoken, spoken),
        "duration": result.duration,
        "text": result.text,
        "segments": [
            {
                "id": segment.id,
                "seek": segment.seek,
                "start": segment.start,
                "end": segment.end,
                "text": segment.text,
                "tokens": list(segment.tokens),
                "temperature": segment.temperature or 0.0,
                "avg_logprob": segment.avg_logprob,
                "compression_ratio": segment.compression_ratio,
                "no_speech_prob": segment.no_speech_prob,
                "language": segment.language or result.language,
            }
            for segment in result.segments
        ],
        "usage": _usage(result),
    }
    if "word" in granularities:
        body["words"] = [
            {"word": word.word.strip(), "start": word.start, "end": word.end}
            for segment in result.segments
            for word in segment.words
        ]
    return body
