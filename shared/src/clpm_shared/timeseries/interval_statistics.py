"""Per-interval statistics of raw samples in numpy, for backends without server-side windows.

Buckets are aligned to the Unix epoch (bucket start = ``floor(t / interval) * interval``), as
InfluxQL's ``GROUP BY time(interval)`` aligns them; only buckets holding samples are returned
(``fill(none)``). Per field: count of present values, mean, min, max, first and last by time,
and the sample standard deviation (``ddof = 1``, NaN below two values, as InfluxQL ``stddev``).
"""

from __future__ import annotations

import numpy as np

from clpm_shared.timeseries.base import (
    FIELDS,
    FloatArray,
    IntArray,
    IntervalAggregate,
    RawSeries,
)


def _field_statistics(
    values: FloatArray, bucket_of: IntArray, n_buckets: int
) -> dict[str, FloatArray]:
    present = ~np.isnan(values)
    where = bucket_of[present]
    kept = values[present]
    count = np.bincount(where, minlength=n_buckets).astype(np.float64)
    has = count > 0
    total = np.bincount(where, weights=kept, minlength=n_buckets)
    mean = np.divide(total, count, out=np.full(n_buckets, np.nan), where=has)
    low = np.full(n_buckets, np.inf)
    np.minimum.at(low, where, kept)
    high = np.full(n_buckets, -np.inf)
    np.maximum.at(high, where, kept)
    low[~has] = np.nan
    high[~has] = np.nan
    first = np.full(n_buckets, np.nan)
    last = np.full(n_buckets, np.nan)
    if kept.size:
        buckets, first_index = np.unique(where, return_index=True)
        first[buckets] = kept[first_index]
        buckets_rev, last_index_rev = np.unique(where[::-1], return_index=True)
        last[buckets_rev] = kept[::-1][last_index_rev]
    squares = np.bincount(where, weights=(kept - mean[where]) ** 2, minlength=n_buckets)
    several = count > 1
    std = np.sqrt(np.divide(squares, count - 1, out=np.full(n_buckets, np.nan), where=several))
    return {
        "mean": mean,
        "min": low,
        "max": high,
        "count": count,
        "first": first,
        "last": last,
        "std": std,
    }


def interval_statistics(series: RawSeries, interval_s: int) -> IntervalAggregate:
    """Statistics per epoch-aligned bucket of ``interval_s`` seconds (``series`` sorted by time)."""
    interval_ns = interval_s * 1_000_000_000
    starts = (series.t_ns // interval_ns) * interval_ns
    bucket_ns, bucket_of = np.unique(starts, return_inverse=True)
    stats: dict[str, FloatArray] = {}
    for name in FIELDS:
        column = series.field(name)
        assert column.dtype == np.float64
        for statistic, values in _field_statistics(
            column.astype(np.float64), bucket_of.astype(np.int64), bucket_ns.size
        ).items():
            stats[f"{name.lower()}_{statistic}"] = values
    return IntervalAggregate(series.loop_id, interval_s, bucket_ns.astype(np.int64), stats)
