"""KPIs: a loop's history, latest window and summary; the fleet summary; APC attainment.

All need the ``viewer`` role. KPI rows answer our column names and, on request
(``columns=pi,osc_index``), the original system's names (see :mod:`.kpi_columns`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from clpm_api_gateway.columnar import iso_time
from clpm_api_gateway.csv_export import CSV_RESPONSE_DOC, csv_response, rows_csv, wants_csv
from clpm_api_gateway.dependencies import (
    FreshDep,
    GatewayResources,
    ResourcesDep,
    SessionDep,
    SettingsDep,
)
from clpm_api_gateway.fleet_summary import fleet_summary
from clpm_api_gateway.kpi_columns import (
    KPI_COLUMNS,
    NUMERIC_KPIS,
    alias_table,
    kpi_row,
    resolve_columns,
)
from clpm_api_gateway.problems import (
    PROBLEM_401,
    PROBLEM_404,
    PROBLEM_422,
    PROBLEM_503,
    loop_not_found,
)
from clpm_api_gateway.query_parameters import (
    OptionalEnd,
    OptionalStart,
    TimeWindow,
    now_utc,
    parse_limit,
    parse_window,
)
from clpm_api_gateway.response_cache import FLEET_TAG, cached_json, json_response, loop_tags
from clpm_api_gateway.routes_data import FormatQuery
from clpm_api_gateway.routes_diagnostics import findings
from clpm_api_gateway.routes_fleet import PeriodQuery, stored_period
from clpm_api_gateway.routes_loops import (
    AreaQuery,
    LoopIdPath,
    UnitQuery,
    config_out,
    existing_loop,
    loop_out,
    path_loop_id,
)
from clpm_api_gateway.schemas import (
    AliasEntry,
    ApcHistory,
    ApcLoop,
    ApcSummary,
    ApcWindow,
    FleetSummary,
    KpiComprehensive,
    KpiLatest,
    KpiRows,
    KpiSummary,
    Period,
)
from clpm_api_gateway.security import require_role
from clpm_shared.analytics import LoopConfig, LoopWindow
from clpm_shared.analytics.oscillation_view import oscillation_signal, oscillation_view
from clpm_shared.cache import cache_key, ttl_for_range
from clpm_shared.db.models import KpiResult
from clpm_shared.db.repositories.apc_read import ApcReadRepository
from clpm_shared.db.repositories.diagnostics_read import DiagnosticReadRepository
from clpm_shared.db.repositories.kpis_read import KpiReadRepository
from clpm_shared.db.repositories.loop_overview import LoopOverviewRepository
from clpm_shared.db.repositories.loops import LoopConfigRepository

router = APIRouter(
    tags=["kpis"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)

DEFAULT_KPI_SPAN = timedelta(hours=24)
MAX_KPI_ROWS = 10_000

ColumnsQuery = Annotated[
    list[str] | None,
    Query(
        description="Columns to return (comma-separated or repeated): our names or the original "
        "system's (see GET /kpis/aliases). Default: all of ours.",
        examples=["window_start,health_score,pi,osc_index"],
    ),
]


async def require_registered_loop(resources: GatewayResources, loop_id: str) -> None:
    async with resources.sessions() as session:
        if await LoopOverviewRepository(session).get(loop_id) is None:
            raise loop_not_found(loop_id)


@router.get(
    "/loops/{loop_id}/kpis",
    summary="KPI history of a loop",
    response_model=KpiRows,
    responses={**PROBLEM_404, 200: {"content": CSV_RESPONSE_DOC}},
)
async def kpi_history(
    request: Request,
    resources: ResourcesDep,
    fresh: FreshDep,
    loop_id: LoopIdPath,
    start: OptionalStart = None,
    end: OptionalEnd = None,
    limit: Annotated[int | None, Query(ge=1, description=f"at most {MAX_KPI_ROWS}")] = None,
    columns: ColumnsQuery = None,
    export_format: FormatQuery = None,
) -> Response:
    """KPI rows whose window starts in [start, end), oldest first."""
    loop_id = path_loop_id(loop_id)
    now = now_utc()
    window = parse_window(start, end, default_span=DEFAULT_KPI_SPAN, now=now)
    rows_limit = parse_limit(limit, 1000, MAX_KPI_ROWS)
    chosen = resolve_columns(columns)
    csv = wants_csv(request, export_format)

    async def compute() -> dict[str, Any]:
        await require_registered_loop(resources, loop_id)
        async with resources.sessions() as session:
            rows = await KpiReadRepository(session).history(
                loop_id, window.start, window.end, rows_limit
            )
        return {
            "loop_id": loop_id,
            "start": iso_time(window.start),
            "end": iso_time(window.end),
            "count": len(rows),
            "columns": chosen,
            "items": [kpi_row(row, chosen) for row in rows],
        }

    key = cache_key(
        "api:kpis:history",
        loop_id=loop_id,
        start=window.start,
        end=window.end,
        limit=rows_limit,
        columns=chosen,
    )
    ttl = ttl_for_range(resources.settings.cache, window.end, now=now)
    payload = await cached_json(resources.cache, key, ttl, compute, loop_tags(loop_id), fresh=fresh)
    if csv:
        return csv_response(rows_csv(json.loads(payload)["items"], chosen), f"{loop_id}-kpis")
    return json_response(payload)


def _offline(loop_id: str, columns: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(columns)
    row.update({"loop_id": loop_id, "window_start": None, "window_end": None})
    row.update({"status": "offline", "health_score": None})
    return row


@router.get(
    "/loops/{loop_id}/kpis/latest",
    summary="KPIs of a loop's latest window",
    response_model=KpiLatest,
    responses=PROBLEM_404,
)
async def kpi_latest(
    resources: ResourcesDep, fresh: FreshDep, loop_id: LoopIdPath, columns: ColumnsQuery = None
) -> Response:
    """The newest KPI row; status offline and null KPIs when none was computed yet."""
    loop_id = path_loop_id(loop_id)
    chosen = resolve_columns(columns)

    async def compute() -> dict[str, Any]:
        await require_registered_loop(resources, loop_id)
        async with resources.sessions() as session:
            row = await KpiReadRepository(session).latest(loop_id)
        if row is None:
            return _offline(loop_id, chosen)
        answer = kpi_row(row, chosen)
        answer.setdefault("loop_id", loop_id)
        answer.setdefault("window_start", iso_time(row.window_start))
        answer.setdefault("window_end", iso_time(row.window_end))
        answer.setdefault("status", row.status)
        answer.setdefault("health_score", row.health_score)
        return answer

    key = cache_key("api:kpis:latest", loop_id=loop_id, columns=chosen)
    ttl = resources.settings.cache.cache_ttl_recent_s
    return json_response(
        await cached_json(resources.cache, key, ttl, compute, loop_tags(loop_id), fresh=fresh)
    )


def _statistics(rows: list[KpiResult], name: str) -> dict[str, float | None]:
    values = [
        float(value)
        for value in (getattr(row, name) for row in rows)
        if value is not None and math.isfinite(value)
    ]
    last = next(
        (getattr(row, name) for row in reversed(rows) if getattr(row, name) is not None), None
    )
    if not values:
        return {"mean": None, "min": None, "max": None, "last": None}
    return {
        "mean": round(sum(values) / len(values), 6),
        "min": min(values),
        "max": max(values),
        "last": last,
    }


def kpi_summary(loop_id: str, window: TimeWindow, rows: list[KpiResult]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return {
        "loop_id": loop_id,
        "start": iso_time(window.start),
        "end": iso_time(window.end),
        "windows": len(rows),
        "status_counts": counts,
        "latest_status": rows[-1].status if rows else "offline",
        "kpis": {name: _statistics(rows, name) for name in NUMERIC_KPIS},
    }


@router.get(
    "/loops/{loop_id}/kpis/summary",
    summary="KPI statistics of a loop over a period",
    response_model=KpiSummary,
    responses=PROBLEM_404,
)
async def kpi_period_summary(
    resources: ResourcesDep,
    fresh: FreshDep,
    loop_id: LoopIdPath,
    start: OptionalStart = None,
    end: OptionalEnd = None,
) -> Response:
    """Mean, minimum, maximum and last value of the main KPIs, and windows per status."""
    loop_id = path_loop_id(loop_id)
    now = now_utc()
    window = parse_window(start, end, default_span=DEFAULT_KPI_SPAN, now=now)

    async def compute() -> dict[str, Any]:
        await require_registered_loop(resources, loop_id)
        async with resources.sessions() as session:
            rows = list(
                await KpiReadRepository(session).history(
                    loop_id, window.start, window.end, MAX_KPI_ROWS
                )
            )
        return kpi_summary(loop_id, window, rows)

    key = cache_key("api:kpis:summary", loop_id=loop_id, start=window.start, end=window.end)
    ttl = ttl_for_range(resources.settings.cache, window.end, now=now)
    return json_response(
        await cached_json(resources.cache, key, ttl, compute, loop_tags(loop_id), fresh=fresh)
    )


class OscillationViewOut(BaseModel):
    """ACF and relative power spectrum of the oscillation signal of a loop's latest window."""

    loop_id: str
    window_start: str | None
    window_end: str | None
    lag_s: list[float]
    acf: list[float]
    period_s: list[float]
    power: list[float]
    reason: str | None


