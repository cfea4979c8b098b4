"""Long-term trends of ``kpi_results``: per-bucket means and status shares, before/after means.

Buckets are calendar hours, days or ISO weeks (Monday 00:00) in UTC, computed in SQL:
``date_trunc`` on PostgreSQL, ``strftime`` / ``date`` on SQLite. KPI windows all have the same
length, so the share of windows with a status is the share of time with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import KpiResult, Loop, LoopConfig
from clpm_shared.db.repositories.loop_overview import DEFAULT_CRITICALITY

Resolution = Literal["hour", "day", "week"]
FleetGrouping = Literal["plant", "unit", "area"]

TREND_KPIS: tuple[str, ...] = (
    "health_score",
    "service_factor",
    "saturation",
    "error_std_pct",
    "iae_per_hour",
    "variability_index",
    "harris_index",
    "op_travel_per_hour",
    "op_reversals_per_hour",
    "osc_regularity",
)
"""The KPIs whose means a trend bucket and a before/after comparison carry."""

TREND_STATUSES: tuple[str, ...] = ("good", "fair", "poor", "offline", "not_assessed")

_SQLITE_FORMATS = {"hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00"}


@dataclass(frozen=True, slots=True)
class TrendBucket:
    """One bucket: its start, group (fleet trends), windows, loops, KPI means, status shares."""

    bucket_start: datetime
    group: str | None
    windows: int
    loops: int
    means: dict[str, float | None]
    status_shares: dict[str, float]


@dataclass(frozen=True, slots=True)
class SideMeans:
    """KPI means of the windows on one side of a comparison, and how many there were."""

    windows: int
    means: dict[str, float | None]
    counts: dict[str, int]


def _bucket(dialect: str, resolution: Resolution) -> ColumnElement[Any]:
    column = KpiResult.window_start
    if dialect == "postgresql":
        return func.date_trunc(resolution, func.timezone("UTC", column))
    if resolution == "week":  # the Monday of the week: next Sunday (or today) minus 6 days
        return func.date(column, "weekday 0", "-6 days")
    return func.strftime(_SQLITE_FORMATS[resolution], column)


def _as_utc(value: Any) -> datetime:
    parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _status_share(status: str) -> ColumnElement[Any]:
    hit = case((KpiResult.status == status, 1.0), else_=0.0)
    return func.sum(hit) / func.count()


class KpiTrendRepository:
    """Aggregated reads of ``kpi_results`` over weeks and months."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _dialect(self) -> str:
        connection = await self.session.connection()
        return connection.dialect.name

    async def loop_trend(
        self, loop_id: str, start: datetime, end: datetime, resolution: Resolution
    ) -> list[TrendBucket]:
        """Buckets of one loop's windows starting in ``[start, end)``, oldest first; a bucket
        without windows is absent. Means skip NULL KPIs (windows where it was not computed)."""
        bucket = _bucket(await self._dialect(), resolution).label("bucket")
        statement = (
            select(
                bucket,
                func.count(),
                *(func.avg(getattr(KpiResult, name)) for name in TREND_KPIS),
                *(_status_share(status) for status in TREND_STATUSES),
            )
            .where(
                KpiResult.loop_id == loop_id,
                KpiResult.window_start >= start,
                KpiResult.window_start < end,
            )
            .group_by(bucket)
            .order_by(bucket)
        )
        rows = (await self.session.execute(statement)).all()
        return [_bucket_of(row, None, 1, TREND_KPIS) for row in rows]

    async def fleet_trend(
        self,
        start: datetime,
        end: datetime,
        resolution: Resolution,
        by: FleetGrouping,
        *,
        unit: str | None = None,
        area: str | None = None,
    ) -> list[TrendBucket]:
        """Buckets of the fleet's windows per group (``plant``: one group), by group then time.

        The health of a bucket is criticality-weighted over its windows,
        :math:`\\sum_w c_w h_w / \\sum_w c_w` (windows without a health left out), as the
        roll-ups weight loops; a loop with more windows in the bucket weighs more.
        """
        bucket = _bucket(await self._dialect(), resolution).label("bucket")
        # per loop and bucket first (one pass over the windows), then weighted per group
        status_counts = [
            func.sum(case((KpiResult.status == status, 1), else_=0)).label(f"n_{status}")
            for status in TREND_STATUSES
        ]
        per_loop = (
            select(
                KpiResult.loop_id.label("loop_id"),
                bucket,
                func.count().label("windows"),
                func.count(KpiResult.health_score).label("rated"),
                func.sum(KpiResult.health_score).label("health_sum"),
                *status_counts,
            )
            .where(KpiResult.window_start >= start, KpiResult.window_start < end)
            .group_by(KpiResult.loop_id, bucket)
            .subquery()
        )
        criticality = func.coalesce(LoopConfig.criticality, literal(DEFAULT_CRITICALITY))
        group: ColumnElement[Any] = (
            literal("plant") if by == "plant" else getattr(Loop, by)
        ).label("group_key")
        weighted = func.sum(criticality * per_loop.c.health_sum) / func.nullif(
            func.sum(criticality * per_loop.c.rated), 0
        )
        windows = func.sum(per_loop.c.windows)
        statement = (
            select(
                per_loop.c.bucket,
                group,
                windows,
                func.count(),
                weighted,
                *(
                    func.sum(per_loop.c[f"n_{status}"]) * literal(1.0) / windows
                    for status in TREND_STATUSES
                ),
            )
            .select_from(per_loop)
            .join(Loop, Loop.loop_id == per_loop.c.loop_id)
            .outerjoin(LoopConfig, LoopConfig.loop_id == per_loop.c.loop_id)
            .group_by(per_loop.c.bucket, group)
            .order_by(group, per_loop.c.bucket)
        )
        if unit is not None:
            statement = statement.where(Loop.unit == unit)
        if area is not None:
            statement = statement.where(Loop.area == area)
        rows = (await self.session.execute(statement)).all()
        return [
            _bucket_of((row[0], *row[2:3], *row[4:]), row[1], int(row[3]), ("health_score",))
            for row in rows
        ]

    async def compare(
        self, loop_id: str, at: datetime, before_start: datetime, after_end: datetime
    ) -> tuple[SideMeans, SideMeans]:
        """KPI means of the windows starting in ``[before_start, at)`` and ``[at, after_end)``."""
        side = case((KpiResult.window_start < at, "before"), else_="after").label("side")
        statement = (
            select(
                side,
                func.count(),
                *(func.avg(getattr(KpiResult, name)) for name in TREND_KPIS),
                *(func.count(getattr(KpiResult, name)) for name in TREND_KPIS),
            )
            .where(
                KpiResult.loop_id == loop_id,
                KpiResult.window_start >= before_start,
                KpiResult.window_start < after_end,
            )
            .group_by(side)
        )
        found = {row[0]: row for row in (await self.session.execute(statement)).all()}
        return _side(found.get("before")), _side(found.get("after"))


def _bucket_of(
    row: Sequence[Any], group: str | None, loops: int, names: Sequence[str]
) -> TrendBucket:
    means = row[2 : 2 + len(names)]
    shares = row[2 + len(names) :]
    return TrendBucket(
        bucket_start=_as_utc(row[0]),
        group=group,
        windows=int(row[1]),
        loops=loops,
        means={
            name: None if value is None else float(value)
            for name, value in zip(names, means, strict=True)
        },
        status_shares={
            status: float(value) for status, value in zip(TREND_STATUSES, shares, strict=True)
        },
    )


def _side(row: Sequence[Any] | None) -> SideMeans:
    if row is None:
        return SideMeans(
            windows=0, means=dict.fromkeys(TREND_KPIS), counts=dict.fromkeys(TREND_KPIS, 0)
        )
    count = len(TREND_KPIS)
    means = row[2 : 2 + count]
    counts = row[2 + count :]
    return SideMeans(
        windows=int(row[1]),
        means={
            name: None if value is None else float(value)
            for name, value in zip(TREND_KPIS, means, strict=True)
        },
        counts={name: int(value) for name, value in zip(TREND_KPIS, counts, strict=True)},
    )
