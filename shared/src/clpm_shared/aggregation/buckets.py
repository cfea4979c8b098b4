"""One-minute bucket statistics of raw PV/SP/OP/mode samples, for many loops at once (numpy).

Pure computation: no I/O, no clock. Every loop's samples are concatenated into one set of
columns, rows are grouped by ``(loop, bucket start)`` and each statistic is one vectorised
``ufunc.reduceat`` over the whole set, so 10,000 loops cost about as much as one long loop.

Per bucket and field (PV, SP, OP), over the finite values only:

* ``count`` :math:`n`, ``mean`` :math:`\\bar x = \\frac1n\\sum x_k`, ``min``, ``max``,
* ``first`` / ``last``: the values with the earliest / latest time in the bucket,
* ``std``: the *sample* standard deviation
  :math:`s = \\sqrt{\\frac{1}{n-1}\\sum (x_k-\\bar x)^2}` (two-pass, ``ddof = 1``), undefined
  (NaN) below two values, as InfluxQL's ``stddev()``.

A missing value (NaN, the store's "field absent") is skipped; an infinite value is skipped and
counted as malformed (see :class:`SkippedValues`). Buckets are aligned to the Unix epoch and
named by their start (``floor(t / width) * width``), as InfluxQL's ``GROUP BY time(1m)``.

The mode of a bucket is summarised by the share of each mode among the samples that carry a
known mode and at least one usable value, and the dominant (most frequent) mode; ties go to
the alphabetically first mode. A sample without any usable value is counted as unusable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from clpm_shared.timeseries.base import RawSeries

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjectArray = npt.NDArray[np.object_]
BoolArray = npt.NDArray[np.bool_]

MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS

FIELD_NAMES: tuple[str, ...] = ("pv", "sp", "op")
"""Fields as named in the aggregate columns (``pv_mean`` ...)."""

STATISTICS: tuple[str, ...] = ("count", "mean", "min", "max", "std", "first", "last")

STAT_COLUMNS: tuple[str, ...] = tuple(f"{f}_{s}" for f in FIELD_NAMES for s in STATISTICS)
"""``pv_count``, ``pv_mean``, ... ``op_last``: the statistic columns of ``agg_1m``/``agg_1h``."""


@dataclass(frozen=True)
class BucketTable:
    """Columnar bucket statistics: one row per ``(loop, bucket start)``.

    ``stats`` maps each name of :data:`STAT_COLUMNS` to a float64 column (counts included;
    NaN where a statistic is undefined). ``mode_shares`` has one column per name in ``modes``
    (share of the bucket's samples with a known mode; rows of zeros when no mode was known).
    """

    loop_ids: ObjectArray
    bucket_ns: IntArray
    stats: Mapping[str, FloatArray]
    modes: tuple[str, ...]
    mode_shares: FloatArray

    def __len__(self) -> int:
        return int(self.bucket_ns.shape[0])

    @property
    def mode_dominant(self) -> ObjectArray:
        """Most frequent known mode of each bucket (None when no sample had a known mode)."""
        out = np.full(len(self), None, dtype=object)
        if self.modes and len(self):
            best = np.argmax(self.mode_shares, axis=1)
            known = self.mode_shares.max(axis=1) > 0
            out[known] = np.asarray(self.modes, dtype=object)[best[known]]
        return out

    def mode_share_maps(self) -> list[dict[str, float]]:
        """Per row: ``{mode: share}`` of the modes seen in the bucket (empty when none)."""
        modes = self.modes
        return [
            {mode: share for mode, share in zip(modes, row, strict=True) if share > 0}
            for row in self.mode_shares.tolist()
        ]

    def select(self, rows: BoolArray | IntArray) -> BucketTable:
        """The rows picked by a boolean mask or an index array, in that order."""
        return BucketTable(
            self.loop_ids[rows],
            self.bucket_ns[rows],
            {name: column[rows] for name, column in self.stats.items()},
            self.modes,
            self.mode_shares[rows],
        )

    @classmethod
    def empty(cls) -> BucketTable:
        return cls(
            np.empty(0, dtype=object),
            np.empty(0, dtype=np.int64),
            {name: np.empty(0, dtype=np.float64) for name in STAT_COLUMNS},
            (),
            np.empty((0, 0), dtype=np.float64),
        )


@dataclass(frozen=True)
class SkippedValues:
    """Values left out of the statistics, per field (``pv``, ``sp``, ``op``).

    ``missing``: NaN, the store's "field absent in this sample" (InfluxDB also answers a value
    of the wrong type as absent). ``malformed``: present but unusable (infinite).
    ``unusable_samples``: samples with no usable PV, SP or OP value at all.
    ``examples`` names a few loops that had a malformed value or an unusable sample.
    """

    missing: Mapping[str, int] = field(default_factory=dict)
    malformed: Mapping[str, int] = field(default_factory=dict)
    unusable_samples: int = 0
    examples: tuple[str, ...] = ()

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())


@dataclass(frozen=True)
class MinuteAggregation:
    """Result of :func:`minute_buckets`: the buckets, the samples read and the values skipped."""

    buckets: BucketTable
    samples: int
    skipped: SkippedValues


def _concatenate(
    series: Iterable[RawSeries],
) -> tuple[list[str], IntArray, IntArray, dict[str, FloatArray], ObjectArray]:
    parts = [s for s in series if len(s)]
    names = [s.loop_id for s in parts]
    if not parts:
        nothing = np.empty(0, dtype=np.float64)
        values = {name: nothing for name in FIELD_NAMES}
        return names, np.empty(0, np.int64), np.empty(0, np.int64), values, np.empty(0, object)
    lengths = np.fromiter((len(s) for s in parts), dtype=np.int64, count=len(parts))
    loop_index = np.repeat(np.arange(len(parts), dtype=np.int64), lengths)
    t_ns = np.concatenate([s.t_ns for s in parts]).astype(np.int64, copy=False)
    values = {
        "pv": np.concatenate([s.pv for s in parts]).astype(np.float64, copy=False),
        "sp": np.concatenate([s.sp for s in parts]).astype(np.float64, copy=False),
        "op": np.concatenate([s.op for s in parts]).astype(np.float64, copy=False),
    }
    mode = np.concatenate([s.mode for s in parts]).astype(object, copy=False)
    return names, loop_index, t_ns, values, mode


def _mode_codes(mode: ObjectArray) -> tuple[tuple[str, ...], IntArray]:
    """Sorted distinct known modes and each row's index into them (-1: unknown)."""
    known = sorted(v for v in set(mode.tolist()) if isinstance(v, str) and v)
    codes = np.full(mode.size, -1, dtype=np.int64)
    for code, name in enumerate(known):  # a handful of modes: one vectorised compare each
        codes[mode == name] = code
    return tuple(known), codes


