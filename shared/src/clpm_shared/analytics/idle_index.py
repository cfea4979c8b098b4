"""Sluggish control from routine data: Hägglund's idle index, and noise above the loop's bandwidth.

Two pure measures used by :mod:`clpm_shared.analytics.diagnosis`:

* :func:`idle_index` — Hägglund (1999): after a load disturbance a well-tuned PI loop moves
  the valve past its new steady value while the PV returns, so the increments of OP and PV
  have opposite signs much of the time; a sluggish loop creeps back with OP and PV moving in
  the same direction. Near +1: sluggish; near -1 or 0: not.
* :func:`closed_loop_bandwidth` and :func:`high_frequency_share` — how much of the PV's
  variation lies above the frequencies the loop can act on. The loop cannot reject
  variation faster than its closed-loop bandwidth, so variation there is measurement noise
  (or a disturbance no tuning can remove); a noisy transmitter puts most of the PV's
  variance there, a healthy one little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy import signal

from clpm_shared.analytics.signal_preparation import FloatArray, detrend_linear

IDLE_FILTER_CORRELATION_SHARE: Final = 1.0
"""Low-pass filter time constant of the idle index as a share of the control error's
correlation time (at least :data:`IDLE_MIN_FILTER_SAMPLES` samples): Hägglund filters the
signals so that measurement noise does not decide the signs of the increments. On the
simulated fleet a quarter of the correlation time left the proportional kick of the noise
(OP and PV increments of opposite sign) in charge: sluggish loops read -0.35 (median)."""

IDLE_MIN_DEVIATION_NOISE: Final = 1.0
"""Increments are counted only while the filtered control error is larger than this many
measurement-noise σ: Hägglund's index is about the recovery from load disturbances, and at
rest the signs of the increments are noise."""

IDLE_SLUGGISH: Final = 0.4
"""Idle index above which the loop creeps back from disturbances with OP and PV moving
together (Hägglund 1999 reports well-tuned loops below 0 and sluggish ones towards +1)."""

IDLE_MIN_FILTER_SAMPLES: Final = 5.0
"""Shortest idle-index filter time constant, in samples."""

IDLE_MIN_MOVING_SHARE: Final = 0.2
"""The index is only reported when OP and PV both move (non-zero filtered increments of the
same or opposite sign) in at least this share of the samples; otherwise it says nothing."""

BANDWIDTH_MIN_ACF: Final = 2.0
"""The error's lag-1 autocorrelation must exceed this many standard errors of a white
sequence's (:math:`1/\\sqrt{N}`) for the loop's dynamics to be measurable above the noise."""


@dataclass(frozen=True)
class IdleIndex:
    """Hägglund's idle index of one window.

    Attributes
    ----------
    index : float or None
        :math:`I_i \\in [-1, 1]`; None when OP and PV hardly moved (see ``moving_share``).
    moving_share : float
        Share of the samples counted in :math:`t_{pos} + t_{neg}`.
    filter_s : float
        Time constant of the first-order low-pass filter applied to OP and PV.
    """

    index: float | None
    moving_share: float
    filter_s: float


def _low_pass(x: FloatArray, ts: float, tf: float) -> FloatArray:
    """First-order low-pass :math:`x_f[k] = a x_f[k-1] + (1-a) x[k]`, :math:`a = e^{-T_s/T_f}`."""
    a = math.exp(-ts / tf)
    filtered, _ = signal.lfilter([1.0 - a], [1.0, -a], x, zi=[a * x[0]])
    return np.asarray(filtered, dtype=float)


def idle_index(
    pv: FloatArray,
    op: FloatArray,
    ts: float,
    filter_s: float,
    sp: FloatArray | None = None,
    min_deviation: float = 0.0,
) -> IdleIndex:
    """Hägglund's idle index of a window of PV and OP samples.

    .. math::

        I_i = \\frac{t_{pos} - t_{neg}}{t_{pos} + t_{neg}}

    where :math:`t_{pos}` is the time during which the increments of the low-pass filtered
    OP and PV have the same sign, :math:`\\Delta u_f \\Delta y_f > 0`, and :math:`t_{neg}` the
    time with opposite signs (samples where either increment is zero are not counted).
    With a positive process gain (OP up raises PV, the simulator's and most plants'
    convention once the controller's action is set right) a sluggish loop gives
    :math:`I_i` near +1 and a well-damped loop a value near 0 or negative.

    Parameters
    ----------
    pv, op : ndarray
        Samples on a uniform grid; non-finite samples (out of service) are skipped by
        filling with the previous finite value, which adds zero increments only.
    ts : float
        Sample period (s).
    filter_s : float
        Time constant (s) of the first-order low-pass filter applied to both signals.
    sp : ndarray, optional
        Set point; with ``min_deviation`` only samples where the filtered control error
        exceeds ``min_deviation`` (PV units) are counted.
    min_deviation : float
        See ``sp``; 0 counts every sample.

    Returns
    -------
    IdleIndex

    References
    ----------
    T. Hägglund, "Automatic detection of sluggish control loops", Control Engineering
    Practice 7 (1999) 1505-1511.
    """
    if ts <= 0 or filter_s <= 0:
        raise ValueError("ts and filter_s must be > 0")
    y = _filled(np.asarray(pv, dtype=float))
    u = _filled(np.asarray(op, dtype=float))
    if y is None or u is None or y.size < 4:
        return IdleIndex(None, 0.0, filter_s)
    dy = np.diff(_low_pass(y, ts, filter_s))
    du = np.diff(_low_pass(u, ts, filter_s))
    product = du * dy
    if sp is not None and min_deviation > 0.0:
        r = _filled(np.asarray(sp, dtype=float))
        if r is not None:
            # only while the loop is away from its set point (after a disturbance)
            deviation = np.abs(_low_pass(y - r, ts, filter_s))[1:]
            product = np.where(deviation > min_deviation, product, 0.0)
    t_pos = int(np.count_nonzero(product > 0.0))
    t_neg = int(np.count_nonzero(product < 0.0))
    moving = (t_pos + t_neg) / product.size
    if moving < IDLE_MIN_MOVING_SHARE or t_pos + t_neg == 0:
        return IdleIndex(None, moving, filter_s)
    return IdleIndex((t_pos - t_neg) / (t_pos + t_neg), moving, filter_s)


def _filled(x: FloatArray) -> FloatArray | None:
    """``x`` with non-finite samples replaced by the previous finite one (leading: first)."""
    finite = np.isfinite(x)
    if not finite.any():
        return None
    if finite.all():
        return x
    index = np.where(finite, np.arange(x.size), 0)
    np.maximum.accumulate(index, out=index)
    first = int(np.flatnonzero(finite)[0])
    index[:first] = first
    return np.asarray(x[index], dtype=float)


def closed_loop_bandwidth(error: FloatArray, ts: float) -> float | None:
    """Closed-loop bandwidth (Hz) estimated from the control error's correlation time.

    A closed loop acting like a first-order system with time constant :math:`\\tau_c`
    leaves an error whose autocorrelation decays as :math:`e^{-|\\tau|/\\tau_c}`; its
    bandwidth is :math:`f_b = 1 / (2\\pi\\tau_c)`. White measurement noise only adds to lag
    0, so :math:`\\tau_c` is the lag at which :math:`\\rho(k)/\\rho(1)` has fallen below
    :math:`e^{-1}`, counted in lags after lag 1 (at least one sample). When the lag-1
    autocorrelation is not significant (below :data:`BANDWIDTH_MIN_ACF` /
    :math:`\\sqrt{N}`) the error is white at this sample rate: no dynamics are measurable
    and None is returned.

    Parameters
    ----------
    error : ndarray
        Control error samples (non-finite ones are dropped).
    ts : float
        Sample period (s).
    """
    values = error[np.isfinite(error)]
    n = values.size
    if n < 32:
        return None
    values = detrend_linear(values)
    energy = float(values @ values)
    if energy <= 0.0:
        return None
    spectrum = np.fft.rfft(values, 2 * n)
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[:n] / energy
    if acf[1] < BANDWIDTH_MIN_ACF / math.sqrt(n):
        return None
    decay = acf[1:] / acf[1]
    below = np.flatnonzero(decay < math.exp(-1.0))
    tau = float(max(int(below[0]), 1) * ts if below.size else n * ts)
    return 1.0 / (2.0 * math.pi * tau)


def high_frequency_share(x: FloatArray, ts: float, cutoff_hz: float) -> float | None:
    """Share of the (linearly detrended) variance of ``x`` above ``cutoff_hz``.

    .. math::

        s_{hf} = \\frac{\\sum_{f_k > f_c} P(f_k)}{\\sum_{f_k > 0} P(f_k)}

    with :math:`P` the Welch periodogram (Hann windows of 256 samples, half overlap;
    :func:`scipy.signal.welch`). White noise gives :math:`1 - f_c / f_N`
    (:math:`f_N = 1/(2T_s)`); a slow variation gives nearly 0.
    """
    values = x[np.isfinite(x)]
    if values.size < 32 or cutoff_hz <= 0:
        return None
    values = detrend_linear(values)
    freqs, power = signal.welch(values, fs=1.0 / ts, nperseg=min(256, values.size))
    total = float(power[1:].sum())
    if total <= 0.0:
        return None
    return float(power[freqs > cutoff_hz].sum()) / total
