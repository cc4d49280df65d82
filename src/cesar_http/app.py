"""The FastAPI application: a thin adapter over :class:`~cesar_core.service.JobService`.

``create_app`` builds the app; its lifespan opens the store and storage the settings name
and, unless ``workers`` is 0, runs an embedded :class:`~cesar_core.worker.Worker` on the
same event loop (transcription itself runs in the worker's threads, so requests are
answered while a long job runs). On shutdown the worker stops claiming, lets its running
jobs finish for the grace period, and hands the rest back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
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
from cesar_core.transcribers import open_transcriber

from .apidocs import add_docs
from .errors import cesar_error_response, error_response, status_for, validation_response
from .metrics import Metrics
from .runtime import Runtime, require_key
from .telemetry import fastapi_telemetry
from .web import add_web

if TYPE_CHECKING:
    from cesar_core.worker import Worker

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The Cesar HTTP API; ``settings`` default to :meth:`Settings.load`."""
    settings = settings or Settings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as running:
            try:
                app.state.runtime = await _start(settings, running)
            except Exception as exc:
                # Kept for `cesar serve`, which reports it in one line once uvicorn gives up.
                app.state.startup_error = exc
                raise
            yield

    app = FastAPI(
        title="Cesar",
        version=__version__,
        summary="Offline speech-to-text: submit audio, poll the job, get the transcript.",
        lifespan=lifespan,
        telemetry=fastapi_telemetry(),
        docs_url=None,  # served by add_docs, from files inside the package
        redoc_url=None,
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

    from .routes import audio, events, jobs, openai, system

    app.include_router(system.router)
    # Before the job routes: /jobs/events is not the job "events".
    app.include_router(events.router, dependencies=[Depends(require_key)])
    app.include_router(jobs.router, dependencies=[Depends(require_key)])
    app.include_router(openai.router, dependencies=[Depends(require_key)])
    app.include_router(audio.router, dependencies=[Depends(require_key)])
    add_docs(app)
    add_web(app)
    return app


async def _start(settings: Settings, running: AsyncExitStack) -> Runtime:
    """Open the store, the storage and the worker (or the housekeeper of a worker-less node).

    Each part is entrusted to ``running`` as soon as it exists, so that a failure part-way
    closes what was already open: an open store left behind keeps threads that would hold
    the process alive after a failed start-up.
    """
    manager = get_manager()
    service = await JobService.open(settings, manager)
    running.push_async_callback(service.close)
    metrics = Metrics()
    resolver = ModelResolver.from_plugins(manager, settings)
    state = Runtime(settings, service, resolver, metrics)
    if settings.workers > 0:
        # Imported here, not at the top: the worker brings the audio decoding and packing
        # code (PyAV, NumPy), which an API-only node (workers = 0) never needs.
        from cesar_core.worker import Worker, WorkerConfig

        state.transcriber = open_transcriber(settings, manager)
        worker = Worker(
            service.store,
            service.storage,
            state.transcriber,
            WorkerConfig(
                concurrency=settings.workers,
                grace_seconds=settings.grace_seconds,
                retention_hours=settings.retention_hours,
                pack_max_clips=settings.pack_max_clips,
                pack_wait_seconds=settings.pack_wait_ms / 1000,
            ),
            fetch=FetchPolicy.from_settings(settings),
            events=service.events,
            on_finished=metrics.observe,
        )
        state.worker = worker
        running.push_async_callback(_stopped, asyncio.create_task(worker.run()), worker)
    else:  # no worker to keep house (clean up, prune): the API node does it
        upkeep = Housekeeper(service.store, service.storage, retention_of(settings.retention_hours))
        running.push_async_callback(_stopped, asyncio.create_task(upkeep.run()), None)
    return state


async def _stopped(task: asyncio.Task[object], worker: Worker | None) -> None:
    """End ``task``: a worker stops claiming and finishes within its grace period; the
    housekeeper is simply cancelled."""
    if worker is not None:
        worker.request_stop()
    else:
        task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def _error_model() -> type:
    from .schemas import ErrorBody

    return ErrorBody


def app_from_environment() -> FastAPI:
    """The app with settings from ``CESAR_*`` variables: the factory ``cesar serve`` runs."""
    return create_app(Settings.load())
