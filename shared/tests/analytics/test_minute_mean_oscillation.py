"""Oscillation on 1-minute means (plant-wide views of long windows): known periods and
amplitudes, false positives (noise, random walk, ramp), manual loops judged on PV, gaps."""

from __future__ import annotations

import numpy as np
import pytest

from clpm_shared.analytics import LoopConfig
from clpm_shared.analytics.minute_mean_oscillation import minute_mean_oscillation

N = 24 * 60  # a day of minutes
RNG_SEED = 11


def judge(
    pv: np.ndarray,
    sp: np.ndarray | None = None,
    manual: float = 0.0,
    keep: np.ndarray | None = None,
    config: LoopConfig | None = None,
):  # type: ignore[no-untyped-def]
    index = np.arange(pv.size, dtype=np.int64)
    if keep is not None:
        index, pv = index[keep], pv[keep]
        sp = None if sp is None else sp[keep]
    sp_values = np.full(pv.size, 50.0) if sp is None else sp
    return minute_mean_oscillation(
        "TIC-101",
        index,
        pv,
        sp_values,
        np.full(pv.size, manual),
        N,
        config or LoopConfig(pv_lo=0.0, pv_hi=100.0),
    )


def sine(period_min: float, amplitude: float, noise: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(RNG_SEED)
    minutes = np.arange(N)
    return 50.0 + amplitude * np.sin(2 * np.pi * minutes / period_min) + rng.normal(0, noise, N)


@pytest.mark.parametrize("period_min", [6.0, 20.0, 90.0])
def test_a_known_oscillation_gives_its_period_and_amplitude(period_min: float) -> None:
    found = judge(sine(period_min, 2.0))
    assert found is not None
    assert found.loop_id == "TIC-101"
    assert found.period_s == pytest.approx(period_min * 60.0, rel=0.05)
    # 2 units of a 0-100 span: 2 %, damped by sinc(1 minute / period) for the fast one
    attenuation = np.sinc(1.0 / period_min)
    assert found.amplitude_pct == pytest.approx(2.0 * attenuation, rel=0.15)
    assert found.regularity is not None
    assert found.regularity > 1.0
    assert found.stiction_verdict == "undetermined"


@pytest.mark.parametrize(
    "signal",
    [
        "white_noise",
        "random_walk",
        "ramp",
    ],
)
def test_no_oscillation_in_noise_random_walk_or_ramp(signal: str) -> None:
    rng = np.random.default_rng(RNG_SEED)
    pv = {
        "white_noise": 50.0 + rng.normal(0, 1.0, N),
        "random_walk": 50.0 + np.cumsum(rng.normal(0, 0.3, N)),
        "ramp": np.linspace(40.0, 60.0, N) + rng.normal(0, 0.05, N),
    }[signal]
    assert judge(pv) is None


def test_a_loop_mostly_in_manual_is_judged_on_pv() -> None:
    flat = 50.0 + np.random.default_rng(RNG_SEED).normal(0, 0.1, N)
    swinging_sp = sine(20.0, 3.0)
    # in automatic the error SP - PV swings; in manual SP does not matter, PV is flat
    assert judge(flat, sp=swinging_sp, manual=0.0) is not None
    assert judge(flat, sp=swinging_sp, manual=0.9) is None
    assert judge(sine(20.0, 3.0), sp=np.full(N, 10.0), manual=0.9) is not None


def test_missing_minutes_up_to_a_fifth_are_filled_more_are_not_judged() -> None:
    rng = np.random.default_rng(RNG_SEED)
    pv = sine(20.0, 2.0)
    some_gaps = rng.random(N) > 0.1
    assert judge(pv, keep=some_gaps) is not None
    many_gaps = rng.random(N) > 0.3
    assert judge(pv, keep=many_gaps) is None


def test_span_from_the_data_when_not_configured() -> None:
    found = judge(sine(20.0, 2.0), config=LoopConfig())
    assert found is not None
    assert found.amplitude_pct is not None
    # span estimated as 0 .. the 99.9 percentile of PV and SP (about 52): ~2/52 = ~3.8 %
    assert 3.0 < found.amplitude_pct < 4.5


def test_rows_outside_the_window_and_no_rows_are_ignored() -> None:
    pv = sine(20.0, 2.0)
    index = np.arange(N, dtype=np.int64)
    shifted = minute_mean_oscillation(
        "TIC-101",
        np.concatenate((index, [N + 5, -3])),
        np.concatenate((pv, [1e6, -1e6])),
        np.full(N + 2, 50.0),
        np.zeros(N + 2),
        N,
        LoopConfig(pv_lo=0.0, pv_hi=100.0),
    )
    assert shifted is not None
    assert shifted.amplitude_pct == pytest.approx(2.0 * np.sinc(1 / 20.0), rel=0.15)
    empty = np.array([], dtype=np.float64)
    assert (
        minute_mean_oscillation(
            "TIC-101", np.array([], dtype=np.int64), empty, empty, empty, N, LoopConfig()
        )
        is None
    )


def test_a_loop_with_data_for_part_of_the_window_is_judged_on_that_part() -> None:
    pv = sine(20.0, 2.0)
    last_six_hours = np.arange(N) >= N - 6 * 60
    found = judge(pv, keep=last_six_hours)
    assert found is not None, "3/4 of the window without rows is not 'too many missing'"
    assert found.period_s == pytest.approx(1200.0, rel=0.05)
