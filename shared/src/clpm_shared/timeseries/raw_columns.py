"""Building :class:`RawSeries` from backend rows; blanking the fields a caller did not ask for."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clpm_shared.timeseries.base import FIELDS, MODE_TAG, RawSeries, validate_fields


def series_from_columns(
    loop_id: str,
    t_ns: Sequence[int],
    pv: Sequence[float | None],
    sp: Sequence[float | None],
    op: Sequence[float | None],
    mode: Sequence[str | None],
) -> RawSeries:
    """Columns (None = missing) to numpy arrays: int64 times, float64 values with NaN, objects."""
    return RawSeries(
        loop_id,
        np.asarray(t_ns, dtype=np.int64),
        np.array(pv, dtype=np.float64),
        np.array(sp, dtype=np.float64),
        np.array(op, dtype=np.float64),
        np.array(mode, dtype=object),
    )


def series_from_rows(loop_id: str, rows: Sequence[Sequence[object]]) -> RawSeries:
    """Rows ``(t_ns, pv, sp, op, mode)`` sorted by time to a :class:`RawSeries`."""
    if not rows:
        return RawSeries.empty(loop_id)
    t_ns, pv, sp, op, mode = zip(*rows, strict=True)
    return series_from_columns(loop_id, t_ns, pv, sp, op, mode)


def keep_fields(series: RawSeries, fields: Sequence[str]) -> RawSeries:
    """``series`` with the columns not in ``fields`` set to NaN (values) or None (mode)."""
    if set(fields) >= {*FIELDS, MODE_TAG}:
        return series
    n = len(series)

    def column(name: str, values: np.ndarray) -> np.ndarray:
        return values if name in fields else np.full(n, np.nan)

    return RawSeries(
        series.loop_id,
        series.t_ns,
        column("PV", series.pv),
        column("SP", series.sp),
        column("OP", series.op),
        series.mode if MODE_TAG in fields else np.full(n, None, dtype=object),
    )


def requested_columns(fields: Sequence[str] | None) -> tuple[str, ...]:
    """Validated stored names of ``fields``; PV, SP, OP and Mode when ``fields`` is None."""
    return (*FIELDS, MODE_TAG) if fields is None else validate_fields(fields)


def float_fields(fields: Sequence[str]) -> tuple[str, ...]:
    """The float fields among ``fields``; all of them when only ``Mode`` was asked for.

    A row is returned when at least one of these is present (as InfluxQL does: a tag alone never
    makes a row), so asking for ``Mode`` alone returns every sample with its mode.
    """
    chosen = tuple(name for name in FIELDS if name in fields)
    return chosen or FIELDS
