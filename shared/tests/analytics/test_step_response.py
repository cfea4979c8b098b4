"""find_sp_steps: counted steps, overshoot, settling and rise time on constructed responses."""

from __future__ import annotations

import numpy as np
import pytest

from clpm_shared.analytics import find_sp_steps


def constructed_step(n: int = 300, at: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SP 50 → 60 at ``at``; PV rises 1.25/s to 62.5, then falls 0.125/s to 60."""
    k = np.arange(n)
    t = k.astype(float)
    sp = np.where(k >= at, 60.0, 50.0)
    pv = np.full(n, 50.0)
    rise = (k >= at) & (k <= at + 10)
    pv[rise] = 50.0 + 1.25 * (k[rise] - at)
    fall = (k > at + 10) & (k <= at + 30)
    pv[fall] = 62.5 - 0.125 * (k[fall] - at - 10)
    pv[k > at + 30] = 60.0
    return t, sp, pv


def test_one_step_with_counted_overshoot_settling_and_rise() -> None:
    t, sp, pv = constructed_step()
    steps = find_sp_steps(t, sp, pv, span=100.0)
    assert len(steps) == 1
    step = steps[0]
    assert step.t_step == 100.0
    assert step.size == pytest.approx(10.0)
    assert step.overshoot_pct == pytest.approx(25.0)  # 2.5 past 60 for a step of 10
    assert step.settling_time_s == pytest.approx(27.0)  # |e| < 0.5 from t = 127 on
    assert step.rise_time_s == pytest.approx(7.0)  # 10 % at t = 101, 90 % at t = 108


def test_downward_step_is_mirrored() -> None:
    t, sp, pv = constructed_step()
    steps = find_sp_steps(t, 100.0 - sp, 100.0 - pv, span=100.0)
    assert len(steps) == 1
    assert steps[0].size == pytest.approx(-10.0)
    assert steps[0].overshoot_pct == pytest.approx(25.0)
    assert steps[0].settling_time_s == pytest.approx(27.0)


def test_response_without_overshoot_has_zero_overshoot() -> None:
    t = np.arange(400.0)
    sp = np.where(t >= 50, 20.0, 10.0)
    pv = np.where(t >= 50, 20.0 - 10.0 * np.exp(-(t - 50) / 10.0), 10.0)
    (step,) = find_sp_steps(t, sp, pv, span=100.0)
    assert step.overshoot_pct == 0.0
    # first-order lag τ = 10 s: within 5 % after τ·ln 20 ≈ 29.96 s; 10-90 % takes τ·ln 9
    assert step.settling_time_s == pytest.approx(30.0)
    assert step.rise_time_s == pytest.approx(10.0 * np.log(9.0), abs=1.0)


def test_steps_below_one_percent_of_span_are_ignored() -> None:
    t, sp, pv = constructed_step()
    assert find_sp_steps(t, sp, pv, span=2000.0) == []  # a step of 10 is 0.5 % of 2000


def test_step_without_three_settling_times_of_data_after_it_is_skipped() -> None:
    t, sp, pv = constructed_step(n=300, at=250)
    assert find_sp_steps(t, sp, pv, span=100.0, expected_settling_s=60.0) == []
    assert len(find_sp_steps(t, sp, pv, span=100.0, expected_settling_s=10.0)) == 1


def test_two_steps_are_counted_and_each_ends_at_the_next() -> None:
    t = np.arange(600.0)
    sp = np.select([t < 100, t < 350], [50.0, 60.0], 55.0)
    pv = sp.copy()  # perfect tracking
    steps = find_sp_steps(t, sp, pv, span=100.0)
    assert [s.t_step for s in steps] == [100.0, 350.0]
    assert all(s.settling_time_s == 0.0 for s in steps)


def test_pv_that_never_settles_has_no_settling_time() -> None:
    t = np.arange(300.0)
    sp = np.where(t >= 100, 60.0, 50.0)
    pv = np.full(300, 50.0)
    (step,) = find_sp_steps(t, sp, pv, span=100.0)
    assert step.settling_time_s is None
    assert step.rise_time_s is None


def test_span_must_be_positive() -> None:
    with pytest.raises(ValueError, match="span"):
        find_sp_steps([0.0, 1.0], [1.0, 2.0], [1.0, 2.0], span=0.0)
