"""Detect an oscillation: ACF zero-crossing regularity, then a band-passed filter bank."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft

from clpm_shared.analytics.autocorrelation import MIN_CROSSINGS, acf_regularity, autocorrelation
from clpm_shared.analytics.multiple_oscillations import (
    MAX_PERIOD_MISMATCH,
    OscillationComponent,
    describe_component,
    significant_components,
)
from clpm_shared.analytics.reversals import count_reversals
from clpm_shared.analytics.signal_preparation import (
    FloatArray,
    as_float_array,
    checked_sample_period,
    detrend_linear,
    fill_gaps,
    scale_to_unit,
)

MIN_SAMPLES = 24
"""Fewer samples than this cannot hold three periods of the shortest detectable oscillation."""

MIN_SAMPLES_PER_PERIOD = 4.0
"""Shortest detectable period in samples; faster "oscillations" are sampling artefacts."""

MIN_PERIODS_IN_WINDOW = 3.0
"""An oscillation must repeat at least this often in the window (KPI_SPEC)."""

REGULARITY_THRESHOLD = 1.0
"""r > 1 means the intervals vary by less than a third of their mean (Thornhill et al. 2003)."""

MIN_PERIODIC_STRENGTH = 0.3
"""The ACF peak one period out, divided by the taper 1 − T_p/N of the biased estimator, must
reach this: a periodic signal keeps its correlation a period later, noise whose ACF happens to
cross zero at regular lags does not (cf. the ACF decay ratio of Miao & Seborg 1999)."""

FEW_PERIODS_IN_WINDOW = 6.0
"""Below this many periods in the window the ACF one period out is estimated from few cycles."""

MIN_PERIODIC_STRENGTH_FEW_PERIODS = 0.6
"""The periodic strength needed when fewer than :data:`FEW_PERIODS_IN_WINDOW` periods fit: with
3.5-6 cycles, the slow wander of a healthy loop (load disturbances the controller removes)
crosses zero regularly by chance and keeps 0.3-0.6 of its correlation a period later (10 of 100
simulated healthy loops at 1-h windows were called oscillating with the 0.3 guard alone, at
periods of 460-1,020 s; 3 with this one, 11 of another 300 and 1), while a periodic component
of at least 60 % of the variance is not chance. The price: a weak oscillation (half the wander's
size) seen for fewer than six cycles is missed. Eight cycles instead of six removed the rest but
also one slow sticky-valve cycle of the diagnosis benchmark's hold-out set."""

NO_VARIATION = "no variation left after removing the linear trend"

RELATIVE_VARIATION_FLOOR = 1e-10
"""A detrended signal whose std is below this fraction of its peak magnitude is flat."""


@dataclass(frozen=True, slots=True)
class OscillationResult:
    r"""Outcome of :func:`detect_oscillation`.

    Attributes
    ----------
    oscillating : bool
        True when a regular oscillation repeats at least three times in the window.
    period_s : float or None
        Estimated period :math:`T_p` in seconds (also when not regular enough), None when
        the ACF has too few zero crossings.
    regularity : float or None
        :math:`r = \frac{1}{3}\,\overline{T_p}/\sigma_{T_p}`, capped at 100.
    amplitude : float or None
        Half the peak-to-peak swing of the band-passed signal, in the units of ``x``;
        estimated only for a regular, strong enough oscillation (None otherwise).
    reason : str or None
        Why the signal was not judged oscillating, or why no period could be estimated.
    assessed : bool
        False when the input could not be judged at all (too short, too many missing
        samples); ``oscillating`` is then False but means "unknown".
    """

    oscillating: bool
    period_s: float | None
    regularity: float | None
    amplitude: float | None
    reason: str | None = None
    assessed: bool = True


def _not_assessed(reason: str) -> OscillationResult:
    return OscillationResult(False, None, None, None, reason=reason, assessed=False)


def _band_passed_amplitude(
    spectrum: npt.NDArray[np.complex128], n_fft: int, n: int, period_samples: float
) -> float:
    """Median half peak-to-peak per period of the signal band-passed to [f0/1.5, 1.5·f0]."""
    f0 = 1.0 / period_samples
    frequency = np.arange(spectrum.size, dtype=np.float64) / n_fft
    keep = (frequency >= f0 / 1.5) & (frequency <= 1.5 * f0)
    band = sp_fft.irfft(np.where(keep, spectrum, 0.0), n_fft)[:n]
    cycle = max(round(period_samples), 1)
    cycles = n // cycle
    if cycles < 1:
        return float(np.ptp(band) / 2.0)
    segments = band[: cycles * cycle].reshape(cycles, cycle)
    return float(np.median(np.ptp(segments, axis=1)) / 2.0)


