"""Harris index: the KPI_SPEC moving-average reference case and the delay rule."""

from __future__ import annotations

import numpy as np
import pytest

from clpm_shared.analytics import harris_delay, harris_index

MA = np.array([1.0, 0.8, 0.6, 0.4])


def moving_average_output(seed: int, n: int = 20_000) -> np.ndarray:
    shocks = np.random.default_rng(seed).standard_normal(n + MA.size - 1)
    return np.convolve(shocks, MA, mode="valid")


def exact_eta(delay: int) -> float:
    return float((MA[:delay] ** 2).sum() / (MA**2).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ma3_disturbance_with_delay_2_gives_0_759(seed: int) -> None:
    assert exact_eta(2) == pytest.approx(1.64 / 2.16)
    assert harris_index(moving_average_output(seed), delay=2) == pytest.approx(0.759, abs=0.05)


@pytest.mark.parametrize("delay", [1, 3])
def test_ma3_disturbance_matches_the_exact_ratio_for_other_delays(delay: int) -> None:
    assert harris_index(moving_average_output(7), delay=delay) == pytest.approx(
        exact_eta(delay), abs=0.05
    )


def test_delay_beyond_the_disturbance_memory_is_minimum_variance() -> None:
    assert harris_index(moving_average_output(3), delay=6) == pytest.approx(1.0, abs=0.02)


def test_white_noise_is_minimum_variance_already() -> None:
    y = np.random.default_rng(5).standard_normal(5_000)
    assert harris_index(y, delay=1) == pytest.approx(1.0, abs=0.02)


def test_slow_drift_is_far_from_minimum_variance() -> None:
    rng = np.random.default_rng(6)
    y = np.zeros(5_000)
    shocks = rng.standard_normal(5_000)
    for k in range(1, y.size):
        y[k] = 0.98 * y[k - 1] + shocks[k]
    # AR(1) with φ: η(d=1) = 1 - φ² = 0.0396
    assert harris_index(y, delay=1) == pytest.approx(1 - 0.98**2, abs=0.01)


def test_index_does_not_depend_on_offset_or_scale() -> None:
    y = moving_average_output(9, n=3_000)
    assert harris_index(1e6 + 1e3 * y, 2) == pytest.approx(harris_index(y, 2), rel=1e-6)


def test_delay_from_dead_time_adds_the_sampling_delay() -> None:
    assert harris_delay(4.0, 1.0) == (5, False)
    assert harris_delay(10.0, 2.0) == (6, False)
    assert harris_delay(None, 1.0) == (1, True)


@pytest.mark.parametrize(
    ("y", "delay", "ar_order", "parameter"),
    [
        (np.ones(1000), 1, 20, "y"),
        (np.arange(10.0), 1, 20, "y"),
        (np.array([1.0, np.nan] * 200), 1, 20, "y"),
        (np.random.default_rng(0).standard_normal(500), 0, 20, "delay"),
        (np.random.default_rng(0).standard_normal(500), 1, 0, "ar_order"),
    ],
)
def test_unusable_input_is_rejected_naming_the_parameter(
    y: np.ndarray, delay: int, ar_order: int, parameter: str
) -> None:
    with pytest.raises(ValueError, match=parameter):
        harris_index(y, delay, ar_order)
