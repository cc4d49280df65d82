"""What the routes depend on: the app's :class:`Runtime` and the API key check.

It lives apart from :mod:`cesar_http.app` because the app includes the routes: routes that
imported these from the app would make the two modules import each other.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from attrs import define, field
from fastapi import HTTPException, Request

from cesar_core import CesarError, ModelResolver, Settings
from cesar_core.service import JobService
from cesar_core.transcript import Diarize

from .metrics import Metrics
from .model_listing import ModelListing
from .multipart import FormError
from .slots import UploadSlots

if TYPE_CHECKING:  # the worker loads PyAV and NumPy, which an API-only node never needs
    from cesar_core.diarization import DiarizingTranscriber
    from cesar_core.worker import Worker


@define
class Runtime:
    """What the routes share for the life of the app."""

    settings: Settings
    service: JobService
    resolver: ModelResolver
    metrics: Metrics
    worker: Worker | None = None
    #: The embedded worker's transcriber (None without one): the speakers it can tell
    #: apart are those this server offers (:meth:`diarize_error`).
    transcriber: DiarizingTranscriber | None = None
    #: What :func:`cesar_http.options.check_model` asks: the resolver's answers, reused.
    models: ModelListing = field()
    #: The uploads worked on at once (:mod:`cesar_http.slots`).
    uploads: UploadSlots = field()

    @uploads.default
    def _uploads(self) -> UploadSlots:
        return UploadSlots(self.settings.upload_slots)

    @models.default
    def _models(self) -> ModelListing:
        return ModelListing(self.resolver)

    async def check_model(self, name: str) -> None:
        """Raise :class:`~cesar_core.errors.ModelNotFoundError` for a model no source has."""
        await asyncio.to_thread(self.resolver.resolve, name)

    async def diarize_error(self, mode: Diarize) -> CesarError | None:
        """Why the embedded worker cannot run jobs that ask for ``mode`` (the voice model
        not installed, with the install hint), or None: it can, or there is no embedded
        worker (the ``cesar worker`` processes on the store decide, each with its own
        installation). Looks the engine up without importing it, in a thread (the lookup
        takes the import lock)."""
        if self.transcriber is None:
            return None
        return await asyncio.to_thread(self.transcriber.unavailable, mode)


# The dependencies here are coroutines although they never wait: FastAPI runs a plain
# function dependency in a worker thread, and under a burst of uploads every request's
# dependencies queued for those threads (and the GIL) behind the uploads' own work.


async def runtime(request: Request) -> Runtime:
    """The app's :class:`Runtime`, for routes (``Depends(runtime)``)."""
    found: Runtime = request.app.state.runtime
    return found


async def require_key(request: Request) -> None:
    """Refuse requests without the configured bearer token (when one is configured)."""
    key = (await runtime(request)).settings.api_key
    if not key:
        return
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not _same(token.strip(), key):
        raise HTTPException(
            status_code=401,
            detail="A valid API key is required: send Authorization: Bearer <key>.",
            headers={"WWW-Authenticate": "Bearer"},
        )


class UnknownParameterError(FormError):
    """A query parameter the endpoint does not take (``400``): ignoring it would answer a
    question the client did not ask, as ``/jobs?state=queued`` listing every job did."""

    code = "unknown_parameter"


def only_query(*names: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency that refuses any query parameter but ``names``."""

    async def check(request: Request) -> None:
        unknown = [name for name in request.query_params if name not in names]
        if unknown:
            raise UnknownParameterError(
                f"Unknown query parameter {unknown[0]!r}.",
                hint=f"This endpoint takes {', '.join(names)}.",
                field=unknown[0],
            )

    return check


def _same(given: str, expected: str) -> bool:
    """Compare in constant time, so that timing does not reveal how much of a key matched."""
    return hmac.compare_digest(given.encode(), expected.encode())


__all__ = ["Runtime", "UnknownParameterError", "only_query", "require_key", "runtime"]
