"""Stiction index: the KPI_SPEC reference case, known shapes and false positives."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import signal

from clpm_shared.analytics import StictionResult, detect_oscillation, stiction_index
from clpm_shared.analytics.oscillation import detect_regular_oscillation
from clpm_shared.analytics.stiction import (
    apparent_stiction_band,
    curve_fitting_index,
    limit_cycle_non_gaussianity,
    valve_cycle,
)
from clpm_shared.simulation import SimulatedLoopSpec, simulate, ultimate_gain

WARM_UP = 600
"""Samples dropped at the start of a simulation (start-up transient)."""

# FOPTD process (K = 1.5, τ = 40 s, θ = 5 s) under PI control (Kc = 1, Ti = 20 s), 1 s samples.
REFERENCE_LOOP = SimulatedLoopSpec(
    loop_id="TIC-REF",
    process_gain=1.5,
    time_constant_s=40.0,
    dead_time_s=5.0,
    kc=1.0,
    ti_s=20.0,
    noise_std=0.05,
    disturbance_std=0.02,
    base_pv=50.0,
    base_sp=50.0,
    base_op=50.0,
    seed=1,
)


def _run(spec: SimulatedLoopSpec, samples: int = 2400) -> tuple[np.ndarray, np.ndarray]:
    series = simulate(spec, samples)
    return series.pv[WARM_UP:], series.op[WARM_UP:]


def test_foptd_pi_loop_with_sticky_valve_is_stiction() -> None:
    """KPI_SPEC reference: Choudhury et al. (2005) valve with S = 4 %, J = 1.5 %."""
    pv, op = _run(replace(REFERENCE_LOOP, valve_s=4.0, valve_j=1.5))
    result = stiction_index(pv, op, 1.0, "temperature")
    assert result.verdict == "stiction"
    assert result.index is not None
    assert result.index > 0.6
    assert result.method_scores["curve_fit"] > 0.6
    assert result.method_scores["non_gaussianity"] > 0.4
    assert result.confidence > 0.3
    # the PV–OP ellipse sees a band of the order of S
    assert result.apparent_stiction is not None
    assert 1.5 < result.apparent_stiction < 6.0


def test_same_loop_with_linear_valve_and_aggressive_gain_is_not_stiction() -> None:
    """KPI_SPEC reference: 90 % of the ultimate gain makes the linear loop ring, not stick."""
    aggressive = replace(REFERENCE_LOOP, kc=0.9 * ultimate_gain(REFERENCE_LOOP))
    pv, op = _run(aggressive)
    result = stiction_index(pv, op, 1.0, "temperature")
    assert result.period_s is not None  # it does oscillate ...
    assert result.verdict in {"no_stiction", "undetermined"}  # ... but not because of a valve
    assert result.method_scores["non_gaussianity"] < 0.4


def test_healthy_loop_that_does_not_oscillate_gets_no_verdict() -> None:
    pv, op = _run(REFERENCE_LOOP)
    result = stiction_index(pv, op, 1.0, "temperature")
    assert result.verdict == "no_oscillation"
    assert result.index is None
    assert result.reason


def test_white_noise_gets_no_oscillation_verdict() -> None:
    rng = np.random.default_rng(3)
    result = stiction_index(rng.standard_normal(1800), rng.standard_normal(1800), 1.0)
    assert result.verdict == "no_oscillation"


def test_noisy_healthy_loop_is_not_stiction() -> None:
    pv, op = _run(replace(REFERENCE_LOOP, noise_std=0.75))
    assert stiction_index(pv, op, 1.0, "temperature").verdict != "stiction"


def test_external_sinusoidal_disturbance_is_not_stiction() -> None:
    disturbed = replace(REFERENCE_LOOP, osc_amplitude=1.0, osc_period_s=150.0)
    pv, op = _run(disturbed)
    result = stiction_index(pv, op, 1.0, "temperature")
    assert result.period_s == pytest.approx(150.0, rel=0.05)
    assert result.verdict == "no_stiction"
    assert result.method_scores["curve_fit"] < 0.4


def test_level_loop_with_sticky_valve_is_stiction_from_the_triangular_pv() -> None:
    level = SimulatedLoopSpec.for_profile("LIC-1", "sticky_valve", "level", seed=2)
    series = simulate(level, 3000)
    result = stiction_index(series.pv[WARM_UP:], series.op[WARM_UP:], level.ts, "level")
    assert result.verdict == "stiction"


def _irregular_sticky_loop(loop_type: str, seed: int, sticky: bool = True) -> SimulatedLoopSpec:
    """Sticky-valve profile with twice the usual noise and no SP steps: the stick-slip cycle
    wanders so much that the whole-signal ACF test rejects PV, OP and the control error."""
    spec = SimulatedLoopSpec.for_profile("IRREGULAR", "sticky_valve", loop_type, seed=seed)
    spec = replace(spec, noise_std=2.0 * spec.noise_std, sp_change_interval_s=0.0)
    return spec if sticky else replace(spec, valve_s=0.0, valve_j=0.0)


@pytest.mark.parametrize(
    ("loop_type", "seed", "period_range"),
    [("flow", 5, (30.0, 50.0)), ("level", 4, (140.0, 190.0))],
)
def test_irregular_sticky_cycle_is_found_by_the_filter_bank_and_judged_stiction(
    loop_type: str, seed: int, period_range: tuple[float, float]
) -> None:
    series = simulate(_irregular_sticky_loop(loop_type, seed), WARM_UP + 3600)
    pv, op, sp = series.pv[WARM_UP:], series.op[WARM_UP:], series.sp[WARM_UP:]
    # the whole-signal ACF test does not call this loop oscillating ...
    for x in (sp - pv, pv, op):
        assert not detect_regular_oscillation(x, 1.0).oscillating
    # ... the band-passed filter bank and the valve gate both find the stick-slip cycle
    found = detect_oscillation(pv, 1.0)
    assert found.oscillating
    assert found.period_s is not None
    assert period_range[0] < found.period_s < period_range[1]
    assert valve_cycle(pv if loop_type == "level" else op, 1.0).oscillating
    result = stiction_index(pv - sp, op, 1.0, loop_type)
    assert result.verdict == "stiction"
    assert result.period_s is not None
    assert period_range[0] < result.period_s < period_range[1]
    assert result.method_scores["curve_fit"] > 0.6
    # a wandering cycle proves little: low confidence
    assert 0.0 < result.confidence <= 0.5


@pytest.mark.parametrize(("loop_type", "seed"), [("flow", 5), ("level", 4)])
def test_same_irregular_loop_with_a_linear_valve_is_not_stiction(loop_type: str, seed: int) -> None:
    series = simulate(_irregular_sticky_loop(loop_type, seed, sticky=False), WARM_UP + 3600)
    pv, op, sp = series.pv[WARM_UP:], series.op[WARM_UP:], series.sp[WARM_UP:]
    result = stiction_index(pv - sp, op, 1.0, loop_type)
    assert result.verdict in {"no_oscillation", "no_stiction"}


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_valve_cycle_finds_the_mean_period_of_a_wandering_sawtooth(seed: int) -> None:
    """Half periods drawn from 14-26 s (mean period 40 s) plus a random-walk drift and noise:
    too irregular for the whole-signal ACF test, a clear cycle for the valve gate."""
    rng = np.random.default_rng(seed)
    halves = rng.uniform(14.0, 26.0, 200)
    edges = np.concatenate(([0.0], np.cumsum(halves)))
    t = np.arange(3600.0)
    k = np.searchsorted(edges, t, side="right") - 1
    rising = (t - edges[k]) / halves[k]
    sawtooth = 4.0 * np.where(k % 2 == 0, rising, 1.0 - rising)
    op = 50 + sawtooth + np.cumsum(rng.normal(0, 0.05, t.size)) + rng.normal(0, 0.2, t.size)
    assert not detect_regular_oscillation(op, 1.0).oscillating
    cycle = valve_cycle(op, 1.0)
    assert cycle.oscillating
    assert cycle.period_s == pytest.approx(40.0, rel=0.05)


@pytest.mark.parametrize("seed", range(8))
def test_noise_random_walks_and_drifting_noise_are_never_stiction(seed: int) -> None:
    """False positives of the valve-cycle gate: random OP with a PV that follows it."""
    rng = np.random.default_rng(100 + seed)
    n = 3600
    white = rng.standard_normal(n)
    walk = np.cumsum(rng.standard_normal(n))
    ar1 = signal.lfilter([1.0], [1.0, -0.98], rng.standard_normal(n))
    held = np.repeat(rng.standard_normal(n // 10), 10)
    assert not valve_cycle(white, 1.0).oscillating
    for op in (white, walk, ar1, held, walk + 3.0 * white):
        pv = 0.3 * op + 0.5 * rng.standard_normal(n)
        for loop_type in ("flow", "level"):
            assert stiction_index(pv, op, 1.0, loop_type).verdict != "stiction"


def test_curve_fitting_index_of_a_triangle_and_of_a_sine() -> None:
    t = np.arange(2000.0)
    triangle = signal.sawtooth(2 * np.pi * t / 100.0, 0.5)
    sine = np.sin(2 * np.pi * t / 100.0)
    si_triangle, half_cycles = curve_fitting_index(triangle, 1.0, 100.0)
    si_sine, _ = curve_fitting_index(sine, 1.0, 100.0)
    assert half_cycles >= 30
    assert si_triangle is not None
    assert si_triangle > 0.9
    assert si_sine is not None
    assert si_sine < 0.1


def test_curve_fitting_needs_enough_samples_per_period() -> None:
    t = np.arange(600.0)
    si, used = curve_fitting_index(np.sin(2 * np.pi * t / 10.0), 1.0, 10.0)
    assert si is None
    assert used == 0


def test_apparent_stiction_of_two_shifted_sines_is_the_ellipse_chord() -> None:
    """OP = A cos ωt, PV = B cos(ωt - φ): the ellipse's chord along OP is 2 A |sin φ|."""
    t = np.arange(3000.0)
    omega = 2 * np.pi / 120.0
    amplitude, phase = 3.0, np.deg2rad(40.0)
    op = 50 + amplitude * np.cos(omega * t)
    pv = 20 + 0.7 * np.cos(omega * t - phase)
    band = apparent_stiction_band(op, pv, 1.0, 120.0)
    assert band == pytest.approx(2 * amplitude * np.sin(phase), rel=0.03)


