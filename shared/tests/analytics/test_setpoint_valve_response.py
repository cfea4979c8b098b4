"""The valve's kick and overshoot after set-point steps, against the PI closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clpm_shared.analytics import LoopConfig, LoopWindow
from clpm_shared.analytics.diagnosis import (
    SLUGGISH_CREEP_OVERSHOOT,
    diagnose_loop,
    robust_noise_std,
)
from clpm_shared.analytics.setpoint_valve_response import KICK_SAMPLES, valve_step_responses
from clpm_shared.simulation import LoopProfile, LoopType, SimulatedLoopSpec, simulate_fleet

TAU = 60.0
GAIN = 1.5


def _pi_on_first_order(kc: float, ti: float, n: int = 1800, step_at: int = 300) -> tuple:
    """Set point, OP of a PI loop on ``K/(tau s + 1)`` (1 s samples, no noise), SP step of 2."""
    a = math.exp(-1.0 / TAU)
    sp = np.where(np.arange(n) >= step_at, 52.0, 50.0)
    y = 50.0
    integral = 50.0 / GAIN / kc * ti  # starts at steady state: u = 50 / K
    op = np.empty(n)
    for k in range(n):
        e = sp[k] - y
        integral += e
        u = kc * (e + integral / ti)
        op[k] = u
        y = a * y + GAIN * (1.0 - a) * u
    return sp, op


@pytest.mark.parametrize("kappa", [0.4, 0.8, 2.0, 3.0])
def test_kick_and_overshoot_follow_the_pi_closed_form(kappa: float) -> None:
    """With Ti = tau, u(t) = u_ + du [1 + (kappa - 1) exp(-kappa t / tau)], kappa = Kc K."""
    sp, op = _pi_on_first_order(kappa / GAIN, TAU)
    (response,) = valve_step_responses(sp, op, min_step=0.5)
    assert response.index == 300
    assert response.op_change == pytest.approx(2.0 / GAIN, rel=0.02)
    expected_kick = 1.0 + (kappa - 1.0) * math.exp(-kappa * KICK_SAMPLES / TAU)
    assert response.kick_share == pytest.approx(expected_kick, rel=0.05)
    # the first sample after the step: u = Kc (e + e ts / Ti), the integral's first term
    # included (backward rectangle): kappa (1 + ts / tau) of the net change
    first = kappa * (1.0 + 1.0 / TAU)
    assert response.overshoot_share == pytest.approx(max(0.0, first - 1.0), abs=0.01)


def test_a_valve_that_needs_no_net_change_is_not_judged() -> None:
    sp = np.where(np.arange(900) >= 300, 52.0, 50.0)
    op = 40.0 + np.where((np.arange(900) >= 300) & (np.arange(900) < 400), 5.0, 0.0)
    assert valve_step_responses(sp, op, min_step=0.5) == []


def test_no_step_no_response() -> None:
    sp = np.full(900, 50.0)
    op = 40.0 + np.random.default_rng(1).standard_normal(900)
    assert valve_step_responses(sp, op, min_step=0.5) == []


def test_invalid_step_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="min_step"):
        valve_step_responses(np.zeros(10), np.zeros(10), min_step=0.0)


def _simulated(profile: LoopProfile, loop_type: LoopType, seed: int) -> tuple:
    spec = SimulatedLoopSpec.for_profile(f"{profile.value}/{seed}", profile, loop_type, seed=seed)
    (series,) = simulate_fleet([spec], 600 + 4 * 3600)
    keep = slice(600, None)
    return spec, series.sp[keep], series.op[keep]


@pytest.mark.parametrize("loop_type", [LoopType.FLOW, LoopType.PRESSURE, LoopType.TEMPERATURE])
def test_a_sluggish_valve_creeps_and_a_healthy_one_kicks_past(loop_type: LoopType) -> None:
    for profile, creeps in ((LoopProfile.SLUGGISH, True), (LoopProfile.HEALTHY, False)):
        spec, sp, op = _simulated(profile, loop_type, seed=3)
        noise = robust_noise_std(op) or 0.0
        responses = valve_step_responses(sp, op, 0.5 * spec.sp_step, noise)
        assert responses, (profile, loop_type)
        overshoot = float(np.median([r.overshoot_share for r in responses]))
        assert (overshoot < SLUGGISH_CREEP_OVERSHOOT) is creeps, (profile, overshoot)


def test_the_sluggish_finding_names_the_creeping_valve() -> None:
    spec, _, _ = _simulated(LoopProfile.SLUGGISH, LoopType.TEMPERATURE, seed=3)
    (series,) = simulate_fleet([spec], 600 + 4 * 3600)
    config = LoopConfig(loop_type="temperature")
    judged = creeping = 0
    for k in range(16):
        keep = slice(600 + k * 900, 600 + (k + 1) * 900)
        window = LoopWindow(
            t=1.7e9 + series.t[keep],
            pv=series.pv[keep],
            sp=series.sp[keep],
            op=series.op[keep],
            mode=series.mode[keep],
            ts=spec.ts,
        )
        diagnosis = diagnose_loop(window, config)
        sluggish = [f for f in diagnosis.findings if f.category == "sluggish_tuning"]
        if not sluggish or not sluggish[0].evidence["sp_steps_judged"]:
            continue
        judged += 1
        overshoot = sluggish[0].evidence["sp_step_valve_overshoot"]
        assert isinstance(overshoot, float)
        named = "valve creeps to its new position" in sluggish[0].recommendation
        assert named is (overshoot < SLUGGISH_CREEP_OVERSHOOT)
        creeping += named
    assert judged >= 2
    assert creeping >= 0.6 * judged, (creeping, judged)