def detect_regular_oscillation(x: npt.ArrayLike, ts: float) -> OscillationResult:
    r"""Detect a regular oscillation with the ACF zero-crossing method on the whole signal.

    Method of Thornhill, Huang & Zhang (2003), "Detection of multiple oscillations in
    control loops", J. Process Control 13(1), 91-100:

    1. Missing samples (NaN/inf, at most 20 %) are linearly interpolated and a
       least-squares line is removed.
    2. The biased autocorrelation :math:`\rho(k)` is computed (FFT, zero padded) up to
       :math:`N/2` lags.
    3. The first eleven zero crossings :math:`z_0 < z_1 < \dots` of :math:`\rho` (linear
       interpolation between lags) give intervals :math:`\Delta_i = z_{i+1} - z_i`, each a
       half period, so :math:`T_{p,i} = 2\,\Delta_i\,t_s` and
       :math:`T_p = \overline{T_{p,i}}`. The interval from lag 0 to :math:`z_0` is a
       quarter period and is not used.
    4. Regularity :math:`r = \frac{1}{3}\,\overline{T_{p,i}}/\sigma_{T_{p,i}}`.

    The signal is called oscillating when :math:`r > 1`, at least three periods fit in the
    window (:math:`N t_s \ge 3 T_p`) and the ACF has at least four zero crossings (so
    periods up to about :math:`N t_s/3.5` are detectable), the period is at least four
    samples, and two guards against false positives hold:

    * the ACF one period out keeps at least 0.3 of the correlation of a periodic signal,
      :math:`\max_{z_1<k<z_2}\rho(k)/(1 - T_p/N) \ge 0.3` (the biased estimator tapers as
      :math:`1-k/N`), and at least 0.6 when fewer than six periods fit in the window (the
      estimate then rests on few cycles); random walks, held/compressed noise and the slow
      wander of a healthy loop cross zero at fairly regular lags by chance but lose their
      correlation (cf. the ACF decay ratio of Miao & Seborg 1999, "Automatic detection of
      excessively oscillatory feedback control loops");
    * the raw signal reverses direction by more than the amplitude at least once per period,
      which rejects the sawtooth left when a slowly ramping, quantised signal is detrended.

    The amplitude is half the peak-to-peak swing, median over periods, of the signal
    band-passed (FFT mask) to :math:`[f_0/1.5,\,1.5 f_0]`.

    This test sees the component that dominates the whole signal's ACF; drift, a second
    oscillation or noise make it miss the rest. :func:`detect_oscillation` adds the
    filter bank of :func:`detect_oscillations`.

    Parameters
    ----------
    x : array_like
        Uniformly sampled signal (control error in automatic, PV in manual).
    ts : float
        Sample period in seconds (> 0).

    Returns
    -------
    OscillationResult
        White noise, a random walk, a ramp, a single step or a constant signal are not
        oscillating; input that cannot be judged gives ``assessed=False`` with a reason.

    Raises
    ------
    ValueError
        If ``ts`` is not a positive finite number.
    """
    ts = checked_sample_period(ts)
    filled = _prepared(x)
    if isinstance(filled, OscillationResult):
        return filled
    return _regular_oscillation(filled, ts)


def _prepared(x: npt.ArrayLike) -> FloatArray | OscillationResult:
    """Gap-filled signal, or the not-assessed result explaining why there is none."""
    raw = as_float_array(x)
    n = raw.size
    if n < MIN_SAMPLES:
        return _not_assessed(f"too few samples ({n} < {MIN_SAMPLES})")
    filled = fill_gaps(raw)
    if filled is None:
        return _not_assessed("more than 20 % of the samples are missing")
    return filled


