"""Reads of ``kpi_results``: a loop's KPI history and its latest row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import KpiResult


class KpiReadRepository:
    """Read-only queries of ``kpi_results`` (written by the KPI worker)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def history(
        self, loop_id: str, start: datetime, end: datetime, limit: int | None = None
    ) -> Sequence[KpiResult]:
        """Rows whose window starts in ``[start, end)``, oldest first."""
        statement = (
            select(KpiResult)
            .where(
                KpiResult.loop_id == loop_id,
                KpiResult.window_start >= start,
                KpiResult.window_start < end,
            )
            .order_by(KpiResult.window_start)
        )
        if limit is not None:
            statement = statement.limit(limit)
        return list((await self.session.execute(statement)).scalars())

    async def latest(self, loop_id: str) -> KpiResult | None:
        """The row of the most recent window of a loop; None when it has none."""
        statement = (
            select(KpiResult)
            .where(KpiResult.loop_id == loop_id)
            .order_by(KpiResult.window_start.desc())
            .limit(1)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()
