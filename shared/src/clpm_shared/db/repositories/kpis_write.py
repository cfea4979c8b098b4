"""Writes of the KPI worker: idempotent upserts into ``kpi_results`` and ``apc_attainment``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import ApcAttainment, KpiResult
from clpm_shared.db.repositories.upsert import upsert_rows

_KEY = ("loop_id", "window_start")
INCOMPLETE_STATUSES = ("offline", "not_assessed")
"""Window statuses that say data was missing (and may arrive later)."""


class KpiWriteRepository:
    """Upserts keyed by (loop_id, window_start): recomputing a window overwrites it."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert_kpis(self, rows: Sequence[dict[str, Any]]) -> int:
        table: Table = KpiResult.__table__  # type: ignore[assignment]
        return await upsert_rows(self.session, table, rows, _KEY)

    async def upsert_apc(self, rows: Sequence[dict[str, Any]]) -> int:
        table: Table = ApcAttainment.__table__  # type: ignore[assignment]
        return await upsert_rows(self.session, table, rows, _KEY)

    async def last_windows(self, loop_ids: Sequence[str]) -> dict[str, datetime]:
        """Start of the newest stored window per loop (loops without any row are absent)."""
        out: dict[str, datetime] = {}
        ids = sorted(set(loop_ids))
        for offset in range(0, len(ids), 1000):
            rows = await self.session.execute(
                select(KpiResult.loop_id, func.max(KpiResult.window_start))
                .where(KpiResult.loop_id.in_(ids[offset : offset + 1000]))
                .group_by(KpiResult.loop_id)
            )
            for loop_id, newest in rows:
                out[loop_id] = newest
        return out

    async def incomplete_windows(
        self, loop_ids: Sequence[str], since: datetime
    ) -> list[tuple[str, datetime, float | None]]:
        """``(loop_id, window_start, dq_completeness)`` of windows starting at or after
        ``since`` stored as offline or not_assessed (candidates for a recomputation)."""
        out: list[tuple[str, datetime, float | None]] = []
        ids = sorted(set(loop_ids))
        for offset in range(0, len(ids), 1000):
            rows = await self.session.execute(
                select(KpiResult.loop_id, KpiResult.window_start, KpiResult.dq_completeness)
                .where(
                    KpiResult.loop_id.in_(ids[offset : offset + 1000]),
                    KpiResult.window_start >= since,
                    KpiResult.status.in_(INCOMPLETE_STATUSES),
                )
                .order_by(KpiResult.window_start, KpiResult.loop_id)
            )
            out.extend((loop_id, start, completeness) for loop_id, start, completeness in rows)
        return out