def _group_starts(keys_changed: BoolArray) -> IntArray:
    return np.flatnonzero(keys_changed).astype(np.int64)


def field_statistics(values: FloatArray, group: IntArray, n_groups: int) -> dict[str, FloatArray]:
    """count, mean, min, max, std (ddof=1), first, last of ``values`` per group.

    ``group`` holds each row's group number, non-decreasing (rows of a group are contiguous
    and in time order); every value must be finite. Groups without values get count 0 and NaN.
    """
    out = {name: np.full(n_groups, np.nan) for name in STATISTICS}
    out["count"] = np.zeros(n_groups)
    if values.size == 0:
        return out
    changed = np.empty(values.size, dtype=bool)
    changed[0] = True
    np.not_equal(group[1:], group[:-1], out=changed[1:])
    starts = _group_starts(changed)
    ends = np.append(starts[1:], values.size)
    count = (ends - starts).astype(np.float64)
    mean = np.add.reduceat(values, starts) / count
    deviation = values - np.repeat(mean, ends - starts)
    squares = np.add.reduceat(deviation * deviation, starts)
    std = np.full(starts.size, np.nan)
    several = count > 1
    std[several] = np.sqrt(squares[several] / (count[several] - 1.0))
    target = group[starts]
    out["count"][target] = count
    out["mean"][target] = mean
    out["min"][target] = np.minimum.reduceat(values, starts)
    out["max"][target] = np.maximum.reduceat(values, starts)
    out["std"][target] = std
    out["first"][target] = values[starts]
    out["last"][target] = values[ends - 1]
    return out


