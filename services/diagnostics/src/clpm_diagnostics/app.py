"""FastAPI application of the diagnostics service (DIAG_HOST:DIAG_PORT, default :8050)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime
from sqlalchemy import text

from clpm_diagnostics import problems
from clpm_diagnostics.problems import PROBLEM_RESPONSES
from clpm_diagnostics.runs import ClusterRun, DiagnosisRunner, UnknownLoopError, json_safe
from clpm_diagnostics.schemas import (
    CLUSTER_MAX_RANGE,
    BatchOut,
    BatchRequest,
    ClustersOut,
    DiagnoseRequest,
    LoopDiagnosisOut,
    range_problem,
)
from clpm_shared import __version__
from clpm_shared.config import Settings, load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.service_token import is_service_token, service_token
from clpm_shared.timeseries import StoreUnavailableError, TimeSeriesStore
from clpm_shared.timeseries.factory import create_store
from clpm_shared.web.access_log import access_log_observer
from clpm_shared.web.api_docs import install_api_docs
from clpm_shared.web.body_limit import RequestBodyLimit
from clpm_shared.web.layered_app import LayeredFastAPI
from clpm_shared.web.observed_requests import ObservedRequests
from clpm_shared.web.problems import Problem, install_problem_handlers, invalid_parameter
from clpm_shared.web.security_headers import SecurityHeaders

DESCRIPTION = """\
Why a control loop performs badly. For a loop and a window it reads the raw PV/SP/OP/mode
samples, computes the KPIs and runs the diagnosis rules: oscillation and its cause (valve
stiction by two independent tests, external disturbance, aggressive tuning), saturation and
valve sizing, sluggish tuning, sensor faults (flatline, spikes, out of range, noise) and mode
issues. Each finding has a category, a severity and a confidence (0-1), the evidence (numbers)
and one recommendation; findings are stored in `diagnostic_results`.

`POST /diagnose/batch` diagnoses several loops over one window (the KPI worker diagnoses every
loop itself on each window, trigger `kpi_cycle`). `GET /oscillation-clusters` groups the
plant's oscillating loops that share one oscillation (coherent at a common period, not merely
of a similar period) and names the likely source, with each member's evidence.

