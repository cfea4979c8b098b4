"""Valve stiction from closed-loop PV and OP data: three tests vote on one verdict.

Stiction is judged only on an oscillating loop (:func:`detect_oscillation`, or the valve
cycle of :func:`valve_cycle` when noise, drift and set-point steps make the cycle too
irregular for the KPI test): a valve that sticks and slips drives the loop into a limit
cycle, and without that cycle routine data carries no stiction signature. Three published,
non-invasive tests look at different properties of the cycle and vote:

* **shape — curve fitting** (He, Wang, Pottmann & Qin 2007): a sticky valve in a
  self-regulating loop makes OP (the integral of a square-like error) triangular; in an
  integrating loop (level) the PV itself becomes triangular. A linear cause (external
  sinusoid, aggressive tuning) leaves them sinusoidal;
* **statistics — non-Gaussianity** (Choudhury, Shah & Thornhill 2004, used for stiction by
  Choudhury et al. 2006): a linear loop driven by noise rings with a Gaussian amplitude
  distribution, a non-linear limit cycle is deterministic;
* **PV–OP plot — ellipse orbit** (Choudhury, Shah, Thornhill & Shook 2006): the filtered
  PV–OP plot of a limit cycle runs steadily round the fitted ellipse, that of Gaussian
  ringing wanders in and out (Rayleigh-distributed radius). It sees the steady amplitude
  the non-Gaussianity test sees, in two dimensions and a wider band: a second opinion on
  the limit cycle, not a third independent property.

The shape test rejects external sinusoids, the two limit-cycle tests reject loops that
ring because they are tuned too aggressively; each alone confuses one of them with
stiction, so the shape vote is required and the limit-cycle votes must not outweigh it
(rule in :func:`stiction_index`). The apparent stiction band is quantified from the same
PV–OP ellipse. The width of that ellipse (OP chord relative to the OP range) does not vote,
nor does Horch's (1999) OP–PV cross-correlation, which reads the same phase: OP is the
controller's linear response to PV, so their phase at the oscillation frequency is set by
the controller whether the valve sticks or not, and Horch's odd/even rule holds only for
processes much faster than the cycle (on the simulated flow loops, whose PV filter and
time constant are not negligible against the cycle, the OP–PV phase of sticky and of
aggressively tuned loops overlaps).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft

from clpm_shared.analytics.oscillation import (
    OscillationResult,
    detect_oscillation,
    detect_regular_oscillation,
)
from clpm_shared.analytics.signal_preparation import (
    FloatArray,
    as_float_array,
    detrend_linear,
    fill_gaps,
)

StictionVerdict = Literal["stiction", "no_stiction", "undetermined", "no_oscillation"]

LOOP_TYPES: Final = frozenset({"flow", "pressure", "level", "temperature", "other"})
"""Loop types of ``loop_config.loop_type``."""

INTEGRATING_LOOP_TYPES: Final = frozenset({"level"})
"""Loop types whose process integrates the valve flow (PV is the integral of the flow)."""

STICTION_THRESHOLD: Final = 0.6
"""He et al. (2007): a curve-fitting index SI above this reads as stiction."""

NO_STICTION_THRESHOLD: Final = 0.4
"""He et al. (2007): a curve-fitting index SI below this reads as no stiction."""

LINEAR_RINGING_MAX: Final = 0.15
"""Non-Gaussianity score at or below which (κ >= 2.775) the oscillation is Gaussian ringing
of a linear loop: it vetoes a stiction verdict and on its own says "no stiction"."""

HARMONICS_KEPT: Final = 7.5
"""Low-pass cut-off in multiples of the oscillation frequency for curve fitting: keeps
harmonics 1, 3, 5 and 7, which carry the corners of a triangle, removes the noise above."""

MIN_SAMPLES_PER_PERIOD: Final = 16.0
"""Shorter periods (in samples) leave too few points per half cycle to tell shapes apart."""

MIN_HALF_CYCLES: Final = 3
"""Fewer usable half cycles than this cannot support a curve-fitting verdict."""

MIN_HALF_CYCLE_SAMPLES: Final = 6
"""A half cycle needs this many samples to fit four parameters with residual left over."""

SATURATED_SHARE: Final = 0.05
"""Share of samples pinned at the OP extreme above which OP is taken as saturated."""

RAYLEIGH_VARIATION: Final = math.sqrt(4.0 / math.pi - 1.0)
"""Coefficient of variation of a Rayleigh-distributed radius: the filtered PV–OP orbit of
Gaussian ringing (a linear loop excited by noise), for which the ellipse score is 0."""

ELLIPSE_FOR: Final = 0.3
"""Ellipse-orbit score at or above which the PV–OP plot is a steady limit cycle (orbit
radius varying by less than 70 % of Gaussian ringing): a vote for stiction."""

ELLIPSE_AGAINST: Final = 0.1
"""Ellipse-orbit score below which the PV–OP plot wanders like Gaussian ringing: a vote
against stiction."""

_GRID: Final = 33
"""Grid points for the one non-linear parameter of each fitted shape."""

VALVE_BAND_WIDTH: Final = 3.0
"""The valve-cycle gate keeps :math:`[f_0/3,\\,3 f_0]` around the spectral peak :math:`f_0`:
the fundamental and the third harmonic of a triangle, without load drift or noise."""

VALVE_CYCLE_MIN_PERIODS: Final = 5.0
"""Periods the valve-cycle gate asks for in the window: it drops the "correlation one period
later" guard of the KPI test, so a slow wander of three or four swings (a sluggish loop)
must not pass as a cycle."""


@dataclass(frozen=True)
class StictionResult:
    """Outcome of :func:`stiction_index`.

    Attributes
    ----------
    verdict : {"stiction", "no_stiction", "undetermined", "no_oscillation"}
        "no_oscillation" whenever neither PV nor OP oscillates regularly: stiction is then
        not judged (never "stiction").
    index : float or None
        Combined stiction index in [0, 1], the mean of the method scores (high =
        stiction-like; the verdict follows the vote rule of step 5 of
        :func:`stiction_index`).
        None when not computable (see ``reason``).
    confidence : float
        Confidence in the verdict, 0-1 (0 for "undetermined" and "no_oscillation").
    method_scores : Mapping[str, float]
        Per method, in [0, 1] with 1 = stiction-like: ``curve_fit`` (He et al. SI),
        ``non_gaussianity`` (limit-cycle score) and ``ellipse`` (PV–OP ellipse-orbit
        score, absent when not computable); ``kurtosis`` and ``orbit_variation`` are the raw
        statistics behind the latter two.
    apparent_stiction : float or None
        Apparent stiction band of the PV–OP ellipse (Choudhury et al. 2006) in OP units (%
        of span when OP is in %). Computed for every oscillating loop; it measures the
        valve only when the verdict is "stiction".
    period_s : float or None
        Oscillation period used, seconds.
    reason : str or None
        Why the index is None or no verdict could be reached.
    method_votes : Mapping[str, int]
        Vote of each test (:func:`method_votes`): +1 stiction-like, -1 linear cause, 0
        undecided; empty when the tests did not run.
    cycle_source : str or None
        Where the period came from: "given" (``period_s`` argument), "pv" or "op"
        (:func:`detect_oscillation`), "valve_band" (:func:`valve_cycle` on the band-passed
        valve signal: the loop is not oscillating by the KPI test, only the valve cycles).
    """

    verdict: StictionVerdict
    index: float | None
    confidence: float
    method_scores: Mapping[str, float] = field(default_factory=dict)
    apparent_stiction: float | None = None
    period_s: float | None = None
    reason: str | None = None
    cycle_source: str | None = None
    method_votes: Mapping[str, int] = field(default_factory=dict)


def _mirror_spectrum(
    x: FloatArray, ts: float
) -> tuple[npt.NDArray[np.complex128], FloatArray, int]:
    """Spectrum of ``x`` extended by its mirror image (no wrap-around step at the edges)."""
    n_fft = sp_fft.next_fast_len(2 * x.size, real=True)
    spectrum = sp_fft.rfft(np.concatenate((x, x[::-1])), n_fft)
    frequency = np.arange(spectrum.size, dtype=np.float64) / (n_fft * ts)
    return spectrum, frequency, n_fft


def _lowpass(x: FloatArray, ts: float, cutoff_hz: float) -> FloatArray:
    """Zero-phase low-pass (FFT mask) with a raised-cosine roll-off from 0.8 to 1.2 cut-off."""
    spectrum, frequency, n_fft = _mirror_spectrum(x, ts)
    lo, hi = 0.8 * cutoff_hz, 1.2 * cutoff_hz
    ramp = np.clip((hi - frequency) / (hi - lo), 0.0, 1.0)
    mask = 0.5 - 0.5 * np.cos(np.pi * ramp)
    filtered: FloatArray = sp_fft.irfft(spectrum * mask, n_fft)[: x.size]
    return filtered


def _bandpass(x: FloatArray, ts: float, low_hz: float, high_hz: float) -> FloatArray:
    """Zero-phase band-pass (FFT mask) keeping ``low_hz <= f <= high_hz``."""
    spectrum, frequency, n_fft = _mirror_spectrum(x, ts)
    keep = (frequency >= low_hz) & (frequency <= high_hz)
    filtered: FloatArray = sp_fft.irfft(np.where(keep, spectrum, 0.0), n_fft)[: x.size]
    return filtered


def half_cycles(y: FloatArray, half_period: float) -> list[tuple[int, int]]:
    """Index ranges ``[start, stop)`` between consecutive zero crossings of ``y``.

    A crossing only counts when ``y`` goes from below ``-h`` to above ``+h`` (or back), with
    hysteresis ``h = 0.25 std(y)``, so noise chattering around zero does not split a half
    cycle; the boundary is the last sign change before the hysteresis band is left. Ranges
    shorter than 0.4 or longer than 1.8 expected half periods (in samples) are dropped, as
    are the incomplete first and last ones.
    """
    h = 0.25 * float(np.std(y))
    beyond = np.flatnonzero(np.abs(y) > h)
    if beyond.size < 2:
        return []
    state = np.sign(y[beyond])
    flips = np.flatnonzero(state[1:] != state[:-1]) + 1
    sign_changes = np.flatnonzero(np.signbit(y[1:]) != np.signbit(y[:-1])) + 1
    boundaries: list[int] = []
    for flip in flips:
        position = int(np.searchsorted(sign_changes, beyond[flip], side="right")) - 1
        if position >= 0 and sign_changes[position] > beyond[flip - 1]:
            boundaries.append(int(sign_changes[position]))
        else:  # no clean sign change between the two excursions: split midway
            boundaries.append(int((beyond[flip - 1] + beyond[flip]) // 2))
    ranges: list[tuple[int, int]] = []
    for start, stop in itertools.pairwise(boundaries):
        length = stop - start
        if length >= MIN_HALF_CYCLE_SAMPLES and 0.4 * half_period <= length <= 1.8 * half_period:
            ranges.append((start, stop))
    return ranges


def _best_linear_fit_sse(designs: FloatArray, y: FloatArray) -> float:
    """Smallest residual sum of squares of ``y`` over a stack of design matrices.

    ``designs`` has shape (G, L, 3); each is solved by least squares (batched normal
    equations with a tiny ridge for the rare degenerate design).
    """
    gram = np.einsum("gli,glj->gij", designs, designs)
    gram += 1e-9 * np.eye(3)[None, :, :]
    rhs = np.einsum("gli,l->gi", designs, y)
    coefficients = np.linalg.solve(gram, rhs[..., None])[..., 0]
    residual = y[None, :] - np.einsum("gli,gi->gl", designs, coefficients)
    return float(np.min(np.einsum("gl,gl->g", residual, residual)))


def _shape_errors(segment: FloatArray) -> tuple[float, float]:
    """Residual sums of squares of the best sinusoid and the best triangle on one half cycle.

    Time is scaled to ``u ∈ [0, 1]`` over the half cycle and the values to unit peak, so
    every half cycle weighs the same. Both shapes have four parameters, three linear and
    one found on a grid (He et al. 2007):

    * sinusoid :math:`a \\sin \\omega u + b \\cos \\omega u + c`,
      :math:`\\omega \\in [0.6\\pi, 1.6\\pi]` (a half period is :math:`\\omega = \\pi`);
    * triangle :math:`a + b u + c\\,\\max(u - u_p, 0)`, peak position
      :math:`u_p \\in [0.1, 0.9]` (two straight lines joined at the peak).
    """
    scale = float(np.max(np.abs(segment)))
    y = segment / scale if scale > 0 else segment
    u = np.linspace(0.0, 1.0, y.size)
    omegas = np.linspace(0.6 * np.pi, 1.6 * np.pi, _GRID)
    phase = omegas[:, None] * u[None, :]
    ones = np.ones_like(phase)
    sines = np.stack((np.sin(phase), np.cos(phase), ones), axis=-1)
    peaks = np.linspace(0.1, 0.9, _GRID)
    hinge = np.maximum(u[None, :] - peaks[:, None], 0.0)
    triangles = np.stack((ones, np.broadcast_to(u, hinge.shape), hinge), axis=-1)
    return _best_linear_fit_sse(sines, y), _best_linear_fit_sse(triangles, y)


def curve_fitting_index(x: FloatArray, ts: float, period_s: float) -> tuple[float | None, int]:
    """Stiction index of He, Wang, Pottmann & Qin (2007) by sinusoid/triangle curve fitting.

    The detrended signal is low-passed at 7.5 times the oscillation frequency (harmonics up
    to the seventh stay, noise above goes). Each half cycle between zero crossings is
    fitted by a sinusoid and by a triangular wave (:func:`_shape_errors`); with the mean
    squared errors over all half cycles

    .. math:: SI = \\frac{MSE_{sin}}{MSE_{sin} + MSE_{tri}}

    :math:`SI \\to 1` for a triangular wave (OP of a self-regulating loop with a sticky
    valve, PV of an integrating loop), :math:`SI \\to 0` for a sinusoid (linear causes);
    :math:`SI > 0.6` reads as stiction, :math:`SI < 0.4` as none, and noise pulls SI
    towards 0.5 (undecided).

    Parameters
    ----------
    x : ndarray
        Signal without NaN (OP for self-regulating loops, PV for integrating ones).
    ts : float
        Sample period, s.
    period_s : float
        Oscillation period, s.

    Returns
    -------
    (float or None, int)
        SI and the number of half cycles used; SI is None when the period is shorter than
        16 samples or fewer than three clean half cycles are found.

    References
    ----------
    Q. P. He, J. Wang, M. Pottmann, S. J. Qin, "A curve fitting method for detecting valve
    stiction in oscillating control loops", Ind. Eng. Chem. Res. 46 (2007) 4549-4560.
    """
    if period_s / ts < MIN_SAMPLES_PER_PERIOD:
        return None, 0
    cutoff = min(HARMONICS_KEPT / period_s, 0.4 / ts)
    filtered = _lowpass(detrend_linear(x), ts, cutoff)
    ranges = half_cycles(filtered, period_s / (2.0 * ts))
    if len(ranges) < MIN_HALF_CYCLES:
        return None, len(ranges)
    errors = np.array([_shape_errors(filtered[start:stop]) for start, stop in ranges])
    samples = sum(stop - start for start, stop in ranges)
    mse_sin, mse_tri = errors.sum(axis=0) / samples
    total = mse_sin + mse_tri
    return (float(mse_sin / total) if total > 0.0 else 0.5), len(ranges)


def limit_cycle_non_gaussianity(
    op: FloatArray, pv: FloatArray, ts: float, period_s: float
) -> tuple[float, float]:
    """How deterministic the oscillation is: non-Gaussianity of the band-passed signals.

    Choudhury, Shah & Thornhill (2004) separate the causes of poor performance by their
    statistics: a linear loop driven by Gaussian noise (e.g. a loop tuned so aggressively
    that it rings) produces Gaussian signals, a non-linearity such as stiction produces a
    deterministic limit cycle. Here the statistic is the kurtosis of OP and PV band-passed
    to :math:`[0.7 f_0, 1.4 f_0]` around the oscillation frequency (half a period trimmed
    at each end against filter edge effects),

    .. math:: \\kappa = \\tfrac{1}{2}\\left(\\frac{E[o^4]}{E[o^2]^2}
              + \\frac{E[p^4]}{E[p^2]^2}\\right)

    A narrow-band Gaussian process keeps :math:`\\kappa = 3`, a sustained oscillation of
    constant amplitude has :math:`\\kappa = 1.5`; the score is :math:`(3 - \\kappa) / 1.5`
    clipped to [0, 1]. The fourth-order statistic replaces the paper's bicoherence because
    a symmetric stiction cycle has only odd harmonics, which the bicoherence (quadratic
    phase coupling) does not see. An external sinusoidal disturbance is deterministic too:
    the curve-fitting test tells it apart.

    Returns
    -------
    (float, float)
        The score in [0, 1] (1 = deterministic limit cycle) and :math:`\\kappa`.

    References
    ----------
    M. A. A. S. Choudhury, S. L. Shah, N. F. Thornhill, "Diagnosis of poor control-loop
    performance using higher-order statistics", Automatica 40 (2004) 1719-1728.
    """
    f0 = 1.0 / period_s
    edge = max(int(0.5 * period_s / ts), 1)
    kurtoses: list[float] = []
    for signal in (op, pv):
        band = _bandpass(detrend_linear(signal), ts, 0.7 * f0, 1.4 * f0)
        if band.size > 4 * edge:
            band = band[edge:-edge]
        band = band - band.mean()
        power = float(np.mean(band * band))
        if power <= 0.0:
            return 0.5, float("nan")
        kurtoses.append(float(np.mean(band**4)) / power**2)
    kurtosis = 0.5 * (kurtoses[0] + kurtoses[1])
    return float(np.clip((3.0 - kurtosis) / 1.5, 0.0, 1.0)), kurtosis


@dataclass(frozen=True)
class _Ellipse:
    """Conic fitted to band-passed OP (x) and PV (y), in coordinates scaled by their std."""

    a: float
    b: float
    c: float
    d: float
    e: float
    f: float
    x_scale: float
    y_scale: float


def _band_passed_orbit(
    op: FloatArray, pv: FloatArray, ts: float, period_s: float
) -> tuple[FloatArray, FloatArray]:
    """OP and PV band-passed to :math:`[0.5 f_0, 3.5 f_0]` (fundamental and third harmonic)."""
    f0 = 1.0 / period_s
    x = _bandpass(detrend_linear(op), ts, 0.5 * f0, 3.5 * f0)
    y = _bandpass(detrend_linear(pv), ts, 0.5 * f0, 3.5 * f0)
    return x, y


def _fit_ellipse(x: FloatArray, y: FloatArray) -> _Ellipse | None:
    """Direct least-squares ellipse fit (Fitzgibbon, Pilu & Fisher 1999) of the points (x, y).

    The general conic :math:`a x^2 + b x y + c y^2 + d x + e y + f = 0` is fitted to the
    points scaled by their standard deviations under the constraint :math:`4ac - b^2 = 1`,
    which only ellipses satisfy (numerically stable split of Halir & Flusser 1998). None
    when no ellipse fits (degenerate data).
    """
    sx = float(np.std(x)) or 1.0
    sy = float(np.std(y)) or 1.0
    xn, yn = x / sx, y / sy
    quadratic = np.column_stack((xn * xn, xn * yn, yn * yn))
    linear = np.column_stack((xn, yn, np.ones_like(xn)))
    s1, s2, s3 = quadratic.T @ quadratic, quadratic.T @ linear, linear.T @ linear
    try:
        t = -np.linalg.solve(s3, s2.T)
        reduced = s1 + s2 @ t
        constraint_inverse = np.array([[0.0, 0.0, 0.5], [0.0, -1.0, 0.0], [0.5, 0.0, 0.0]])
        eigenvalues, eigenvectors = np.linalg.eig(constraint_inverse @ reduced)
    except np.linalg.LinAlgError:
        return None
    vectors = np.real(eigenvectors)
    condition = 4.0 * vectors[0] * vectors[2] - vectors[1] ** 2
    candidates = np.flatnonzero(condition > 0)
    if candidates.size == 0 or not np.all(np.isfinite(eigenvalues)):
        return None
    a1 = vectors[:, candidates[0]]
    d, e, f = t @ a1
    return _Ellipse(float(a1[0]), float(a1[1]), float(a1[2]), float(d), float(e), float(f), sx, sy)


def apparent_stiction_band(op: FloatArray, pv: FloatArray, ts: float, period_s: float) -> float:
    """Apparent stiction: widest OP extent of the ellipse fitted to filtered PV vs OP.

    OP and PV are band-passed to :math:`[0.5 f_0, 3.5 f_0]` (fundamental and third harmonic
    of the oscillation), the general conic
    :math:`a x^2 + b x y + c y^2 + d x + e y + f = 0` (x = OP, y = PV) is fitted by the
    direct least-squares ellipse fit of Fitzgibbon, Pilu & Fisher (1999), and the band is
    the chord of that ellipse along the OP axis through its centre (the longest chord in
    that direction),

    .. math:: \\text{band} = \\frac{\\sqrt{(b y_0 + d)^2 - 4a(c y_0^2 + e y_0 + f)}}{|a|}

    with :math:`y_0` the PV coordinate of the centre. This is the apparent stiction of
    Choudhury et al. (equivalently :math:`2mn/\\sqrt{m^2\\sin^2\\alpha + n^2\\cos^2\\alpha}`
    for semi-axes m, n and tilt α), in OP units.

    References
    ----------
    M. A. A. S. Choudhury, S. L. Shah, N. F. Thornhill, D. S. Shook, "Automatic detection
    and quantification of stiction in control valves", Control Engineering Practice 14
    (2006) 1395-1412; A. Fitzgibbon, M. Pilu, R. B. Fisher, "Direct least square fitting of
    ellipses", IEEE Trans. PAMI 21 (1999) 476-480.
    """
    ellipse = _fit_ellipse(*_band_passed_orbit(op, pv, ts, period_s))
    if ellipse is None:
        return float("nan")
    a, b, c, d, e, f = ellipse.a, ellipse.b, ellipse.c, ellipse.d, ellipse.e, ellipse.f
    # centre of the conic: gradient zero
    determinant = 4.0 * a * c - b * b
    y0 = (b * d - 2.0 * a * e) / determinant
    discriminant = (b * y0 + d) ** 2 - 4.0 * a * (c * y0 * y0 + e * y0 + f)
    if discriminant <= 0.0 or a == 0.0:
        return 0.0
    return float(math.sqrt(discriminant) / abs(a) * ellipse.x_scale)


def ellipse_orbit_score(
    op: FloatArray, pv: FloatArray, ts: float, period_s: float
) -> tuple[float | None, float | None]:
    """How steadily the filtered PV–OP plot runs round the ellipse fitted to it.

    Choudhury, Shah, Thornhill & Shook (2006) fit an ellipse to the PV–OP plot of OP and
    PV filtered around the oscillation frequency; the fit describes the valve only when
    the plot is a closed orbit, the limit cycle a sticky valve drives. A linear loop that
    rings because it is tuned too aggressively is a resonance excited by noise: its
    filtered PV–OP plot wanders in and out like a two-dimensional narrow-band Gaussian
    process, whose radius is Rayleigh distributed. With the ellipse of
    :func:`_fit_ellipse` written as :math:`(z - z_0)^T P (z - z_0) = 1`
    (:math:`z = (x, y)` = band-passed OP and PV, :math:`[0.5 f_0, 3.5 f_0]`), each sample
    has the normalised radius :math:`\\rho = \\sqrt{(z - z_0)^T P (z - z_0)}` and

    .. math:: c = \\frac{\\operatorname{std}\\rho}{\\operatorname{mean}\\rho}, \\qquad
              E = \\operatorname{clip}\\left(1 - \\frac{c}{c_G},\\ 0,\\ 1\\right),
              \\quad c_G = \\sqrt{4/\\pi - 1} \\approx 0.523

    :math:`c_G` is the coefficient of variation of a Rayleigh radius (Gaussian ringing,
    :math:`E \\approx 0`); a steady closed orbit has :math:`c \\to 0`, :math:`E \\to 1`
    (harmonics of the stick-slip cycle and noise keep it below 1). One period is trimmed at
    each end against filter edge effects.

    The PV–OP plot carries no valve signature in its *width*: OP is the controller's linear
    response to PV, so the phase between them (and the OP chord of the ellipse relative to
    the OP range) is fixed by the controller at the oscillation frequency, sticky valve or
    not. What the plot does show is whether the loop runs a deterministic limit cycle; an
    external sinusoid does too, so this test is only combined with the shape test.

    Parameters
    ----------
    op, pv : ndarray
        Controller output and process value (or control error) without NaN; integrating
        loops too (their PV is as steady a closed orbit as a self-regulating one).
    ts : float
        Sample period, s.
    period_s : float
        Oscillation period, s.

    Returns
    -------
    (float or None, float or None)
        The score E in [0, 1] (1 = steady closed orbit) and the coefficient of variation c;
        both None when the window holds fewer than six periods or no ellipse fits.

    References
    ----------
    M. A. A. S. Choudhury, S. L. Shah, N. F. Thornhill, D. S. Shook, "Automatic detection
    and quantification of stiction in control valves", Control Engineering Practice 14
    (2006) 1395-1412; A. Fitzgibbon, M. Pilu, R. B. Fisher, "Direct least square fitting of
    ellipses", IEEE Trans. PAMI 21 (1999) 476-480.
    """
    x, y = _band_passed_orbit(op, pv, ts, period_s)
    edge = max(round(period_s / ts), 1)
    if x.size < 6 * edge:
        return None, None
    ellipse = _fit_ellipse(x, y)
    if ellipse is None:
        return None, None
    a, b, c, d, e, f = ellipse.a, ellipse.b, ellipse.c, ellipse.d, ellipse.e, ellipse.f
    quadratic = np.array([[a, 0.5 * b], [0.5 * b, c]])
    try:
        centre = np.linalg.solve(2.0 * quadratic, np.array([-d, -e]))  # 4ac - b^2 > 0
    except np.linalg.LinAlgError:
        return None, None
    at_centre = float(centre @ quadratic @ centre + d * centre[0] + e * centre[1] + f)
    if at_centre == 0.0:
        return None, None
    eigenvalues, eigenvectors = np.linalg.eigh(quadratic / -at_centre)
    if not np.all(eigenvalues > 0.0):
        return None, None
    points = np.column_stack((x / ellipse.x_scale, y / ellipse.y_scale))[edge:-edge] - centre
    radius = np.hypot(*((points @ eigenvectors) * np.sqrt(eigenvalues)).T)
    mean_radius = float(np.mean(radius))
    if not mean_radius > 0.0:
        return None, None
    variation = float(np.std(radius)) / mean_radius
    return float(np.clip(1.0 - variation / RAYLEIGH_VARIATION, 0.0, 1.0)), variation


def valve_cycle(x: FloatArray, ts: float) -> OscillationResult:
    """Limit cycle of the signal a sticky valve shapes, judged on its band-passed spectrum peak.

    A stick-slip cycle is not strictly periodic: noise and load drift decide when the valve
    slips, so its period wanders, and drift and set-point steps add low-frequency power.
    The KPI test (:func:`detect_oscillation`) then rightly refuses to call the control error
    oscillating, while the OP of a self-regulating loop (PV of an integrating one) is still
    a clear sawtooth. Following Thornhill, Huang & Zhang (2003), who band-pass the signal
    around a spectral peak before the ACF zero-crossing analysis:

    1. detrend, and find the peak :math:`f_0` of :math:`f\\,P(f)` (periodogram of the
       mirror-extended signal, smoothed over five bins; the factor f flattens drift) among
       periods of 16 samples (needed by curve fitting) to N/5;
    2. band-pass to :math:`[f_0/3,\\,3 f_0]` (FFT mask: fundamental and third harmonic);
    3. ACF zero crossings of the band-passed signal (:func:`detect_regular_oscillation`):
       regularity :math:`r = \\frac{1}{3}\\overline{T_p}/\\sigma_{T_p} > 1` and at least
       :data:`VALVE_CYCLE_MIN_PERIODS` periods in the window.

    The gate drops the KPI test's "correlation one period later" guard, so it also passes
    band-limited noise now and then; it only opens the door to the stiction tests, whose
    non-Gaussianity test rejects Gaussian noise and whose curve fitting rejects sinusoids.

    Parameters
    ----------
    x : ndarray
        OP (self-regulating loop) or PV (integrating loop), without NaN.
    ts : float
        Sample period, s.

    Returns
    -------
    OscillationResult
        ``oscillating`` when the gate passes, with the period of the band-passed signal;
        ``amplitude`` is not estimated (None).
    """
    n = x.size
    longest = n / VALVE_CYCLE_MIN_PERIODS
    if longest < MIN_SAMPLES_PER_PERIOD:
        return OscillationResult(False, None, None, None, reason="window too short")
    detrended = detrend_linear(x)
    spectrum, frequency, _ = _mirror_spectrum(detrended, ts)
    cycles_per_sample = frequency * ts
    allowed = (cycles_per_sample >= 1.0 / longest) & (
        cycles_per_sample <= 1.0 / MIN_SAMPLES_PER_PERIOD
    )
    power = spectrum.real**2 + spectrum.imag**2
    score = np.convolve(power * frequency, np.ones(5) / 5.0, mode="same")
    score = np.where(allowed, score, 0.0)
    if not np.any(score > 0.0):
        return OscillationResult(False, None, None, None, reason="no spectral peak")
    peak_hz = float(frequency[int(np.argmax(score))])
    band = _bandpass(detrended, ts, peak_hz / VALVE_BAND_WIDTH, peak_hz * VALVE_BAND_WIDTH)
    found = detect_regular_oscillation(band, ts)
    period_s, regularity = found.period_s, found.regularity
    if period_s is None or regularity is None:
        return OscillationResult(False, None, None, None, reason=found.reason)
    reason: str | None = None
    if regularity <= 1.0:
        reason = f"irregular band-passed cycle (r = {regularity:.2f} <= 1)"
    elif period_s < MIN_SAMPLES_PER_PERIOD * ts:
        reason = f"period shorter than {MIN_SAMPLES_PER_PERIOD:g} samples"
    elif period_s * VALVE_CYCLE_MIN_PERIODS > n * ts:
        reason = f"fewer than {VALVE_CYCLE_MIN_PERIODS:g} periods in the window"
    return OscillationResult(reason is None, period_s, regularity, None, reason=reason)


def _oscillation_of(
    pv: FloatArray, op: FloatArray, ts: float, integrating: bool
) -> tuple[OscillationResult, str] | None:
    """The more regular oscillation of PV and OP, else the valve cycle, else None."""
    found = [(detect_oscillation(pv, ts), "pv"), (detect_oscillation(op, ts), "op")]
    oscillating = [(r, s) for r, s in found if r.oscillating and r.period_s is not None]
    if oscillating:
        return max(oscillating, key=lambda item: item[0].regularity or 0.0)
    cycle = valve_cycle(pv if integrating else op, ts)
    return (cycle, "valve_band") if cycle.oscillating else None


def _saturated_share(op: FloatArray) -> float:
    """Share of samples sitting exactly at the lowest or the highest OP value of the window."""
    span = float(np.ptp(op))
    if span <= 0.0:
        return 1.0
    tolerance = 1e-6 * span
    at_low = op <= float(op.min()) + tolerance
    at_high = op >= float(op.max()) - tolerance
    return float(max(at_low.mean(), at_high.mean()))


def method_votes(curve_fit: float, non_gaussianity: float, ellipse: float | None) -> dict[str, int]:
    """Vote of each stiction test: +1 stiction-like, -1 linear cause, 0 undecided.

    * curve fitting: +1 when :math:`SI > 0.6`, -1 when :math:`SI < 0.4` (He et al. 2007);
    * non-Gaussianity: +1 when :math:`G > 0.15`, -1 otherwise (Gaussian ringing);
    * PV–OP ellipse orbit: +1 when :math:`E \\ge 0.3`, -1 when :math:`E < 0.1`, 0 between
      or when not computable.
    """
    votes = {
        "curve_fit": 1
        if curve_fit > STICTION_THRESHOLD
        else -1
        if curve_fit < NO_STICTION_THRESHOLD
        else 0,
        "non_gaussianity": 1 if non_gaussianity > LINEAR_RINGING_MAX else -1,
        "ellipse": 0,
    }
    if ellipse is not None:
        votes["ellipse"] = 1 if ellipse >= ELLIPSE_FOR else -1 if ellipse < ELLIPSE_AGAINST else 0
    return votes


def combine_votes(votes: Mapping[str, int]) -> StictionVerdict:
    """Combine the three votes (rule of step 5 of :func:`stiction_index`)."""
    limit_cycle = votes["non_gaussianity"] + votes["ellipse"]
    if votes["curve_fit"] > 0 and limit_cycle >= 0:
        return "stiction"
    if votes["curve_fit"] < 0 or limit_cycle < 0:
        return "no_stiction"
    return "undetermined"


def stiction_index(
    pv: npt.ArrayLike,
    op: npt.ArrayLike,
    ts: float,
    loop_type: str = "flow",
    *,
    period_s: float | None = None,
) -> StictionResult:
    """Detect valve stiction in an oscillating loop from routine PV and OP data.

    1. The loop must oscillate: :func:`detect_oscillation` on PV and on OP (the more
       regular one gives the period :math:`T_p`); failing that, the valve cycle
       (:func:`valve_cycle`: Thornhill's :math:`r > 1` on the band-passed OP, PV for
       integrating loops, with at least five periods); otherwise "no_oscillation". A loop
       whose OP sits at a limit for more than 5 % of the window is "undetermined" (the
       cycle is shaped by saturation, not by the valve).
    2. Curve fitting, :math:`SI` (He et al. 2007, :func:`curve_fitting_index`): on OP for
       self-regulating loops, on PV for integrating ones (``loop_type == "level"``).
    3. Non-Gaussianity, :math:`G` (Choudhury et al. 2004,
       :func:`limit_cycle_non_gaussianity`) of OP and PV.
    4. PV–OP ellipse orbit, :math:`E` (Choudhury et al. 2006, :func:`ellipse_orbit_score`)
       of OP and PV, for every loop type.
    5. Votes (:func:`method_votes`): :math:`v_{SI}` = +1 for :math:`SI > 0.6`, -1 for
       :math:`SI < 0.4` (He et al.'s thresholds); :math:`v_G` = +1 for :math:`G > 0.15`,
       else -1 (Gaussian ringing); :math:`v_E` = +1 for :math:`E \\ge 0.3`, -1 for
       :math:`E < 0.1`, else 0. The shape vote is the only one that tells a limit cycle
       from an external sinusoid, the two limit-cycle votes the only ones that tell it from
       Gaussian ringing, so: "stiction" when :math:`v_{SI} = +1` and
       :math:`v_G + v_E \\ge 0` (the shape says stiction and the limit-cycle evidence is
       not against it on balance); "no_stiction" when :math:`v_{SI} = -1` or
       :math:`v_G + v_E < 0`; otherwise "undetermined" (:func:`combine_votes`). Without an
       ellipse vote (fewer than six periods) this is the two-test rule: stiction when
       :math:`SI > 0.6` and :math:`G > 0.15`. The combined index is the mean
       :math:`I = (SI + G + E) / 3` (:math:`(SI + G)/2` without E).
    6. Confidence: for "stiction" and "no_stiction" the mean over the tests of their
       margins :math:`|s - 0.5|/0.5`, counted only for a score s on the verdict's side of
       0.5, times :math:`q = \\min(1, \\max(0.5, r/3))` from the oscillation regularity r
       (0.75 when the period was given, 0.5 for a valve cycle whose regularity was measured
       after band-passing); 0 for "undetermined".
    7. Apparent stiction band from the PV–OP ellipse (Choudhury et al. 2006,
       :func:`apparent_stiction_band`); for integrating loops the PV rate of change stands
       in for the flow through the valve.

    Parameters
    ----------
    pv, op : array_like
        Process value and controller output, same length, uniformly sampled; NaN marks a
        missing sample (at most 20 % missing, gaps are interpolated).
    ts : float
        Sample period in seconds (> 0).
    loop_type : str
        One of "flow", "pressure", "level", "temperature", "other"; "level" is treated as
        an integrating process.
    period_s : float, optional
        Oscillation period already established by the caller (e.g. the KPI oscillation of
        the control error); step 1 then trusts it instead of detecting one on PV and OP.

    Returns
    -------
    StictionResult

    Raises
    ------
    ValueError
        Naming the parameter: ``ts`` not positive, ``op`` of another length than ``pv``,
        ``loop_type`` unknown, ``period_s`` not positive.

    References
    ----------
    He et al. (2007); Choudhury, Shah & Thornhill (2004); Choudhury et al. (2006) — see
    the functions above.
    """
    if not (isinstance(ts, int | float) and math.isfinite(ts) and ts > 0):
        raise ValueError(f"ts: sample period must be a positive finite number, got {ts!r}")
    if loop_type not in LOOP_TYPES:
        raise ValueError(f"loop_type: must be one of {sorted(LOOP_TYPES)}, got {loop_type!r}")
    if period_s is not None and not (math.isfinite(period_s) and period_s > 0):
        raise ValueError(f"period_s: must be a positive number of seconds, got {period_s!r}")
    pv_raw = as_float_array(pv)
    op_raw = as_float_array(op)
    if op_raw.size != pv_raw.size:
        raise ValueError(
            f"op: must have the same length as pv ({op_raw.size} != {pv_raw.size} samples)"
        )
    ts = float(ts)
    pv_filled = fill_gaps(pv_raw) if pv_raw.size else None
    op_filled = fill_gaps(op_raw) if op_raw.size else None
    if pv_filled is None or op_filled is None:
        return StictionResult(
            "undetermined", None, 0.0, reason="no samples, or more than 20 % of PV or OP missing"
        )
    integrating = loop_type in INTEGRATING_LOOP_TYPES
    found = (
        _oscillation_of(pv_filled, op_filled, ts, integrating)
        if period_s is None
        else (OscillationResult(True, float(period_s), None, None), "given")
    )
    if found is None or found[0].period_s is None:
        return StictionResult(
            "no_oscillation",
            None,
            0.0,
            reason="neither PV nor OP oscillates regularly, nor does the valve cycle",
        )
    oscillation, source = found
    period_s = found[0].period_s
    if period_s < 3.0 * ts or period_s * 3.0 > ts * pv_filled.size:
        return StictionResult(
            "undetermined",
            None,
            0.0,
            period_s=period_s,
            reason="the window must hold at least three periods of three samples or more",
            cycle_source=source,
        )
    flow = np.gradient(pv_filled) / ts if integrating else pv_filled
    band = apparent_stiction_band(op_filled, flow, ts, period_s)
    apparent = round(band, 4) if math.isfinite(band) else None

    saturated = _saturated_share(op_filled)
    if saturated > SATURATED_SHARE:
        return StictionResult(
            "undetermined",
            None,
            0.0,
            apparent_stiction=apparent,
            period_s=period_s,
            cycle_source=source,
            reason=f"OP pinned at a limit for {100 * saturated:.0f} % of the window",
        )
    si, used = curve_fitting_index(pv_filled if integrating else op_filled, ts, period_s)
    non_gaussianity, kurtosis = limit_cycle_non_gaussianity(op_filled, pv_filled, ts, period_s)
    scores = {"non_gaussianity": round(non_gaussianity, 4)}
    ellipse, orbit_variation = ellipse_orbit_score(op_filled, pv_filled, ts, period_s)
    if ellipse is not None and orbit_variation is not None:
        scores["ellipse"] = round(ellipse, 4)
        scores["orbit_variation"] = round(orbit_variation, 4)
    if math.isfinite(kurtosis):
        scores["kurtosis"] = round(kurtosis, 4)
    if si is None:
        return StictionResult(
            "undetermined",
            None,
            0.0,
            method_scores=scores,
            apparent_stiction=apparent,
            period_s=period_s,
            cycle_source=source,
            reason=(
                f"curve fitting needs >= {MIN_SAMPLES_PER_PERIOD:g} samples per period and "
                f">= {MIN_HALF_CYCLES} clean half cycles (period {period_s / ts:.1f} samples, "
                f"{used} half cycles)"
            ),
        )
    scores["curve_fit"] = round(si, 4)
    votes = method_votes(si, non_gaussianity, ellipse)
    verdict = combine_votes(votes)
    used_scores = [si, non_gaussianity] + ([] if ellipse is None else [ellipse])
    index = sum(used_scores) / len(used_scores)
    confidence = 0.0
    if verdict != "undetermined":
        says_stiction = verdict == "stiction"
        margins = [
            abs(value - 0.5) / 0.5 if (value > 0.5) == says_stiction else 0.0
            for value in used_scores
        ]
        known = oscillation.regularity
        if source == "valve_band":  # band-passing makes any cycle look regular
            regularity = 0.5
        elif known is None:
            regularity = 0.75
        else:
            regularity = float(np.clip(known / 3.0, 0.5, 1.0))
        confidence = float(np.clip(sum(margins) / len(margins) * regularity, 0.0, 1.0))
    return StictionResult(
        verdict,
        round(index, 4),
        round(confidence, 4),
        method_scores=scores,
        method_votes=votes,
        apparent_stiction=apparent,
        period_s=period_s,
        cycle_source=source,
    )
