"""Reads of ``apc_attainment``: a loop's history and sample-weighted attainment per loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import ApcAttainment, Loop


@dataclass(frozen=True)
class ApcLoopAttainment:
    """Attainment of one loop over a period, each share weighted by the windows' samples."""

    loop_id: str
    name: str
    unit: str | None
    area: str | None
    windows: int
    samples: int
    attainment: float | None
    wrong_mode_share: float | None
    saturated_share: float | None
    bad_data_share: float | None


class ApcReadRepository:
    """Read-only queries of ``apc_attainment`` (written by the KPI worker)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def history(
        self, loop_id: str, start: datetime, end: datetime, limit: int | None = None
    ) -> Sequence[ApcAttainment]:
        """Rows whose window starts in ``[start, end)``, oldest first."""
        statement = (
            select(ApcAttainment)
            .where(
                ApcAttainment.loop_id == loop_id,
                ApcAttainment.window_start >= start,
                ApcAttainment.window_start < end,
            )
            .order_by(ApcAttainment.window_start)
        )
        if limit is not None:
            statement = statement.limit(limit)
        return list((await self.session.execute(statement)).scalars())

    async def per_loop(
        self,
        start: datetime,
        end: datetime,
        *,
        unit: str | None = None,
        area: str | None = None,
    ) -> list[ApcLoopAttainment]:
        """Per loop with rows in ``[start, end)``: shares weighted by samples, ordered by id."""

        def weighted(column: Any) -> Any:
            weight = case((column.is_not(None), ApcAttainment.samples), else_=0)
            return func.sum(func.coalesce(column, 0.0) * ApcAttainment.samples) / func.nullif(
                func.sum(weight), 0
            )

        statement = (
            select(
                ApcAttainment.loop_id,
                Loop.name,
                Loop.unit,
                Loop.area,
                func.count(),
                func.coalesce(func.sum(ApcAttainment.samples), 0),
                weighted(ApcAttainment.attainment),
                weighted(ApcAttainment.wrong_mode_share),
                weighted(ApcAttainment.saturated_share),
                weighted(ApcAttainment.bad_data_share),
            )
            .join(Loop, Loop.loop_id == ApcAttainment.loop_id)
            .where(
                Loop.deleted_at.is_(None),
                ApcAttainment.window_start >= start,
                ApcAttainment.window_start < end,
            )
            .group_by(ApcAttainment.loop_id, Loop.name, Loop.unit, Loop.area)
            .order_by(ApcAttainment.loop_id)
        )
        if unit is not None:
            statement = statement.where(Loop.unit == unit)
        if area is not None:
            statement = statement.where(Loop.area == area)
        rows = await self.session.execute(statement)
        return [
            ApcLoopAttainment(
                loop_id=row[0],
                name=row[1],
                unit=row[2],
                area=row[3],
                windows=int(row[4]),
                samples=int(row[5]),
                attainment=_float(row[6]),
                wrong_mode_share=_float(row[7]),
                saturated_share=_float(row[8]),
                bad_data_share=_float(row[9]),
            )
            for row in rows
        ]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
