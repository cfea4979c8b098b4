"""The stiction valve behaves as the two-parameter model of Choudhury, Thornhill & Shah 2005."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from clpm_shared.simulation import StictionValve, stiction_valve_response

S, J = 4.0, 1.5


def up_then_down(top: float = 60.0, step: float = 0.1) -> np.ndarray:
    up = np.arange(50.0, top + step / 2, step)
    down = np.arange(top - step, 40.0, -step)
    return np.concatenate([up, down])


def test_valve_does_not_move_until_input_reverses_by_more_than_s_then_jumps_j() -> None:
    u = up_then_down()
    x = stiction_valve_response(u, S, J)
    turn = int(np.argmax(u))  # input reverses after this sample
    resting = x[turn]
    moved = np.nonzero(x[turn:] != resting)[0]
    first_move = turn + int(moved[0])
    # Stuck while |u - x_ss| <= S, with x_ss the input where the valve stuck (u at the turn).
    assert np.all(np.abs(u[turn:first_move] - u[turn]) <= S + 1e-9)
    assert abs(u[first_move] - u[turn]) > S
    # The slip: a jump of J (plus the input's own step of 0.1 in that sample).
    assert resting - x[first_move] == pytest.approx(J + 0.1, abs=0.1 + 1e-9)
    # Moving down it trails the input by (S - J) / 2.
    assert_allclose(x[first_move + 1 :], u[first_move + 1 :] + (S - J) / 2, atol=1e-9)


def test_moving_valve_trails_input_by_half_of_s_minus_j() -> None:
    u = np.concatenate([np.full(5, 50.0), np.linspace(50.0, 70.0, 201)])
    x = stiction_valve_response(u, S, J)
    moving = x[-100:]
    assert_allclose(moving, u[-100:] - (S - J) / 2, atol=1e-9)


def test_valve_stopping_in_one_direction_restarts_after_j() -> None:
    ramp_up = np.linspace(40.0, 55.0, 151)
    pause = np.full(20, 55.0)
    carry_on = np.linspace(55.05, 60.0, 100)
    u = np.concatenate([ramp_up, pause, carry_on])
    x = stiction_valve_response(u, S, J)
    stop = ramp_up.size - 1
    stuck_at = x[stop]
    restart = stop + int(np.nonzero(x[stop:] != stuck_at)[0][0])
    assert restart > ramp_up.size + pause.size
    assert u[restart] - 55.0 > J
    assert u[restart - 1] - 55.0 <= J + 1e-9


def test_pure_deadband_has_no_jump() -> None:
    u = up_then_down()
    x = stiction_valve_response(u, 3.0, 0.0)
    turn = int(np.argmax(u))
    after_turn = np.abs(np.diff(x[turn:]))
    assert after_turn.max() <= 0.1 + 1e-9  # never more than the input's own increment
    assert x[turn] - x.min() == pytest.approx(u[turn] - u.min() - 3.0, abs=0.11)


def test_linear_valve_follows_input() -> None:
    u = 50.0 + 10.0 * np.sin(np.linspace(0.0, 12.0, 500))
    assert_allclose(stiction_valve_response(u, 0.0, 0.0), u)


def test_valve_travel_is_clipped_to_its_limits() -> None:
    u = np.linspace(80.0, 130.0, 51)
    x = stiction_valve_response(u, 0.0, 0.0)
    assert x.max() == 100.0
    assert x[-1] == 100.0


def test_vectorised_valves_match_one_valve_at_a_time() -> None:
    rng = np.random.default_rng(7)
    u = 50.0 + np.cumsum(rng.normal(0.0, 0.8, size=(400, 3)), axis=0)
    s = np.array([0.0, 3.0, 5.0])
    j = np.array([0.0, 3.0, 1.0])
    valves = StictionValve(s, j, u[0])
    together = np.vstack([u[0], *[valves.step(row).copy() for row in u[1:]]])
    for i in range(3):
        assert_allclose(together[:, i], stiction_valve_response(u[:, i], s[i], j[i]))
    assert not np.allclose(together[:, 2], u[:, 2])


def test_negative_stiction_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="s and j"):
        StictionValve(-1.0, 0.0, [50.0])