@router.get(
    "/loops/{loop_id}/kpis/latest/oscillation-view",
    summary="ACF and spectrum of a loop's latest KPI window",
    response_model=OscillationViewOut,
    responses=PROBLEM_404,
)
async def kpi_latest_oscillation_view(
    resources: ResourcesDep, loop_id: LoopIdPath
) -> OscillationViewOut:
    """Computed on demand from the raw samples of the latest KPI window on the KPI worker's
    1 s grid: the control error in service (else PV), detrended; empty with a reason when
    there is no window or too little data. 503 when the time-series store is down."""
    loop_id = path_loop_id(loop_id)
    await require_registered_loop(resources, loop_id)
    async with resources.sessions() as session:
        latest = await KpiReadRepository(session).latest(loop_id)
        stored = await LoopConfigRepository(session).get(loop_id)
    modes = stored.normal_modes if stored is not None else None
    config = LoopConfig.from_mapping({"normal_modes": modes})
    empty: dict[str, list[float]] = {"lag_s": [], "acf": [], "period_s": [], "power": []}
    if latest is None:
        return OscillationViewOut(
            loop_id=loop_id, window_start=None, window_end=None, reason="no KPI window yet", **empty
        )
    start, end = latest.window_start, latest.window_end
    series = (await resources.store.query_raw_many([loop_id], start, end)).get(loop_id)
    times = {"window_start": iso_time(start), "window_end": iso_time(end)}
    if series is None or len(series) < 3:
        return OscillationViewOut(
            loop_id=loop_id, reason="no raw samples in the window", **times, **empty
        )
    window = LoopWindow.from_raw(
        series.t_ns.astype(float) / 1e9,
        series.pv,
        series.sp,
        series.op,
        [("" if m is None else str(m)) for m in series.mode],
        start=start.timestamp(),
        end=end.timestamp(),
        ts=1.0,
    )
    view = oscillation_view(oscillation_signal(window, config), window.ts)
    return OscillationViewOut.model_validate({"loop_id": loop_id, **times, **view.to_dict()})


