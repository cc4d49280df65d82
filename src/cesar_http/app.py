"""The FastAPI application: a thin adapter over :class:`~cesar_core.service.JobService`.

``create_app`` builds the app; its lifespan opens the store and storage the settings name
and, unless ``workers`` is 0, runs an embedded :class:`~cesar_core.worker.Worker` on the
same event loop (transcription itself runs in the worker's threads, so requests are
answered while a long job runs). On shutdown the worker stops claiming, lets its running
jobs finish for the grace period, and hands the rest back to the queue.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from attrs import define
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from cesar_core import CesarError, ModelResolver, Settings, __version__
from cesar_core.fetch import FetchPolicy
from cesar_core.housekeeping import Housekeeper, retention_of
from cesar_core.plugins import get_manager
from cesar_core.service import JobService
from cesar_core.transcription import open_transcriber
from cesar_core.worker import Worker, WorkerConfig

from .errors import cesar_error_response, error_response, status_for, validation_response
from .metrics import Metrics

logger = logging.getLogger(__name__)


@define
class Runtime:
    """What the routes share for the life of the app."""

    settings: Settings
    service: JobService
    resolver: ModelResolver
    metrics: Metrics
    worker: Worker | None = None

    async def check_model(self, name: str) -> None:
        """Raise :class:`~cesar_core.errors.ModelNotFoundError` for a model no source has."""
        await asyncio.to_thread(self.resolver.resolve, name)


def runtime(request: Request) -> Runtime:
    """The app's :class:`Runtime`, for routes (``Depends(runtime)``)."""
    found: Runtime = request.app.state.runtime
    return found


def require_key(request: Request) -> None:
    """Refuse requests without the configured bearer token (when one is configured)."""
    key = runtime(request).settings.api_key
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


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def create_app(settings: Settings | None = None) -> FastAPI:
    """The Cesar HTTP API; ``settings`` default to :meth:`Settings.load`."""
    settings = settings or Settings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await JobService.open(settings)
        metrics = Metrics()
        resolver = ModelResolver.from_plugins(get_manager(), settings)
        state = Runtime(settings, service, resolver, metrics)
        task = None
        if settings.workers > 0:
            state.worker = Worker(
                service.store,
                service.storage,
                open_transcriber(settings),
                WorkerConfig(
                    concurrency=settings.workers,
                    grace_seconds=settings.grace_seconds,
                    retention_hours=settings.retention_hours,
                ),
                fetch=FetchPolicy.from_settings(settings),
                events=service.events,
                on_finished=metrics.observe,
            )
            task = asyncio.create_task(state.worker.run())
        else:  # no worker to keep house (clean up, prune): the API node does it
            retention = retention_of(settings.retention_hours)
            upkeep = Housekeeper(service.store, service.storage, retention)
            task = asyncio.create_task(upkeep.run())
        app.state.runtime = state
        try:
            yield
        finally:
            if state.worker is not None and task is not None:
                state.worker.request_stop()
                with suppress(asyncio.CancelledError):
                    await task
            elif task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await service.close()

    app = FastAPI(
        title="Cesar",
        version=__version__,
        summary="Offline speech-to-text: submit audio, poll the job, get the transcript.",
        lifespan=lifespan,
        responses={
            401: {"model": _error_model(), "description": "Missing or wrong API key."},
            422: {"model": _error_model(), "description": "A field is missing or invalid."},
        },
    )
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Location", "Retry-After"],
        )

    @app.exception_handler(CesarError)
    async def cesar_error(request: Request, exc: CesarError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        return cesar_error_response(exc, status)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # Not the server's failure: one line, and the upload's own cleanup has run.
        logger.warning("%s %s: the client disconnected", request.method, request.url.path)
        return error_response(400, "client_disconnected", "The client disconnected.")

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc.errors())

    @app.exception_handler(ValidationError)
    async def body_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        return validation_response(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}
        response = error_response(
            exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)
        )
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return error_response(
            500, "internal_error", "The server failed on this request.", "See the server log."
        )

    from .routes import jobs, openai, system

    app.include_router(system.router)
    app.include_router(jobs.router, dependencies=[Depends(require_key)])
    app.include_router(openai.router, dependencies=[Depends(require_key)])
    return app


def _error_model() -> type:
    from .schemas import ErrorBody

    return ErrorBody


def app_from_environment() -> FastAPI:
    """The app with settings from ``CESAR_*`` variables: the factory ``cesar serve`` runs."""
    return create_app(Settings.load())
