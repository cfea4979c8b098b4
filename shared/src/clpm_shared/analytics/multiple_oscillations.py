"""Find every significant oscillation in a signal: its period, regularity, size and presence.

Real plant signals are quantised, drift, carry outliers, and oscillate at several periods at
once or only part of the time. One autocorrelation of the whole signal then shows only its
largest component, or none. Following Thornhill, Huang & Zhang (2003), each peak of the power
spectrum is isolated by a band-pass filter and judged on its own by the regularity of the zero
crossings of the filtered signal's autocorrelation; a significance test on the spectral peak
keeps the band-pass filter from turning noise into a regular-looking cycle.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft
from scipy import ndimage, stats
from scipy import signal as sp_signal

from clpm_shared.analytics.autocorrelation import AcfRegularity, acf_regularity
from clpm_shared.analytics.reversals import count_reversals
from clpm_shared.analytics.signal_preparation import (
    FloatArray,
    detrend_linear,
    scale_to_unit,
)

HAMPEL_HALF_WINDOW = 3
"""Hampel filter window: the sample and three neighbours on either side (Pearson 2002)."""

HAMPEL_THRESHOLD = 3.0
"""A sample more than three robust standard deviations (1.4826 MAD) from its window's median
is an outlier and is replaced by that median."""

MAX_CANDIDATE_PEAKS = 3
"""Spectral peaks examined, largest first, by power and again by power over red noise
(Thornhill et al. 2003 report up to three oscillations per loop)."""

MIN_PERIODS = 5.0
"""A band-passed component must repeat this often in the window: band-pass filtering makes any
signal look periodic over a few cycles, so it needs more of them than the plain ACF test's 3."""

FEW_PERIODS = 10.0
"""Below this many periods the ACF one period later must reach :data:`MIN_STRENGTH_FEW`. The
whole-signal test asks this below six periods; band-passing narrows the spectrum, which keeps
the slow wander of a healthy or sluggish loop correlated longer, so the stricter guard holds up
to ten here (a sluggish simulated loop's wander: 8.5 periods, r = 1.5, strength 0.42)."""

MIN_SAMPLES_PER_PERIOD = 3.0
"""Shortest period in samples: at 3 samples a cycle is still resolved (Nyquist limit is 2)."""

BAND_WIDTHS = (1.5, 2.0)
"""Pass bands :math:`[f_0/w,\\, w f_0]` tried around a peak :math:`f_0`: narrow first (isolates
the peak from neighbouring ones and from noise), then one octave each side."""

MAX_PERIOD_MISMATCH = 0.25
"""The band-passed ACF period must agree with the spectral peak within 25 %; otherwise the
filter edge, not the peak, set the period."""

MIN_REGULARITY = 1.0
"""Thornhill et al. (2003): r > 1, the periods vary by less than a third of their mean."""

MIN_STRENGTH = 0.3
"""ACF of the band-passed signal one period later (cf. the decay ratio of Miao & Seborg 1999)."""

MIN_STRENGTH_FEW = 0.6
"""The same with fewer than :data:`FEW_PERIODS` periods in the window."""

MIN_PEAK_RATIO = 8.0
"""Spectral significance: the mean periodogram within :math:`f_0/1.25 \\dots 1.25 f_0` must be
at least 8 times (9 dB) the background interpolated (power law) from the flanks
:math:`f_0/4 \\dots f_0/1.6` and :math:`1.6 f_0 \\dots 4 f_0`. A smooth (coloured) noise
spectrum gives about 1; the band-pass filter alone cannot create such a peak."""

PEAK_INNER = 1.25
PEAK_FLANKS = (1.6, 4.0)

SIGNIFICANCE = 0.01
"""Family-wise false-alarm probability of the two significance tests of a spectral peak: the
F test of :func:`peak_ratio` against its flanks (Bonferroni over all frequency bins) and the
chi-square test against the AR(1) red-noise spectrum (over the candidate peaks)."""

HANN_BANDWIDTH_BINS = 1.5
"""Equivalent noise bandwidth of the Hann window in bins (Harris 1978)."""

PRESENT_LEVEL = 0.5
"""A component is present where its envelope is at least half its 90th percentile."""


