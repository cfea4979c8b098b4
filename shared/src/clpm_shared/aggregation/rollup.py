"""Rolling bucket statistics up into wider buckets (1 min -> 1 h) without the raw samples.

Pure numpy, no I/O. Buckets :math:`i = 1..k` of one loop inside a wider bucket, each with
count :math:`n_i`, mean :math:`\\bar x_i` and sample std :math:`s_i`, combine exactly
(Chan, Golub & LeVeque, "Algorithms for computing the sample variance", 1983):

.. math::

    N = \\sum n_i, \\qquad \\bar x = \\frac{1}{N}\\sum n_i \\bar x_i, \\qquad
    M_2 = \\sum (n_i - 1) s_i^2 + \\sum n_i (\\bar x_i - \\bar x)^2, \\qquad
    s = \\sqrt{M_2 / (N - 1)}

(a bucket with :math:`n_i = 1` has no :math:`s_i` and contributes 0 to the first sum), which
equals the statistics computed directly over all the raw values up to rounding; it is *not*
the mean of the stds. min/max are the extremes, first/last come from the earliest/latest
bucket that has a value.

Mode shares are weighted by each bucket's sample count, taken as
:math:`w_i = \\max(n^{PV}_i, n^{SP}_i, n^{OP}_i)`: exact when every sample carries its mode
and at least one value (the normal case for plant data).
"""

from __future__ import annotations

import numpy as np

from clpm_shared.aggregation.buckets import (
    FIELD_NAMES,
    HOUR_NS,
    STAT_COLUMNS,
    STATISTICS,
    BucketTable,
    FloatArray,
    IntArray,
    ObjectArray,
)


def _loop_codes(loop_ids: ObjectArray) -> IntArray:
    lookup: dict[object, int] = {}
    return np.fromiter(
        (lookup.setdefault(v, len(lookup)) for v in loop_ids.tolist()),
        dtype=np.int64,
        count=loop_ids.size,
    )


def _pooled_field(
    stats: dict[str, FloatArray], prefix: str, starts: IntArray, group: IntArray, n_groups: int
) -> dict[str, FloatArray]:
    count = np.nan_to_num(stats[f"{prefix}_count"], nan=0.0)
    mean = stats[f"{prefix}_mean"]
    std = stats[f"{prefix}_std"]
    has = count > 0
    total = np.add.reduceat(count, starts)
    weighted = np.add.reduceat(np.where(has, count * np.nan_to_num(mean), 0.0), starts)
    out = {name: np.full(n_groups, np.nan) for name in STATISTICS}
    out["count"] = total
    nonempty = total > 0
    pooled_mean = np.full(n_groups, np.nan)
    pooled_mean[nonempty] = weighted[nonempty] / total[nonempty]
    out["mean"] = pooled_mean
    within = np.where(count > 1, (count - 1.0) * np.nan_to_num(std) ** 2, 0.0)
    between = np.where(has, count * (np.nan_to_num(mean) - pooled_mean[group]) ** 2, 0.0)
    m2 = np.add.reduceat(within + between, starts)
    several = total > 1
    out["std"][several] = np.sqrt(m2[several] / (total[several] - 1.0))
    low = np.minimum.reduceat(np.where(has, stats[f"{prefix}_min"], np.inf), starts)
    high = np.maximum.reduceat(np.where(has, stats[f"{prefix}_max"], -np.inf), starts)
    out["min"] = np.where(nonempty, low, np.nan)
    out["max"] = np.where(nonempty, high, np.nan)
    rows = np.flatnonzero(has)
    if rows.size:
        owner = group[rows]
        first_of = np.ones(rows.size, dtype=bool)
        first_of[1:] = owner[1:] != owner[:-1]
        last_of = np.ones(rows.size, dtype=bool)
        last_of[:-1] = owner[1:] != owner[:-1]
        out["first"][owner[first_of]] = stats[f"{prefix}_first"][rows[first_of]]
        out["last"][owner[last_of]] = stats[f"{prefix}_last"][rows[last_of]]
    return out


def rollup(table: BucketTable, width_ns: int = HOUR_NS) -> BucketTable:
    """Combine ``table``'s buckets into buckets of ``width_ns`` (default one hour) per loop.

    Parameters
    ----------
    table
        Narrower buckets (e.g. rows of ``agg_1m``), any order; ``width_ns`` must be a multiple
        of their width so that none straddles two wide buckets.
    width_ns
        Width of the result's buckets; they start at multiples of it since the Unix epoch.

    Returns
    -------
    BucketTable
        One row per loop and wide bucket holding at least one input row, sorted by loop
        (first appearance in ``table``) then time.
    """
    if len(table) == 0:
        return BucketTable.empty()
    codes = _loop_codes(table.loop_ids)
    wide = np.floor_divide(table.bucket_ns, width_ns)
    order = np.lexsort((table.bucket_ns, codes))
    if not np.array_equal(order, np.arange(order.size)):
        table = table.select(order)
        codes, wide = codes[order], wide[order]
    changed = np.ones(len(table), dtype=bool)
    changed[1:] = (codes[1:] != codes[:-1]) | (wide[1:] != wide[:-1])
    starts = np.flatnonzero(changed).astype(np.int64)
    group = np.cumsum(changed, dtype=np.int64) - 1
    n_groups = starts.size
    stats_in = dict(table.stats)
    stats: dict[str, FloatArray] = {}
    for prefix in FIELD_NAMES:
        for statistic, column in _pooled_field(stats_in, prefix, starts, group, n_groups).items():
            stats[f"{prefix}_{statistic}"] = column
    shares = np.zeros((n_groups, len(table.modes)))
    if table.modes:
        weight = np.max(
            np.nan_to_num(np.vstack([stats_in[f"{p}_count"] for p in FIELD_NAMES])), axis=0
        )
        counts = np.add.reduceat(table.mode_shares * weight[:, None], starts, axis=0)
        totals = counts.sum(axis=1)
        np.divide(counts, totals[:, None], out=shares, where=totals[:, None] > 0)
    return BucketTable(
        table.loop_ids[starts],
        (wide[starts] * width_ns).astype(np.int64),
        {name: stats[name] for name in STAT_COLUMNS},
        table.modes,
        shares,
    )
