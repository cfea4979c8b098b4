"""Autocorrelation of a sampled signal and the regularity of its zero crossings."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft

from clpm_shared.analytics.signal_preparation import FloatArray

MIN_CROSSINGS = 4
"""Zero crossings needed (three half-period intervals) before a regularity is meaningful; with
ACF lags up to N/2 this makes periods up to about N·ts/3.5 detectable."""

MAX_CROSSINGS = 11
"""Zero crossings used (ten intervals), as in Thornhill et al.: later lags are mostly noise."""

REGULARITY_CAP = 100.0
"""Regularity is capped here: a noise-free sine gives std(Tp) ≈ 0 and r → ∞."""


@dataclass(frozen=True, slots=True)
class AcfRegularity:
    r"""Period and regularity read from the zero crossings of an autocorrelation function.

    Attributes
    ----------
    period : float
        Mean period :math:`\overline{T_p}` in samples.
    regularity : float
        :math:`r = \frac{1}{3}\,\overline{T_p}/\sigma_{T_p}`, capped at 100.
    strength : float
        ACF maximum on its second positive lobe (lag ≈ :math:`T_p`) divided by the taper
        :math:`1 - T_p/N` of the biased estimator: about 1 for a periodic signal, small for
        noise whose ACF happens to cross zero at regular lags.
    """

    period: float
    regularity: float
    strength: float


def autocorrelation(
    x: FloatArray, n_fft: int | None = None
) -> tuple[FloatArray, npt.NDArray[np.complex128]]:
    r"""Biased, normalised autocorrelation :math:`\rho(k)`, :math:`0 \le k \le N/2`, by FFT.

    :math:`\rho(k) = \sum_{i=0}^{N-1-k} x_i x_{i+k} / \sum_i x_i^2` (Wiener–Khinchin, zero
    padded to at least 2N so the circular product is a linear one). ``x`` must have zero
    mean (detrended) and not be all zero. Returns the ACF and the spectrum of ``x`` (length
    ``n_fft // 2 + 1``) so callers can reuse it.
    """
    n = x.size
    size = n_fft if n_fft is not None else sp_fft.next_fast_len(2 * n, real=True)
    spectrum = sp_fft.rfft(x, size)
    acf = sp_fft.irfft(spectrum.real**2 + spectrum.imag**2, size)[: n // 2 + 1]
    normalised: FloatArray = acf / acf[0]
    return normalised, spectrum


def zero_crossings(acf: FloatArray) -> FloatArray:
    """Lags (linearly interpolated between samples) where ``acf`` changes sign."""
    negative = np.signbit(acf)
    k = np.flatnonzero(negative[1:] != negative[:-1])
    left, right = acf[k], acf[k + 1]
    crossings: FloatArray = k + left / (left - right)
    return crossings


def acf_regularity(acf: FloatArray, n: int) -> AcfRegularity | None:
    r"""Period, regularity and periodic strength from the first zero crossings of ``acf``.

    Thornhill, Huang & Zhang (2003), "Detection of multiple oscillations in control loops",
    J. Process Control 13(1), 91-100: the first eleven zero crossings
    :math:`z_0 < z_1 < \dots` give intervals :math:`\Delta_i = z_{i+1} - z_i`, each a half
    period, so :math:`T_{p,i} = 2\Delta_i` and :math:`r = \frac{1}{3}\overline{T_{p,i}} /
    \sigma_{T_{p,i}}`. The quarter period from lag 0 to :math:`z_0` is not used.

    Parameters
    ----------
    acf : ndarray
        Normalised ACF from :func:`autocorrelation`.
    n : int
        Length of the signal the ACF was computed from (for the taper of the strength).

    Returns
    -------
    AcfRegularity or None
        None when the ACF has fewer than :data:`MIN_CROSSINGS` zero crossings.
    """
    crossings = zero_crossings(acf)[:MAX_CROSSINGS]
    if crossings.size < MIN_CROSSINGS:
        return None
    periods = 2.0 * (crossings[1:] - crossings[:-1])
    mean_period = float(periods.sum()) / periods.size
    deviation = periods - mean_period
    spread = math.sqrt(float(deviation @ deviation) / periods.size)
    regularity = (
        REGULARITY_CAP
        if spread * 3.0 * REGULARITY_CAP <= mean_period
        else mean_period / (3.0 * spread)
    )
    lobe = acf[math.ceil(crossings[1]) : math.floor(crossings[2]) + 1]
    strength = float(lobe.max()) / max(1.0 - mean_period / n, 1e-9) if lobe.size else 0.0
    return AcfRegularity(mean_period, regularity, strength)
