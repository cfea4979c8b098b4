"""Reads of the ``agg_1m`` and ``agg_1h`` tables: bucket rows of a loop and their time span."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import Agg1h, Agg1m

AggregateTable = Literal["agg_1m", "agg_1h"]

_MODELS: dict[str, type[Agg1m] | type[Agg1h]] = {"agg_1m": Agg1m, "agg_1h": Agg1h}
BUCKET_WIDTH: dict[str, timedelta] = {
    "agg_1m": timedelta(minutes=1),
    "agg_1h": timedelta(hours=1),
}


@dataclass(frozen=True)
class AggregateBucket:
    """Statistics of one bucket (start time, UTC) of one loop."""

    bucket_start: datetime
    pv_count: int
    pv_mean: float | None
    pv_min: float | None
    pv_max: float | None
    sp_count: int
    sp_mean: float | None
    sp_min: float | None
    sp_max: float | None
    op_count: int
    op_mean: float | None
    op_min: float | None
    op_max: float | None
    mode_dominant: str | None


@dataclass(frozen=True)
class BucketSpan:
    """First bucket start and the end of the last bucket (start + width)."""

    start: datetime
    end: datetime


class AggregateReadRepository:
    """Read-only queries of the aggregate tables (written by the aggregation service)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def buckets(
        self,
        table: AggregateTable,
        loop_id: str,
        start: datetime,
        end: datetime,
        limit: int | None = None,
    ) -> list[AggregateBucket]:
        """Buckets with ``start <= bucket_start < end``, oldest first."""
        model = _MODELS[table]
        statement = (
            select(
                model.bucket_start,
                model.pv_count,
                model.pv_mean,
                model.pv_min,
                model.pv_max,
                model.sp_count,
                model.sp_mean,
                model.sp_min,
                model.sp_max,
                model.op_count,
                model.op_mean,
                model.op_min,
                model.op_max,
                model.mode_dominant,
            )
            .where(
                model.loop_id == loop_id,
                model.bucket_start >= start,
                model.bucket_start < end,
            )
            .order_by(model.bucket_start)
        )
        if limit is not None:
            statement = statement.limit(limit)
        rows = await self.session.execute(statement)
        return [AggregateBucket(**row._asdict()) for row in rows]

    async def span(self, table: AggregateTable, loop_id: str) -> BucketSpan | None:
        """Time covered by a loop's buckets in ``table``; None when it has none."""
        model = _MODELS[table]
        row: Any = (
            await self.session.execute(
                select(func.min(model.bucket_start), func.max(model.bucket_start)).where(
                    model.loop_id == loop_id
                )
            )
        ).one()
        first, last = row
        if first is None or last is None:
            return None
        return BucketSpan(first, last + BUCKET_WIDTH[table])
