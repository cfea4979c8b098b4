"""``loop_assessments``: each loop's rating over the shift, day and week, summed in SQL.

:meth:`AssessmentRepository.refresh` sums a period's windows per loop in the database (four
``GROUP BY`` queries over ``kpi_results`` and ``diagnostic_results``, both read through their
``(loop_id, window_start)`` primary keys), rates the totals with
:func:`clpm_shared.analytics.period_totals.rate_totals` and upserts one row per loop and
period. The fleet listing, ranking and roll-ups over a period read these rows through
:class:`~clpm_shared.db.repositories.loop_overview.LoopOverviewRepository`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, case, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.analytics.assessment import ASSESSED, WorstWindow
from clpm_shared.analytics.period_totals import PeriodTotals, not_assessed_reason, rate_totals
from clpm_shared.db.models import (
    DiagnosticResult,
    KpiResult,
    LoopAssessment,
)
from clpm_shared.db.repositories.upsert import upsert_rows

PERIODS: tuple[str, ...] = ("shift", "day", "week")
"""Assessment periods stored per loop (their lengths are settings: ASSESS_*)."""
GroupBy = Literal["unit", "area", "plant"]
DEFAULT_CRITICALITY = 3
FILTER_MAX = 500
"""Up to this many loops the sums read only theirs (index range scans); more loops, a replica's
share or the whole fleet, are summed in one pass over the period and picked afterwards: one
sequential scan instead of one per batch of loop ids."""


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
        only = ids if len(ids) <= FILTER_MAX else None
        if ids:
            current, previous = await self._status_totals(only, start - length, start, end)
            worst = await self._worst_windows(only, start, end)
            causes = await self._root_causes(only, start, end)
            findings = await self._finding_totals(only, start, end)
            for loop_id in ids:
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
        self, loop_ids: list[str] | None, earliest: datetime, start: datetime, end: datetime
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
                _of(KpiResult.loop_id, loop_ids),
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
        self, loop_ids: list[str] | None, start: datetime, end: datetime
    ) -> dict[str, WorstWindow]:
        """Per loop, its assessed window with the lowest health (the earliest on a tie): the
        lowest health per loop, then the windows that have it (hash joins, no sort)."""
        in_period = and_(
            _of(KpiResult.loop_id, loop_ids),
            KpiResult.window_start >= start,
            KpiResult.window_start < end,
            KpiResult.status.in_(ASSESSED),
            KpiResult.health_score.is_not(None),
        )
        lowest = (
            select(KpiResult.loop_id, func.min(KpiResult.health_score).label("health"))
            .where(in_period)
            .group_by(KpiResult.loop_id)
            .subquery()
        )
        first = (
            select(KpiResult.loop_id, func.min(KpiResult.window_start).label("start"))
            .join(
                lowest,
                and_(
                    lowest.c.loop_id == KpiResult.loop_id,
                    lowest.c.health == KpiResult.health_score,
                ),
            )
            .where(in_period)
            .group_by(KpiResult.loop_id)
            .subquery()
        )
        statement = select(
            KpiResult.loop_id,
            KpiResult.window_start,
            KpiResult.window_end,
            KpiResult.health_score,
            KpiResult.status,
        ).join(
            first,
            and_(first.c.loop_id == KpiResult.loop_id, first.c.start == KpiResult.window_start),
        )
        rows = await self.session.execute(statement)
        return {
            row.loop_id: WorstWindow(
                row.window_start, row.window_end, float(row.health_score), row.status
            )
            for row in rows
        }

    async def _root_causes(
        self, loop_ids: list[str] | None, start: datetime, end: datetime
    ) -> dict[str, dict[str, int]]:
        statement = (
            select(KpiResult.loop_id, KpiResult.main_problem, func.count())
            .where(
                _of(KpiResult.loop_id, loop_ids),
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
        self, loop_ids: list[str] | None, start: datetime, end: datetime
    ) -> dict[str, dict[str, tuple[int, float]]]:
        """Per loop and category: windows with a KPI-cycle finding, severity sum. The KPI cycle
        stores findings only for assessed windows (and removes them when a window is judged
        again), so no join with kpi_results is needed."""
        statement = (
            select(
                DiagnosticResult.loop_id,
                DiagnosticResult.category,
                func.count(),
                func.sum(DiagnosticResult.severity),
            )
            .where(
                _of(DiagnosticResult.loop_id, loop_ids),
                DiagnosticResult.window_start >= start,
                DiagnosticResult.window_start < end,
                DiagnosticResult.trigger == "kpi_cycle",
            )
            .group_by(DiagnosticResult.loop_id, DiagnosticResult.category)
        )
        out: dict[str, dict[str, tuple[int, float]]] = {}
        for loop_id, category, count, severity in await self.session.execute(statement):
            out.setdefault(loop_id, {})[category] = (int(count), float(severity or 0.0))
        return out

    # ------------------------------------------------------------------ reading

    async def rated_until(self, loop_ids: Sequence[str]) -> dict[str, datetime]:
        """The end of each loop's newest stored rating (loops never rated are missing)."""
        rows = await self.session.execute(
            select(LoopAssessment.loop_id, func.max(LoopAssessment.period_end))
            .where(LoopAssessment.loop_id.in_(sorted(set(loop_ids))))
            .group_by(LoopAssessment.loop_id)
        )
        return {loop_id: _aware(end) for loop_id, end in rows.all() if end is not None}

    async def get(self, loop_id: str, period: str) -> LoopAssessment | None:
        """The stored rating of one loop over ``period``; None when not rated yet."""
        return await self.session.get(LoopAssessment, (loop_id, period))


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


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _of(column: Any, loop_ids: list[str] | None) -> Any:
    """``column IN loop_ids``, or no condition for every loop."""
    return true() if loop_ids is None else column.in_(loop_ids)