@dataclass(frozen=True, slots=True)
class OscillationComponent:
    r"""One significant oscillation found by ``oscillation.detect_oscillations``.

    Attributes
    ----------
    period_s : float
        Mean period of the band-passed component, seconds.
    regularity : float
        :math:`r = \frac{1}{3}\overline{T_p}/\sigma_{T_p}` of the band-passed ACF zero
        crossings (capped at 100).
    strength : float
        ACF of the band-passed component one period later (1 for a steady sine).
    peak_ratio : float
        Spectral peak over its local background (dimensionless): at least 8 for a
        component of the filter bank; as measured (possibly less) for the oscillation the
        whole-signal ACF test found, e.g. one that stops part-way through the window.
    amplitude : float
        Median Hilbert envelope of the component where it is present, in the units of the
        signal (half the peak-to-peak swing of a sine).
    share : float
        Share of the window in which the component is present, 0-1.
    """

    period_s: float
    regularity: float
    strength: float
    peak_ratio: float
    amplitude: float
    share: float

    def to_dict(self) -> dict[str, float]:
        """Plain JSON-ready mapping of the fields."""
        return {
            "period_s": self.period_s,
            "regularity": self.regularity,
            "strength": self.strength,
            "peak_ratio": self.peak_ratio,
            "amplitude": self.amplitude,
            "share": self.share,
        }


def hampel(x: FloatArray, half_window: int = HAMPEL_HALF_WINDOW) -> FloatArray:
    r"""Replace outliers by the median of their window (Hampel identifier).

    With :math:`m_k` the median and :math:`S_k = 1.4826\,\mathrm{median}|x_j - m_k|` the
    MAD scale of :math:`x_{k-h} \dots x_{k+h}`, a sample with :math:`|x_k - m_k| > 3 S_k`
    becomes :math:`m_k` (Pearson 2002, "Outliers in process modeling and identification",
    IEEE Trans. Control Syst. Technol. 10(1), 55-63). Windows with zero MAD (held or
    quantised stretches) are left alone.
    """
    size = 2 * half_window + 1
    if x.size < size:
        return x
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, half_window, mode="edge"), size)
    median = ndimage.median_filter(x, size=size, mode="nearest")
    # the window is odd-sized: its median absolute deviation is the middle order statistic
    spread = np.partition(np.abs(windows - median[:, None]), half_window, axis=1)
    scale = 1.4826 * spread[:, half_window]
    outlier = (np.abs(x - median) > HAMPEL_THRESHOLD * scale) & (scale > 0.0)
    cleaned: FloatArray = np.where(outlier, median, x)
    return cleaned


@dataclass(frozen=True, slots=True)
class _Spectrum:
    """Hann periodogram of the detrended signal and its AR(1) red-noise background."""

    frequency: FloatArray
    power: FloatArray
    red_noise: FloatArray

    @classmethod
    def of(cls, detrended: FloatArray) -> _Spectrum:
        n = detrended.size
        windowed = sp_fft.rfft(detrended * np.hanning(n))
        power: FloatArray = windowed.real**2 + windowed.imag**2
        frequency = np.arange(power.size, dtype=np.float64) / n
        return cls(frequency, power, red_noise_spectrum(detrended, frequency, power))


def red_noise_spectrum(
    detrended: FloatArray, frequency: FloatArray, power: FloatArray
) -> FloatArray:
    r"""AR(1) ("red noise") spectrum with the signal's lag-1 autocorrelation and total power.

    :math:`S(f) \propto (1-\phi^2)/(1 - 2\phi\cos 2\pi f + \phi^2)` with
    :math:`\phi = \sum x_k x_{k+1} / \sum x_k^2`, scaled so that
    :math:`\sum_{f>0} S = \sum_{f>0} P`: the null hypothesis of Gilman, Fuglister & Mitchell
    (1963), "On the power spectrum of red noise", J. Atmos. Sci. 20, 182-184, as used by
    Torrence & Compo (1998), "A practical guide to wavelet analysis", Bull. Amer. Meteor.
    Soc. 79, 61-78.
    """
    energy = float(detrended @ detrended)
    phi = min(max(float(detrended[1:] @ detrended[:-1]) / energy, -0.99), 0.999)
    shape = (1.0 - phi**2) / (1.0 - 2.0 * phi * np.cos(2.0 * np.pi * frequency) + phi**2)
    total = float(shape[1:].sum())
    red: FloatArray = shape * (float(power[1:].sum()) / total) if total > 0 else shape
    return red


