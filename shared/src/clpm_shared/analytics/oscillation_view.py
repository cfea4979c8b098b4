"""Autocorrelation and power spectrum of one window, for a chart of its oscillations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft
from scipy import signal as sp_signal

from clpm_shared.analytics.autocorrelation import autocorrelation
from clpm_shared.analytics.kpis import MIN_SERVICE_FOR_ERROR_SIGNAL
from clpm_shared.analytics.loop_config import LoopConfig
from clpm_shared.analytics.loop_window import LoopWindow
from clpm_shared.analytics.service_factor import summarise_modes
from clpm_shared.analytics.signal_preparation import (
    FloatArray,
    as_float_array,
    checked_sample_period,
    detrend_linear,
    fill_gaps,
)

MAX_POINTS = 400
"""Points per curve at most: a chart needs no more (every k-th value is kept)."""


@dataclass(frozen=True)
class OscillationView:
    """ACF over lags and power over periods; empty with a reason when nothing can be shown."""

    lag_s: list[float]
    acf: list[float]
    period_s: list[float]
    power: list[float]
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "lag_s": self.lag_s,
            "acf": self.acf,
            "period_s": self.period_s,
            "power": self.power,
            "reason": self.reason,
        }


def _thinned(values: npt.NDArray[np.float64], max_points: int) -> list[float]:
    step = max(1, -(-values.size // max_points))
    return [float(v) for v in values[::step]]


def oscillation_view(x: npt.ArrayLike, ts: float, max_points: int = MAX_POINTS) -> OscillationView:
    r"""ACF and Hann-windowed periodogram of a detrended signal.

    The ACF is the biased, normalised :math:`\rho(k) = \sum_i x_i x_{i+k} / \sum_i x_i^2` for
    :math:`0 \le k \le N/2` (Wiener–Khinchin; the zero crossings of which give the period and
    regularity of Thornhill, Huang & Zhang 2003). The periodogram is
    :math:`P(f) = |\sum_i w_i x_i e^{-2\pi j f i t_s}|^2` with a Hann window :math:`w`, for
    periods from 3 samples to :math:`N t_s / 2`, scaled to a maximum of 1 (Welch 1967 with a
    single segment). Gaps (at most 20 %) are interpolated and a least-squares line removed.

    Parameters
    ----------
    x : array_like
        Uniformly sampled signal (control error in automatic, PV in manual).
    ts : float
        Sample period in seconds (> 0).
    max_points : int
        Points per curve at most.

    Returns
    -------
    OscillationView
        Lags and periods in seconds, ACF and relative power; empty lists and a reason for a
        signal shorter than 24 samples, with more than 20 % missing, or constant.
    """
    ts = checked_sample_period(ts)
    values = as_float_array(x)
    if values.size < 24:
        return OscillationView([], [], [], [], "fewer than 24 samples")
    filled = fill_gaps(values)
    if filled is None:
        return OscillationView([], [], [], [], "more than 20 % of the samples are missing")
    detrended = detrend_linear(filled)
    if not np.any(np.abs(detrended) > 1e-12 * max(1.0, float(np.max(np.abs(filled))))):
        return OscillationView([], [], [], [], "the signal does not vary")
    n = detrended.size
    acf, _ = autocorrelation(detrended)
    lags = np.arange(acf.size, dtype=np.float64) * ts
    power = np.abs(sp_fft.rfft(detrended * sp_signal.get_window("hann", n))) ** 2
    frequency = sp_fft.rfftfreq(n, ts)
    keep = (frequency > 0) & (frequency >= 2.0 / (n * ts)) & (frequency <= 1.0 / (3.0 * ts))
    periods = 1.0 / frequency[keep][::-1]
    shown = power[keep][::-1]
    peak = float(shown.max()) if shown.size else 0.0
    relative = shown / peak if peak > 0 else shown
    return OscillationView(
        _thinned(lags, max_points),
        _thinned(acf, max_points),
        _thinned(periods, max_points),
        _thinned(relative, max_points),
    )


def oscillation_signal(window: LoopWindow, config: LoopConfig) -> FloatArray:
    """The KPI's oscillation signal: the control error when the loop is mostly in service
    (``MIN_SERVICE_FOR_ERROR_SIGNAL``; NaN outside service), else PV."""
    in_service = summarise_modes(window.mode, window.pv, config.normal_modes).in_service
    if in_service.size and float(np.mean(in_service)) >= MIN_SERVICE_FOR_ERROR_SIGNAL:
        error: FloatArray = np.where(in_service, window.sp - window.pv, np.nan)
        return error
    return window.pv
