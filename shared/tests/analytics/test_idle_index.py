"""Hägglund's idle index and the share of variance above a loop's bandwidth: known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from clpm_shared.analytics import LoopConfig, LoopWindow
from clpm_shared.analytics.diagnosis import (
    LoopDiagnosis,
    diagnose_loop,
    error_correlation_time,
    robust_noise_std,
)
from clpm_shared.analytics.idle_index import (
    IDLE_SLUGGISH,
    closed_loop_bandwidth,
    high_frequency_share,
    idle_index,
)
from clpm_shared.simulation import LoopProfile, LoopType, SimulatedLoopSpec, simulate_fleet

TS = 1.0


def _pi_loop(
    kc: float, ti: float, n: int = 900, noise: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First-order process (gain 1, time constant 20 s, dead time 2 s) under PI control,
    set point 0, a load step of -1 at sample 100; PV, OP and SP."""
    rng = np.random.default_rng(seed)
    a = math.exp(-TS / 20.0)
    delay = 2
    y = np.zeros(n)
    u = np.zeros(n)
    state = 0.0
    integral = 0.0
    for k in range(1, n):
        load = -1.0 if k >= 100 else 0.0
        u_delayed = u[k - 1 - delay] if k - 1 - delay >= 0 else 0.0
        state = a * state + (1.0 - a) * (u_delayed + load)
        y[k] = state + noise * rng.standard_normal()
        error = -y[k]
        integral += error * TS / ti
        u[k] = kc * (error + integral)
    return y, u, np.zeros(n)


def _index(y: np.ndarray, u: np.ndarray, sp: np.ndarray, filter_s: float = 5.0) -> float:
    noise = robust_noise_std(y) or 0.0
    result = idle_index(y, u, TS, filter_s, sp, noise)
    assert result.index is not None
    return result.index


def test_sluggish_loop_recovering_from_a_load_step_has_idle_index_near_one() -> None:
    # gain a tenth of the IMC gain, integral time five process time constants
    y, u, sp = _pi_loop(kc=0.3, ti=100.0)
    # the first seconds after the step (PV falling, OP rising) count negative
    assert _index(y, u, sp) > 0.8


def test_well_tuned_loop_has_a_negative_idle_index() -> None:
    # SIMC (Skogestad 2003), tau_c = dead time: Kc = T / (K (tau_c + theta)) = 5, Ti = 16 s
    y, u, sp = _pi_loop(kc=5.0, ti=16.0)
    assert _index(y, u, sp) < -0.5


def test_well_tuned_loop_with_noise_is_not_read_as_sluggish() -> None:
    # it recovers within a few dead times: too few samples away from SP to count at all
    y, u, sp = _pi_loop(kc=5.0, ti=16.0, noise=0.02, seed=3)
    result = idle_index(y, u, TS, 15.0, sp, robust_noise_std(y) or 0.0)
    assert result.index is None or result.index < IDLE_SLUGGISH


def test_over_tuned_ringing_loop_is_not_sluggish() -> None:
    y, u, sp = _pi_loop(kc=6.0, ti=10.0)
    assert _index(y, u, sp) < 0.0


def test_sluggish_loop_with_measurement_noise_still_reads_sluggish() -> None:
    # filtered over the error's correlation time, as the diagnosis does
    y, u, sp = _pi_loop(kc=0.3, ti=100.0, noise=0.02, seed=3)
    correlation_s = error_correlation_time(sp - y, TS)
    assert correlation_s is not None
    assert _index(y, u, sp, filter_s=correlation_s) > IDLE_SLUGGISH


def test_independent_white_noise_has_an_idle_index_near_zero() -> None:
    rng = np.random.default_rng(7)
    y = rng.standard_normal(5000)
    u = rng.standard_normal(5000)
    result = idle_index(y, u, TS, 5.0)
    assert result.index is not None
    assert abs(result.index) < 0.1


