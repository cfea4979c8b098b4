"""Loops joined with their latest KPI row (or their rating over an assessment period) and
their configuration: listing, filters, ranking, roll-ups.

``period=None`` ("window"): the latest KPI row of each loop, found with a correlated
``max(window_start)`` per loop, which both PostgreSQL and SQLite answer from the primary-key
index of ``kpi_results``. ``period="shift"|"day"|"week"``: the loop's row of
``loop_assessments``. A loop without either has status ``offline``. Loops that are offline or
not assessed have no health: they are not ranked (``ranked=False`` lists them with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from clpm_shared.db.models import KpiResult, Loop, LoopAssessment, LoopConfig

DEFAULT_CRITICALITY = 3
RATED_STATUSES = ("good", "fair", "poor")
"""Statuses that carry a health score: only these loops are ranked and rolled up."""
OverviewSort = Literal[
    "loop_id", "name", "unit", "area", "health_score", "status", "criticality", "bad_actor"
]
OVERVIEW_SORTS: tuple[str, ...] = (
    "loop_id",
    "name",
    "unit",
    "area",
    "health_score",
    "status",
    "criticality",
    "bad_actor",
)


@dataclass(frozen=True)
class LoopOverview:
    """A loop with the headline of its latest KPI window."""

    loop: Loop
    status: str
    health_score: float | None
    main_problem: str | None
    kpi_window_end: datetime | None
    criticality: int
    loop_type: str | None
    apc_enabled: bool
    reason: str | None = None
    """Why an offline / not_assessed loop has no health (None otherwise or unknown)."""


class LoopOverviewRepository:
    """Read-only listing of loops with their latest KPI status (soft-deleted loops excluded)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _select(self, period: str | None = None) -> tuple[Any, dict[str, Any]]:
        criticality = func.coalesce(LoopConfig.criticality, literal(DEFAULT_CRITICALITY))
        if period is None:
            inner = aliased(KpiResult)
            newest = (
                select(func.max(inner.window_start))
                .where(inner.loop_id == Loop.loop_id)
                .correlate(Loop)
                .scalar_subquery()
            )
            rated: Any = KpiResult
            joined = and_(KpiResult.loop_id == Loop.loop_id, KpiResult.window_start == newest)
            columns: tuple[Any, ...] = (
                KpiResult.health_score,
                KpiResult.main_problem,
                KpiResult.window_end,
                KpiResult.reasons,
            )
        else:
            rated = LoopAssessment
            joined = and_(LoopAssessment.loop_id == Loop.loop_id, LoopAssessment.period == period)
            columns = (
                LoopAssessment.health_score,
                LoopAssessment.main_problem,
                LoopAssessment.period_end,
                LoopAssessment.reason,
            )
        status = func.coalesce(rated.status, literal("offline"))
        # bad-actor value of the KPI specification, (100 - health) x criticality, for sorting
        bad_actor = (literal(100.0) - rated.health_score) * criticality
        statement = (
            select(
                Loop,
                status.label("status"),
                *columns,
                criticality.label("criticality"),
                LoopConfig.loop_type,
                LoopConfig.apc_enabled,
            )
            .select_from(Loop)
            .outerjoin(rated, joined)
            .outerjoin(LoopConfig, LoopConfig.loop_id == Loop.loop_id)
            .where(Loop.deleted_at.is_(None))
        )
        sortable: dict[str, Any] = {
            "loop_id": Loop.loop_id,
            "name": Loop.name,
            "unit": Loop.unit,
            "area": Loop.area,
            "health_score": rated.health_score,
            "status": status,
            "criticality": criticality,
            "bad_actor": bad_actor,
        }
        return statement, sortable

    @staticmethod
    def _filtered(
        statement: Select[Any],
        sortable: dict[str, Any],
        unit: str | None,
        area: str | None,
        status: str | None,
        ranked: bool | None = None,
    ) -> Select[Any]:
        rated = sortable["status"].in_(RATED_STATUSES) & sortable["health_score"].is_not(None)
        if ranked is True:
            statement = statement.where(rated)
        elif ranked is False:
            statement = statement.where(~rated | sortable["health_score"].is_(None))
        if unit is not None:
            statement = statement.where(Loop.unit == unit)
        if area is not None:
            statement = statement.where(Loop.area == area)
        if status is not None:
            statement = statement.where(sortable["status"] == status)
        return statement

    async def list_page(
        self,
        *,
        unit: str | None = None,
        area: str | None = None,
        status: str | None = None,
        sort: OverviewSort = "loop_id",
        descending: bool = False,
        offset: int = 0,
        limit: int | None = 100,
        period: str | None = None,
        ranked: bool | None = None,
    ) -> tuple[list[LoopOverview], int]:
        """One page of loops matching the filters, and how many match in total.

        Rows without a value for the sort key (e.g. no health score yet) come last; with
        ``ranked=True`` only loops with a health over the period (or latest window).
        """
        statement, sortable = self._select(period)
        statement = self._filtered(statement, sortable, unit, area, status, ranked)
        total = (
            await self.session.execute(select(func.count()).select_from(statement.subquery()))
        ).scalar_one()
        key = sortable[sort]
        order = key.desc() if descending else key.asc()
        ties = [sortable["health_score"].asc()] if sort == "bad_actor" else []
        statement = statement.order_by(order.nulls_last(), *ties, Loop.loop_id).offset(offset)
        if limit is not None:
            statement = statement.limit(limit)
        return self._overviews(await self.session.execute(statement)), int(total)

    async def get(self, loop_id: str) -> LoopOverview | None:
        """One loop with its latest KPI headline; None when absent or deleted."""
        statement, _ = self._select()
        rows = self._overviews(await self.session.execute(statement.where(Loop.loop_id == loop_id)))
        return rows[0] if rows else None

    async def all(
        self,
        *,
        unit: str | None = None,
        area: str | None = None,
        period: str | None = None,
        ranked: bool | None = None,
    ) -> list[LoopOverview]:
        """Every loop matching the filters, ordered by id (for fleet roll-ups)."""
        statement, sortable = self._select(period)
        statement = self._filtered(statement, sortable, unit, area, None, ranked)
        return self._overviews(await self.session.execute(statement.order_by(Loop.loop_id)))

    @staticmethod
    def _overviews(rows: Any) -> list[LoopOverview]:
        return [
            LoopOverview(
                loop=row[0],
                status=str(row[1]),
                health_score=row[2],
                main_problem=row[3],
                kpi_window_end=row[4],
                criticality=int(row[6]),
                loop_type=row[7],
                apc_enabled=bool(row[8]),
                reason=_reason(row[5]),
            )
            for row in rows
        ]


def _reason(value: Any) -> str | None:
    """The reason column of an assessment, or ``reasons["status"]`` of a KPI row."""
    if isinstance(value, dict):
        reason = value.get("status")
        return None if reason is None else str(reason)
    return None if value is None else str(value)
