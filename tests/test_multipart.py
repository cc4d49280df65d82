"""The streaming multipart reader, driven by Hypothesis: any well-formed form, cut into any
chunks, reads back exactly; any other bytes end in a :class:`FormError`, never in another
exception (which the API would answer with a 500)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import string
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cesar_http.multipart import (
    MAX_BOUNDARY,
    MAX_FILENAME_CHARS,
    FormError,
    StreamingForm,
    boundary_of,
)

NAMES = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=20)
VALUES = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)
FIELDS = st.lists(st.tuples(NAMES.filter(lambda n: n != "file"), VALUES), max_size=5)
BOUNDARIES = st.text(string.ascii_letters + string.digits + "'()+_,-./:=?", min_size=1, max_size=70)


def encode(
    boundary: str,
    before: list[tuple[str, str]],
    filename: str,
    data: bytes,
    after: list[tuple[str, str]],
) -> bytes:
    dash = f"--{boundary}\r\n".encode()
    parts = [
        dash
        + f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode()
        + b"\r\n"
        for name, value in before
    ]
    parts.append(
        dash
        + f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode()
        + b"Content-Type: application/octet-stream\r\n\r\n"
        + data
        + b"\r\n"
    )
    parts += [
        dash
        + f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode()
        + b"\r\n"
        for name, value in after
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def cut(body: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(body), *(p % (len(body) + 1) for p in points)})
    return [body[a:b] for a, b in itertools.pairwise(edges)]


async def stream(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def read(
    chunks: list[bytes], boundary: bytes
) -> tuple[str | None, bytes, dict[str, list[str]]]:
    form = StreamingForm(stream(chunks), boundary)
    filename = await form.next_file("file")
    data = b""
    if filename is not None:
        data = b"".join([chunk async for chunk in form.file_chunks()])
        await form.rest()
    return filename, data, form.fields


def values_of(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in pairs:
        found.setdefault(name, []).append(value)
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    boundary=BOUNDARIES,
    before=FIELDS,
    after=FIELDS,
    filename=st.text(string.ascii_letters + string.digits + "._- ", min_size=1, max_size=40),
    data=st.binary(max_size=5000),
    points=st.lists(st.integers(min_value=0), max_size=20),
)
def test_any_well_formed_form_in_any_chunks_reads_back(
    boundary: str,
    before: list[tuple[str, str]],
    after: list[tuple[str, str]],
    filename: str,
    data: bytes,
    points: list[int],
) -> None:
    delimiter = f"\r\n--{boundary}".encode()
    assume(delimiter not in data and delimiter not in b"\r\n" + data)
    assume(all(delimiter not in f"\r\n{v}".encode() for _, v in before + after))
    assume(filename.strip())
    body = encode(boundary, before, filename, data, after)
    name, got, fields = asyncio.run(read(cut(body, points), boundary.encode()))
    assert name == filename.strip()
    assert got == data
    assert fields == values_of(before + after)


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=2000),
    prefix=st.sampled_from(
        [b"", b"--b\r\n", b'--b\r\nContent-Disposition: form-data; name="file"']
    ),
    points=st.lists(st.integers(min_value=0), max_size=10),
)
def test_any_bytes_end_in_a_form_or_a_form_error(
    body: bytes, prefix: bytes, points: list[int]
) -> None:
    with contextlib.suppress(FormError):
        asyncio.run(read(cut(prefix + body, points), b"b"))


@given(boundary=st.text(string.ascii_letters, min_size=MAX_BOUNDARY + 1, max_size=400))
def test_a_boundary_too_long_is_a_form_error(boundary: str) -> None:
    with pytest.raises(FormError, match="boundary"):
        boundary_of(f"multipart/form-data; boundary={boundary}")


def test_filenames_lose_control_characters_and_length() -> None:
    body = encode("b", [], "x" * 1000 + "a\u0000b\x07.wav", b"abc", [])
    name, data, _ = asyncio.run(read([body], b"b"))
    assert name is not None
    assert "\x00" not in name
    assert "\x07" not in name
    assert name.endswith("ab.wav")
    assert len(name) == MAX_FILENAME_CHARS
    assert data == b"abc"


def test_headers_of_a_part_are_bounded() -> None:
    """python-multipart bounds them; the reader turns its error into a FormError."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="'
        + b"n" * 100_000
        + b'"\r\n\r\nv\r\n--b--\r\n'
    )
    with pytest.raises(FormError, match="header"):
        asyncio.run(read([body], b"b"))
