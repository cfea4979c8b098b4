"""Reads of ``diagnostic_results``: a loop's latest findings and their history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import DiagnosticResult


class DiagnosticReadRepository:
    """Read-only queries of ``diagnostic_results`` (written by the diagnostics service)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def latest(self, loop_id: str) -> Sequence[DiagnosticResult]:
        """Findings of the loop's most recent diagnosis, most severe first.

        The most recent diagnosis is the one stored last (``created_at``; on a tie the newer
        window): an on-demand run of an earlier window is what is read back right after it,
        even though the KPI cycle has diagnosed newer windows.
        """
        newest = (
            await self.session.execute(
                select(DiagnosticResult.window_start, DiagnosticResult.window_end)
                .where(DiagnosticResult.loop_id == loop_id)
                .order_by(DiagnosticResult.created_at.desc(), DiagnosticResult.window_start.desc())
                .limit(1)
            )
        ).first()
        if newest is None:
            return []
        return await self.for_window(loop_id, newest[0], newest[1])

    async def for_window(
        self, loop_id: str, start: datetime, end: datetime
    ) -> Sequence[DiagnosticResult]:
        """Findings of the diagnosis of exactly ``[start, end)``, most severe first (empty when
        that window was not diagnosed or nothing was found)."""
        statement = (
            select(DiagnosticResult)
            .where(
                DiagnosticResult.loop_id == loop_id,
                DiagnosticResult.window_start == start,
                DiagnosticResult.window_end == end,
            )
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