def test_a_valve_that_does_not_move_gives_no_idle_index() -> None:
    rng = np.random.default_rng(1)
    result = idle_index(rng.standard_normal(900), np.full(900, 40.0), TS, 5.0)
    assert result.index is None
    assert result.moving_share == 0.0


def test_idle_index_rejects_a_non_positive_filter_time() -> None:
    with pytest.raises(ValueError, match="filter_s"):
        idle_index(np.zeros(10), np.zeros(10), TS, 0.0)


@pytest.mark.parametrize("tau", [5.0, 10.0, 20.0])
def test_bandwidth_of_a_first_order_error_is_one_over_two_pi_tau(tau: float) -> None:
    rng = np.random.default_rng(11)
    a = math.exp(-TS / tau)
    e = np.zeros(20_000)
    for k in range(1, e.size):
        e[k] = a * e[k - 1] + rng.standard_normal()
    bandwidth = closed_loop_bandwidth(e, TS)
    assert bandwidth is not None
    assert_allclose(bandwidth, 1.0 / (2.0 * math.pi * tau), rtol=0.25)


def test_bandwidth_ignores_white_measurement_noise_on_top() -> None:
    rng = np.random.default_rng(12)
    a = math.exp(-TS / 20.0)
    e = np.zeros(20_000)
    for k in range(1, e.size):
        e[k] = a * e[k - 1] + 0.3 * rng.standard_normal()
    noisy = e + 1.0 * rng.standard_normal(e.size)
    bandwidth = closed_loop_bandwidth(noisy, TS)
    assert bandwidth is not None
    assert_allclose(bandwidth, 1.0 / (2.0 * math.pi * 20.0), rtol=0.3)


def test_white_error_has_no_measurable_bandwidth() -> None:
    rng = np.random.default_rng(13)
    assert closed_loop_bandwidth(rng.standard_normal(900), TS) is None


def test_white_noise_share_above_a_cutoff_is_the_share_of_the_band() -> None:
    rng = np.random.default_rng(14)
    nyquist = 0.5 / TS
    share = high_frequency_share(rng.standard_normal(20_000), TS, 0.1)
    assert share is not None
    assert_allclose(share, 1.0 - 0.1 / nyquist, atol=0.03)


def test_slow_sinusoid_has_almost_nothing_above_the_cutoff() -> None:
    t = np.arange(3600) * TS
    share = high_frequency_share(np.sin(2 * np.pi * t / 300.0), TS, 0.05)
    assert share is not None
    assert share < 0.02


def _profile_diagnosis(profile: LoopProfile, loop_type: LoopType, seed: int = 2) -> LoopDiagnosis:
    spec = SimulatedLoopSpec.for_profile("L1", profile, loop_type, seed=seed)
    (series,) = simulate_fleet([spec], 600 + 3600)
    keep = slice(600, None)
    window = LoopWindow(
        t=1.7e9 + series.t[keep],
        pv=series.pv[keep],
        sp=series.sp[keep],
        op=series.op[keep],
        mode=series.mode[keep],
        ts=spec.ts,
    )
    config = LoopConfig(loop_type=spec.loop_type.value, dead_time_s=spec.dead_time_s)
    return diagnose_loop(window, config)


def test_sluggish_finding_carries_the_idle_index() -> None:
    diagnosis = _profile_diagnosis(LoopProfile.SLUGGISH, LoopType.FLOW)
    assert diagnosis.primary == "sluggish_tuning"
    finding = diagnosis.findings[0]
    assert "idle_index" in finding.evidence
    filter_s = finding.evidence["idle_index_filter_s"]
    assert isinstance(filter_s, float)
    assert filter_s >= 5.0


def test_noise_finding_is_judged_against_the_loop_bandwidth() -> None:
    diagnosis = _profile_diagnosis(LoopProfile.NOISY_SENSOR, LoopType.FLOW)
    assert diagnosis.primary == "sensor_noise"
    evidence = diagnosis.findings[0].evidence
    share = evidence["variance_above_bandwidth"]
    assert isinstance(share, float)
    assert share >= 0.5
