"""Combining stored aggregate buckets into coarser, epoch-aligned buckets (1m -> 15m, 1h -> 1d).

Counts add up, means are count-weighted (the mean of the pooled samples), minima and maxima are
the extreme of the parts. Buckets are aligned to the Unix epoch like InfluxQL's
``GROUP BY time(interval)``, so the database and the time-series fallback agree on boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from clpm_shared.db.repositories.aggregates_read import AggregateBucket

FloatArray = npt.NDArray[np.float64]

SERIES_FIELDS = ("pv", "sp", "op")


@dataclass(frozen=True)
class BucketColumns:
    """Columnar statistics per bucket: ``bucket_ns`` and ``<field>_<count|mean|min|max>``."""

    bucket_ns: npt.NDArray[np.int64]
    stats: dict[str, FloatArray]


def _nan(value: float | int | None) -> float:
    return np.nan if value is None else float(value)


def columns_of(buckets: Sequence[AggregateBucket]) -> BucketColumns:
    """Columns of stored buckets as they are (no re-bucketing)."""
    bucket_ns = np.array(
        [int(bucket.bucket_start.timestamp()) * 1_000_000_000 for bucket in buckets],
        dtype=np.int64,
    )
    stats: dict[str, FloatArray] = {}
    for field in SERIES_FIELDS:
        for statistic in ("count", "mean", "min", "max"):
            name = f"{field}_{statistic}"
            stats[name] = np.array([_nan(getattr(b, name)) for b in buckets], dtype=np.float64)
    return BucketColumns(bucket_ns, stats)


def rebucket(columns: BucketColumns, interval_s: int) -> BucketColumns:
    """Combine buckets into epoch-aligned buckets of ``interval_s`` seconds."""
    interval_ns = interval_s * 1_000_000_000
    starts = (columns.bucket_ns // interval_ns) * interval_ns
    bucket_ns, inverse = np.unique(starts, return_inverse=True)
    group = inverse.astype(np.intp)
    n = bucket_ns.size
    stats: dict[str, FloatArray] = {}
    for field in SERIES_FIELDS:
        count = np.nan_to_num(columns.stats[f"{field}_count"], nan=0.0)
        mean = columns.stats[f"{field}_mean"]
        has_mean = ~np.isnan(mean) & (count > 0)
        total_count = np.bincount(group, weights=count, minlength=n).astype(np.float64)
        weight = np.bincount(group, weights=np.where(has_mean, count, 0.0), minlength=n)
        weighted = np.bincount(group, weights=np.where(has_mean, mean * count, 0.0), minlength=n)
        stats[f"{field}_count"] = total_count
        stats[f"{field}_mean"] = np.divide(
            weighted, weight, out=np.full(n, np.nan), where=weight > 0
        )
        for statistic, reduce, empty in (
            ("min", np.minimum, np.inf),
            ("max", np.maximum, -np.inf),
        ):
            values = columns.stats[f"{field}_{statistic}"]
            present = ~np.isnan(values)
            out = np.full(n, empty)
            reduce.at(out, group[present], values[present])
            out[np.isinf(out)] = np.nan
            stats[f"{field}_{statistic}"] = out
    return BucketColumns(bucket_ns.astype(np.int64), stats)