@router.get(
    "/loops/{loop_id}/kpis/comprehensive",
    summary="Everything about a loop's performance in one answer",
    response_model=KpiComprehensive,
    responses=PROBLEM_404,
)
async def kpi_comprehensive(
    session: SessionDep,
    settings: SettingsDep,
    loop_id: LoopIdPath,
    start: OptionalStart = None,
    end: OptionalEnd = None,
) -> KpiComprehensive:
    """The loop with its latest KPI headline, its configuration, all KPIs of the latest window,
    the KPI summary over [start, end) (default the last 24 h) and the latest findings."""
    loop_id = path_loop_id(loop_id)
    window = parse_window(start, end, default_span=DEFAULT_KPI_SPAN, now=now_utc())
    overview = await existing_loop(session, loop_id)
    repository = KpiReadRepository(session)
    latest = await repository.latest(loop_id)
    rows = list(await repository.history(loop_id, window.start, window.end, MAX_KPI_ROWS))
    config = await LoopConfigRepository(session).get(loop_id)
    return KpiComprehensive(
        loop=loop_out(overview),
        config=config_out(loop_id, config, settings.kpi.kpi_window_min),
        latest=kpi_row(latest, list(KPI_COLUMNS))
        if latest
        else _offline(loop_id, list(KPI_COLUMNS)),
        summary=KpiSummary.model_validate(kpi_summary(loop_id, window, rows)),
        diagnostics=findings(loop_id, await DiagnosticReadRepository(session).latest(loop_id)),
    )


@router.get(
    "/kpis/aliases",
    summary="Original kpi_results column names and what answers them",
    response_model=list[AliasEntry],
)
async def kpi_aliases() -> list[dict[str, Any]]:
    """Each column name of the original system, the column of ours that answers it (scaled by
    ``scale``), or null with the reason when there is no counterpart."""
    return alias_table()


