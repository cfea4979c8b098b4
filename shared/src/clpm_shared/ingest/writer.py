"""Writing imported loop blocks through the configured time-series store.

The embedded (SQLite) store takes columnar blocks in one transaction per call
(``write_series``). The InfluxQL store gets them as line protocol built with Arrow, in requests
of about ``lines_per_request`` lines with up to ``requests_in_flight`` requests at once (influxd
parses one request while the next is encoded and sent). Any other store gets
:class:`~clpm_shared.timeseries.base.Point` objects through its ``write``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from clpm_shared.timeseries.base import Point, RawSeries, TimeSeriesStore, from_ns
from clpm_shared.timeseries.embedded import EmbeddedStore
from clpm_shared.timeseries.influxql import InfluxQLStore

LINES_PER_REQUEST = 100_000
REQUESTS_IN_FLIGHT = 2


def _finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


def request_groups(blocks: Sequence[RawSeries], lines: int) -> list[list[RawSeries]]:
    """Consecutive blocks in groups of about ``lines`` samples (a block is never split)."""
    groups: list[list[RawSeries]] = []
    current: list[RawSeries] = []
    pending = 0
    for block in blocks:
        current.append(block)
        pending += len(block)
        if pending >= lines:
            groups.append(current)
            current, pending = [], 0
    if current:
        groups.append(current)
    return groups


class SeriesWriter:
    """Writes loop blocks; returns how many samples (rows or lines) the store accepted."""

    def __init__(
        self,
        store: TimeSeriesStore,
        *,
        lines_per_request: int = LINES_PER_REQUEST,
        requests_in_flight: int = REQUESTS_IN_FLIGHT,
    ) -> None:
        self.store = store
        self.lines_per_request = lines_per_request
        self.requests_in_flight = max(1, requests_in_flight)

    async def write(self, blocks: Sequence[RawSeries]) -> int:
        if isinstance(self.store, EmbeddedStore):
            return await self.store.write_series(blocks)
        if isinstance(self.store, InfluxQLStore):
            return await self._write_influxql(self.store, blocks)
        points = [
            Point(
                block.loop_id, from_ns(int(t)), _finite_or_none(pv), _finite_or_none(sp),
                _finite_or_none(op), mode,
            )
            for block in blocks
            for t, pv, sp, op, mode in zip(
                block.t_ns.tolist(), block.pv.tolist(), block.sp.tolist(), block.op.tolist(),
                block.mode.tolist(), strict=True,
            )
        ]  # fmt: skip
        return await self.store.write(points)

    async def _write_influxql(self, store: InfluxQLStore, blocks: Sequence[RawSeries]) -> int:
        slots = asyncio.Semaphore(self.requests_in_flight)

        async def send(group: list[RawSeries]) -> int:
            async with slots:
                return await store.write_series(group, lines_per_request=self.lines_per_request)

        groups = request_groups(blocks, self.lines_per_request)
        if len(groups) == 1:
            return await send(groups[0])
        return sum(await asyncio.gather(*(send(group) for group in groups)))