def test_non_gaussianity_of_a_limit_cycle_and_of_ringing_noise() -> None:
    t = np.arange(4000.0)
    cycle = np.sin(2 * np.pi * t / 80.0)
    score_cycle, kurtosis_cycle = limit_cycle_non_gaussianity(cycle, cycle, 1.0, 80.0)
    assert kurtosis_cycle == pytest.approx(1.5, abs=0.05)
    assert score_cycle > 0.95
    # white noise through a resonance at the same frequency: Gaussian, κ ≈ 3
    rng = np.random.default_rng(7)
    b, a = signal.iirpeak(1.0 / 80.0, 2.0, fs=1.0)
    ringing = signal.lfilter(b, a, rng.standard_normal(40_000))
    score_ringing, kurtosis_ringing = limit_cycle_non_gaussianity(ringing, ringing, 1.0, 80.0)
    assert kurtosis_ringing == pytest.approx(3.0, abs=0.3)
    assert score_ringing < 0.3


def test_op_pinned_at_a_limit_is_undetermined() -> None:
    t = np.arange(1800.0)
    op = np.clip(50 + 80 * np.sin(2 * np.pi * t / 90.0), 0.0, 100.0)
    pv = 50 + np.sin(2 * np.pi * (t - 20) / 90.0)
    result = stiction_index(pv, op, 1.0)
    assert result.verdict == "undetermined"
    assert result.reason is not None
    assert "limit" in result.reason


