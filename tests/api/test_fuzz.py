"""A schema fuzz of the whole OpenAPI document, in process: no request may end in a server error,
and every response must match its documented schema. Bounded so it takes seconds, not minutes."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

pytestmark = pytest.mark.fuzzing


@pytest.fixture
def api_schema(app: FastAPI) -> Any:
    # The operator token is configured in `app`, so a 503 ("disabled") would be a real failure.
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_errors(case: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
