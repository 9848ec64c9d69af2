"""Property-based API test from the server's own OpenAPI schema: no input gives a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.model_server.conftest import LiveServer


@pytest.mark.parametrize(
    ("path", "method"),
    [("/answer", "POST"), ("/health", "GET"), ("/v1/chat/completions", "POST"), ("/v1/models", "GET")],
)
def test_no_generated_input_makes_the_server_fail(shared_server: LiveServer, path: str, method: str) -> None:
    schema = schemathesis.openapi.from_url(f"{shared_server.url}/openapi.json")
    operation = schema[path][method]
    # Both valid and schema-violating bodies, as schemathesis generates them.
    strategy = st.one_of(
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        response = case.call(timeout=60)
        case.validate_response(response, checks=[not_a_server_error])

    check()
