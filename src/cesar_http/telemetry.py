"""Whether FastAPI's own OpenTelemetry instrumentation is on.

FastAPI (0.142 and newer) traces and meters every request through OpenTelemetry's global
providers. Where no OpenTelemetry SDK is configured that records nothing, yet each request
still looks the three providers up (each look-up reads an environment variable): about
0.04 ms of the 1.24 ms of server CPU that an upload to ``POST /transcribe`` cost
(``bench/upload_cost.py``: 0.986 times the CPU, lower in 6 of 8 rounds; docs/performance.md,
"A burst of short uploads"). So the instrumentation stays on only where it can record
something: an SDK configured before the app is made (by ``opentelemetry-instrument cesar
serve``, by ``OTEL_PYTHON_*_PROVIDER`` variables, or by code that runs first), or FastAPI
told to configure exporters itself (``FASTAPI_OTEL_AUTO_CONFIGURE=true``, which it does as
the server starts).
"""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig

#: The API's stand-in providers, in place until an SDK is configured (FastAPI's own test).
_STAND_INS = frozenset(
    {
        ("opentelemetry.trace", "ProxyTracerProvider"),
        ("opentelemetry.metrics._internal", "_ProxyMeterProvider"),
        ("opentelemetry._logs._internal", "ProxyLoggerProvider"),
    }
)
#: Every kind of FastAPI's telemetry, off.
OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def fastapi_telemetry() -> TelemetryConfig | None:
    """The ``telemetry`` argument for :class:`FastAPI`: None (FastAPI's defaults: on) where
    an OpenTelemetry SDK is configured or FastAPI will configure one, else :data:`OFF`.
    Also None where FastAPI has no such argument (before 0.142): nothing to turn off."""
    if "telemetry" not in inspect.signature(FastAPI).parameters:
        return None
    if os.environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true":
        return None
    from opentelemetry import _logs, metrics, trace

    providers = (
        trace.get_tracer_provider(),
        metrics.get_meter_provider(),
        _logs.get_logger_provider(),
    )
    if any((type(p).__module__, type(p).__name__) not in _STAND_INS for p in providers):
        return None
    return OFF
