"""Receiving an upload: the form streamed into storage, its other fields kept for the caller.

``POST /transcribe`` and the OpenAI-compatible endpoints share this; they differ only in the
fields they read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request

from cesar_core.errors import UploadTooLargeError
from cesar_core.service import StoredAudio

from .multipart import FormError, StreamingForm, boundary_of
from .runtime import Runtime

FILE_FIELD = "file"
#: After an upload is refused for its size, at most this much more of it is read (and
#: dropped) so that the client, still sending, gets the 413 instead of a broken connection.
DRAIN_BYTES = 64 * 1024**2


@asynccontextmanager
async def receive_upload(
    request: Request, state: Runtime
) -> AsyncIterator[tuple[StoredAudio, dict[str, list[str]]]]:
    """Store the form's file (checked to be audio) and lend it with the text fields.

    Read the fields inside the block; if that raises, the stored audio is removed. Create
    the job with :meth:`JobService.submit_stored` after the block (it removes the audio
    itself when it fails). The upload holds one of the server's upload slots
    (:mod:`cesar_http.slots`) until the block ends, or until its client turns out slow
    (then it gives the slot up for good).
    """
    async with state.uploads.slot() as slot:
        content_type = request.headers.get("content-type", "")
        form = StreamingForm(slot.paced(request.stream()), boundary_of(content_type))
        filename = await form.next_file(FILE_FIELD)
        if filename is None:
            raise FormError(
                f"The form has no file; send the audio as the form field {FILE_FIELD!r}.",
                hint=f"For example: curl -F {FILE_FIELD}=@talk.mp3 http://host/transcribe",
            )
        service = state.service
        try:
            stored = await service.store_audio(
                form.file_chunks(),
                filename=filename,
                max_bytes=state.settings.max_upload_bytes,
                check_audio=True,
            )
        except UploadTooLargeError:
            await form.drain(DRAIN_BYTES)
            raise
        try:
            await form.rest()
            yield stored, form.fields
        except BaseException:
            await service.discard(stored)
            raise
