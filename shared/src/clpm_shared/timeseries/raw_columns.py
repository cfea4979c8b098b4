"""Building :class:`RawSeries` from backend rows; blanking the fields a caller did not ask for."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from clpm_shared.timeseries.base import FIELDS, MODE_TAG, FloatArray, RawSeries, validate_fields

logger = logging.getLogger(__name__)


def float_column(values: Sequence[object], loop_id: str, name: str) -> FloatArray:
    """Values as float64; a value of the wrong type (a string or a boolean, e.g. from a shard
    where the field was written with another type) becomes NaN and is counted in a warning."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    column = np.full(len(values), np.nan)
    wrong = 0
    for index, value in enumerate(values):
        if isinstance(value, int | float) and not isinstance(value, bool):
            column[index] = value
        elif value is not None:
            wrong += 1
    logger.warning(
        "values of the wrong type read as missing",
        extra={"loop_id": loop_id, "field": name, "count": wrong},
    )
    return column


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
        float_column(pv, loop_id, "PV"),
        float_column(sp, loop_id, "SP"),
        float_column(op, loop_id, "OP"),
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
