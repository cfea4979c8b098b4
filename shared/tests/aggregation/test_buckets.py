"""Minute bucket statistics: known answers, a per-bucket reference, skipped values, modes."""

from __future__ import annotations

import numpy as np
import pytest

from clpm_shared.aggregation import MINUTE_NS, STAT_COLUMNS, minute_buckets
from clpm_shared.timeseries.base import RawSeries

S = 1_000_000_000


def series(
    loop_id: str,
    seconds: list[float],
    pv: list[float],
    sp: list[float] | None = None,
    op: list[float] | None = None,
    mode: list[str | None] | None = None,
) -> RawSeries:
    n = len(seconds)
    return RawSeries(
        loop_id,
        np.asarray([round(s * S) for s in seconds], dtype=np.int64),
        np.asarray(pv, dtype=np.float64),
        np.asarray(sp if sp is not None else [np.nan] * n, dtype=np.float64),
        np.asarray(op if op is not None else [np.nan] * n, dtype=np.float64),
        np.asarray(mode if mode is not None else ["AUT"] * n, dtype=object),
    )


def test_known_answer_for_one_bucket() -> None:
    result = minute_buckets([series("L1", [0, 10, 20, 30], [4.0, 1.0, 3.0, 2.0])])
    table = result.buckets
    assert table.loop_ids.tolist() == ["L1"]
    assert table.bucket_ns.tolist() == [0]
    stats = {name: float(column[0]) for name, column in table.stats.items()}
    assert stats["pv_count"] == 4
    assert stats["pv_mean"] == 2.5
    assert stats["pv_min"] == 1.0
    assert stats["pv_max"] == 4.0
    assert stats["pv_first"] == 4.0
    assert stats["pv_last"] == 2.0
    assert stats["pv_std"] == pytest.approx(np.sqrt(5.0 / 3.0), rel=1e-15)  # ddof = 1, not 1.118
    assert stats["sp_count"] == 0
    assert np.isnan(stats["sp_mean"])
    assert np.isnan(stats["sp_std"])
    assert result.samples == 4


def test_buckets_are_epoch_aligned_half_open_minutes() -> None:
    t0 = 1_736_503_200  # 2025-01-10T10:00:00Z, a minute boundary
    table = minute_buckets(
        [series("L1", [t0 - 0.5, t0, t0 + 59.999, t0 + 60], [1.0, 2.0, 3.0, 4.0])]
    ).buckets
    assert table.bucket_ns.tolist() == [(t0 - 60) * S, t0 * S, (t0 + 60) * S]
    assert table.stats["pv_count"].tolist() == [1, 2, 1]
    assert table.stats["pv_mean"].tolist() == [1.0, 2.5, 4.0]


def test_single_value_has_no_sample_std() -> None:
    table = minute_buckets([series("L1", [5.0], [7.0])]).buckets
    assert table.stats["pv_count"][0] == 1
    assert np.isnan(table.stats["pv_std"][0])
    assert table.stats["pv_first"][0] == table.stats["pv_last"][0] == 7.0


def reference(all_series: list[RawSeries]) -> dict[tuple[str, int], dict[str, float]]:
    """Per-bucket statistics computed one bucket at a time with plain numpy."""
    out: dict[tuple[str, int], dict[str, float]] = {}
    for s in all_series:
        order = np.argsort(s.t_ns, kind="stable")
        t = s.t_ns[order]
        minutes = t // MINUTE_NS
        for minute in np.unique(minutes):
            rows = order[minutes == minute]
            entry: dict[str, float] = {}
            for name, column in (("pv", s.pv), ("sp", s.sp), ("op", s.op)):
                v = column[rows]
                v = v[np.isfinite(v)]
                entry[f"{name}_count"] = float(v.size)
                entry[f"{name}_mean"] = float(np.mean(v)) if v.size else np.nan
                entry[f"{name}_min"] = float(np.min(v)) if v.size else np.nan
                entry[f"{name}_max"] = float(np.max(v)) if v.size else np.nan
                entry[f"{name}_std"] = float(np.std(v, ddof=1)) if v.size > 1 else np.nan
                entry[f"{name}_first"] = float(v[0]) if v.size else np.nan
                entry[f"{name}_last"] = float(v[-1]) if v.size else np.nan
            out[(s.loop_id, int(minute) * MINUTE_NS)] = entry
    return out