def minute_buckets(
    series: Iterable[RawSeries] | Mapping[str, RawSeries], width_ns: int = MINUTE_NS
) -> MinuteAggregation:
    """Bucket statistics of every loop's raw samples (buckets of ``width_ns``, default 1 min).

    Parameters
    ----------
    series
        Raw samples per loop (a mapping's values are used), each sorted by time as the store
        returns them; an unsorted series is sorted here (stable, by loop then time).
    width_ns
        Bucket width in nanoseconds; buckets start at multiples of it since the Unix epoch.

    Returns
    -------
    MinuteAggregation
        Buckets sorted by loop (input order) then time; only buckets holding a sample exist.
    """
    parts = series.values() if isinstance(series, Mapping) else series
    names, loop_index, t_ns, values, mode = _concatenate(parts)
    n = t_ns.size
    if n == 0:
        zero = dict.fromkeys(FIELD_NAMES, 0)
        return MinuteAggregation(BucketTable.empty(), 0, SkippedValues(zero, dict(zero)))
    bucket = np.floor_divide(t_ns, width_ns)
    same_loop = loop_index[1:] == loop_index[:-1]
    if np.any(same_loop & (t_ns[1:] < t_ns[:-1])):
        order = np.lexsort((t_ns, loop_index))
        loop_index, t_ns, bucket, mode = loop_index[order], t_ns[order], bucket[order], mode[order]
        values = {name: column[order] for name, column in values.items()}
        same_loop = loop_index[1:] == loop_index[:-1]
    changed = np.empty(n, dtype=bool)
    changed[0] = True
    changed[1:] = ~same_loop | (bucket[1:] != bucket[:-1])
    starts = _group_starts(changed)
    group = np.cumsum(changed, dtype=np.int64) - 1
    n_groups = starts.size

    stats: dict[str, FloatArray] = {}
    missing: dict[str, int] = {}
    malformed: dict[str, int] = {}
    bad_loops: set[int] = set()
    usable = np.zeros(n, dtype=bool)
    for name in FIELD_NAMES:
        column = values[name]
        finite = np.isfinite(column)
        usable |= finite
        absent = np.isnan(column)
        missing[name] = int(np.count_nonzero(absent))
        bad = ~finite & ~absent
        malformed[name] = int(np.count_nonzero(bad))
        if malformed[name]:
            bad_loops.update(np.unique(loop_index[bad])[:5].tolist())
        kept = column if finite.all() else column[finite]
        where = group if finite.all() else group[finite]
        for statistic, result in field_statistics(kept, where, n_groups).items():
            stats[f"{name}_{statistic}"] = result

    unusable = n - int(np.count_nonzero(usable))
    if unusable:
        bad_loops.update(np.unique(loop_index[~usable])[:5].tolist())
    modes, codes = _mode_codes(mode)
    shares = np.zeros((n_groups, len(modes)))
    if modes:
        known = (codes >= 0) & usable
        counts = np.bincount(
            group[known] * len(modes) + codes[known], minlength=n_groups * len(modes)
        ).reshape(n_groups, len(modes))
        totals = counts.sum(axis=1)
        np.divide(counts, totals[:, None], out=shares, where=totals[:, None] > 0)

    names_array = np.asarray(names, dtype=object)
    table = BucketTable(
        names_array[loop_index[starts]],
        (bucket[starts] * width_ns).astype(np.int64),
        {name: stats[name] for name in STAT_COLUMNS},
        modes,
        shares,
    )
    examples = tuple(sorted(names[i] for i in bad_loops)[:5])
    return MinuteAggregation(table, n, SkippedValues(missing, malformed, unusable, examples))


def concatenate(tables: Iterable[BucketTable]) -> BucketTable:
    """Rows of several tables, in order; mode columns are the union of their modes."""
    parts = [t for t in tables if len(t)]
    if not parts:
        return BucketTable.empty()
    if len(parts) == 1:
        return parts[0]
    modes = tuple(sorted({m for t in parts for m in t.modes}))
    shares = np.zeros((sum(len(t) for t in parts), len(modes)))
    offset = 0
    for part in parts:
        columns = [modes.index(m) for m in part.modes]
        shares[offset : offset + len(part), columns] = part.mode_shares
        offset += len(part)
    return BucketTable(
        np.concatenate([t.loop_ids for t in parts]),
        np.concatenate([t.bucket_ns for t in parts]).astype(np.int64),
        {name: np.concatenate([t.stats[name] for t in parts]) for name in STAT_COLUMNS},
        modes,
        shares,
    )
