"""Reads a fleet report's inputs through the repositories and assembles it (the one place the
gateway's download and the kpi-worker's scheduled e-mails build a report)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.repositories.kpi_trends import KpiTrendRepository
from clpm_shared.db.repositories.reports import ReportDataRepository
from clpm_shared.reports.content import (
    FleetReport,
    TrendPoint,
    assemble_fleet_report,
    report_window,
)


def scope_label(unit: str | None, area: str | None) -> str | None:
    parts = [f"unit {unit}" if unit else None, f"area {area}" if area else None]
    return ", ".join(part for part in parts if part) or None


async def gather_fleet_report(
    session: AsyncSession,
    period: str,
    length: timedelta,
    now: datetime,
    *,
    unit: str | None = None,
    area: str | None = None,
) -> FleetReport:
    """The report of ``period`` (``day`` / ``week``, of length ``length``, a ``timedelta``)
    from the stored ratings, trends, KPI means and work items of the scope. Trend buckets
    are hours over a day, days over a week."""
    data = ReportDataRepository(session)
    loops = await data.assessed_loops(period, unit, area)
    start, end = report_window(loops, length, now)
    previous_start = start - (end - start)
    buckets = await KpiTrendRepository(session).fleet_trend(
        previous_start,
        end,
        "hour" if period == "day" else "day",
        "plant",
        unit=unit,
        area=area,
    )
    current_means, previous_means = await data.kpi_means(previous_start, start, end, unit, area)
    items = await data.work_items(start, end, unit, area)
    return assemble_fleet_report(
        period=period,
        start=start,
        end=end,
        generated_at=now,
        loops=loops,
        trend=[
            TrendPoint(b.bucket_start, b.windows, b.means.get("health_score"), b.status_shares)
            for b in buckets
        ],
        kpi_means=current_means,
        previous_kpi_means=previous_means,
        work_items=items,
        scope=scope_label(unit, area),
    )
