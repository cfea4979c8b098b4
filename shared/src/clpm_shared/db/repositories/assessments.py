"""``loop_assessments``: each loop's rating over the shift, day and week, summed in SQL.

:meth:`AssessmentRepository.refresh` sums a period's windows per loop in the database (four
``GROUP BY`` queries over ``kpi_results`` and ``diagnostic_results``, both read through their
``(loop_id, window_start)`` primary keys), rates the totals with
:func:`clpm_shared.analytics.period_totals.rate_totals` and upserts one row per loop and
period. The reads answer the gateway: one loop's rating, the fleet ranking (whole fleet,
paginated, bad-actor value :math:`(100 - h) \\cdot c`) with the loops that are not ranked and
why, and criticality-weighted roll-ups per unit, area or plant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.analytics.assessment import ASSESSED, STATUSES, WorstWindow
from clpm_shared.analytics.period_totals import PeriodTotals, not_assessed_reason, rate_totals
from clpm_shared.db.models import (
    DiagnosticResult,
    KpiResult,
    Loop,
    LoopAssessment,
    LoopConfig,
)
from clpm_shared.db.repositories.upsert import upsert_rows

PERIODS: tuple[str, ...] = ("shift", "day", "week")
"""Assessment periods stored per loop (their lengths are settings: ASSESS_*)."""
GroupBy = Literal["unit", "area", "plant"]
DEFAULT_CRITICALITY = 3
_BATCH = 1000


@dataclass(frozen=True)
class RankedLoop:
    """One loop of the period ranking."""

    rank: int
    assessment: LoopAssessment
    loop: Loop
    criticality: int
    bad_actor_score: float


@dataclass(frozen=True)
class UnrankedLoop:
    """A loop left out of the ranking and roll-ups (offline or not assessed) and why."""

    loop: Loop
    status: str
    reason: str | None


@dataclass(frozen=True)
class GroupRollUp:
    """Criticality-weighted health of a group of loops over a period."""

    name: str | None
    loops: int
    health_score: float | None
    status_counts: dict[str, int]


class AssessmentRepository:
    """Writes and reads of ``loop_assessments``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------------ writing

    async def refresh(
        self,
        loop_ids: Sequence[str],
        period: str,
        start: datetime,
        end: datetime,
        window: timedelta,
    ) -> int:
        """Rate ``loop_ids`` over ``[start, end)`` (and the period before it, for the change)
        and upsert their rows. Returns the number of loops written. The caller commits."""
        ids = sorted(set(loop_ids))
        length = end - start
        computed_at = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        for offset in range(0, len(ids), _BATCH):
            chunk = ids[offset : offset + _BATCH]
            current, previous = await self._status_totals(chunk, start - length, start, end)
            worst = await self._worst_windows(chunk, start, end)
            causes = await self._root_causes(chunk, start, end)
            findings = await self._finding_totals(chunk, start, end)
            for loop_id in chunk:
                totals = _totals(current.get(loop_id), loop_id, worst, causes, findings)
                rating = rate_totals(totals, start, end, window)
                before = rate_totals(_totals(previous.get(loop_id)), start - length, start, window)
                rows.append(
                    {
                        "loop_id": loop_id,
                        "period": period,
                        "period_start": start,
                        "period_end": end,
                        "computed_at": computed_at,
                        "status": rating.status,
                        "health_score": rating.health_score,
                        "main_problem": rating.main_problem,
                        "reason": not_assessed_reason(rating),
                        "status_shares": rating.status_shares,
                        "findings": [finding.to_dict() for finding in rating.findings],
                        "worst_window": None
                        if rating.worst_window is None
                        else rating.worst_window.to_dict(),
                        "windows_assessed": rating.windows_assessed,
                        "windows_total": rating.windows_total,
                        "previous_health_score": before.health_score,
                        "previous_status": before.status if before.windows_total else None,
                    }
                )
        table: Any = LoopAssessment.__table__
        return await upsert_rows(self.session, table, rows, ("loop_id", "period"))

    async def _status_totals(
        self, loop_ids: list[str], earliest: datetime, start: datetime, end: datetime
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Per loop, for the period and the one before: windows and health sum per status."""
        current = case((KpiResult.window_start >= start, 1), else_=0).label("current")
        statement = (
            select(
                KpiResult.loop_id,
                current,
                KpiResult.status,
                func.count(),
                func.sum(KpiResult.health_score),
            )
            .where(
                KpiResult.loop_id.in_(loop_ids),
                KpiResult.window_start >= earliest,
                KpiResult.window_start < end,
            )
            .group_by(KpiResult.loop_id, current, KpiResult.status)
        )
        out: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]] = ({}, {})
        for loop_id, is_current, status, count, health in await self.session.execute(statement):
            entry = out[0 if is_current else 1].setdefault(loop_id, {"counts": {}, "health": 0.0})
            entry["counts"][status] = entry["counts"].get(status, 0) + int(count)
            if status in ASSESSED and health is not None:
                entry["health"] += float(health)
        return out

    async def _worst_windows(
        self, loop_ids: list[str], start: datetime, end: datetime
    ) -> dict[str, WorstWindow]:
        position = (
            func.row_number()
            .over(
                partition_by=KpiResult.loop_id,
                order_by=(KpiResult.health_score.asc(), KpiResult.window_start.asc()),
            )
            .label("position")
        )
        ranked = (
            select(
                KpiResult.loop_id,
                KpiResult.window_start,
                KpiResult.window_end,
                KpiResult.health_score,
                KpiResult.status,
                position,
            )
            .where(
                KpiResult.loop_id.in_(loop_ids),
                KpiResult.window_start >= start,
                KpiResult.window_start < end,
                KpiResult.status.in_(ASSESSED),
                KpiResult.health_score.is_not(None),
            )
            .subquery()
        )
        rows = await self.session.execute(select(ranked).where(ranked.c.position == 1))
        return {
            row.loop_id: WorstWindow(
                row.window_start, row.window_end, float(row.health_score), row.status
            )
            for row in rows
        }

    async def _root_causes(
        self, loop_ids: list[str], start: datetime, end: datetime
    ) -> dict[str, dict[str, int]]:
        statement = (
            select(KpiResult.loop_id, KpiResult.main_problem, func.count())
            .where(
                KpiResult.loop_id.in_(loop_ids),
                KpiResult.window_start >= start,
                KpiResult.window_start < end,
                KpiResult.status.in_(ASSESSED),
                KpiResult.main_problem.is_not(None),
            )
            .group_by(KpiResult.loop_id, KpiResult.main_problem)
        )
        out: dict[str, dict[str, int]] = {}
        for loop_id, cause, count in await self.session.execute(statement):
            out.setdefault(loop_id, {})[str(cause)] = int(count)
        return out

    async def _finding_totals(
        self, loop_ids: list[str], start: datetime, end: datetime
    ) -> dict[str, dict[str, tuple[int, float]]]:
        """Per loop and category: assessed windows with a KPI-cycle finding, severity sum."""
        statement = (
            select(
                DiagnosticResult.loop_id,
                DiagnosticResult.category,
                func.count(),
                func.sum(DiagnosticResult.severity),
            )
            .join(
                KpiResult,
                and_(
                    KpiResult.loop_id == DiagnosticResult.loop_id,
                    KpiResult.window_start == DiagnosticResult.window_start,
                ),
            )
            .where(
                DiagnosticResult.loop_id.in_(loop_ids),
                DiagnosticResult.window_start >= start,
                DiagnosticResult.window_start < end,
                DiagnosticResult.trigger == "kpi_cycle",
                KpiResult.status.in_(ASSESSED),
            )
            .group_by(DiagnosticResult.loop_id, DiagnosticResult.category)
        )
        out: dict[str, dict[str, tuple[int, float]]] = {}
        for loop_id, category, count, severity in await self.session.execute(statement):
            out.setdefault(loop_id, {})[category] = (int(count), float(severity or 0.0))
        return out

    # ------------------------------------------------------------------ reading

    async def get(self, loop_id: str, period: str) -> LoopAssessment | None:
        """The stored rating of one loop over ``period``; None when not rated yet."""
        return await self.session.get(LoopAssessment, (loop_id, period))

    def _fleet(self, period: str, unit: str | None, area: str | None) -> Select[Any]:
        criticality = func.coalesce(LoopConfig.criticality, literal(DEFAULT_CRITICALITY))
        statement: Any = (
            select(Loop, LoopAssessment, criticality.label("criticality"))
            .select_from(Loop)
            .outerjoin(
                LoopAssessment,
                and_(LoopAssessment.loop_id == Loop.loop_id, LoopAssessment.period == period),
            )
            .outerjoin(LoopConfig, LoopConfig.loop_id == Loop.loop_id)
            .where(Loop.deleted_at.is_(None))
        )
        if unit is not None:
            statement = statement.where(Loop.unit == unit)
        if area is not None:
            statement = statement.where(Loop.area == area)
        selected: Select[Any] = statement
        return selected

    async def ranking(
        self,
        period: str,
        *,
        unit: str | None = None,
        area: str | None = None,
        offset: int = 0,
        limit: int | None = 100,
    ) -> tuple[list[RankedLoop], int]:
        """Assessed loops, worst bad-actor value first (ties: lower health, then loop id),
        one page of them and how many are ranked in total."""
        criticality = func.coalesce(LoopConfig.criticality, literal(DEFAULT_CRITICALITY))
        value = (literal(100.0) - LoopAssessment.health_score) * criticality
        ranked = self._fleet(period, unit, area).where(
            LoopAssessment.status.in_(ASSESSED), LoopAssessment.health_score.is_not(None)
        )
        total = (
            await self.session.execute(select(func.count()).select_from(ranked.subquery()))
        ).scalar_one()
        statement = (
            ranked.add_columns(value.label("bad_actor"))
            .order_by(value.desc(), LoopAssessment.health_score.asc(), Loop.loop_id)
            .offset(offset)
        )
        if limit is not None:
            statement = statement.limit(limit)
        rows = await self.session.execute(statement)
        return [
            RankedLoop(offset + k + 1, row[1], row[0], int(row[2]), round(float(row[3]), 3))
            for k, row in enumerate(rows)
        ], int(total)

    async def unranked(
        self, period: str, *, unit: str | None = None, area: str | None = None
    ) -> list[UnrankedLoop]:
        """Loops without a health over ``period`` (offline, not assessed, not rated yet)."""
        statement = (
            self._fleet(period, unit, area)
            .where(
                (LoopAssessment.loop_id.is_(None))
                | LoopAssessment.status.not_in(ASSESSED)
                | LoopAssessment.health_score.is_(None)
            )
            .order_by(Loop.loop_id)
        )
        out = []
        for loop, assessment, _ in await self.session.execute(statement):
            if assessment is None:
                out.append(UnrankedLoop(loop, "offline", "not rated yet"))
            else:
                out.append(UnrankedLoop(loop, assessment.status, assessment.reason))
        return out

    async def roll_ups(
        self,
        period: str,
        by: GroupBy,
        *,
        unit: str | None = None,
        area: str | None = None,
    ) -> list[GroupRollUp]:
        """Per unit, area or the plant: loops, loops per status (not rated = offline) and
        the criticality-weighted mean health :math:`\\sum c_i h_i / \\sum c_i` of the
        assessed loops. Groups by name; loops without a unit/area under None, last."""
        criticality = func.coalesce(LoopConfig.criticality, literal(DEFAULT_CRITICALITY))
        status = func.coalesce(LoopAssessment.status, literal("offline"))
        assessed = and_(
            LoopAssessment.status.in_(ASSESSED), LoopAssessment.health_score.is_not(None)
        )
        key: Any = {"unit": Loop.unit, "area": Loop.area, "plant": literal("plant")}[by]
        base = self._fleet(period, unit, area).with_only_columns(
            key.label("name"),
            status.label("status"),
            func.count().label("loops"),
            func.sum(case((assessed, LoopAssessment.health_score * criticality))).label("hc"),
            func.sum(case((assessed, criticality))).label("c"),
        )
        statement = base.group_by(key, status)
        groups: dict[str | None, dict[str, Any]] = {}
        for name, group_status, loops, weighted, weights in await self.session.execute(statement):
            label = None if by == "plant" or name in (None, "") else str(name)
            entry = groups.setdefault(
                label,
                {"counts": dict.fromkeys(STATUSES, 0), "hc": 0.0, "c": 0.0, "loops": 0},
            )
            entry["counts"][str(group_status)] = entry["counts"].get(str(group_status), 0) + int(
                loops
            )
            entry["loops"] += int(loops)
            entry["hc"] += float(weighted or 0.0)
            entry["c"] += float(weights or 0.0)
        ordered = sorted(groups.items(), key=lambda item: (item[0] is None, item[0] or ""))
        return [
            GroupRollUp(
                name,
                entry["loops"],
                round(entry["hc"] / entry["c"], 2) if entry["c"] else None,
                entry["counts"],
            )
            for name, entry in ordered
        ]


def _totals(
    sums: dict[str, Any] | None,
    loop_id: str = "",
    worst: dict[str, WorstWindow] | None = None,
    causes: dict[str, dict[str, int]] | None = None,
    findings: dict[str, dict[str, tuple[int, float]]] | None = None,
) -> PeriodTotals:
    """The totals of one loop (empty when it has no window in the period)."""
    if sums is None:
        return PeriodTotals()
    return PeriodTotals(
        status_counts=sums["counts"],
        health_sum=sums["health"],
        root_causes=(causes or {}).get(loop_id, {}),
        findings=(findings or {}).get(loop_id, {}),
        worst=(worst or {}).get(loop_id),
    )
