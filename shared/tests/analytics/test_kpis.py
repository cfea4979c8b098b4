"""compute_kpis on hand-made windows with counted answers (KPI_SPEC reference cases)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from clpm_shared.analytics import KpiResult, LoopConfig, LoopWindow, compute_kpis
from clpm_shared.analytics.reversals import count_reversals
from clpm_shared.db.models import KpiResult as KpiResultRow

T0 = 1_700_000_000.0


def window(
    pv: Sequence[float],
    sp: Sequence[float] | None = None,
    op: Sequence[float] | None = None,
    mode: Sequence[str] | None = None,
    ts: float = 1.0,
    source: str = "raw",
) -> LoopWindow:
    n = len(pv)
    return LoopWindow(
        T0 + ts * np.arange(n),
        np.asarray(pv, dtype=float),
        np.asarray(sp if sp is not None else [50.0] * n, dtype=float),
        np.asarray(op if op is not None else [50.0] * n, dtype=float),
        np.asarray(mode if mode is not None else ["AUT"] * n),
        ts,
        source,  # type: ignore[arg-type]
    )


RANGED = LoopConfig(pv_lo=0.0, pv_hi=100.0)


def test_service_factor_counts_valid_samples_in_normal_modes() -> None:
    modes = ["AUT"] * 6 + ["MAN"] * 2 + ["CAS", ""]
    pv = [50.0] * 10
    pv[3] = np.nan  # an AUT sample without PV is not valid
    result = compute_kpis(window(pv, mode=modes), RANGED)
    # valid: 5 AUT + 2 MAN + 1 CAS = 8; in normal modes: 5 AUT + 1 CAS = 6
    assert result.service_factor == pytest.approx(6 / 8)
    assert result.mode_shares == pytest.approx({"AUT": 5 / 8, "MAN": 2 / 8, "CAS": 1 / 8})


def test_normal_modes_are_per_loop() -> None:
    modes = ["AUT"] * 3 + ["MAN"] * 1
    result = compute_kpis(window([50.0] * 4, mode=modes), LoopConfig(normal_modes={"MAN"}))
    assert result.service_factor == pytest.approx(0.25)


def test_saturation_counts_in_service_samples_within_the_margin_of_the_limits() -> None:
    op = [0.0, 0.4, 0.6, 50.0, 99.5, 100.0, 99.4, 20.0, 0.0]
    modes = ["AUT"] * 8 + ["MAN"]  # the MAN sample at OP 0 does not count
    result = compute_kpis(window([50.0] * 9, op=op, mode=modes), RANGED)
    # margin 0.5 % of 0..100: low = {0, 0.4}, high = {99.5, 100}, of 8 in-service samples
    assert result.sat_low == pytest.approx(2 / 8)
    assert result.sat_high == pytest.approx(2 / 8)
    assert result.saturation == pytest.approx(4 / 8)


def test_saturation_margin_can_be_configured() -> None:
    op = [1.0, 2.0, 50.0, 98.0]
    result = compute_kpis(window([50.0] * 4, op=op), LoopConfig(sat_margin=2.0))
    assert result.sat_low == pytest.approx(2 / 4)
    assert result.sat_high == pytest.approx(1 / 4)


def test_op_travel_is_the_sum_of_moves_per_hour_in_percent_of_span() -> None:
    op = [10.0, 12.0, 11.0, 11.0, 15.0]
    result = compute_kpis(window([50.0] * 5, op=op), RANGED)
    # 2 + 1 + 0 + 4 = 7 % in 5 s
    assert result.op_travel_per_hour == pytest.approx(7 * 3600 / 5)


def test_op_travel_is_in_percent_of_the_configured_op_span() -> None:
    op = [0.0, 10.0]
    result = compute_kpis(window([50.0] * 2, op=op), LoopConfig(op_lo=0.0, op_hi=200.0))
    assert result.op_travel_per_hour == pytest.approx(5.0 * 3600 / 2)


def test_reversals_count_only_moves_beyond_the_deadband() -> None:
    op = np.array([0.0, 1.0, 0.9, 2.0, 1.0, 1.05, 3.0, 2.9])
    assert count_reversals(op, 0.2) == 2
    assert count_reversals(op, 0.0) == 5
    result = compute_kpis(window([50.0] * 8, op=op), LoopConfig(deadband=0.2))
    assert result.op_reversals_per_hour == pytest.approx(2 * 3600 / 8)


def test_default_deadband_is_0_2_percent_of_op_span() -> None:
    op = [50.0, 50.3, 50.15, 50.3, 50.0]  # moves of 0.15 are inside 0.2 % of 0..100
    result = compute_kpis(window([50.0] * 5, op=op), RANGED)
    assert result.op_reversals_per_hour == pytest.approx(1 * 3600 / 5)


def test_error_statistics_in_engineering_units_and_percent_of_span() -> None:
    pv = [48.0, 52.0, 47.0, 53.0]
    result = compute_kpis(window(pv, sp=[50.0] * 4), LoopConfig(pv_lo=0.0, pv_hi=200.0))
    e = 50.0 - np.array(pv)
    assert result.error_mean == pytest.approx(e.mean())
    assert result.error_std == pytest.approx(e.std())
    assert result.error_std_pct == pytest.approx(e.std() / 200 * 100)
    # Σ|e|·ts = 10 s·units = 5 %·s of span over 4 s of window
    assert result.iae_per_hour == pytest.approx(5.0 / (4 / 3600))


def test_configured_span_is_the_range_and_says_so() -> None:
    result = compute_kpis(window([48.0, 52.0, 47.0, 53.0], sp=[50.0] * 4), RANGED)
    assert result.pv_span == pytest.approx(100.0)
    assert result.span_source == "configured"
    assert result.to_row()["span_source"] == "configured"


def test_estimated_span_is_the_smallest_zero_based_range_of_the_data() -> None:
    # a ±3 °C cycle at 398 °C: the span is 0..~401, not the cycle's own 6 °C
    t = np.arange(900.0)
    pv = 398.0 + 3.0 * np.sin(2 * np.pi * t / 120.0)
    result = compute_kpis(window(pv, sp=[398.0] * pv.size), LoopConfig())
    assert result.span_source == "estimated"
    q_hi = np.percentile(np.concatenate((pv, np.full(pv.size, 398.0))), 99.9)
    assert result.pv_span == pytest.approx(q_hi)
    assert result.pv_span == pytest.approx(401.0, abs=0.01)
    assert result.osc_amplitude is not None
    assert result.osc_amplitude < 1.0  # 3 of ~401 is 0.75 %, it was 34 % of the old estimate


def test_estimated_span_of_data_around_zero_is_their_percentile_range() -> None:
    pv = np.linspace(-4.0, 6.0, 1001)
    result = compute_kpis(window(pv, sp=pv), LoopConfig())
    values = np.concatenate((pv, pv))
    assert result.pv_span == pytest.approx(np.percentile(values, 99.9) - np.percentile(values, 0.1))
    negative = compute_kpis(window(pv - 20.0, sp=pv - 20.0), LoopConfig())
    assert negative.pv_span == pytest.approx(-np.percentile(values - 20.0, 0.1))


def test_healthy_noise_is_a_small_share_of_the_estimated_span() -> None:
    rng = np.random.default_rng(5)
    pv = 405.0 + 0.3 * rng.standard_normal(900)
    result = compute_kpis(window(pv, sp=[405.0] * pv.size), LoopConfig())
    assert result.error_std_pct is not None
    assert result.error_std_pct == pytest.approx(0.3 / result.pv_span * 100, rel=0.1)
    assert result.error_std_pct < 0.1  # the window's own range made it ~16 %


def test_constant_data_and_no_data_have_no_span_and_no_source() -> None:
    flat = compute_kpis(window([50.0] * 10, sp=[50.0] * 10), LoopConfig())
    assert (flat.pv_span, flat.span_source) == (None, None)
    assert "PV/SP do not vary" in flat.reasons["error_std_pct"]


def test_variability_index_is_zero_for_white_noise_and_high_for_drift() -> None:
    rng = np.random.default_rng(3)
    noise = 50.0 + rng.standard_normal(900)
    white = compute_kpis(window(noise), RANGED)
    assert white.variability_index is not None
    assert white.variability_index < 10.0
    drift = 50.0 + np.cumsum(0.2 * rng.standard_normal(900))
    slow = compute_kpis(window(drift), RANGED)
    assert slow.variability_index is not None
    assert slow.variability_index > 60.0


def test_variability_index_follows_its_formula() -> None:
    pv = np.array([50.0, 51.0, 50.0, 49.0, 50.0, 52.0])
    e = 50.0 - pv
    s_tot, s_cap, s = e.std(), np.abs(np.diff(e)).mean() / 1.128, 0.1
    result = compute_kpis(window(pv), RANGED)
    assert result.variability_index == pytest.approx(
        max(0.0, 100 * (1 - (s_cap + s) / (s_tot + s)))
    )


def test_sp_step_in_a_window_gives_its_overshoot_settling_and_rise() -> None:
    k = np.arange(300)
    sp = np.where(k >= 100, 60.0, 50.0)
    pv = np.full(300, 50.0)
    rise = (k >= 100) & (k <= 110)
    pv[rise] = 50.0 + 1.25 * (k[rise] - 100)
    fall = (k > 110) & (k <= 130)
    pv[fall] = 62.5 - 0.125 * (k[fall] - 110)
    pv[k > 130] = 60.0
    result = compute_kpis(window(pv, sp=sp), RANGED)
    assert result.sp_changes == 1
    assert result.overshoot_pct == pytest.approx(25.0)
    assert result.settling_time_s == pytest.approx(27.0)
    assert result.rise_time_s == pytest.approx(7.0)


def test_data_quality_counts_repeats_range_and_staleness() -> None:
    pv = [1.0, 1.0, 1.0, 2.0, -1.0, 11.0]
    result = compute_kpis(window(pv, op=[50.0] * 6), LoopConfig(pv_lo=0.0, pv_hi=10.0))
    assert result.dq_completeness == pytest.approx(1.0)
    assert result.dq_repeated == pytest.approx(2 / 5)
    assert result.dq_flatline is False
    assert result.dq_out_of_range == pytest.approx(2 / 6)


def test_constant_pv_is_a_flatline() -> None:
    result = compute_kpis(window([5.0] * 100), RANGED)
    assert result.dq_flatline is True
    assert result.dq_repeated == pytest.approx(1.0)
    assert result.health_score is not None
    assert result.health_score == 0.0


def test_completeness_and_staleness_from_raw_gaps() -> None:
    t = T0 + np.array([0.0, 1.0, 2.0, 5.0])
    w = LoopWindow.from_raw(
        t,
        [1.0, 2.0, 3.0, 4.0],
        [2.0] * 4,
        [50.0] * 4,
        ["AUT"] * 4,
        start=T0,
        end=T0 + 10,
        ts=1.0,
    )
    result = compute_kpis(w, RANGED)
    assert result.dq_completeness == pytest.approx(0.4)
    assert result.dq_stale_s == pytest.approx(5.0)


def test_oscillating_error_is_reported_with_period_and_amplitude_in_percent_of_span() -> None:
    rng = np.random.default_rng(8)
    k = np.arange(900)
    pv = 50.0 + 2.0 * np.sin(2 * np.pi * k / 60) + 0.2 * rng.standard_normal(900)
    result = compute_kpis(window(pv), LoopConfig(pv_lo=0.0, pv_hi=200.0))
    assert result.oscillating is True
    assert result.osc_period_s == pytest.approx(60.0, rel=0.05)
    assert result.osc_amplitude == pytest.approx(1.0, rel=0.15)  # 2 units of a 200 span
    assert result.main_problem == "oscillation"


def test_quiet_loop_is_healthy_and_not_oscillating() -> None:
    rng = np.random.default_rng(9)
    pv = 50.0 + 0.3 * rng.standard_normal(900)
    op = 40.0 + 0.05 * rng.standard_normal(900)
    result = compute_kpis(window(pv, op=op), LoopConfig(loop_type="flow", pv_lo=0, pv_hi=100))
    assert result.oscillating is False
    assert result.harris_index is not None
    assert result.harris_index > 0.9
    assert result.harris_assumed_delay is True
    assert result.status == "good"


def test_agg_1m_window_leaves_fast_kpis_empty_with_a_reason() -> None:
    n = 15
    w = window([50.0 + 0.1 * i for i in range(n)], op=[40.0] * n, ts=60.0, source="agg_1m")
    result = compute_kpis(w, RANGED)
    assert result.source == "agg_1m"
    assert result.service_factor == pytest.approx(1.0)
    for name in ("harris_index", "op_reversals_per_hour", "oscillating", "sp_changes"):
        assert getattr(result, name) is None
        assert "1-minute" in result.reasons[name]


def test_every_none_has_a_reason_for_an_empty_window() -> None:
    result = compute_kpis(window([]), LoopConfig())
    assert result.status == "offline"
    assert result.samples == 0
    missing = [name for name, value in result.to_row().items() if value is None]
    assert missing
    assert set(missing) <= set(result.reasons)


def test_row_has_exactly_the_kpi_results_columns() -> None:
    row = compute_kpis(window([50.0] * 30), RANGED).to_row()
    columns = set(KpiResultRow.__table__.columns.keys())
    caller_columns = {"loop_id", "window_start", "window_end", "computed_at"}
    assert set(row) == columns - caller_columns
    assert isinstance(row["reasons"], dict)


def test_result_is_frozen() -> None:
    result = compute_kpis(window([50.0] * 30), RANGED)
    assert isinstance(result, KpiResult)
    with pytest.raises(AttributeError):
        result.health_score = 1.0  # type: ignore[misc]


def test_jittered_samples_count_as_complete() -> None:
    rng = np.random.default_rng(12)
    t = T0 + np.arange(300.0) + rng.uniform(-0.3, 0.3, 300)
    values = 50.0 + rng.standard_normal(300)
    w = LoopWindow.from_raw(
        np.sort(t), values, values, values, ["AUT"] * 300, start=T0, end=T0 + 300, ts=1.0
    )
    result = compute_kpis(w, RANGED)
    assert result.dq_completeness == pytest.approx(1.0, abs=0.01)