def peak_ratio(frequency: FloatArray, power: FloatArray, f0: float) -> float:
    r"""Periodogram around ``f0`` over the background interpolated from its flanks.

    :math:`R = \overline{P}_{[f_0/1.25,\,1.25 f_0]} / B(f_0)` with :math:`\log B` linear in
    :math:`\log f` through the mean power of the flanks :math:`[f_0/4, f_0/1.6]` and
    :math:`[1.6 f_0, 4 f_0]` (each placed at its mean log-frequency), i.e. a local power law
    :math:`B \propto f^{-\alpha}` as drift (:math:`\alpha = 2`) or white noise
    (:math:`\alpha = 0`) give. One flank alone is used as a flat background when the other
    falls outside the spectrum. NaN when neither flank holds a bin.
    """
    inner, lower, upper = _bands(frequency, f0)
    points = [
        (float(np.log(frequency[mask]).mean()), math.log(float(power[mask].mean())))
        for mask in (lower, upper)
        if mask.any() and float(power[mask].mean()) > 0.0
    ]
    if not points or not inner.any():
        return math.nan
    if len(points) == 2:
        (x1, y1), (x2, y2) = points
        background = y1 + (y2 - y1) * (math.log(f0) - x1) / (x2 - x1)
    else:
        background = points[0][1]
    return float(power[inner].mean()) / math.exp(background)


