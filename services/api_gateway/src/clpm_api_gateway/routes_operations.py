"""``/health`` (liveness), ``/ready`` (database and time-series store reachable) and
``/metrics`` (Prometheus, :mod:`clpm_api_gateway.metrics`); no auth: the frontend's nginx does
not pass ``/metrics`` on, it is for scrapers inside the deployment."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from clpm_api_gateway.dependencies import ResourcesDep
from clpm_api_gateway.schemas import Health, Readiness
from clpm_shared import __version__
from clpm_shared.web.problems import TYPE_UNAVAILABLE, problem_response

probes = APIRouter(tags=["operations"])
"""``/health`` and ``/ready``: also served under the API prefix (``/metrics`` is not: the
frontend's nginx passes the prefix on, and the metrics are for scrapers inside the deployment)."""
router = APIRouter(tags=["operations"])

READY_TIMEOUT_S = 3.0
RETRY_AFTER_S = 5


@probes.get("/health", summary="Liveness", response_model=Health)
async def health() -> Health:
    return Health(status="ok", service="api-gateway", version=__version__)


async def _database_ok(resources: ResourcesDep) -> bool:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S), resources.engine.connect():
            return True
    except Exception:  # any failure to connect means "not ready"
        return False


async def _store_ok(resources: ResourcesDep) -> bool:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            return await resources.store.ping()
    except Exception:  # any failure to answer means "not ready"
        return False


@probes.get(
    "/ready",
    summary="Readiness: database and time-series store reachable",
    response_model=Readiness,
    responses={503: {"description": "A dependency is unreachable (problem details, Retry-After)"}},
)
async def ready(request: Request, resources: ResourcesDep) -> Response:
    database, store = await asyncio.gather(_database_ok(resources), _store_ok(resources))
    checks = {"database": "ok" if database else "down", "timeseries": "ok" if store else "down"}
    if database and store:
        return JSONResponse({"status": "ready", "checks": checks})
    return problem_response(
        request,
        503,
        "not ready: " + ", ".join(name for name, state in checks.items() if state != "ok"),
        type_=TYPE_UNAVAILABLE,
        title="Not ready",
        retry_after_s=RETRY_AFTER_S,
        extensions={"checks": checks},
    )


router.include_router(probes)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process (response cache at work)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
