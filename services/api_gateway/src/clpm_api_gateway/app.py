"""FastAPI application of the API gateway (:8080): routers, lifespan, errors, CORS.

Every API route is served under ``API_PREFIX`` (``/api/v1``) and, for clients of the original
system that call the paths as its documents write them, also without the prefix (those copies
are left out of the OpenAPI document). Settings are read once; the database engine, the
time-series store, the cache, the diagnostics client and the token validator are created in the
lifespan and closed at shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from clpm_api_gateway import (
    routes_alerts,
    routes_audit,
    routes_catalogue,
    routes_data,
    routes_diagnostics,
    routes_fleet,
    routes_import,
    routes_kpis,
    routes_loops,
    routes_operations,
    routes_reports,
    routes_trends,
    routes_work_items,
)
from clpm_api_gateway.cached_hits import CachedHitAnswers, CachedHitStats
from clpm_api_gateway.dependencies import GatewayResources
from clpm_api_gateway.diagnostics_client import create_client
from clpm_api_gateway.frontend_hosting import install_frontend
from clpm_api_gateway.metrics import (
    RequestDurations,
    gateway_registry,
    request_duration_histogram,
)
from clpm_api_gateway.rate_limit import RateLimiter
from clpm_api_gateway.response_cache import ResponseCache
from clpm_api_gateway.security import body_limits_of, mount_security, security_lifespan
from clpm_shared import __version__
from clpm_shared.config import Settings, load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.service_token import service_token
from clpm_shared.timeseries.factory import create_store
from clpm_shared.web.access_log import access_log_observer
from clpm_shared.web.api_docs import install_api_docs
from clpm_shared.web.body_limit import RequestBodyLimit
from clpm_shared.web.layered_app import LayeredFastAPI
from clpm_shared.web.observed_requests import ObservedRequests, RequestObserver
from clpm_shared.web.problems import Problem, install_problem_handlers
from clpm_shared.web.security_headers import SecurityHeaders

API_ROUTERS: tuple[APIRouter, ...] = (
    routes_data.router,
    routes_catalogue.router,
    routes_import.router,
    routes_loops.router,
    routes_kpis.router,
    routes_fleet.router,
    routes_trends.router,
    routes_diagnostics.router,
    routes_work_items.router,
    routes_audit.router,
    *routes_alerts.routers,
    routes_reports.router,
)

ACCESS_LOGGER = "clpm_api_gateway.access"

DESCRIPTION = """\
Loop data, KPIs and diagnoses of the CLPM suite.

* **Auth**: bearer JWT (Keycloak realm `clpm`, audience `clpm-api`). Roles: `viewer` reads,
  `engineer` also changes loop configuration, runs diagnoses and creates and changes work
  items, `admin` also creates, changes and deletes loops and reads the audit trail.
* **Compatibility**: routes, lowercase field names and columnar shapes of the original API.
  Every route below is also served without the `/api/v1` prefix.
* **Errors**: RFC 9457 problem details (`application/problem+json`); validation problems name
  the parameter in `errors[].parameter`; an unavailable backend answers 503 with `Retry-After`.
* **CSV**: data and KPI queries answer CSV with `format=csv` or `Accept: text/csv`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway; engines and clients are created in the lifespan."""
    resolved = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(resolved.database)
        store = create_store(resolved.influx, resolved.cache)
        cache = ResponseCache.from_settings(resolved.cache)
        diagnostics = create_client(
            resolved.api.diag_service_url, resolved.api.diag_timeout_s, service_token(resolved)
        )
        app.state.resources = GatewayResources(
            settings=resolved,
            engine=engine,
            sessions=create_session_factory(engine),
            store=store,
            cache=cache,
            diagnostics=diagnostics,
        )
        try:
            async with security_lifespan(app, resolved):
                yield
        finally:
            await diagnostics.aclose()
            await cache.aclose()
            await store.close()
            await engine.dispose()

    app = LayeredFastAPI(
        title="CLPM API gateway",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by install_api_docs, without a CDN
        redoc_url=None,
    )
    # no slash-redirects: Starlette builds their Location from the request's Host header, so a
    # forged Host would send the client elsewhere; /loops/ is a 404 like any unknown path
    app.router.redirect_slashes = False
    install_problem_handlers(app)
    stats = app.state.cached_hits = CachedHitStats()
    app.state.rate_limiter = RateLimiter(
        resolved.api.api_rate_limit_per_min, resolved.api.api_rate_limit_burst
    )
    registry = app.state.metrics_registry = gateway_registry(app.state)
    observers: list[RequestObserver] = [RequestDurations(request_duration_histogram(registry))]
    access_log = access_log_observer(ACCESS_LOGGER)
    if access_log is not None:
        observers.append(access_log)
    # outermost: every request is timed once, also those the cached-hit layer answers
    app.outer_layers.append(lambda inner: ObservedRequests(inner, observers=observers))
    no_store = (resolved.api.api_prefix.rstrip("/") + "/", "/realms/")
    app.outer_layers.append(lambda inner: SecurityHeaders(inner, no_store_prefixes=no_store))
    mount_security(app, resolved)
    body_limits = body_limits_of(app, resolved)
    app.outer_layers.append(
        lambda inner: RequestBodyLimit(
            inner, max_bytes=resolved.api.api_max_body_bytes, limits=body_limits
        )
    )
    if resolved.api.api_fast_cached_hits:
        prefix = resolved.api.api_prefix
        app.outer_layers.append(lambda inner: CachedHitAnswers(inner, prefix=prefix, stats=stats))
    app.add_middleware(
        CORSMiddleware,
        allow_origins=resolved.api.api_cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Retry-After", "Location", "X-Next-Cursor", "Content-Disposition"],
    )
    prefix = resolved.api.api_prefix.rstrip("/")
    app.include_router(routes_operations.router)
    if prefix:  # the probes also under the prefix, as every route
        app.include_router(routes_operations.probes, prefix=prefix, include_in_schema=False)
    for router in API_ROUTERS:
        app.include_router(router, prefix=prefix)
        app.include_router(router, include_in_schema=False)
    install_api_docs(app)
    install_frontend(app, resolved)  # keep last: its catch-all serves the web front
    _document_problem_schema(app)
    return app


def _document_problem_schema(app: FastAPI) -> None:
    """Add the ``Problem`` schema that the error responses reference to the OpenAPI document."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(problem.pop("$defs", {}))
            schemas["Problem"] = problem
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
