"""Schemathesis generates requests from ``/openapi.json`` for every endpoint of a real server:
whatever it sends, the server never answers 5xx."""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from .test_http import api  # noqa: F401  (the served API fixture)


def test_no_generated_request_makes_the_server_fail(api: httpx.Client) -> None:  # noqa: F811
    base = str(api.base_url).rstrip("/")
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11  # every endpoint is described
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        check()
