"""Reads of ``diagnostic_results``: a loop's latest findings and their history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import DiagnosticResult


class DiagnosticReadRepository:
    """Read-only queries of ``diagnostic_results`` (written by the diagnostics service)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def latest(self, loop_id: str) -> Sequence[DiagnosticResult]:
        """Findings of the most recent analysed window of a loop, most severe first."""
        newest = (
            select(func.max(DiagnosticResult.window_start))
            .where(DiagnosticResult.loop_id == loop_id)
            .scalar_subquery()
        )
        statement = (
            select(DiagnosticResult)
            .where(DiagnosticResult.loop_id == loop_id, DiagnosticResult.window_start == newest)
            .order_by(DiagnosticResult.severity.desc(), DiagnosticResult.category)
        )
        return list((await self.session.execute(statement)).scalars())

    async def history(
        self,
        loop_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
    ) -> Sequence[DiagnosticResult]:
        """Findings whose window starts in ``[start, end)``, newest window first."""
        statement = select(DiagnosticResult).where(DiagnosticResult.loop_id == loop_id)
        if start is not None:
            statement = statement.where(DiagnosticResult.window_start >= start)
        if end is not None:
            statement = statement.where(DiagnosticResult.window_start < end)
        statement = statement.order_by(
            DiagnosticResult.window_start.desc(),
            DiagnosticResult.severity.desc(),
            DiagnosticResult.category,
        ).limit(limit)
        return list((await self.session.execute(statement)).scalars())
