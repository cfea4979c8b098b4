"""ACF and spectrum of a window for the loop page's chart: known answers and edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from clpm_shared.analytics.oscillation_view import oscillation_view


def test_a_sine_peaks_at_its_period_and_its_acf_follows_the_cosine() -> None:
    t = np.arange(900.0)
    view = oscillation_view(3.0 * np.sin(2 * np.pi * t / 50.0) + 0.01 * t, 1.0, max_points=1000)
    assert view.reason is None
    peak = view.period_s[int(np.argmax(view.power))]
    assert peak == pytest.approx(50.0, rel=0.05)
    assert max(view.power) == pytest.approx(1.0)
    acf = dict(zip(view.lag_s, view.acf, strict=True))
    assert acf[0.0] == pytest.approx(1.0)
    assert acf[25.0] < -0.8  # half a period: anti-correlated
    assert acf[50.0] > 0.8  # one period (biased estimate: 1 - 50/900)
    assert view.lag_s[-1] == pytest.approx(450.0)


def test_two_periods_give_two_peaks_and_white_noise_none_standing_out() -> None:
    t = np.arange(1800.0)
    rng = np.random.default_rng(4)
    two = np.sin(2 * np.pi * t / 17.0) + np.sin(2 * np.pi * t / 60.0) + rng.normal(0, 0.1, t.size)
    view = oscillation_view(two, 1.0)
    power = np.asarray(view.power)
    periods = np.asarray(view.period_s)
    top = sorted(periods[np.argsort(power)[-2:]])
    assert top[0] == pytest.approx(17.0, rel=0.1)
    assert top[1] == pytest.approx(60.0, rel=0.1)
    noise = np.asarray(oscillation_view(rng.normal(0, 1, 1800), 1.0).power)
    assert np.median(noise) > 0.01  # flat: the largest bin is not far above the rest


def test_curves_are_thinned_and_unusable_signals_say_why() -> None:
    view = oscillation_view(np.sin(np.arange(20000.0) / 7.0), 1.0, max_points=100)
    assert len(view.acf) <= 100
    assert len(view.power) <= 100
    assert oscillation_view(np.ones(100), 1.0).reason == "the signal does not vary"
    assert oscillation_view(np.ones(10), 1.0).reason == "fewer than 24 samples"
    gappy = np.where(np.arange(100) % 2 == 0, np.nan, 1.0)
    assert "missing" in (oscillation_view(gappy, 1.0).reason or "")
    with pytest.raises(ValueError, match="ts"):
        oscillation_view(np.ones(100), 0.0)
