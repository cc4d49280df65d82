"""A ``multipart/form-data`` body read as it arrives, so an upload streams into storage.

Frameworks parse a whole form before the handler runs, spooling the file to a temporary
file of their own; a size cap can then only be checked after the fact. Here the body is
fed to python-multipart's incremental parser chunk by chunk: the file's bytes are handed
on as they come (to :meth:`JobService.store_audio`, which enforces the cap while it writes),
and the small text fields before and after it are collected.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from cesar_core.errors import CesarError

#: Text fields are options: anything longer is a mistake or an attack.
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 100
#: The longest boundary python-multipart accepts (RFC 2046 itself allows only 70).
MAX_BOUNDARY = 256
MAX_FILENAME_CHARS = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FormError(CesarError):
    """The request body is not a well-formed form of the kind expected."""

    code = "invalid_form"


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` content type."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise FormError(
            "The upload must be sent as multipart/form-data with a boundary.",
            hint="Send the audio as the form field 'file' (curl -F file=@talk.mp3 ...), or "
            'JSON {"url": ...} with Content-Type: application/json.',
        )
    if len(boundary) > MAX_BOUNDARY:
        raise FormError(
            f"The multipart boundary is {len(boundary)} characters long; at most "
            f"{MAX_BOUNDARY} are accepted.",
            hint="HTTP clients choose a short boundary themselves; send the form with one.",
        )
    return boundary


def clean_filename(raw: bytes) -> str:
    """A filename fit to keep with a job: decoded, without control characters (a NUL
    cannot be stored everywhere), and of a sane length."""
    name = _CONTROL.sub("", raw.decode("utf-8", "replace")).strip()
    return name[-MAX_FILENAME_CHARS:] or "upload"


class StreamingForm:
    """The parts of one form, in order: text fields are kept in :attr:`fields`, the one
    file part is read through :meth:`file_chunks`."""

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes) -> None:
        self.fields: dict[str, list[str]] = {}
        self.filename: str | None = None
        self._body = body
        self._events: deque[tuple[str, Any]] = deque()
        self._headers: dict[bytes, bytes] = {}
        self._header: list[bytes] = [b"", b""]
        self._ended = False
        self._part: tuple[str, str | None] | None = None  # name, filename
        self._value = bytearray()
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": lambda: self._events.append(("end", None)),
                "on_end": self._on_end,
            },
        )

    # Parser callbacks: they only record events; the coroutines below act on them.
    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header[0] += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header[1] += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header[0].lower()] = self._header[1]
        self._header = [b"", b""]

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._events.append(
            ("begin", (name, None if filename is None else clean_filename(filename)))
        )

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(("data", bytes(data[start:end])))

    def _on_end(self) -> None:
        self._ended = True

    async def _next_event(self) -> tuple[str, Any] | None:
        while not self._events:
            if self._ended:
                return None
            try:
                chunk = await anext(self._body)
            except StopAsyncIteration:
                self._parser.finalize()
                if not self._events and not self._ended:
                    raise FormError(
                        "The form ended before its closing boundary.",
                        hint="The upload was cut short; send it again.",
                    ) from None
                continue
            try:
                self._parser.write(chunk)
            except Exception as exc:  # the parser's own errors say what is malformed
                raise FormError(f"The form is malformed: {exc}.") from None
        return self._events.popleft()

    async def _fields_until_file(self) -> tuple[str, str] | None:
        """Collect text fields up to the next file part; return its (name, filename), or
        None at the end of the form."""
        while (event := await self._next_event()) is not None:
            kind, value = event
            if kind == "begin":
                if value[1] is not None:
                    self._part = None
                    return value[0], value[1]
                self._part = value
                self._value = bytearray()
            elif kind == "data":
                self._value += value
                if len(self._value) > MAX_FIELD_BYTES:
                    name = self._part[0] if self._part else ""
                    raise FormError(
                        f"The form field {name!r} is longer than {MAX_FIELD_BYTES} bytes."
                    )
            elif kind == "end":
                self._keep_field()
        return None

    async def next_file(self, name: str) -> str | None:
        """Read up to the file part called ``name`` and return its filename; None when the
        form holds no file. A file under another field name is refused, by name."""
        part = await self._fields_until_file()
        if part is None:
            return None
        if part[0] != name:
            raise FormError(
                f"The file was sent in the form field {part[0]!r}; send it as {name!r}.",
                hint=f"For example: curl -F {name}=@talk.mp3 ...",
            )
        self.filename = part[1] or "upload"
        return self.filename

    async def file_chunks(self) -> AsyncIterator[bytes]:
        """The bytes of the file part :meth:`next_file` found, as they arrive."""
        while (event := await self._next_event()) is not None:
            kind, value = event
            if kind == "end":
                return
            if kind == "data":
                yield value
        raise FormError("The form ended inside the file.", hint="Send the upload again.")

    async def drain(self, limit: int) -> None:
        """Read (and drop) what is left of the body, up to ``limit`` bytes, so that a client
        still sending gets the answer instead of a reset connection. The body is read
        through the same iterator as the form: a request's stream can be read only once."""
        received = 0
        async for chunk in self._body:
            received += len(chunk)
            if received > limit:
                return

    async def rest(self) -> None:
        """Read the fields after the file; a second file is refused."""
        if await self._fields_until_file() is not None:
            raise FormError("Send one file per request.", hint="Submit each file as its own job.")

    def _keep_field(self) -> None:
        if self._part is None:
            return
        name, filename = self._part
        if filename is None:
            self.fields.setdefault(name, []).append(self._value.decode("utf-8", "replace"))
            if sum(len(values) for values in self.fields.values()) > MAX_FIELDS:
                raise FormError(f"The form has more than {MAX_FIELDS} fields.")
        self._part = None
        self._value = bytearray()