def _regular_oscillation(filled: FloatArray, ts: float) -> OscillationResult:
    n = filled.size
    scaled, scale = scale_to_unit(filled)
    detrended = detrend_linear(scaled)
    if math.sqrt(float(detrended @ detrended) / n) <= RELATIVE_VARIATION_FLOOR:
        return OscillationResult(False, None, None, None, reason=NO_VARIATION)

    n_fft = sp_fft.next_fast_len(2 * n, real=True)
    acf, spectrum = autocorrelation(detrended, n_fft)
    found = acf_regularity(acf, n)
    if found is None:
        return OscillationResult(
            False,
            None,
            None,
            None,
            reason=f"autocorrelation has fewer than {MIN_CROSSINGS} zero crossings",
        )
    mean_period, regularity = found.period, found.regularity
    period_s = mean_period * ts
    amplitude: float | None = None

    reason: str | None = None
    if regularity <= REGULARITY_THRESHOLD:
        reason = f"irregular autocorrelation zero crossings (r = {regularity:.2f} <= 1)"
    elif mean_period < MIN_SAMPLES_PER_PERIOD:
        reason = f"period shorter than {MIN_SAMPLES_PER_PERIOD:g} samples"
    elif n < MIN_PERIODS_IN_WINDOW * mean_period:
        reason = f"fewer than {MIN_PERIODS_IN_WINDOW:g} periods in the window"
    elif found.strength < (
        MIN_PERIODIC_STRENGTH_FEW_PERIODS
        if n < FEW_PERIODS_IN_WINDOW * mean_period
        else MIN_PERIODIC_STRENGTH
    ):
        reason = "autocorrelation one period later is too weak for a periodic signal"
    else:
        amplitude_unit = _band_passed_amplitude(spectrum, n_fft, n, mean_period)
        amplitude = amplitude_unit * scale
        if count_reversals(scaled, amplitude_unit) < n / mean_period:
            reason = "signal does not reverse direction once per period (trend or quantisation)"
    return OscillationResult(
        oscillating=reason is None,
        period_s=period_s,
        regularity=regularity,
        amplitude=amplitude,
        reason=reason,
    )


def detect_oscillation(x: npt.ArrayLike, ts: float) -> OscillationResult:
    r"""Detect an oscillation: the whole-signal ACF test, then a band-passed filter bank.

    1. :func:`detect_regular_oscillation` (Thornhill, Huang & Zhang 2003, ACF zero-crossing
       regularity :math:`r > 1` of the detrended signal, at least three periods, periodic
       strength and reversal guards). When it finds an oscillation, that is the answer.
    2. Otherwise the filter bank of :func:`detect_oscillations` (Hampel outlier filter;
       the largest spectral peaks band-passed and each judged by its own ACF regularity,
       at least five periods and significance tests of the spectral peak against its
       flanks and against red noise) looks for a component that drift, noise, outliers or
       a second oscillation hid from the whole-signal ACF. The largest significant
       component (amplitude² x share of the window) is reported.

    On the 39 real ISDB loops of the oscillation benchmark (controller outputs) step 1
    alone finds 10 of 27 oscillating loops, both steps 22, with no false alarm on the 12
    non-oscillating ones (accuracy 0.56 -> 0.87; ``bench/realdata_oscillation.py``).

    Parameters
    ----------
    x : array_like
        Uniformly sampled signal (control error in automatic, PV in manual).
    ts : float
        Sample period in seconds (> 0).

    Returns
    -------
    OscillationResult
        Period, regularity and amplitude of the oscillation found; when none is found, the
        period and regularity step 1 measured and its reason. White noise, a random walk,
        a ramp, a single step or a constant signal are not oscillating; input that cannot be
        judged gives ``assessed=False`` with a reason.

    Raises
    ------
    ValueError
        If ``ts`` is not a positive finite number.
    """
    ts = checked_sample_period(ts)
    filled = _prepared(x)
    if isinstance(filled, OscillationResult):
        return filled
    whole = _regular_oscillation(filled, ts)
    if whole.oscillating or whole.reason == NO_VARIATION:
        return whole
    components = significant_components(filled, ts)
    if not components:
        return whole
    main = components[0]
    return OscillationResult(
        oscillating=True,
        period_s=main.period_s,
        regularity=main.regularity,
        amplitude=main.amplitude,
    )