def test_missing_samples_are_bridged_and_too_many_are_refused() -> None:
    pv, op = _run(replace(REFERENCE_LOOP, valve_s=4.0, valve_j=1.5))
    gappy = pv.copy()
    gappy[::25] = np.nan
    assert stiction_index(gappy, op, 1.0, "temperature").verdict == "stiction"
    mostly_missing = pv.copy()
    mostly_missing[: pv.size // 2] = np.nan
    result = stiction_index(mostly_missing, op, 1.0, "temperature")
    assert result.verdict == "undetermined"
    assert result.index is None


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"ts": 0.0}, "ts"),
        ({"ts": float("nan")}, "ts"),
        ({"loop_type": "valve"}, "loop_type"),
        ({"op": np.zeros(10)}, "op"),
    ],
)
def test_bad_input_names_the_parameter(kwargs: dict[str, object], parameter: str) -> None:
    arguments: dict[str, object] = {"pv": np.zeros(20), "op": np.zeros(20), "ts": 1.0}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{parameter}:"):
        stiction_index(**arguments)  # type: ignore[arg-type]


def test_result_is_a_frozen_dataclass() -> None:
    result = stiction_index(np.zeros(50), np.zeros(50), 1.0)
    assert isinstance(result, StictionResult)
    with pytest.raises(AttributeError):
        result.verdict = "stiction"  # type: ignore[misc]