Every route but `/health` and `/ready` needs `Authorization: Bearer <DIAG_SERVICE_TOKEN>`:
only the API gateway (which checks the user's role and always asks for `on_demand` runs) and
the workers call this service.

Errors are RFC 9457 problem details (`application/problem+json`).
"""


log = logging.getLogger("clpm_diagnostics.app")


DEFERRED_RECHECK_S = 30.0
"""Seconds between checks whether a deferred scheduled cluster run may start."""


async def scheduled_cluster_pass(runner: DiagnosisRunner, now: datetime) -> list[ClusterRun] | None:
    """One scheduled pass (:meth:`DiagnosisRunner.precompute_clusters`), or None when it is
    deferred: while the kpi-worker works through history the two cores are theirs (the
    aggregation and the KPIs of the history), and the pass runs once the history is done."""
    if await runner.kpi_history_running(now):
        log.info("scheduled cluster run deferred: a KPI history run is active")
        return None
    return await runner.precompute_clusters(now)


async def cluster_schedule(runner: DiagnosisRunner) -> None:
    """Precompute the plant-wide clusters of the scheduled windows, once per interval (a
    deferred pass is tried again every :data:`DEFERRED_RECHECK_S`)."""
    if not runner.cluster_spans or runner.cluster_interval <= timedelta(0):
        return
    interval = runner.cluster_interval.total_seconds()
    while True:
        deferred = False
        try:
            deferred = await scheduled_cluster_pass(runner, datetime.now(UTC)) is None
        except Exception:  # the next interval tries again; a request still computes on demand
            log.exception("scheduled cluster run failed")
        if deferred:
            await asyncio.sleep(DEFERRED_RECHECK_S)
            continue
        await asyncio.sleep(interval - datetime.now(UTC).timestamp() % interval + 1.0)


def _runner(request: Request) -> DiagnosisRunner:
    runner: DiagnosisRunner = request.app.state.runner
    return runner


RunnerDep = Annotated[DiagnosisRunner, Depends(_runner)]


PUBLIC_PATHS = frozenset({"/health", "/ready"})
service_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="serviceToken",
    description="DIAG_SERVICE_TOKEN (or CLPM_DATA_DIR/service-token): the gateway and the "
    "workers only.",
)


def service_caller_check(token: str) -> Callable[..., Awaitable[None]]:
    """App-wide dependency: every route but the probes needs the service token (else 401)."""

    async def require_service_token(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(service_bearer)],
    ) -> None:
        if request.url.path in PUBLIC_PATHS:
            return
        presented = None if credentials is None else f"Bearer {credentials.credentials}"
        if not is_service_token(presented, token):
            raise HTTPException(
                401,
                "this service answers the gateway and the workers only: "
                "send 'Authorization: Bearer <DIAG_SERVICE_TOKEN>'",
                headers={"WWW-Authenticate": 'Bearer realm="clpm-services"'},
            )

    return require_service_token


def create_app(settings: Settings | None = None, store: TimeSeriesStore | None = None) -> FastAPI:
    """Build the service; the engine and the store are opened in the lifespan.

    ``store`` replaces the store built from ``settings.influx`` (the caller then owns it).
    """
    resolved = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(resolved.database)
        owned = store is None
        timeseries = store if store is not None else create_store(resolved.influx)
        app.state.settings = resolved
        app.state.engine = engine
        app.state.store = timeseries
        app.state.runner = DiagnosisRunner(
            create_session_factory(engine),
            timeseries,
            cluster_raw_max=timedelta(hours=resolved.diagnostics.diag_cluster_raw_max_h),
            cluster_raw_max_loop_hours=resolved.diagnostics.diag_cluster_raw_max_loop_hours,
            cluster_spans=resolved.diagnostics.cluster_precompute_spans,
            cluster_interval=timedelta(seconds=resolved.diagnostics.diag_cluster_interval_s),
        )
        schedule = asyncio.create_task(cluster_schedule(app.state.runner))
        try:
            yield
        finally:
            schedule.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await schedule
            if owned:
                await timeseries.close()
            await engine.dispose()

    caller_check = service_caller_check(service_token(resolved))
    app = LayeredFastAPI(
        title="CLPM diagnostics",
        dependencies=[Depends(caller_check)],
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses={500: {"model": Problem, "description": "Unexpected error (logged)"}},
        docs_url=None,  # served by install_api_docs, without a CDN
        redoc_url=None,
    )
    # no redirect to the slash-less path: its Location would be built from the Host header
    app.router.redirect_slashes = False
    install_problem_handlers(app)
    access_log = access_log_observer("clpm_diagnostics.access")
    if access_log is not None:
        app.outer_layers.append(lambda inner: ObservedRequests(inner, observers=[access_log]))
    app.outer_layers.append(lambda inner: SecurityHeaders(inner, no_store_prefixes=("/",)))
    max_body = resolved.diagnostics.diag_max_body_bytes
    app.outer_layers.append(lambda inner: RequestBodyLimit(inner, max_bytes=max_body))

    @app.get("/health", tags=["operations"], summary="Liveness")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "diagnostics", "version": __version__}

    @app.get(
        "/ready",
        tags=["operations"],
        summary="Readiness: database and time-series store reachable",
        responses={503: PROBLEM_RESPONSES[503]},
    )
    async def ready(request: Request) -> dict[str, str]:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        if not await request.app.state.store.ping():
            raise StoreUnavailableError("time-series store does not answer its ping")
        return {"status": "ready"}

    @app.post(
        "/diagnose",
        tags=["diagnosis"],
        summary="Diagnose one loop over a window and store the findings",
        response_model=LoopDiagnosisOut,
        responses={
            404: {"model": Problem, "description": "Unknown loop"},
            **PROBLEM_RESPONSES,
        },
    )
    async def diagnose(body: DiagnoseRequest, runner: RunnerDep) -> dict[str, object]:
        problem = range_problem(body.start, body.end)
        if problem:
            raise invalid_parameter("end", problem, location="body")
        try:
            outcomes, _, _ = await runner.diagnose(
                [body.loop_id], body.start, body.end, body.trigger
            )
        except UnknownLoopError as error:
            raise problems.loops_not_found(error.loop_ids) from None
        answer: dict[str, object] = json_safe(outcomes[0].to_dict())
        return answer

    @app.post(
        "/diagnose/batch",
        tags=["diagnosis"],
        summary="Diagnose several loops over one window (the KPI worker's trigger)",
        response_model=BatchOut,
        responses=PROBLEM_RESPONSES,
    )
    async def diagnose_batch(body: BatchRequest, runner: RunnerDep) -> dict[str, object]:
        problem = range_problem(body.start, body.end)
        if problem:
            raise invalid_parameter("end", problem, location="body")
        outcomes, clusters, unknown = await runner.diagnose(
            body.loop_ids, body.start, body.end, body.trigger, require_known=False
        )
        answer: dict[str, object] = json_safe(
            {
                "count": len(outcomes),
                "results": [outcome.to_dict() for outcome in outcomes],
                "clusters": [cluster.to_dict() for cluster in clusters],
                "unknown_loop_ids": unknown,
            }
        )
        return answer

    @app.get(
        "/oscillation-clusters",
        tags=["diagnosis"],
        summary="Plant-wide oscillation clusters (loops sharing one oscillation) and their source",
        response_model=ClustersOut,
        responses=PROBLEM_RESPONSES,
    )
    async def oscillation_clusters(
        runner: RunnerDep,
        start: Annotated[AwareDatetime, Query(examples=["2025-01-10T10:00:00Z"])],
        end: Annotated[AwareDatetime, Query(examples=["2025-01-10T11:00:00Z"])],
    ) -> dict[str, object]:
        problem = range_problem(start, end, max_range=CLUSTER_MAX_RANGE)
        if problem:
            raise invalid_parameter("end", problem, location="query")
        stored = await runner.stored_clusters(start, end)
        if stored is not None:
            return dict(json_safe(stored))
        run = await runner.clusters(start, end)
        answer: dict[str, object] = json_safe(
            {
                "start": start,
                "end": end,
                "loops_analysed": run.loops_analysed,
                "oscillating_loops": run.oscillating_loops,
                "basis": run.basis,
                "computed_at": datetime.now(UTC),
                "precomputed": False,
                "clusters": [cluster.to_dict() for cluster in run.clusters],
            }
        )
        return answer

    install_api_docs(app)
    return app
