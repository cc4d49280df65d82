"""Schemathesis generates requests from ``/openapi.json`` for every operation of the real app
under a real uvicorn: whatever it sends, the server never answers 5xx.

The normal suite runs a short version; ``CESAR_FUZZ=1 pytest -m fuzz`` a long one, with
enough examples to find the cases a careless edge lets through (deep JSON, huge integers,
NUL bytes, odd boundaries). The server runs no worker, so a generated request costs no
transcription, and a 2 s synchronous wait keeps the OpenAI-compatible endpoints short.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from .inproc_server import served_app

#: The operation whose answer never ends: the state changes of all jobs.
ENDLESS = "/jobs/events"
#: Examples per operation in the long run (``CESAR_FUZZ_EXAMPLES``).
FUZZ_EXAMPLES = int(os.environ.get("CESAR_FUZZ_EXAMPLES", "400"))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("schema")
    with served_app(root, max_upload_bytes=1_000_000, sync_timeout=2.0) as url:
        yield url


def fuzz(base: str, examples: int) -> int:
    """Run ``examples`` generated requests against each operation, both requests the schema
    allows and requests that break it (wrong types, missing fields, values out of range);
    return how many operations there were."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    # A stream that never ends would never be answered whole (its bad parameters are
    # tested in test_live_events.py); /jobs/{id}/events ends with its job, or is a 404.
    operations = [op for op in operations if op.path != ENDLESS]
    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        try:
            check()
        except Unsatisfiable:  # nothing to get wrong in a request without inputs (/health)
            assert mode is GenerationMode.NEGATIVE, operation.label
    return len(operations)


def test_no_generated_request_makes_the_server_fail(base: str) -> None:
    assert fuzz(base, 25) >= 11  # every endpoint is described


@pytest.mark.fuzz
@pytest.mark.skipif(not os.environ.get("CESAR_FUZZ"), reason="the long run: set CESAR_FUZZ=1")
def test_many_generated_requests_never_make_the_server_fail(base: str) -> None:
    assert fuzz(base, FUZZ_EXAMPLES) >= 11
