"""Probes, metrics and what the server can do: ``/health``, ``/ready``, ``/metrics``,
``/diarizers``. None needs the API key, so that load balancers, Prometheus and the web page
(before it has a key) can reach them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from cesar_core import CesarError
from cesar_core.diarization import diarizer_name
from cesar_core.jobs import JobState
from cesar_core.transcript import Diarize

from ..errors import cesar_error_response, error_detail, error_response
from ..runtime import Runtime, runtime
from ..schemas import DiarizerOut, DiarizersOut, ErrorBody

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
    "/diarizers",
    response_model=DiarizersOut,
    summary="Which diarize modes (speakers) this server can run",
)
async def diarizers(state: Annotated[Runtime, Depends(runtime)]) -> DiarizersOut:
    """Whether jobs asking for ``diarize=auto`` (the voice model of the ``diarize`` extra,
    or a plugin's diarizer) and ``diarize=channels`` can run here, so that a client offers
    only those. The engines are looked up, never imported or loaded: this is fast and
    costs no memory. Needs no API key, like the probes: the web page asks it first."""
    found = []
    for mode in Diarize:
        error = await state.diarize_error(mode)
        found.append(
            DiarizerOut(
                diarize=mode.value,
                diarizer=diarizer_name(mode, state.settings),
                available=None if state.transcriber is None else error is None,
                error=None if error is None else error_detail(error),
            )
        )
    return DiarizersOut(diarizers=found)


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
