"""Long-term trends: a loop's and the fleet's KPI and health per hour, day or week over weeks
and months, and a loop's KPI means before and after a date (e.g. a valve repair).

All need the ``viewer`` role. Aggregated in SQL from ``kpi_results``
(:class:`~clpm_shared.db.repositories.kpi_trends.KpiTrendRepository`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from clpm_api_gateway.columnar import iso_time
from clpm_api_gateway.csv_export import CSV_RESPONSE_DOC, csv_response, rows_csv, wants_csv
from clpm_api_gateway.dependencies import FreshDep, GatewayResources, ResourcesDep
from clpm_api_gateway.problems import PROBLEM_401, PROBLEM_404, PROBLEM_422, PROBLEM_503
from clpm_api_gateway.query_parameters import (
    OptionalEnd,
    OptionalStart,
    TimeWindow,
    now_utc,
    parse_time,
    parse_window,
)
from clpm_api_gateway.response_cache import FLEET_TAG, cached_json, json_response, loop_tags
from clpm_api_gateway.routes_data import FormatQuery
from clpm_api_gateway.routes_kpis import require_registered_loop
from clpm_api_gateway.routes_loops import AreaQuery, LoopIdPath, UnitQuery, path_loop_id
from clpm_api_gateway.security import require_role
from clpm_shared.cache import cache_key
from clpm_shared.db.repositories.kpi_trends import (
    TREND_KPIS,
    TREND_STATUSES,
    FleetGrouping,
    KpiTrendRepository,
    Resolution,
    TrendBucket,
)
from clpm_shared.web.problems import invalid_parameter

router = APIRouter(
    tags=["trends"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)

DEFAULT_TREND_SPAN = timedelta(days=90)
MAX_TREND_SPAN = timedelta(days=400)
MAX_BUCKETS = 2000
MAX_COMPARE_DAYS = 180
BUCKET_WIDTH: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}

ResolutionQuery = Annotated[
    Resolution,
    Query(description=f"bucket: UTC hour, day or ISO week; at most {MAX_BUCKETS} buckets"),
]
TrendStart = Annotated[
    OptionalStart,
    Query(description="ISO-8601 with zone; default end - 90 days (range at most 400 days)"),
]


class TrendPoint(BaseModel):
    bucket_start: str
    group: str | None = None
    windows: int
    loops: int
    means: dict[str, float | None]
    status_shares: dict[str, float]


class Trend(BaseModel):
    loop_id: str | None = None
    by: str | None = None
    weighting: str | None = None
    start: str
    end: str
    resolution: str
    kpis: list[str]
    count: int
    items: list[TrendPoint]


class KpiChange(BaseModel):
    kpi: str
    before: float | None
    after: float | None
    change: float | None
    change_pct: float | None
    windows_before: int
    windows_after: int


class Comparison(BaseModel):
    loop_id: str
    at: str
    days: int
    before_start: str
    after_end: str
    windows_before: int
    windows_after: int
    items: list[KpiChange]


def trend_window(start: str | None, end: str | None, resolution: Resolution) -> TimeWindow:
    """The validated range; 422 naming ``end`` (too long) or ``resolution`` (too many buckets)."""
    window = parse_window(start, end, default_span=DEFAULT_TREND_SPAN, now=now_utc())
    if window.end - window.start > MAX_TREND_SPAN:
        raise invalid_parameter(
            "end", f"range end - start must be at most {MAX_TREND_SPAN.days} days"
        )
    buckets = math.ceil(window.seconds / BUCKET_WIDTH[resolution].total_seconds())
    if buckets > MAX_BUCKETS:
        raise invalid_parameter(
            "resolution",
            f"{resolution} over this range gives {buckets} buckets (at most {MAX_BUCKETS}): "
            "choose a coarser resolution or a shorter range",
        )
    return window


def parse_moment(value: str, parameter: str) -> datetime:
    """A date (``2025-03-01``, midnight UTC) or an ISO-8601 date-time with a zone."""
    text = value.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise invalid_parameter(parameter, f"not a date: {value[:64]!r}") from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return parse_time(value, parameter)


def point(bucket: TrendBucket) -> dict[str, Any]:
    out = asdict(bucket)
    out["bucket_start"] = iso_time(bucket.bucket_start)
    return out


def trend_csv(body: dict[str, Any], filename: str) -> Response:
    kpis: list[str] = body["kpis"]
    rows = [
        {
            "bucket_start": item["bucket_start"],
            "group": item["group"],
            "windows": item["windows"],
            "loops": item["loops"],
            **item["means"],
            **{f"share_{status}": share for status, share in item["status_shares"].items()},
        }
        for item in body["items"]
    ]
    columns = [
        "bucket_start",
        *(["group"] if body.get("by") else []),
        "windows",
        "loops",
        *kpis,
        *(f"share_{status}" for status in TREND_STATUSES),
    ]
    return csv_response(rows_csv(rows, columns), filename)


@router.get(
    "/loops/{loop_id}/trends",
    summary="KPI and health trend of a loop per hour, day or week",
    response_model=Trend,
    responses={**PROBLEM_404, 200: {"content": CSV_RESPONSE_DOC}},
)
async def loop_trends(
    request: Request,
    resources: ResourcesDep,
    fresh: FreshDep,
    loop_id: LoopIdPath,
    start: TrendStart = None,
    end: OptionalEnd = None,
    resolution: ResolutionQuery = "day",
    export_format: FormatQuery = None,
) -> Response:
    """Per bucket of windows starting in [start, end): the number of KPI windows, the mean of
    each KPI over the windows that have it, and the share of windows (= of time) per status.
    Buckets without windows are left out."""
    loop_id = path_loop_id(loop_id)
    window = trend_window(start, end, resolution)
    csv = wants_csv(request, export_format)

    async def compute() -> dict[str, Any]:
        await require_registered_loop(resources, loop_id)
        async with resources.sessions() as session:
            buckets = await KpiTrendRepository(session).loop_trend(
                loop_id, window.start, window.end, resolution
            )
        return {
            "loop_id": loop_id,
            "start": iso_time(window.start),
            "end": iso_time(window.end),
            "resolution": resolution,
            "kpis": list(TREND_KPIS),
            "count": len(buckets),
            "items": [point(bucket) for bucket in buckets],
        }

    key = cache_key(
        "api:trends:loop", loop_id=loop_id, start=window.start, end=window.end, res=resolution
    )
    payload = await _cached(resources, key, compute, loop_tags(loop_id), fresh)
    if not csv:
        return json_response(payload)
    return trend_csv(json.loads(payload), f"clpm-trend-{loop_id}-{resolution}")


@router.get(
    "/fleet/trends",
    summary="Fleet health trend per hour, day or week, for the plant, each unit or each area",
    response_model=Trend,
    responses={200: {"content": CSV_RESPONSE_DOC}},
)
async def fleet_trends(
    request: Request,
    resources: ResourcesDep,
    fresh: FreshDep,
    start: TrendStart = None,
    end: OptionalEnd = None,
    resolution: ResolutionQuery = "day",
    by: Annotated[FleetGrouping, Query(description="group the loops by")] = "plant",
    unit: UnitQuery = None,
    area: AreaQuery = None,
    export_format: FormatQuery = None,
) -> Response:
    """Per group and bucket: KPI windows, loops with windows, the criticality-weighted mean
    health :math:`\\sum_w c_w h_w / \\sum_w c_w` over the windows with a health (as the
    roll-ups weight loops, default criticality 3) and the share of windows per status. By
    group (loops without a unit / area under ``null``), then time."""
    window = trend_window(start, end, resolution)
    csv = wants_csv(request, export_format)

    async def compute() -> dict[str, Any]:
        async with resources.sessions() as session:
            buckets = await KpiTrendRepository(session).fleet_trend(
                window.start, window.end, resolution, by, unit=unit, area=area
            )
        return {
            "by": by,
            "weighting": "criticality",
            "start": iso_time(window.start),
            "end": iso_time(window.end),
            "resolution": resolution,
            "kpis": ["health_score"],
            "count": len(buckets),
            "items": [point(bucket) for bucket in buckets],
        }

    key = cache_key(
        "api:trends:fleet",
        start=window.start,
        end=window.end,
        res=resolution,
        by=by,
        unit=unit,
        area=area,
    )
    payload = await _cached(resources, key, compute, (FLEET_TAG,), fresh)
    if not csv:
        return json_response(payload)
    return trend_csv(json.loads(payload), f"clpm-fleet-trend-{by}-{resolution}")


@router.get(
    "/loops/{loop_id}/compare",
    summary="KPI means of a loop before and after a date",
    response_model=Comparison,
    responses=PROBLEM_404,
)
async def loop_compare(
    resources: ResourcesDep,
    fresh: FreshDep,
    loop_id: LoopIdPath,
    at: Annotated[
        str,
        Query(
            description="the date (2025-03-01, midnight UTC) or date-time with zone to compare "
            "around, e.g. a valve repair",
            examples=["2025-03-01"],
        ),
    ],
    days: Annotated[int, Query(ge=1, le=MAX_COMPARE_DAYS, description="days on each side")] = 14,
) -> Response:
    """Per KPI: the mean over the windows starting in [at - days, at) and in [at, at + days),
    the change after - before and the change in % of |before| (null when before is 0 or
    missing), with the number of windows that have the KPI on each side."""
    loop_id = path_loop_id(loop_id)
    moment = parse_moment(at, "at")
    span = timedelta(days=days)
    try:
        before_start, after_end = moment - span, moment + span
    except OverflowError:
        raise invalid_parameter("at", "too close to the ends of the calendar") from None

    async def compute() -> dict[str, Any]:
        await require_registered_loop(resources, loop_id)
        async with resources.sessions() as session:
            before, after = await KpiTrendRepository(session).compare(
                loop_id, moment, before_start, after_end
            )
        items = []
        for name in TREND_KPIS:
            old, new = before.means[name], after.means[name]
            change = None if old is None or new is None else new - old
            pct = None if change is None or old in (None, 0.0) else 100.0 * change / abs(old)
            items.append(
                {
                    "kpi": name,
                    "before": old,
                    "after": new,
                    "change": change,
                    "change_pct": pct,
                    "windows_before": before.counts[name],
                    "windows_after": after.counts[name],
                }
            )
        return {
            "loop_id": loop_id,
            "at": iso_time(moment),
            "days": days,
            "before_start": iso_time(before_start),
            "after_end": iso_time(after_end),
            "windows_before": before.windows,
            "windows_after": after.windows,
            "items": items,
        }

    key = cache_key("api:trends:compare", loop_id=loop_id, at=moment, days=days)
    return json_response(await _cached(resources, key, compute, loop_tags(loop_id), fresh))


async def _cached(
    resources: GatewayResources,
    key: str,
    compute: Any,
    tags: tuple[str, ...],
    fresh: bool,
) -> bytes:
    ttl = resources.settings.cache.cache_ttl_recent_s
    return await cached_json(resources.cache, key, ttl, compute, tags, fresh=fresh)
