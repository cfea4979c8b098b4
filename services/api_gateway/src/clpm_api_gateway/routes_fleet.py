"""Fleet ranking and roll-ups over a period, and a loop's assessment (rating over a period).

All need the ``viewer`` role. ``period`` is ``window`` (each loop's latest 15-minute KPI
window) or the rating of the last ``shift``, ``day`` (default) or ``week`` that the KPI
worker recomputes after each cycle (``loop_assessments``). Offline and not-assessed loops
have no health: they are left out of ranks and roll-up health and listed with the reason.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from clpm_api_gateway.csv_export import CSV_RESPONSE_DOC, csv_response, rows_csv, wants_csv
from clpm_api_gateway.dependencies import FreshDep, ResourcesDep
from clpm_api_gateway.fleet_summary import loop_health
from clpm_api_gateway.problems import (
    PROBLEM_401,
    PROBLEM_404,
    PROBLEM_422,
    PROBLEM_503,
    loop_not_found,
)
from clpm_api_gateway.response_cache import FLEET_TAG, cached_json, json_response, loop_tags
from clpm_api_gateway.routes_data import FormatQuery
from clpm_api_gateway.routes_loops import AreaQuery, LoopIdPath, UnitQuery, path_loop_id
from clpm_api_gateway.schemas import (
    Assessment,
    AssessmentPeriod,
    FleetRanking,
    FleetRollups,
    Period,
)
from clpm_api_gateway.security import require_role
from clpm_shared.analytics.ranking import bad_actor_value, roll_up_by
from clpm_shared.cache import cache_key
from clpm_shared.db.models import LoopAssessment
from clpm_shared.db.repositories.assessments import AssessmentRepository
from clpm_shared.db.repositories.loop_overview import LoopOverview, LoopOverviewRepository

router = APIRouter(
    tags=["fleet"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)

MAX_RANKING_PAGE = 10_000
PERIOD_DESCRIPTION = (
    "window: each loop's latest KPI window; shift / day / week: the loop's rating over the "
    "last 8 h / 24 h / 7 d (lengths: ASSESS_SHIFT_H, ASSESS_DAY_H, ASSESS_WEEK_D)"
)
PeriodQuery = Annotated[Period, Query(description=PERIOD_DESCRIPTION)]
RANKING_COLUMNS = (
    "rank",
    "loop_id",
    "name",
    "unit",
    "area",
    "status",
    "health_score",
    "criticality",
    "bad_actor_score",
    "main_problem",
    "reason",
)


def stored_period(period: Period) -> str | None:
    """The loop_assessments period, None for the latest window."""
    return None if period is Period.WINDOW else period.value


def ranked_item(rank: int, item: LoopOverview) -> dict[str, Any]:
    loop = item.loop
    return {
        "rank": rank,
        "loop_id": loop.loop_id,
        "name": loop.name,
        "unit": loop.unit,
        "area": loop.area,
        "health_score": item.health_score,
        "criticality": item.criticality,
        "bad_actor_score": round(bad_actor_value(item.health_score or 0.0, item.criticality), 3),
        "status": item.status,
        "main_problem": item.main_problem,
    }


def not_ranked_item(item: LoopOverview) -> dict[str, Any]:
    loop = item.loop
    reason = item.reason
    if reason is None and item.kpi_window_end is None:
        reason = "no rating yet"
    return {
        "loop_id": loop.loop_id,
        "name": loop.name,
        "unit": loop.unit,
        "area": loop.area,
        "status": item.status,
        "reason": reason,
    }


@router.get(
    "/fleet/ranking",
    summary="Bad-actor ranking of the whole fleet over a period (paginated; CSV: all loops)",
    response_model=FleetRanking,
    responses={200: {"content": CSV_RESPONSE_DOC}},
)
async def fleet_ranking(
    request: Request,
    resources: ResourcesDep,
    fresh: FreshDep,
    period: PeriodQuery = Period.DAY,
    unit: UnitQuery = None,
    area: AreaQuery = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_RANKING_PAGE)] = 100,
    export_format: FormatQuery = None,
) -> Response:
    """Loops with a health over ``period``, worst bad-actor value (100 - health) x criticality
    first (ties: lower health, then id), ``limit`` of them from ``offset``; every loop without
    a health (offline, not assessed) in ``not_ranked`` with the reason. ``format=csv``
    answers the whole selection in one file (ranked loops, then the others), ignoring
    ``offset`` and ``limit``."""
    csv = wants_csv(request, export_format)
    page_offset, page_limit = (0, None) if csv else (offset, limit)

    async def compute() -> dict[str, Any]:
        async with resources.sessions() as session:
            repository = LoopOverviewRepository(session)
            ranked, total = await repository.list_page(
                unit=unit,
                area=area,
                sort="bad_actor",
                descending=True,
                offset=page_offset,
                limit=page_limit,
                period=stored_period(period),
                ranked=True,
            )
            others = await repository.all(
                unit=unit, area=area, period=stored_period(period), ranked=False
            )
        return {
            "period": period.value,
            "total": total,
            "offset": page_offset,
            "limit": page_limit if page_limit is not None else total,
            "items": [ranked_item(page_offset + k + 1, item) for k, item in enumerate(ranked)],
            "not_ranked_total": len(others),
            "not_ranked": [not_ranked_item(item) for item in others],
        }

    key = cache_key(
        "api:fleet:ranking",
        period=period.value,
        unit=unit,
        area=area,
        offset=page_offset,
        limit=page_limit,
    )
    ttl = resources.settings.cache.cache_ttl_recent_s
    payload = await cached_json(resources.cache, key, ttl, compute, [FLEET_TAG], fresh=fresh)
    if not csv:
        return json_response(payload)
    body = json.loads(payload)
    rows = [*body["items"], *body["not_ranked"]]
    return csv_response(rows_csv(rows, RANKING_COLUMNS), f"clpm-fleet-{period.value}")


@router.get(
    "/fleet/rollups",
    summary="Health per unit, area or the plant over a period (whole fleet)",
    response_model=FleetRollups,
)
async def fleet_rollups(
    resources: ResourcesDep,
    fresh: FreshDep,
    period: PeriodQuery = Period.DAY,
    by: Annotated[
        Literal["unit", "area", "plant"], Query(description="group the loops by")
    ] = "area",
    unit: UnitQuery = None,
    area: AreaQuery = None,
) -> Response:
    """Per group: loops, loops per status, and the criticality-weighted mean health
    :math:`\\sum c_i h_i / \\sum c_i` of the loops that have one over ``period`` (offline and
    not-assessed loops are counted but not in the health). Groups by name; loops without a
    unit / area under ``null``, last."""

    async def compute() -> dict[str, Any]:
        async with resources.sessions() as session:
            items = await LoopOverviewRepository(session).all(
                unit=unit, area=area, period=stored_period(period)
            )
        loops = [loop_health(item) for item in items]
        if by == "plant":
            groups = roll_up_by(loops, lambda _: "plant")
        else:
            groups = roll_up_by(loops, lambda loop: getattr(loop, by))
        ordered = sorted(groups.items(), key=lambda entry: (entry[0] == "", entry[0]))
        return {
            "period": period.value,
            "by": by,
            "groups": [
                {
                    "name": name or None,
                    "loops": group.loops,
                    "health_score": group.score,
                    "status_counts": group.counts,
                }
                for name, group in ordered
            ],
        }

    key = cache_key("api:fleet:rollups", period=period.value, by=by, unit=unit, area=area)
    ttl = resources.settings.cache.cache_ttl_recent_s
    return json_response(
        await cached_json(resources.cache, key, ttl, compute, [FLEET_TAG], fresh=fresh)
    )


def assessment_answer(
    loop_id: str, period: AssessmentPeriod, row: LoopAssessment | None
) -> dict[str, Any]:
    """The API answer of a stored rating (offline, "no rating yet", when there is none)."""
    if row is None:
        return {
            "loop_id": loop_id,
            "period": period.value,
            "start": None,
            "end": None,
            "status": "offline",
            "health_score": None,
            "main_problem": None,
            "reason": "no rating yet",
            "status_shares": {"offline": 1.0},
            "findings": [],
            "worst_window": None,
            "windows_assessed": 0,
            "windows_total": 0,
            "previous": None,
            "change": {"health_score": None},
        }
    previous = (
        None
        if row.previous_status is None
        else {"health_score": row.previous_health_score, "status": row.previous_status}
    )
    change = (
        round(row.health_score - row.previous_health_score, 2)
        if row.health_score is not None and row.previous_health_score is not None
        else None
    )
    return {
        "loop_id": loop_id,
        "period": period.value,
        "start": row.period_start.isoformat(),
        "end": row.period_end.isoformat(),
        "status": row.status,
        "health_score": row.health_score,
        "main_problem": row.main_problem,
        "reason": row.reason,
        "status_shares": row.status_shares,
        "findings": row.findings,
        "worst_window": row.worst_window,
        "windows_assessed": row.windows_assessed,
        "windows_total": row.windows_total,
        "previous": previous,
        "change": {"health_score": change},
    }


@router.get(
    "/loops/{loop_id}/assessment",
    summary="A loop's rating over the last shift, day or week",
    response_model=Assessment,
    responses=PROBLEM_404,
)
async def loop_assessment(
    resources: ResourcesDep,
    fresh: FreshDep,
    loop_id: LoopIdPath,
    period: Annotated[
        AssessmentPeriod, Query(description="shift, day or week (see ASSESS_* settings)")
    ] = AssessmentPeriod.DAY,
) -> Response:
    """Share of time per status, each persistent finding's persistence and mean severity, the
    worst window, the time-weighted health of the assessed windows with its status and main
    problem, and the change against the period before. A period with less than half of its
    windows assessed is not_assessed (``reason`` says how many were)."""
    loop_id = path_loop_id(loop_id)

    async def compute() -> dict[str, Any]:
        async with resources.sessions() as session:
            if await LoopOverviewRepository(session).get(loop_id) is None:
                raise loop_not_found(loop_id)
            row = await AssessmentRepository(session).get(loop_id, period.value)
        return assessment_answer(loop_id, period, row)

    key = cache_key("api:loops:assessment", loop_id=loop_id, period=period.value)
    ttl = resources.settings.cache.cache_ttl_recent_s
    return json_response(
        await cached_json(resources.cache, key, ttl, compute, loop_tags(loop_id), fresh=fresh)
    )
