"""detect_oscillations: several periods at once, intermittent oscillations, false positives."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal, stats

from clpm_shared.analytics import (
    OscillationComponent,
    detect_oscillation,
    detect_oscillations,
)
from clpm_shared.analytics.multiple_oscillations import (
    SIGNIFICANCE,
    hampel,
    pass_band,
    peak_ratio,
    peak_ratio_threshold,
    red_noise_threshold,
)
from clpm_shared.analytics.oscillation import detect_regular_oscillation

N = 3600  # one hour at 1 Hz
SEEDS = range(10)


def sine(period_s: float, amplitude: float = 1.0, phase: float = 0.0, n: int = N) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * np.arange(n) / period_s + phase)


def periods_of(components: tuple[OscillationComponent, ...]) -> list[float]:
    return sorted(c.period_s for c in components)


@pytest.mark.parametrize("seed", range(5))
def test_two_superposed_sinusoids_are_both_found(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (
        sine(50.0, 1.0, rng.uniform(0, 6))
        + sine(170.0, 0.8, rng.uniform(0, 6))
        + 0.4 * rng.standard_normal(N)
    )
    components = detect_oscillations(x, 1.0)
    assert len(components) == 2
    fast, slow = periods_of(components)
    assert fast == pytest.approx(50.0, rel=0.05)
    assert slow == pytest.approx(170.0, rel=0.05)
    by_period = {round(c.period_s, -1): c for c in components}
    assert by_period[50.0].amplitude == pytest.approx(1.0, rel=0.15)
    assert by_period[170.0].amplitude == pytest.approx(0.8, rel=0.15)
    assert all(c.share > 0.9 and c.regularity > 1.0 for c in components)
    # the larger one comes first and is what detect_oscillation reports
    assert components[0].period_s == pytest.approx(50.0, rel=0.05)


def test_the_whole_signal_acf_sees_only_the_larger_of_two_oscillations() -> None:
    rng = np.random.default_rng(3)
    x = sine(50.0) + sine(170.0, 0.8, 1.0) + 0.4 * rng.standard_normal(N)
    whole = detect_regular_oscillation(x, 1.0)
    assert whole.period_s is not None
    # the ACF of the sum is no single clean cycle: at best one period, never both
    assert not (whole.oscillating and abs(whole.period_s - 170.0) < 10.0)
    assert len(detect_oscillations(x, 1.0)) == 2


@pytest.mark.parametrize("seed", range(5))
def test_oscillation_in_the_middle_40_percent_has_a_share_of_about_0_4(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    present = (t >= 0.3 * N) & (t < 0.7 * N)
    x = np.where(present, sine(60.0, 2.0, rng.uniform(0, 6)), 0.0) + 0.3 * rng.standard_normal(N)
    components = detect_oscillations(x, 1.0)
    assert len(components) == 1
    (component,) = components
    assert component.period_s == pytest.approx(60.0, rel=0.05)
    assert component.share == pytest.approx(0.4, abs=0.06)
    assert component.amplitude == pytest.approx(2.0, rel=0.15)


def test_a_steady_oscillation_is_present_in_the_whole_window() -> None:
    rng = np.random.default_rng(7)
    x = 3.0 * sine(90.0) + 0.5 * rng.standard_normal(N) + 40.0
    (component,) = detect_oscillations(x, 2.0)
    assert component.period_s == pytest.approx(180.0, rel=0.05)  # seconds at ts = 2 s
    assert component.share > 0.95
    assert component.amplitude == pytest.approx(3.0, rel=0.1)
    assert component.strength > 0.8
    assert component.peak_ratio > 8.0
    assert set(component.to_dict()) == {
        "period_s",
        "regularity",
        "strength",
        "peak_ratio",
        "amplitude",
        "share",
    }


@pytest.mark.parametrize("seed", range(4))
def test_fast_oscillation_under_a_large_drift_and_outliers_is_found(seed: int) -> None:
    """A 30-s cycle under a random-walk drift several times its size, with spikes of 15 times
    its amplitude: the whole-signal ACF follows the drift; the filter bank finds the cycle."""
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.standard_normal(N)) * 0.15
    x = sine(30.0) + drift + 0.3 * rng.standard_normal(N)
    spikes = rng.choice(N, 20, replace=False)
    x[spikes] += rng.choice([-15.0, 15.0], spikes.size)
    assert np.ptp(drift) > 3.0 * 2.0
    assert not detect_regular_oscillation(x, 1.0).oscillating
    result = detect_oscillation(x, 1.0)
    assert result.oscillating
    assert result.period_s == pytest.approx(30.0, rel=0.05)
    (component,) = detect_oscillations(x, 1.0)
    assert component.period_s == pytest.approx(30.0, rel=0.05)
    assert component.amplitude == pytest.approx(1.0, rel=0.2)


def test_hampel_filter_replaces_isolated_spikes_and_keeps_a_sine() -> None:
    x = sine(40.0, n=400)
    spiked = x.copy()
    spiked[[50, 200, 333]] += 10.0
    cleaned = hampel(spiked)
    # a replaced sample takes its window's median: within one sample step of the sine
    np.testing.assert_allclose(cleaned, x, atol=0.16)
    np.testing.assert_array_equal(hampel(x), x)


def test_peak_ratio_of_a_power_law_background_is_one_and_of_a_line_is_large() -> None:
    frequency = np.arange(1, 201) / 400.0
    background = frequency**-2.0
    assert peak_ratio(frequency, background, 0.05) == pytest.approx(1.0, abs=0.2)
    line = background.copy()
    line[np.argmin(np.abs(frequency - 0.05))] *= 200.0  # one of the ten bins around 0.05
    assert 12.0 < peak_ratio(frequency, line, 0.05) < 25.0


@pytest.mark.parametrize("seed", SEEDS)
def test_white_noise_has_no_oscillation(seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal(N)
    assert detect_oscillations(x, 1.0) == ()


@pytest.mark.parametrize("seed", SEEDS)
def test_random_walk_has_no_oscillation(seed: int) -> None:
    x = np.cumsum(np.random.default_rng(seed).standard_normal(N))
    assert detect_oscillations(x, 1.0) == ()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [900, 3600])
def test_drifting_first_order_noise_has_no_oscillation(seed: int, n: int) -> None:
    """AR(1) with phi = 0.95: a knee in the spectrum, not a peak (red-noise test)."""
    shocks = np.random.default_rng(seed).standard_normal(n)
    x = signal.lfilter([1.0], [1.0, -0.95], shocks)
    assert detect_oscillations(x, 1.0) == ()


def test_ramp_step_and_constant_have_no_oscillation() -> None:
    rng = np.random.default_rng(0)
    ramp = 0.01 * np.arange(N) + 0.001 * rng.standard_normal(N)
    step = np.where(np.arange(N) >= 1500, 5.0, 0.0) + 0.05 * rng.standard_normal(N)
    staircase = np.round(0.01 * np.arange(N), 1)
    for x in (ramp, step, staircase, np.full(N, 42.0), np.linspace(10.0, 20.0, N)):
        assert detect_oscillations(x, 1.0) == ()


def test_short_or_mostly_missing_signals_have_no_components() -> None:
    assert detect_oscillations(np.sin(np.arange(10.0)), 1.0) == ()
    x = sine(60.0)
    x[::2] = np.nan
    assert detect_oscillations(x, 1.0) == ()


@pytest.mark.parametrize("ts", [0.0, -1.0, float("nan")])
def test_invalid_sample_period_is_rejected_by_name(ts: float) -> None:
    with pytest.raises(ValueError, match="ts"):
        detect_oscillations(np.zeros(N), ts)


def test_low_pass_filtered_noise_is_rarely_called_oscillating() -> None:
    # A DCS filter or a smooth closed-loop spectrum: white noise through a 4th-order
    # Butterworth low-pass (cut-off 0.1 per sample). Its spectrum is flat, then falls steeply:
    # the edge stands far over a power-law chord through the flanks but is no peak. Before the
    # local-maximum test 24 of these 60 windows were called oscillating, now 6.
    b, a = signal.butter(4, 0.2)
    rng = np.random.default_rng(20261206)
    windows = [signal.lfilter(b, a, rng.standard_normal(1400))[500:] for _ in range(60)]
    called = sum(detect_oscillation(x, 1.0).oscillating for x in windows)
    assert called <= 8


def test_an_oscillation_inside_the_pass_band_of_low_pass_noise_is_still_found() -> None:
    b, a = signal.butter(4, 0.2)
    rng = np.random.default_rng(7)
    for _ in range(20):
        noise = signal.lfilter(b, a, rng.standard_normal(1400))[500:]
        phase = rng.uniform(0.0, 2.0 * np.pi)
        x = noise + np.sqrt(2.0) * np.std(noise) * sine(40.0, phase=phase, n=900)
        result = detect_oscillation(x, 1.0)
        assert result.oscillating
        assert result.period_s == pytest.approx(40.0, rel=0.05)


def _clear_designs() -> None:
    for memo in (peak_ratio_threshold, red_noise_threshold, pass_band):
        memo.cache_clear()


def test_the_filter_bank_reuses_its_designs_and_finds_exactly_what_it_found_without() -> None:
    """Windows of one length share band masks and test thresholds: they are designed once
    per process (memoized), and the components found are identical to fresh designs."""
    rng = np.random.default_rng(7)
    windows = [
        sine(60.0, 1.0, rng.uniform(0, 6), n=900)
        + (k % 2) * sine(140.0, 0.5, n=900)
        + 0.3 * rng.standard_normal(900)
        for k in range(12)
    ] + [sine(75.0, n=1800) + 0.3 * rng.standard_normal(1800)]  # another length in between
    fresh = []
    for x in windows:  # every design made anew
        _clear_designs()
        fresh.append(detect_oscillations(x, 1.0))
    _clear_designs()
    reused = [detect_oscillations(x, 1.0) for x in windows]
    assert reused == fresh
    assert all(len(components) >= 1 for components in reused)  # something to compare
    assert pass_band.cache_info().hits > 0
    assert peak_ratio_threshold.cache_info().hits > 0
    assert pass_band.cache_info().maxsize == 16


def test_a_memoized_design_is_the_plain_computation_and_cannot_be_altered() -> None:
    bins, n_fft, f0 = 901, 1800, 1 / 60
    frequency = np.arange(bins) / n_fft
    expected = (frequency >= f0 / 1.5) & (frequency <= f0 * 1.5)
    mask = pass_band(bins, n_fft, f0, 1.5)
    assert np.array_equal(mask, expected)
    with pytest.raises(ValueError, match="read-only"):
        mask[0] = True
    assert peak_ratio_threshold(1801, 4.0, 12.0) == float(
        stats.f.isf(SIGNIFICANCE / 1801, 4.0, 12.0)
    )
    assert red_noise_threshold(4.0) == float(stats.chi2.isf(SIGNIFICANCE / 6, 4.0)) / 4.0
