"""The exceptions Cesar raises, each with a stable ``code`` and a message that says what to do.

Every adapter (the CLI, the HTTP API, the job worker) turns these into its own kind of failure
report without parsing messages: the CLI prints ``str(error)``, the API answers with
``{"code": error.code, "message": str(error)}``, and the worker records both on the job.
``permanent`` tells a job queue whether retrying could ever help: bad audio stays bad.
"""

from __future__ import annotations

from typing import ClassVar


class CesarError(Exception):
    """Base class of every error Cesar raises on purpose."""

    code: ClassVar[str] = "cesar_error"
    permanent: ClassVar[bool] = True

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: The option or request field to correct, where one is to blame (an API names it
        #: in its answer, so that a form can point at the right input).
        self.field = field

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class InvalidOptionsError(CesarError, ValueError):
    """A transcription option has a value Cesar cannot use."""

    code = "invalid_options"


class UnsupportedLanguageError(InvalidOptionsError):
    """The language code is unknown, or the model cannot handle it."""

    code = "unsupported_language"


class AudioError(CesarError):
    """The input cannot be turned into audio samples; retrying will not help."""

    code = "invalid_audio"


class AudioNotFoundError(AudioError):
    """The input path does not exist or is not a regular file."""

    code = "file_not_found"


class EmptyAudioError(AudioError):
    """The input has no bytes or decodes to no samples."""

    code = "empty_audio"


class NoAudioStreamError(AudioError):
    """The container decodes (for example a video) but carries no audio track."""

    code = "no_audio_stream"


class TruncatedAudioError(AudioError):
    """The file ends well before the duration its header announces."""

    code = "truncated_audio"


class ModelNotFoundError(CesarError):
    """No model source can provide the requested model."""

    code = "model_not_found"


class ModelIntegrityError(CesarError):
    """A model's files do not match the checksum pinned for them."""

    code = "model_corrupt"


class TranscriptionError(CesarError):
    """The engine failed while transcribing; may succeed on retry (memory, device)."""

    code = "transcription_failed"
    permanent = False


class DiarizerNotInstalledError(CesarError):
    """Speakers were asked for, but the engine that finds them is not installed."""

    code = "diarizer_not_installed"


class StoreUnavailableError(CesarError):
    """The job store or storage could not be reached, even after retrying."""

    code = "store_unavailable"
    permanent = False


class UploadTooLargeError(CesarError):
    """The upload grew past the configured size cap."""

    code = "upload_too_large"


class InvalidJobIdError(CesarError, ValueError):
    """A job id that no job could have: ids name files and URL paths, so one that is not
    well formed is refused before it reaches a store or storage."""

    code = "invalid_job_id"


class InvalidIdempotencyKeyError(InvalidOptionsError):
    """An idempotency key that is empty, too long, or has characters a store cannot keep."""

    code = "invalid_idempotency_key"


class InvalidStorageKeyError(CesarError, ValueError):
    """A storage key not of the form ``<job id>/<name>``: it could name a file outside the
    job's own directory."""

    code = "invalid_storage_key"
