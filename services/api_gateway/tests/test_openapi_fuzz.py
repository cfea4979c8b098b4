"""Schemathesis against the gateway's own OpenAPI document: no request may cause a 5xx.

The gateway runs under uvicorn on a loopback port (real HTTP, its own event loop) on the real
servers of this module; schemathesis generates valid and invalid parameters and bodies for every
operation and sends them with each role's token (admin: the writing operations run too; viewer,
engineer, a user without a role and no token at all: the role checks). The only 5xx allowed is
the 503 of the two operations that call the diagnostics service, which is down in this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error

from clpm_api_gateway.app import create_app
from clpm_shared.config import Settings, load_settings
from tests.harness.asgi_server import serve_in_thread

DIAGNOSTICS_PROXIES = {
    "POST /api/v1/loops/{loop_id}/diagnostics/run",
    "GET /api/v1/oscillation-clusters",
}


@pytest.fixture(scope="module")
def gateway_url(settings: Settings, seeded: dict[str, Any]) -> Iterator[str]:
    """The gateway served by uvicorn in a thread, until the module ends."""
    with serve_in_thread(create_app(settings)) as url:
        yield url


# The document does not depend on where the backends are: build it once at import (no I/O).
schema = schemathesis.openapi.from_dict(create_app(load_settings()).openapi())


def call_without_server_error(
    case: schemathesis.Case, gateway_url: str, headers: dict[str, str]
) -> None:
    response = case.call(base_url=gateway_url, headers=headers, timeout=30)
    operation = f"{case.method.upper()} {case.path}"
    if operation in DIAGNOSTICS_PROXIES and response.status_code == 503:
        return
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text


@pytest.mark.parametrize("role", ["admin", "viewer"])
@schema.parametrize()
@hypothesis_settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_request_causes_a_server_error(
    case: schemathesis.Case, gateway_url: str, headers: dict[str, dict[str, str]], role: str
) -> None:
    call_without_server_error(case, gateway_url, headers[role])


@pytest.mark.parametrize("role", ["engineer", "norole", "anonymous"])
@schema.parametrize()
@hypothesis_settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_request_of_the_other_roles_causes_a_server_error(
    case: schemathesis.Case, gateway_url: str, headers: dict[str, dict[str, str]], role: str
) -> None:
    """Fewer examples: most answers are the role check's 401 or 403."""
    call_without_server_error(case, gateway_url, headers.get(role, {}))


def test_openapi_document_is_complete(gateway_url: str) -> None:
    document = httpx.get(f"{gateway_url}/openapi.json").json()
    operations = [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) >= 25
    for path, method, operation in operations:
        assert operation.get("summary"), f"{method} {path} has no summary"
        if set(operation.get("tags", ())) & {"data", "loops", "kpis", "diagnostics"}:
            assert "422" in operation["responses"], f"{method} {path} documents no 422"
            assert "401" in operation["responses"], f"{method} {path} documents no 401"
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["properties"])
    raw = document["paths"]["/api/v1/data/raw"]["get"]
    assert {"loopId", "start", "end", "fields", "limit", "cursor", "format"} <= {
        parameter["name"] for parameter in raw["parameters"]
    }
    assert "text/csv" in raw["responses"]["200"]["content"]
