"""Audio as a stream of chunks, whatever a caller hands over: a path, an open binary file, or
an async iterable of bytes (an HTTP upload). Files are read on a thread, a megabyte at a
time, so that a large upload never blocks the event loop nor sits whole in memory."""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from .errors import AudioNotFoundError

CHUNK_BYTES = 1 << 20


async def resume(head: builtins.list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks already read, then the rest of the stream."""
    for chunk in head:
        yield chunk
    async for chunk in rest:
        yield chunk


async def audio_chunks(
    audio: AsyncIterable[bytes] | BinaryIO | str | Path,
) -> AsyncGenerator[bytes, None]:
    """The bytes of ``audio`` in chunks of at most :data:`CHUNK_BYTES` (an iterable's own
    chunks as they come)."""
    if isinstance(audio, str | Path):
        if not os.path.isfile(audio):
            raise AudioNotFoundError(f"{audio} is not a file.", hint="Check the path.")
        with open(audio, "rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
    elif hasattr(audio, "read"):
        while chunk := await asyncio.to_thread(audio.read, CHUNK_BYTES):
            yield chunk
    else:
        async for chunk in audio:
            yield chunk
