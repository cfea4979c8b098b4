"""Calls to the diagnostics service (DIAG_SERVICE_URL): run a diagnosis, oscillation clusters.

Failures become problem details: not reachable -> 503 with Retry-After; no answer within
DIAG_TIMEOUT_S -> 504 with Retry-After; a 5xx answer -> 502; a 4xx answer is passed on with its
status, detail and the parameters it names.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError

from clpm_api_gateway.columnar import iso_time
from clpm_shared.service_token import service_headers
from clpm_shared.web.problems import (
    DEFAULT_RETRY_AFTER_S,
    TYPE_UNAVAILABLE,
    TYPE_UPSTREAM,
    ParameterError,
    ProblemError,
    backend_unavailable,
)

logger = logging.getLogger("clpm_api_gateway.diagnostics_client")

BACKEND = "diagnostics service"


def create_client(base_url: str, timeout_s: float, token: str) -> httpx.AsyncClient:
    """A client that authenticates with the service token (:mod:`clpm_shared.service_token`)."""
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        headers={"user-agent": "clpm-api-gateway", **service_headers(token)},
    )


def _upstream_problem(response: httpx.Response) -> ProblemError:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    detail = None
    if isinstance(payload, dict):
        found = payload.get("detail")
        detail = found if isinstance(found, str) else None
    if response.status_code >= 500:
        logger.warning("diagnostics service answered %s", response.status_code)
        return ProblemError(
            502,
            f"the diagnostics service failed ({response.status_code})",
            type_=TYPE_UPSTREAM,
            title="Upstream error",
            extensions={"backend": BACKEND},
        )
    errors: list[ParameterError] = []
    if isinstance(payload, dict) and isinstance(payload.get("errors"), list):
        try:
            errors = [ParameterError.model_validate(item) for item in payload["errors"]]
        except ValidationError:
            errors = []
    return ProblemError(
        response.status_code,
        detail or f"the diagnostics service refused the request ({response.status_code})",
        type_=TYPE_UPSTREAM,
        errors=errors,
        extensions={"backend": BACKEND},
    )


async def _call(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = await client.request(method, path, **kwargs)
    except httpx.TimeoutException:
        logger.warning("diagnostics service timed out on %s %s", method, path)
        raise ProblemError(
            504,
            "the diagnostics service did not answer in time; try again later",
            type_=TYPE_UNAVAILABLE,
            title="Gateway timeout",
            retry_after_s=DEFAULT_RETRY_AFTER_S,
            extensions={"backend": BACKEND},
        ) from None
    except httpx.TransportError as exc:
        logger.warning("diagnostics service unreachable: %s", type(exc).__name__)
        raise backend_unavailable(BACKEND) from None
    if response.status_code >= 400:
        raise _upstream_problem(response)
    try:
        return response.json()
    except ValueError:
        raise ProblemError(
            502,
            "the diagnostics service answered something that is not JSON",
            type_=TYPE_UPSTREAM,
            title="Upstream error",
            extensions={"backend": BACKEND},
        ) from None


async def diagnose(client: httpx.AsyncClient, loop_id: str, start: datetime, end: datetime) -> Any:
    """``POST /diagnose {loop_id, start, end}``: the service's findings, as it answers them."""
    body = {"loop_id": loop_id, "start": iso_time(start), "end": iso_time(end)}
    return await _call(client, "POST", "/diagnose", json=body)


async def oscillation_clusters(client: httpx.AsyncClient, start: datetime, end: datetime) -> Any:
    """``GET /oscillation-clusters?start&end``: plant-wide clusters of loops oscillating alike."""
    params = {"start": iso_time(start), "end": iso_time(end)}
    return await _call(client, "GET", "/oscillation-clusters", params=params)
