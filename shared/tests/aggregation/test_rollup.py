"""Hour roll-up of minute buckets: equals the direct statistics of the raw values."""

from __future__ import annotations

import numpy as np
import pytest

from clpm_shared.aggregation import (
    HOUR_NS,
    MINUTE_NS,
    STAT_COLUMNS,
    concatenate,
    minute_buckets,
    rollup,
)
from clpm_shared.timeseries.base import RawSeries

S = 1_000_000_000
T0 = 1_736_503_200 * S  # 2025-01-10T10:00:00Z


def noisy_series(rng: np.random.Generator, loop_id: str, seconds: int, scale: float) -> RawSeries:
    n = seconds // 2
    t = T0 + np.sort(rng.choice(seconds, size=n, replace=False)).astype(np.int64) * S
    pv = 1e4 + rng.normal(0, scale, n)  # large offset: a naive sum-of-squares would lose digits
    sp = np.where(t < T0 + 3000 * S, 10.0, 20.0)
    op = rng.uniform(0, 100, n)
    pv[rng.random(n) < 0.1] = np.nan
    op[rng.random(n) < 0.3] = np.nan
    mode = np.where(rng.random(n) < 0.8, "AUT", "MAN").astype(object)
    return RawSeries(loop_id, t, pv, sp, op, mode)


def direct_hour_statistics(s: RawSeries) -> dict[tuple[int, str], float]:
    hours = s.t_ns // HOUR_NS
    out: dict[tuple[int, str], float] = {}
    for hour in np.unique(hours):
        rows = hours == hour
        for name, column in (("pv", s.pv), ("sp", s.sp), ("op", s.op)):
            v = column[rows]
            v = v[np.isfinite(v)]
            key = int(hour) * HOUR_NS
            out[(key, f"{name}_count")] = v.size
            out[(key, f"{name}_mean")] = np.mean(v)
            out[(key, f"{name}_std")] = np.std(v, ddof=1)
            out[(key, f"{name}_min")] = np.min(v)
            out[(key, f"{name}_max")] = np.max(v)
            out[(key, f"{name}_first")] = v[0]
            out[(key, f"{name}_last")] = v[-1]
    return out


def test_hour_rollup_equals_direct_computation_over_the_raw_values() -> None:
    rng = np.random.default_rng(3)
    raw = [noisy_series(rng, f"L{k}", 2 * 3600 + 1800, scale=0.5 + k) for k in range(4)]
    hours = rollup(minute_buckets(raw).buckets)
    assert len(hours) == 4 * 3
    for s in raw:
        expected = direct_hour_statistics(s)
        rows = np.flatnonzero(hours.loop_ids == s.loop_id)
        assert hours.bucket_ns[rows].tolist() == [T0, T0 + HOUR_NS, T0 + 2 * HOUR_NS]
        for row in rows:
            for name in STAT_COLUMNS:
                want = expected[(int(hours.bucket_ns[row]), name)]
                np.testing.assert_allclose(hours.stats[name][row], want, rtol=1e-9, err_msg=name)


def test_pooled_std_is_not_the_mean_of_minute_stds() -> None:
    # two minutes with the same spread but different levels: pooled std sees the level shift
    t = np.concatenate([np.arange(0, 60), np.arange(60, 120)]).astype(np.int64) * S + T0
    pv = np.concatenate([np.tile([0.0, 1.0], 30), np.tile([10.0, 11.0], 30)])
    s = RawSeries("L1", t, pv, np.full(120, np.nan), np.full(120, np.nan), np.full(120, "AUT"))
    minutes = minute_buckets([s]).buckets
    hour = rollup(minutes)
    mean_of_stds = float(np.mean(minutes.stats["pv_std"]))
    assert hour.stats["pv_std"][0] == pytest.approx(np.std(pv, ddof=1), rel=1e-12)
    assert abs(hour.stats["pv_std"][0] - mean_of_stds) > 4.0
    assert hour.stats["pv_mean"][0] == pytest.approx(5.5, rel=1e-15)


def test_minutes_with_a_single_value_and_empty_fields_pool_correctly() -> None:
    t = np.array([0, 60, 61, 62, 180], dtype=np.int64) * S + T0
    pv = np.array([3.0, 1.0, 2.0, 6.0, 4.0])
    sp = np.array([np.nan, np.nan, np.nan, np.nan, 1.0])
    s = RawSeries("L1", t, pv, sp, np.full(5, np.nan), np.full(5, "AUT", dtype=object))
    hour = rollup(minute_buckets([s]).buckets)
    assert hour.stats["pv_count"][0] == 5
    assert hour.stats["pv_std"][0] == pytest.approx(np.std(pv, ddof=1), rel=1e-12)
    assert hour.stats["pv_first"][0] == 3.0
    assert hour.stats["pv_last"][0] == 4.0
    assert hour.stats["sp_count"][0] == 1
    assert np.isnan(hour.stats["sp_std"][0])
    assert hour.stats["sp_first"][0] == hour.stats["sp_last"][0] == 1.0
    assert hour.stats["op_count"][0] == 0
    assert np.isnan(hour.stats["op_mean"][0])
    assert np.isnan(hour.stats["op_first"][0])


def test_mode_shares_are_weighted_by_minute_sample_counts() -> None:
    t = np.concatenate([np.arange(0, 60), [60]]).astype(np.int64) * S + T0
    mode = np.array(["AUT"] * 60 + ["MAN"], dtype=object)
    s = RawSeries("L1", t, np.ones(61), np.ones(61), np.ones(61), mode)
    hour = rollup(minute_buckets([s]).buckets)
    assert hour.mode_share_maps()[0] == pytest.approx({"AUT": 60 / 61, "MAN": 1 / 61})
    assert hour.mode_dominant.tolist() == ["AUT"]


def test_rollup_does_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(5)
    minutes = minute_buckets([noisy_series(rng, f"L{k}", 3 * 3600, 1.0) for k in range(3)]).buckets
    shuffled = minutes.select(rng.permutation(len(minutes)))
    a, b = rollup(minutes), rollup(shuffled)
    order_a = np.lexsort((a.bucket_ns, a.loop_ids.astype(str)))
    order_b = np.lexsort((b.bucket_ns, b.loop_ids.astype(str)))
    for name in STAT_COLUMNS:
        np.testing.assert_allclose(a.stats[name][order_a], b.stats[name][order_b], rtol=1e-12)


def test_partial_tables_combine_into_the_same_hour() -> None:
    rng = np.random.default_rng(9)
    s = noisy_series(rng, "L1", 3600, 2.0)
    minutes = minute_buckets([s]).buckets
    early = minutes.select(minutes.bucket_ns < T0 + 30 * MINUTE_NS)
    late = minutes.select(minutes.bucket_ns >= T0 + 30 * MINUTE_NS)
    whole = rollup(minutes)
    joined = rollup(concatenate([late, early]))
    for name in STAT_COLUMNS:
        np.testing.assert_allclose(joined.stats[name], whole.stats[name], rtol=1e-12)


def test_concatenate_unions_mode_columns() -> None:
    a = RawSeries(
        "A", np.array([T0]), np.ones(1), np.ones(1), np.ones(1), np.array(["AUT"], object)
    )
    b = RawSeries(
        "B", np.array([T0]), np.ones(1), np.ones(1), np.ones(1), np.array(["CAS"], object)
    )
    joined = concatenate([minute_buckets([a]).buckets, minute_buckets([b]).buckets])
    assert joined.modes == ("AUT", "CAS")
    assert joined.mode_share_maps() == [{"AUT": 1.0}, {"CAS": 1.0}]
