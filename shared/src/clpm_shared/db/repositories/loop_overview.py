"""Loops joined with their latest KPI row and their configuration: listing, filters, ranking.

The latest KPI row of each loop is found with a correlated ``max(window_start)`` per loop, which
both PostgreSQL and SQLite answer from the primary-key index of ``kpi_results``. A loop without
any KPI row has status ``offline``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from clpm_shared.db.models import KpiResult, Loop, LoopConfig

DEFAULT_CRITICALITY = 3
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


class LoopOverviewRepository:
    """Read-only listing of loops with their latest KPI status (soft-deleted loops excluded)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _select(self) -> tuple[Any, dict[str, Any]]:
        inner = aliased(KpiResult)
        newest = (
            select(func.max(inner.window_start))
            .where(inner.loop_id == Loop.loop_id)
            .correlate(Loop)
            .scalar_subquery()
        )
        status = func.coalesce(KpiResult.status, literal("offline"))
        criticality = func.coalesce(LoopConfig.criticality, literal(DEFAULT_CRITICALITY))
        # bad-actor value of the KPI specification, (100 - health) x criticality, for sorting
        bad_actor = (literal(100.0) - KpiResult.health_score) * criticality
        statement = (
            select(
                Loop,
                status.label("status"),
                KpiResult.health_score,
                KpiResult.main_problem,
                KpiResult.window_end,
                criticality.label("criticality"),
                LoopConfig.loop_type,
                LoopConfig.apc_enabled,
            )
            .select_from(Loop)
            .outerjoin(
                KpiResult,
                and_(KpiResult.loop_id == Loop.loop_id, KpiResult.window_start == newest),
            )
            .outerjoin(LoopConfig, LoopConfig.loop_id == Loop.loop_id)
            .where(Loop.deleted_at.is_(None))
        )
        sortable: dict[str, Any] = {
            "loop_id": Loop.loop_id,
            "name": Loop.name,
            "unit": Loop.unit,
            "area": Loop.area,
            "health_score": KpiResult.health_score,
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
    ) -> Select[Any]:
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
        limit: int = 100,
    ) -> tuple[list[LoopOverview], int]:
        """One page of loops matching the filters, and how many match in total.

        Rows without a value for the sort key (e.g. no health score yet) come last.
        """
        statement, sortable = self._select()
        statement = self._filtered(statement, sortable, unit, area, status)
        total = (
            await self.session.execute(select(func.count()).select_from(statement.subquery()))
        ).scalar_one()
        key = sortable[sort]
        order = key.desc() if descending else key.asc()
        statement = statement.order_by(order.nulls_last(), Loop.loop_id).offset(offset).limit(limit)
        return self._overviews(await self.session.execute(statement)), int(total)

    async def get(self, loop_id: str) -> LoopOverview | None:
        """One loop with its latest KPI headline; None when absent or deleted."""
        statement, _ = self._select()
        rows = self._overviews(await self.session.execute(statement.where(Loop.loop_id == loop_id)))
        return rows[0] if rows else None

    async def all(self, *, unit: str | None = None, area: str | None = None) -> list[LoopOverview]:
        """Every loop matching the filters, ordered by id (for fleet roll-ups)."""
        statement, sortable = self._select()
        statement = self._filtered(statement, sortable, unit, area, None).order_by(Loop.loop_id)
        return self._overviews(await self.session.execute(statement))

    @staticmethod
    def _overviews(rows: Any) -> list[LoopOverview]:
        return [
            LoopOverview(
                loop=row[0],
                status=str(row[1]),
                health_score=row[2],
                main_problem=row[3],
                kpi_window_end=row[4],
                criticality=int(row[5]),
                loop_type=row[6],
                apc_enabled=bool(row[7]),
            )
            for row in rows
        ]