def random_series(rng: np.random.Generator, n_loops: int, seconds: int) -> list[RawSeries]:
    result = []
    for k in range(n_loops):
        n = int(rng.integers(1, seconds))
        t = np.sort(rng.choice(seconds * 10, size=n, replace=False)).astype(np.int64) * (S // 10)
        t += 1_736_503_200 * S
        pv = rng.normal(50, 5, n) * (1 + k)
        sp = np.round(rng.normal(50, 1, n), 1)
        op = rng.uniform(0, 100, n)
        pv[rng.random(n) < 0.05] = np.nan
        sp[rng.random(n) < 0.2] = np.nan
        op[rng.random(n) < 0.02] = np.inf
        mode = rng.choice(np.array(["AUT", "MAN", "CAS", None], dtype=object), n)
        result.append(RawSeries(f"L{k:03d}", t, pv, sp, op, mode))
    return result


def test_many_loops_match_a_per_bucket_reference() -> None:
    rng = np.random.default_rng(7)
    all_series = random_series(rng, 40, 400)
    result = minute_buckets({s.loop_id: s for s in all_series})
    expected = reference(all_series)
    table = result.buckets
    assert len(table) == len(expected)
    assert result.samples == sum(len(s) for s in all_series)
    for row in range(len(table)):
        want = expected[(table.loop_ids[row], int(table.bucket_ns[row]))]
        for name in STAT_COLUMNS:
            np.testing.assert_allclose(
                table.stats[name][row], want[name], rtol=1e-12, atol=0, err_msg=name
            )


def test_unsorted_input_gives_the_same_buckets_as_sorted() -> None:
    rng = np.random.default_rng(11)
    sorted_series = random_series(rng, 5, 300)
    shuffled = []
    for s in sorted_series:
        p = rng.permutation(len(s))
        shuffled.append(RawSeries(s.loop_id, s.t_ns[p], s.pv[p], s.sp[p], s.op[p], s.mode[p]))
    a = minute_buckets(sorted_series).buckets
    b = minute_buckets(shuffled).buckets
    assert a.bucket_ns.tolist() == b.bucket_ns.tolist()
    for name in STAT_COLUMNS:
        np.testing.assert_allclose(a.stats[name], b.stats[name], rtol=1e-12, err_msg=name)


def test_infinite_values_are_skipped_and_counted_as_malformed() -> None:
    s = series(
        "BAD1",
        [0, 1, 2, 3],
        [1.0, np.inf, 3.0, -np.inf],
        sp=[np.nan, 2.0, np.nan, 2.0],
        op=[5.0, 5.0, 5.0, 5.0],
    )
    result = minute_buckets([s, series("OK1", [0], [1.0])])
    stats = result.buckets.stats
    assert stats["pv_count"].tolist() == [2, 1]
    assert stats["pv_mean"][0] == 2.0
    assert stats["pv_max"][0] == 3.0
    assert stats["sp_count"][0] == 2
    assert stats["op_count"][0] == 4
    assert result.skipped.malformed == {"pv": 2, "sp": 0, "op": 0}
    assert result.skipped.missing == {"pv": 0, "sp": 2 + 1, "op": 1}
    assert result.skipped.examples == ("BAD1",)
    assert result.skipped.malformed_total == 2
    assert result.skipped.unusable_samples == 0


def test_a_sample_without_any_usable_value_is_counted_and_left_out_of_mode_shares() -> None:
    s = series(
        "L1",
        [0, 1, 2],
        [1.0, np.nan, np.inf],
        sp=[np.nan, np.nan, np.nan],
        op=[np.nan, np.nan, np.nan],
        mode=["AUT", "MAN", "MAN"],
    )
    result = minute_buckets([s])
    assert result.skipped.unusable_samples == 2
    assert result.skipped.examples == ("L1",)
    assert result.buckets.mode_share_maps() == [{"AUT": 1.0}]


def test_a_bucket_whose_values_are_all_malformed_keeps_its_other_fields() -> None:
    s = series("L1", [0, 1], [np.inf, np.inf], sp=[1.0, 3.0])
    table = minute_buckets([s]).buckets
    assert table.stats["pv_count"][0] == 0
    assert np.isnan(table.stats["pv_mean"][0])
    assert table.stats["sp_mean"][0] == 2.0


def test_mode_shares_count_known_modes_only_and_name_the_dominant_one() -> None:
    modes: list[str | None] = ["AUT", "AUT", "MAN", None, "CAS", "AUT"]
    s = series("L1", [0, 1, 2, 3, 4, 5], [1.0] * 6, mode=modes)
    s2 = series("L2", [0, 1], [1.0, 1.0], mode=[None, None])
    table = minute_buckets([s, s2]).buckets
    assert table.modes == ("AUT", "CAS", "MAN")
    shares = table.mode_share_maps()
    assert shares[0] == pytest.approx({"AUT": 0.6, "MAN": 0.2, "CAS": 0.2})
    assert shares[1] == {}
    assert table.mode_dominant.tolist() == ["AUT", None]


def test_mode_tie_goes_to_the_alphabetically_first_mode() -> None:
    s = series("L1", [0, 1], [1.0, 2.0], mode=["MAN", "AUT"])
    assert minute_buckets([s]).buckets.mode_dominant.tolist() == ["AUT"]


def test_empty_input_gives_an_empty_table() -> None:
    result = minute_buckets([RawSeries.empty("L1")])
    assert len(result.buckets) == 0
    assert result.samples == 0