@router.get(
    "/fleet/summary",
    summary="Fleet health: status distribution, bad actors, roll-up by unit",
    response_model=FleetSummary,
)
async def fleet(
    resources: ResourcesDep,
    fresh: FreshDep,
    unit: UnitQuery = None,
    area: AreaQuery = None,
    top: Annotated[int, Query(ge=1, le=500, description="bad actors to list")] = 10,
    period: PeriodQuery = Period.DAY,
) -> Response:
    """From each loop's rating over ``period`` (default the last day; ``window``: its latest
    KPI window): loops per status and per 10-point health band, the ``top`` bad actors by
    (100 - health) x criticality, and criticality-weighted health per unit and for the whole
    selection. Offline and not-assessed loops are counted, not ranked and not in the health
    (the whole ranking: ``GET /fleet/ranking``)."""

    async def compute() -> dict[str, Any]:
        async with resources.sessions() as session:
            loops = await LoopOverviewRepository(session).all(
                unit=unit, area=area, period=stored_period(period)
            )
        return {"period": period.value, **fleet_summary(loops, top)}

    key = cache_key("api:fleet:summary", unit=unit, area=area, top=top, period=period.value)
    ttl = resources.settings.cache.cache_ttl_recent_s
    return json_response(
        await cached_json(resources.cache, key, ttl, compute, [FLEET_TAG], fresh=fresh)
    )


@router.get(
    "/loops/{loop_id}/apc",
    summary="APC attainment of a loop per window",
    response_model=ApcHistory,
    responses={**PROBLEM_404, 200: {"content": CSV_RESPONSE_DOC}},
)
async def apc_history(
    request: Request,
    resources: ResourcesDep,
    fresh: FreshDep,
    loop_id: LoopIdPath,
    start: OptionalStart = None,
    end: OptionalEnd = None,
    export_format: FormatQuery = None,
) -> Response:
    """Attainment and the reasons' shares of each window that starts in [start, end)."""
    loop_id = path_loop_id(loop_id)
    now = now_utc()
    window = parse_window(start, end, default_span=DEFAULT_KPI_SPAN, now=now)
    csv = wants_csv(request, export_format)

    async def compute() -> dict[str, Any]:
        await require_registered_loop(resources, loop_id)
        async with resources.sessions() as session:
            rows = await ApcReadRepository(session).history(
                loop_id, window.start, window.end, MAX_KPI_ROWS
            )
        return {
            "loop_id": loop_id,
            "start": iso_time(window.start),
            "end": iso_time(window.end),
            "count": len(rows),
            "items": [
                {
                    "window_start": iso_time(row.window_start),
                    "window_end": iso_time(row.window_end),
                    "samples": row.samples,
                    "attainment": row.attainment,
                    "wrong_mode_share": row.wrong_mode_share,
                    "saturated_share": row.saturated_share,
                    "bad_data_share": row.bad_data_share,
                }
                for row in rows
            ],
        }

    key = cache_key("api:apc:history", loop_id=loop_id, start=window.start, end=window.end)
    ttl = ttl_for_range(resources.settings.cache, window.end, now=now)
    payload = await cached_json(resources.cache, key, ttl, compute, loop_tags(loop_id), fresh=fresh)
    if csv:
        columns = list(ApcWindow.model_fields)
        return csv_response(rows_csv(json.loads(payload)["items"], columns), f"{loop_id}-apc")
    return json_response(payload)


@router.get(
    "/apc/attainment",
    summary="APC attainment per loop over a period",
    response_model=ApcSummary,
    responses={200: {"content": CSV_RESPONSE_DOC}},
)
async def apc_attainment(
    request: Request,
    resources: ResourcesDep,
    fresh: FreshDep,
    start: OptionalStart = None,
    end: OptionalEnd = None,
    unit: UnitQuery = None,
    area: AreaQuery = None,
    export_format: FormatQuery = None,
) -> Response:
    """Share of time each APC loop was available to APC (mode in apc_modes, OP not saturated,
    data valid) and the shares of the reasons otherwise; weighted by samples."""
    now = now_utc()
    window = parse_window(start, end, default_span=DEFAULT_KPI_SPAN, now=now)
    csv = wants_csv(request, export_format)

    async def compute() -> dict[str, Any]:
        async with resources.sessions() as session:
            loops = await ApcReadRepository(session).per_loop(
                window.start, window.end, unit=unit, area=area
            )
        weighted = [
            (item.attainment, item.samples) for item in loops if item.attainment is not None
        ]
        total = sum(samples for _, samples in weighted)
        overall = sum(value * samples for value, samples in weighted) / total if total > 0 else None
        return {
            "start": iso_time(window.start),
            "end": iso_time(window.end),
            "loops": len(loops),
            "attainment": overall,
            "items": [asdict(item) for item in loops],
        }

    key = cache_key("api:apc:attainment", start=window.start, end=window.end, unit=unit, area=area)
    ttl = ttl_for_range(resources.settings.cache, window.end, now=now)
    payload = await cached_json(resources.cache, key, ttl, compute, [FLEET_TAG], fresh=fresh)
    if csv:
        columns = list(ApcLoop.model_fields)
        return csv_response(rows_csv(json.loads(payload)["items"], columns), "apc-attainment")
    return json_response(payload)
