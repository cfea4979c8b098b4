"""Property tests: analytics never raise on hostile data and explain every missing KPI."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clpm_shared.analytics import (
    LoopConfig,
    LoopWindow,
    compute_kpis,
    detect_oscillation,
    find_sp_steps,
    harris_index,
)

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # fixed examples: the same cases on every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

hostile_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, math.nan, 50.0]),
)
MODES = ["AUT", "AUTO", "CAS", "MAN", "", "LO"]


@st.composite
def hostile_windows(draw: st.DrawFn) -> LoopWindow:
    """Short windows of arbitrary floats (NaN, inf, huge, subnormal) and modes."""
    n = draw(st.integers(min_value=0, max_value=60))
    columns = [draw(st.lists(hostile_floats, min_size=n, max_size=n)) for _ in range(3)]
    modes = draw(st.lists(st.sampled_from(MODES), min_size=n, max_size=n))
    ts = draw(st.sampled_from([0.5, 1.0, 60.0]))
    source = "agg_1m" if ts == 60.0 and draw(st.booleans()) else "raw"
    return LoopWindow(
        1.7e9 + ts * np.arange(n),
        np.array(columns[0]),
        np.array(columns[1]),
        np.array(columns[2]),
        modes,
        ts,
        source,  # type: ignore[arg-type]
    )


@st.composite
def degraded_signals(draw: st.DrawFn) -> LoopWindow:
    """Full 15-minute windows of typical shapes, then damaged: gaps, constants, huge scales."""
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.sampled_from([30, 300, 900]))
    k = np.arange(n)
    shape = draw(st.sampled_from(["noise", "sine", "constant", "ramp", "walk"]))
    scale = draw(st.sampled_from([1e-12, 1.0, 1e150, 1e300]))
    base = {
        "noise": rng.standard_normal(n),
        "sine": np.sin(2 * np.pi * k / 40.0) + 0.2 * rng.standard_normal(n),
        "constant": np.zeros(n),
        "ramp": k / n,
        "walk": np.cumsum(rng.standard_normal(n)),
    }[shape]
    pv = 50.0 + scale * base
    op = 50.0 + scale * np.roll(base, 3)
    missing_share = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    for column in (pv, op):
        column[rng.random(n) < missing_share] = np.nan
    modes = np.where(rng.random(n) < draw(st.sampled_from([0.0, 0.3, 1.0])), "MAN", "AUT")
    return LoopWindow(1.7e9 + k, pv, np.full(n, 50.0), op, modes, 1.0)


loop_configs = st.builds(
    LoopConfig,
    loop_type=st.sampled_from(["flow", "pressure", "level", "temperature", "other"]),
    pv_lo=st.sampled_from([None, 0.0]),
    pv_hi=st.sampled_from([None, 100.0]),
    dead_time_s=st.sampled_from([None, 0.0, 3.0, 1e6]),
)


def assert_well_formed(window: LoopWindow, config: LoopConfig) -> None:
    result = compute_kpis(window, config)
    row = result.to_row()
    unexplained = [
        name for name, value in row.items() if value is None and name not in row["reasons"]
    ]
    assert unexplained == []
    for name, value in row.items():
        if isinstance(value, float):
            assert math.isfinite(value), name
    for name in ("service_factor", "saturation", "dq_completeness", "dq_repeated"):
        if row[name] is not None:
            assert 0.0 <= row[name] <= 1.0, name
    if row["harris_index"] is not None:
        assert 0.0 < row["harris_index"] <= 1.0
    assert row["status"] in {"good", "fair", "poor", "offline"}
    if row["health_score"] is not None:
        assert 0.0 <= row["health_score"] <= 100.0


@PROPERTY_SETTINGS
@given(hostile_windows(), loop_configs)
def test_compute_kpis_never_raises_on_hostile_short_windows(
    window: LoopWindow, config: LoopConfig
) -> None:
    assert_well_formed(window, config)


@PROPERTY_SETTINGS
@given(degraded_signals(), loop_configs)
def test_compute_kpis_never_raises_on_damaged_full_windows(
    window: LoopWindow, config: LoopConfig
) -> None:
    assert_well_formed(window, config)


@PROPERTY_SETTINGS
@given(st.lists(hostile_floats, max_size=200), st.sampled_from([0.1, 1.0, 60.0]))
def test_detect_oscillation_never_raises_and_explains_itself(
    values: list[float], ts: float
) -> None:
    result = detect_oscillation(np.array(values), ts)
    if not result.oscillating:
        assert result.reason
    if result.period_s is not None:
        assert math.isfinite(result.period_s)
        assert result.period_s > 0


@PROPERTY_SETTINGS
@given(st.lists(st.tuples(hostile_floats, hostile_floats), max_size=120))
def test_find_sp_steps_never_raises(pairs: list[tuple[float, float]]) -> None:
    sp = np.array([p[0] for p in pairs])
    pv = np.array([p[1] for p in pairs])
    steps = find_sp_steps(np.arange(float(len(pairs))), sp, pv, span=10.0, expected_settling_s=1)
    for step in steps:
        assert step.overshoot_pct >= 0.0


@PROPERTY_SETTINGS
@given(st.lists(hostile_floats, max_size=300), st.integers(min_value=1, max_value=30))
def test_harris_index_returns_a_fraction_or_a_named_error(values: list[float], delay: int) -> None:
    try:
        eta: float | None = harris_index(np.array(values), delay)
    except ValueError as error:
        eta, message = None, str(error)
    if eta is None:
        assert message.startswith(("y:", "delay:", "ar_order:"))
    else:
        assert 0.0 < eta <= 1.0


@PROPERTY_SETTINGS
@given(
    st.lists(st.floats(min_value=0, max_value=900, allow_nan=False), max_size=80),
    st.floats(min_value=0.1, max_value=30.0),
)
def test_grid_building_never_raises_for_sorted_samples(times: list[float], ts: float) -> None:
    t = 1.7e9 + np.sort(np.array(times))
    values = np.random.default_rng(len(times)).standard_normal(t.size)
    window = LoopWindow.from_raw(
        t, values, values, values, ["AUT"] * t.size, start=1.7e9, end=1.7e9 + 900, ts=ts
    )
    assert len(window) == math.ceil(900 / ts - 1e-9)
    assert_well_formed(window, LoopConfig())
