"""Stored plant-wide oscillation cluster runs: all SQL on ``oscillation_cluster_runs``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import OscillationClusterRun


class OscillationClusterRepository:
    """Save a run of one window; find the latest run of a window length ending near a time."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def save(
        self,
        window_start: datetime,
        window_end: datetime,
        *,
        basis: str,
        loops_analysed: int,
        oscillating_loops: int,
        clusters: Sequence[dict[str, Any]],
        duration_s: float,
    ) -> OscillationClusterRun:
        run = OscillationClusterRun(
            window_start=window_start,
            window_end=window_end,
            basis=basis,
            loops_analysed=loops_analysed,
            oscillating_loops=oscillating_loops,
            clusters={"clusters": list(clusters)},
            duration_s=duration_s,
        )
        self.session.add(run)
        await self.session.flush()
        return run

    async def latest(
        self, span: timedelta, end: datetime, max_age: timedelta, span_tolerance: timedelta
    ) -> OscillationClusterRun | None:
        """The latest run of a window ``span`` long (± ``span_tolerance``) that ends within
        ``max_age`` before ``end`` (or up to ``span_tolerance`` after it)."""
        statement = (
            select(OscillationClusterRun)
            .where(
                OscillationClusterRun.window_end <= end + span_tolerance,
                OscillationClusterRun.window_end >= end - max_age,
            )
            .order_by(OscillationClusterRun.window_end.desc(), OscillationClusterRun.id.desc())
        )
        for run in (await self.session.execute(statement)).scalars():
            if abs((run.window_end - run.window_start) - span) <= span_tolerance:
                return run
        return None

    async def exists(self, window_start: datetime, window_end: datetime) -> bool:
        statement = select(OscillationClusterRun.id).where(
            OscillationClusterRun.window_start == window_start,
            OscillationClusterRun.window_end == window_end,
        )
        return (await self.session.execute(statement.limit(1))).first() is not None

    async def prune(self, before: datetime) -> int:
        """Delete the runs whose window ended before ``before``."""
        result = await self.session.execute(
            delete(OscillationClusterRun).where(OscillationClusterRun.window_end < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)