def detect_oscillations(x: npt.ArrayLike, ts: float) -> tuple[OscillationComponent, ...]:
    r"""Every significant oscillation of ``x``: period, regularity, amplitude, share of window.

    Filter-bank method of Thornhill, Huang & Zhang (2003), "Detection of multiple
    oscillations in control loops", J. Process Control 13(1), 91-100, made robust for plant
    data:

    1. Missing samples (at most 20 %) are interpolated, outliers replaced by a Hampel
       filter (``multiple_oscillations.hampel``), and a least-squares line removed.
    2. Candidate frequencies :math:`f_0` are the three largest local maxima, at least 25 %
       apart, of the Hann-windowed periodogram (smoothed over :math:`\max(3, N/400)` bins),
       and the three largest of that periodogram divided by the AR(1) red-noise spectrum
       (which flattens drift), with periods of 3 samples to :math:`N/5`.
    3. Around each :math:`f_0` the signal is band-passed to :math:`[f_0/w,\, w f_0]`,
       :math:`w = 1.5` then 2 (zero-phase FFT mask), and the zero crossings of the
       band-passed ACF give the period :math:`T_p` and the regularity
       :math:`r = \frac{1}{3}\overline{T_p}/\sigma_{T_p}`.
    4. The component is significant when :math:`r > 1`, :math:`T_p` is within 25 % of
       :math:`1/f_0`, at least five periods fit in the window, the band-passed ACF one period
       later keeps :math:`\ge 0.3` (:math:`\ge 0.6` below ten periods; Miao & Seborg 1999),
       the spectral peak is significant (the band-pass filter makes band-limited noise
       look regular; a real oscillation also concentrates power), and the cleaned signal
       reverses by more than the amplitude about once per period where the component is
       present (rejects the sawtooth of a detrended quantised ramp). The peak is
       significant when (a) it stands 9 dB above its local power-law background
       (``multiple_oscillations.peak_ratio`` :math:`R \ge 8`), (b) :math:`R` exceeds the
       :math:`F(\nu_p, \nu_b)` quantile of chance for the degrees of freedom of the peak
       and flank bins (:math:`\nu = 2k/1.5` for k Hann-windowed bins; family-wise 1 %,
       Bonferroni over the frequency bins), and (c) the peak power over the AR(1)
       red-noise spectrum of the signal (``multiple_oscillations.red_noise_spectrum``)
       exceeds the :math:`\chi^2_{\nu_p}/\nu_p` quantile (1 % over the six candidates;
       Gilman et al. 1963, Torrence & Compo 1998): drifting first-order noise has no
       peak, only a knee; and (d) the peak's mean power exceeds that of each flank (a local
       maximum: the edge of low-pass filtered or interpolated noise is not a peak).
    5. Presence: the Hilbert envelope :math:`|x_b + j\mathcal{H}x_b|` of the band-passed
       component, smoothed over one period, is present where it reaches half its 90th
       percentile; ``share`` is that fraction of the window (an intermittent oscillation
       in 40 % of the window gives about 0.4) and ``amplitude`` the median envelope there.

    Components whose periods agree within 25 % are reported once. An oscillation that
    :func:`detect_regular_oscillation` finds in the whole signal is always reported (its
    peak ratio as measured), so every oscillation :func:`detect_oscillation` reports is
    among these components.

    Parameters
    ----------
    x : array_like
        Uniformly sampled signal (controller output, control error or PV).
    ts : float
        Sample period in seconds (> 0).

    Returns
    -------
    tuple of OscillationComponent
        Largest first (by :math:`\text{amplitude}^2 \cdot \text{share}`); empty when nothing
        is significant or the signal cannot be judged (shorter than 24 samples, more than
        20 % missing, constant).

    Raises
    ------
    ValueError
        If ``ts`` is not a positive finite number.
    """
    ts = checked_sample_period(ts)
    filled = _prepared(x)
    if isinstance(filled, OscillationResult):
        return ()
    whole = _regular_oscillation(filled, ts)
    components = significant_components(filled, ts)
    if (
        whole.oscillating
        and whole.period_s is not None
        and whole.regularity is not None
        and not any(
            abs(c.period_s / whole.period_s - 1.0) <= MAX_PERIOD_MISMATCH for c in components
        )
    ):
        components.append(describe_component(filled, ts, whole.period_s, whole.regularity))
        components.sort(key=lambda c: c.amplitude**2 * c.share, reverse=True)
    return tuple(components)
