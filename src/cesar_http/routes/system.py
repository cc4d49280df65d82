"""Probes and metrics: ``/health``, ``/ready``, ``/metrics``. None needs the API key, so
that load balancers and Prometheus can reach them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from cesar_core import CesarError
from cesar_core.jobs import JobState

from ..errors import cesar_error_response, error_response
from ..runtime import Runtime, runtime
from ..schemas import ErrorBody

router = APIRouter(tags=["system"])

#: A store that has not answered within this many seconds is not ready (stores retry a lost
#: connection for much longer, which a probe should not wait for).
READY_TIMEOUT = 5.0


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    """Always fast, touches nothing: use it as a liveness probe."""
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: the store answers and the default model is present",
    responses={503: {"model": ErrorBody, "description": "Not ready; the body says why."}},
)
async def ready(state: Annotated[Runtime, Depends(runtime)]) -> Any:
    """Use it as a readiness probe: 503 until the store and the default model are usable."""
    try:
        counts = await asyncio.wait_for(state.service.store.counts(), READY_TIMEOUT)
        await state.check_model(state.settings.model)
    except TimeoutError:
        message = f"The job store did not answer within {READY_TIMEOUT:g} s."
        return error_response(503, "store_unavailable", message)
    except CesarError as exc:  # whatever it is, the server is not ready: 503
        return cesar_error_response(exc, 503)
    except Exception as exc:  # a store that cannot be reached raises its driver's errors
        return error_response(503, "store_unavailable", str(exc))
    return {
        "status": "ready",
        "model": state.settings.model,
        "worker": state.worker is not None,
        "queued": counts[JobState.QUEUED],
    }


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(state: Annotated[Runtime, Depends(runtime)]) -> PlainTextResponse:
    """Jobs by state, queue depth, job durations and audio seconds processed."""
    counts = await state.service.store.counts()
    return PlainTextResponse(
        state.metrics.render(counts), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
