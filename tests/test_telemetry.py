"""FastAPI's OpenTelemetry instrumentation: off where nothing would record it, so requests
skip its look-ups; on where an SDK is configured before the server starts."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import _logs, metrics, trace

from .inproc_server import served_app

ROOT = Path(__file__).resolve().parent.parent


def test_without_an_sdk_requests_do_not_look_providers_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []

    def counting(module: Any, name: str) -> None:
        real = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            looked_up.append(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    with served_app(tmp_path) as url:
        counting(trace, "get_tracer_provider")
        counting(metrics, "get_meter_provider")
        counting(_logs, "get_logger_provider")
        for path in ("/health", "/jobs", "/no-such-page"):
            httpx.get(f"{url}{path}")
    assert looked_up == []


#: A tracer provider that records the names of the spans started, as an SDK's would.
TRACED = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import httpx
    from opentelemetry import trace

    started = []

    class Tracer(trace.NoOpTracer):
        def start_span(self, name, *args, **kwargs):
            started.append(name)
            return super().start_span(name, *args, **kwargs)

    class Provider(trace.TracerProvider):
        def get_tracer(self, *args, **kwargs):
            return Tracer()

    trace.set_tracer_provider(Provider())
    from tests.inproc_server import served_app

    with served_app(Path(sys.argv[1])) as url:
        assert httpx.get(f"{url}/jobs").status_code == 200
    print(json.dumps(started))
    """
)


def test_with_an_sdk_configured_first_requests_are_traced(tmp_path: Path) -> None:
    # A process of its own: OpenTelemetry's global provider can be set only once.
    ran = subprocess.run(
        [sys.executable, "-c", TRACED, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    started = json.loads(ran.stdout.strip().splitlines()[-1])
    assert any(name.startswith("GET") for name in started), started


def test_fastapi_configuring_exporters_itself_keeps_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from cesar_http.telemetry import OFF, fastapi_telemetry

    assert fastapi_telemetry() == OFF  # no SDK in this process
    # FastAPI sets its exporters up as the server starts, after the app is made.
    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    assert fastapi_telemetry() is None