def _bands(
    frequency: FloatArray, f0: float
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    near, far = PEAK_FLANKS
    inner = (frequency >= f0 / PEAK_INNER) & (frequency <= f0 * PEAK_INNER)
    lower = (frequency >= f0 / far) & (frequency <= f0 / near)
    upper = (frequency >= f0 * near) & (frequency <= f0 * far)
    return inner, lower, upper


def _significant_peak(spectrum: _Spectrum, f0: float) -> float | None:
    r""":func:`peak_ratio` at ``f0`` when the peak passes all four tests, else None.

    Degrees of freedom: a mean of k Hann periodogram bins has about 2k/1.5 (1.5 bins is the
    window's equivalent noise bandwidth).

    The peak must also be a local maximum: its mean power above the mean of each flank,
    :math:`\overline{P}_{inner} > \overline{P}_{lower}` and
    :math:`\overline{P}_{inner} > \overline{P}_{upper}`. The power-law background is a
    chord through the flanks in log-log; at the edge (knee) of low-pass filtered noise the
    log spectrum is concave (flat, then falling steeply), the chord passes under it and the
    edge stands 7-10 times over the chord although the spectrum only falls there. A peak on
    a power-law background of slope up to about -2 that passes the 9 dB floor also stands
    above its lower flank.
    """
    frequency, power = spectrum.frequency, spectrum.power
    ratio = peak_ratio(frequency, power, f0)
    if not ratio >= MIN_PEAK_RATIO:
        return None
    inner, lower, upper = _bands(frequency, f0)
    peak = float(power[inner].mean())
    if any(mask.any() and peak <= _flank_level(power[mask]) for mask in (lower, upper)):
        return None
    dof_inner = max(2.0, 2.0 * float(np.count_nonzero(inner)) / HANN_BANDWIDTH_BINS)
    dof_flanks = max(2.0, 2.0 * float(np.count_nonzero(lower | upper)) / HANN_BANDWIDTH_BINS)
    if ratio < peak_ratio_threshold(frequency.size, dof_inner, dof_flanks):
        return None
    red = float(power[inner].mean()) / float(spectrum.red_noise[inner].mean())
    if red < red_noise_threshold(dof_inner):
        return None
    return ratio


DESIGNS_KEPT = 16
"""Filter designs and test thresholds kept per process (:func:`functools.lru_cache`): the
windows of a loop (and the loops of a plant) have the same length, so the same band masks and
thresholds recur window after window; scipy's ``isf`` alone cost 14 % of the filter bank."""


@functools.lru_cache(maxsize=4 * DESIGNS_KEPT)
def peak_ratio_threshold(bins: int, dof_inner: float, dof_flanks: float) -> float:
    """F test of :func:`peak_ratio` at :data:`SIGNIFICANCE`, Bonferroni over ``bins``."""
    return float(stats.f.isf(SIGNIFICANCE / bins, dof_inner, dof_flanks))


@functools.lru_cache(maxsize=4 * DESIGNS_KEPT)
def red_noise_threshold(dof_inner: float) -> float:
    """Chi-square test of the peak over red noise, per degree of freedom, at
    :data:`SIGNIFICANCE` Bonferroni over the candidate peaks."""
    candidates = 2 * MAX_CANDIDATE_PEAKS
    return float(stats.chi2.isf(SIGNIFICANCE / candidates, dof_inner)) / dof_inner


@functools.lru_cache(maxsize=DESIGNS_KEPT)
def pass_band(bins: int, n_fft: int, f0: float, width: float) -> npt.NDArray[np.bool_]:
    r"""FFT mask of the band :math:`[f_0/w,\, \min(w f_0, 0.5)]` over ``bins`` bins of an
    ``n_fft``-point real FFT (read-only: it is shared between calls)."""
    frequency = np.arange(bins, dtype=np.float64) / n_fft
    keep = (frequency >= f0 / width) & (frequency <= min(f0 * width, 0.5))
    keep.flags.writeable = False
    return keep


def _flank_level(power: FloatArray) -> float:
    r"""Robust mean power of a flank: its median over :math:`\ln 2`.

    A periodogram bin of Gaussian noise is exponentially distributed (:math:`\chi^2_2/2`), whose
    median is :math:`\ln 2` times its mean; the median ignores a neighbouring oscillation (or
    a harmonic) that fills a few bins of the flank.
    """
    return float(np.median(power)) / math.log(2.0)


def _candidate_peaks(spectrum: _Spectrum, n: int) -> list[float]:
    """Largest local maxima of the smoothed periodogram, by power and over red noise.

    The three largest by power, then the three largest over the AR(1) red-noise spectrum
    (which flattens drift, so a fast cycle under a large slow wander is also examined);
    maxima within 25 % in frequency of a larger one (its ripples) are skipped.
    """
    frequency = spectrum.frequency
    width = max(3, round(n / 400))
    smoothed = np.convolve(spectrum.power, np.ones(width) / width, mode="same")
    allowed = (frequency >= MIN_PERIODS / n) & (frequency <= 1.0 / MIN_SAMPLES_PER_PERIOD)
    chosen: list[float] = []
    for score in (smoothed, smoothed / spectrum.red_noise):
        masked = np.where(allowed, score, 0.0)
        peaks, _ = sp_signal.find_peaks(masked)
        added = 0
        for index in peaks[np.argsort(masked[peaks])[::-1]]:
            f0 = float(frequency[index])
            if all(abs(f0 / other - 1.0) > MAX_PERIOD_MISMATCH for other in chosen):
                chosen.append(f0)
                added += 1
                if added == MAX_CANDIDATE_PEAKS:
                    break
    return chosen


def _presence(band: FloatArray, period: float) -> tuple[float, float]:
    """Share of the window where the period-smoothed Hilbert envelope is present, and its size."""
    envelope = np.abs(sp_signal.hilbert(band))
    width = max(1, round(period))
    smoothed = ndimage.uniform_filter1d(envelope, size=width, mode="nearest")
    level = PRESENT_LEVEL * float(np.quantile(smoothed, 0.9))
    present = smoothed >= level
    share = float(np.count_nonzero(present)) / band.size
    amplitude = float(np.median(envelope[present])) if present.any() else 0.0
    return share, amplitude


@dataclass(frozen=True, slots=True)
class _Judged:
    regularity: AcfRegularity
    peak_ratio: float
    share: float
    amplitude: float


def _judge(
    cleaned: FloatArray,
    padded: npt.NDArray[np.complex128],
    n: int,
    spectrum: _Spectrum,
    f0: float,
) -> _Judged | None:
    """The first pass band around ``f0`` in which the component passes every test."""
    n_fft = 2 * (padded.size - 1)
    for width in BAND_WIDTHS:
        keep = pass_band(padded.size, n_fft, f0, width)
        band_spectrum = np.where(keep, padded, 0.0)
        acf = sp_fft.irfft(band_spectrum.real**2 + band_spectrum.imag**2, n_fft)[: n // 2 + 1]
        if not acf[0] > 0.0:
            continue
        found = acf_regularity(acf / acf[0], n)
        if found is None:
            continue
        period = found.period
        if abs(period * f0 - 1.0) > MAX_PERIOD_MISMATCH or period < MIN_SAMPLES_PER_PERIOD:
            continue
        periods = n / period
        needed = MIN_STRENGTH_FEW if periods < FEW_PERIODS else MIN_STRENGTH
        if periods < MIN_PERIODS or found.regularity <= MIN_REGULARITY or found.strength < needed:
            continue
        at_peak = _significant_peak(spectrum, f0)
        ratio = at_peak if at_peak is not None else _significant_peak(spectrum, 1.0 / period)
        if ratio is None:
            continue
        band: FloatArray = sp_fft.irfft(band_spectrum, n_fft)[:n]
        share, amplitude = _presence(band, period)
        # a detrended ramp of a quantised signal is a regular sawtooth with a sharp spectral
        # line: the signal must also reverse by more than the amplitude about once per
        # period wherever the component is present
        if count_reversals(cleaned, amplitude) < share * periods:
            continue
        return _Judged(found, ratio, share, amplitude)
    return None


def significant_components(filled: FloatArray, ts: float) -> list[OscillationComponent]:
    """Components of the filter bank (``oscillation.detect_oscillations``), strongest first.

    ``filled`` is gap-free and long enough to judge (the callers ask 24 samples).
    """
    scaled, scale = scale_to_unit(filled)
    cleaned = hampel(scaled)
    detrended = detrend_linear(cleaned)
    n = detrended.size
    if not float(detrended @ detrended) > 0.0:
        return []
    spectrum = _Spectrum.of(detrended)
    padded = sp_fft.rfft(detrended, sp_fft.next_fast_len(2 * n, real=True))
    components: list[OscillationComponent] = []
    for f0 in _candidate_peaks(spectrum, n):
        judged = _judge(cleaned, padded, n, spectrum, f0)
        if judged is None:
            continue
        period_s = judged.regularity.period * ts
        if any(abs(period_s / c.period_s - 1.0) <= MAX_PERIOD_MISMATCH for c in components):
            continue
        components.append(
            OscillationComponent(
                period_s=period_s,
                regularity=judged.regularity.regularity,
                strength=judged.regularity.strength,
                peak_ratio=judged.peak_ratio,
                amplitude=judged.amplitude * scale,
                share=judged.share,
            )
        )
    components.sort(key=lambda c: c.amplitude**2 * c.share, reverse=True)
    return components


def describe_component(
    filled: FloatArray, ts: float, period_s: float, regularity: float
) -> OscillationComponent:
    r"""Strength, peak ratio, share and amplitude of an oscillation found by another test.

    Used for the oscillation of the whole-signal ACF test, which needs no band-pass filter:
    the component is band-passed to :math:`[f_0/1.5,\, 1.5 f_0]` for its strength, presence
    and amplitude; its peak ratio is reported as measured (it may be below 8, as for an
    oscillation that stops part-way through the window).
    """
    scaled, scale = scale_to_unit(filled)
    detrended = detrend_linear(hampel(scaled))
    n = detrended.size
    f0 = ts / period_s
    n_fft = sp_fft.next_fast_len(2 * n, real=True)
    padded = sp_fft.rfft(detrended, n_fft)
    frequency = np.arange(padded.size, dtype=np.float64) / n_fft
    keep = (frequency >= f0 / BAND_WIDTHS[0]) & (frequency <= min(f0 * BAND_WIDTHS[0], 0.5))
    band_spectrum = np.where(keep, padded, 0.0)
    acf = sp_fft.irfft(band_spectrum.real**2 + band_spectrum.imag**2, n_fft)[: n // 2 + 1]
    found = acf_regularity(acf / acf[0], n) if acf[0] > 0.0 else None
    band: FloatArray = sp_fft.irfft(band_spectrum, n_fft)[:n]
    share, amplitude = _presence(band, period_s / ts)
    spectrum = _Spectrum.of(detrended)
    ratio = peak_ratio(spectrum.frequency, spectrum.power, f0)
    return OscillationComponent(
        period_s=period_s,
        regularity=regularity,
        strength=0.0 if found is None else found.strength,
        peak_ratio=0.0 if math.isnan(ratio) else ratio,
        amplitude=amplitude * scale,
        share=share,
    )
