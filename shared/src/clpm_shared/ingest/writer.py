"""Writing imported loop blocks through the configured time-series store.

The embedded (SQLite) and InfluxQL stores take columnar blocks (``write_series``: one SQLite
transaction per call, or line protocol built with Arrow in requests of 50,000 lines); any
other store gets :class:`~clpm_shared.timeseries.base.Point` objects through its ``write``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clpm_shared.timeseries.base import Point, RawSeries, TimeSeriesStore, from_ns
from clpm_shared.timeseries.embedded import EmbeddedStore
from clpm_shared.timeseries.influxql import InfluxQLStore


def _finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


class SeriesWriter:
    """Writes loop blocks; returns how many samples (rows or lines) the store accepted."""

    def __init__(self, store: TimeSeriesStore) -> None:
        self.store = store

    async def write(self, blocks: Sequence[RawSeries]) -> int:
        if isinstance(self.store, EmbeddedStore | InfluxQLStore):
            return await self.store.write_series(blocks)
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
