"""Why a loop performs badly: rule-based findings from KPIs, stiction tests and signal checks.

:func:`diagnose_loop` turns one loop's window into :class:`Finding` objects, each with a
category, a severity and a confidence (0-1), the numbers that led there and one sentence an
engineer can act on. The plant-wide view (which loops share
one oscillation, and its source) is :mod:`clpm_shared.analytics.plant_oscillation`.

Rules (thresholds are module constants, documented where they are defined):

* **mode_issue** — service factor below 95 %: the loop spent time outside its normal modes.
* **sensor_fault** — PV flatline, isolated spikes or samples outside the configured range.
* **sensor_noise** — measurement noise large compared with the PV span, or noise that makes
  up most of the PV's variation, lies mostly above the loop's closed-loop bandwidth
  (:mod:`clpm_shared.analytics.idle_index`) and moves the valve.
* **saturation** — OP at a limit for at least 5 % of the in-service time; with the PV away
  from SP that means the valve cannot deliver (sizing, or a load beyond its range).
* **oscillation** — the control error oscillates regularly (KPI oscillation, Thornhill,
  Huang & Zhang 2003), in the window or on its longest stretch at constant SP. Its cause is
  then judged by :func:`stiction_index` (an undecided window is judged again on that
  steady stretch): **stiction** when the combined vote of its three tests (curve fitting,
  non-Gaussianity, PV–OP ellipse orbit; each test's score and vote are in the evidence) says
  so; a loop the KPI test does not call oscillating is still reported as a sticky valve's
  oscillation when the valve signal cycles
  (:func:`~clpm_shared.analytics.stiction.valve_cycle`) and the vote says stiction;
  **external_disturbance** when the cycle is a
  steady deterministic sinusoid the loop's own linear dynamics would not sustain, or, for a
  cycle too slow for the KPI test (under two periods in a 15-minute window), when one
  sinusoid, fitted jointly with a straight line, explains at least 80 % of the control
  error's variance about that line (:func:`dominant_sinusoid`), or at least 60 % while
  the valve signal follows a sinusoid of the same period (80 % of its variance: the
  controller fights the cycle), and the valve signal is not triangular;
  **aggressive_tuning** when the cycle is Gaussian ringing (a lightly damped loop excited by
  noise) with frequent OP reversals.
* **sluggish_tuning** — no oscillation, a poor Harris index, a control error that stays
  correlated for long compared with the dead time, and an OP that hardly reverses;
  Hägglund's idle index (:func:`~clpm_shared.analytics.idle_index.idle_index`) above 0.4
  (OP and PV creeping back together after disturbances) raises the confidence, and so does
  a valve that creeps to its new position after set-point steps instead of kicking past it
  (:func:`~clpm_shared.analytics.setpoint_valve_response.valve_step_responses`).

Severity is the fault's impact (0-1): the share of the window it affects (time out of
normal mode, at an OP limit, frozen) or the share of the control error's variance it causes
(the least-squares sinusoid share of a cycle, :func:`cycle_share`; measurement noise; the
variance above the minimum-variance bound, 1 - Harris index).

The findings are then resolved to one root cause (:func:`resolve_root_cause`): the
:data:`PRECEDENCE` order, :data:`CONTRADICTORY_PAIRS` and :data:`INDEPENDENT_PAIRS`, with
their reasons, are described in :mod:`clpm_shared.analytics.verdict`. A finding the root
cause explains is kept in its ``explained``; a contradicting one goes to
``LoopDiagnosis.dropped``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

import numpy as np

from clpm_shared.analytics.idle_index import (
    IDLE_FILTER_CORRELATION_SHARE,
    IDLE_MIN_DEVIATION_NOISE,
    IDLE_MIN_FILTER_SAMPLES,
    IDLE_SLUGGISH,
    closed_loop_bandwidth,
    high_frequency_share,
    idle_index,
)
from clpm_shared.analytics.kpis import KpiResult, compute_kpis, pv_span
from clpm_shared.analytics.loop_config import LoopConfig
from clpm_shared.analytics.loop_window import LoopWindow
from clpm_shared.analytics.oscillation import detect_oscillation
from clpm_shared.analytics.service_factor import summarise_modes
from clpm_shared.analytics.setpoint_valve_response import valve_step_responses
from clpm_shared.analytics.signal_preparation import FloatArray, detrend_linear
from clpm_shared.analytics.stiction import StictionResult, curve_fitting_index, stiction_index

Category = Literal[
    "oscillation",
    "stiction",
    "saturation",
    "aggressive_tuning",
    "sluggish_tuning",
    "sensor_fault",
    "external_disturbance",
    "mode_issue",
    "sensor_noise",
]
CATEGORIES: Final[tuple[str, ...]] = (
    "oscillation",
    "stiction",
    "saturation",
    "aggressive_tuning",
    "sluggish_tuning",
    "sensor_fault",
    "external_disturbance",
    "mode_issue",
    "sensor_noise",
)

PRECEDENCE: Final[tuple[str, ...]] = (
    "sensor_fault",
    "sensor_noise",
    "mode_issue",
    "saturation",
    "stiction",
    "aggressive_tuning",
    "sluggish_tuning",
    "external_disturbance",
    "oscillation",
)
"""Root-cause precedence, first wins (the reasons are in the module docstring)."""

CONTRADICTORY_PAIRS: Final[frozenset[frozenset[str]]] = frozenset(
    frozenset(pair)
    for pair in (
        # OP pinned at a limit: more gain cannot help ("increase the gain" is harmful)
        ("saturation", "sluggish_tuning"),
        # a valve that cannot move cannot cycle by itself, nor ring with the controller
        ("saturation", "aggressive_tuning"),
        # a frozen PV makes the controller wind up: the limit is not the valve's fault
        ("sensor_fault", "saturation"),
        ("sensor_fault", "sluggish_tuning"),
        ("sensor_fault", "aggressive_tuning"),
        # one cycle has one origin: inside the valve, the controller, or outside the loop
        ("stiction", "external_disturbance"),
        ("stiction", "aggressive_tuning"),
        ("aggressive_tuning", "external_disturbance"),
        # a controller cannot be too slow and too fast at once
        ("aggressive_tuning", "sluggish_tuning"),
        ("stiction", "sluggish_tuning"),
        ("sluggish_tuning", "external_disturbance"),
        # noise is not a cycle: a noisy transmitter does not make the loop ring
        ("sensor_noise", "aggressive_tuning"),
        ("sensor_noise", "sluggish_tuning"),
    )
)
"""Pairs of findings that cannot both be true of one loop in one window."""

INDEPENDENT_PAIRS: Final[frozenset[frozenset[str]]] = frozenset(
    frozenset(pair)
    for pair in (
        # different equipment, neither follows from the other
        ("sensor_noise", "stiction"),
        ("sensor_noise", "saturation"),
        ("sensor_noise", "mode_issue"),
        ("sensor_noise", "external_disturbance"),
        ("mode_issue", "stiction"),
        # spikes or an out-of-range transmitter do not make or hide a valve or a cycle
        ("sensor_fault", "stiction"),
        ("sensor_fault", "external_disturbance"),
        ("sensor_fault", "mode_issue"),
    )
)
"""Pairs of findings that are two problems, each reported (the root cause first)."""

Evidence = Mapping[str, float | int | str | bool | None]

MIN_SERVICE_FACTOR: Final = 0.95
"""Below this service factor the loop spent a notable time outside its normal modes."""

MIN_SERVICE_FOR_CAUSES: Final = 0.8
"""Oscillation and tuning causes are judged only when this share of the window is in service."""

SATURATION_SHARE: Final = 0.05
"""Share of in-service time at an OP limit that makes a saturation finding."""

NOISE_SHARE_OF_CONFIGURED_SPAN: Final = 0.02
"""Measurement noise (σ) above 2 % of the configured PV span is excessive."""

NOISE_SHARE_OF_VARIATION: Final = 0.85
"""Without a configured span: noise σ above 85 % of the control error's standard deviation
(after a linear detrend) means the PV moves mostly by measurement noise ..."""

OP_NOISE_PCT: Final = 0.2
"""... and when that noise also moves the valve by more than 0.2 % of the OP span per
sample (σ of the OP's sample-to-sample moves), the noise is excessive: a well-tuned loop on a
healthy transmitter stays near 0.1 %."""

NOISE_MIN_SHARE_ABOVE_BANDWIDTH: Final = 0.5
"""... and only when at least this share of the control error's variance lies above the
loop's closed-loop bandwidth (:func:`~clpm_shared.analytics.idle_index.high_frequency_share`
above :func:`~clpm_shared.analytics.idle_index.closed_loop_bandwidth`,
:math:`f_b = 1/(2\\pi\\tau_c)` with :math:`\\tau_c` the error's correlation time from lag 1):
variation the loop can act on is process, not measurement noise. An error with no
measurable correlation (white at this sample rate) counts as all above the bandwidth. On the
simulated fleet noisy transmitters put 0.75-0.9 of the error variance there; so do healthy
loops on a quiet process (their error is mostly noise too, only smaller): the share alone
does not make a finding, the valve movement does."""

SPIKE_SIGMAS: Final = 8.0
"""An isolated sample further than this many noise σ from its 5-point median is a spike."""

MIN_SPIKES: Final = 3
"""Fewer spikes than this in a window are not reported."""

OUT_OF_RANGE_SHARE: Final = 0.01
"""Share of samples outside [pv_lo, pv_hi] that makes a sensor finding."""

POOR_HARRIS: Final = 0.7
"""Harris index below this: variance clearly above the minimum-variance bound. The
sluggish rule asks for more (a long error correlation and a quiet valve), so the bound is
loose: in a quiet 15-minute window of a sluggish loop measurement noise makes up much of
the error and lifts the index to 0.5-0.7."""

SLUGGISH_CORRELATION_DEAD_TIMES: Final = 8.0
"""A closed loop tuned reasonably forgets an error within a few dead times; an error that
stays correlated for more than this many dead times is not being corrected."""

WHITE_ERROR_ACF1: Final = 0.1
"""Lag-1 autocorrelation below which the control error is taken as white (uncorrelated)."""

SLUGGISH_CORRELATION_SAMPLES: Final = 20.0
"""Same bound in samples when the dead time is not configured."""

SLUGGISH_MAX_REVERSALS_PER_HOUR: Final = 60.0
"""A sluggish controller barely moves the valve: fewer OP reversals per hour than this
(a well-tuned loop reverses its OP hundreds of times an hour on ordinary disturbances)."""

SLUGGISH_CREEP_OVERSHOOT: Final = 0.2
"""After a set-point step a well-tuned PI loop on a self-regulating process kicks its valve
past the final position (overshoot share :math:`K_c K - 1`,
:mod:`clpm_shared.analytics.setpoint_valve_response`); a valve that overshoots by less than
this share of its net move (median over the window's steps) creeps there on integral action.
On the simulated fleet sluggish flow, pressure and temperature loops read 0.05-0.07
(median) and healthy ones 1.0-2.2. Not judged on level (integrating) loops."""

SLUGGISH_MAX_TRAVEL_PER_HOUR: Final = 120.0
"""... and moves it less than this (% of span per hour); a loop whose OP travels more is
working against something (a slow oscillation, a drift), not idling."""

EXTERNAL_MIN_DETERMINISM: Final = 0.5
"""Non-Gaussianity score (κ <= 2.25) from which a sinusoidal cycle counts as a steady,
externally driven oscillation rather than noise-excited ringing."""

EXTERNAL_MAX_SHAPE: Final = 0.5
"""Curve-fitting index below which the cycle counts as sinusoidal (He et al. 2007)."""

FAST_CYCLE_SAMPLES: Final = 4.0
"""The KPI oscillation test ignores periods under 4 samples; a regular cycle that fast is a
loop ringing near the sampling limit (aggressive tuning at a slow sample rate), and is
taken as an oscillation here."""

SP_CHANGE_SHARE: Final = 0.005
"""A set-point move larger than 0.5 % of the PV span counts as a change."""

STICTION_SHAPE: Final = 0.6
"""A curve-fitting index above this (He et al. 2007) is a triangular, valve-like cycle: it is
then not blamed on tuning even when the stiction verdict stays undetermined."""

MIN_CYCLE_SHARE: Final = 0.1
"""A cycle of unknown cause explaining less than this share of the control error's variance
is not reported: it does not hurt."""

SINUSOID_MIN_SHARE: Final = 0.8
"""Share of the control error's variance one sinusoid must explain for a slow external cycle
(healthy, sluggish, saturated and manual loops stay below 0.75 in 15-minute windows; a
sinusoid added to the measurement reaches 0.9-1.0)."""

SINUSOID_CORROBORATED_SHARE: Final = 0.6
"""A slower or less coherent outside cycle (its phase wanders, or the loop attenuates it
below the measurement noise) explains less of the error in under two periods; from this
share it still counts when the valve signal corroborates it (next constant). Healthy,
manual, noisy and over-tuned loops stay below 0.45 (90th percentile) at the fitted period;
sluggish and saturated loops reach it in 6-21 % of their windows."""

SINUSOID_VALVE_SHARE: Final = 0.8
"""Share of the valve signal's variance about a straight line in a sinusoid at the error's
fitted period for the controller to be fighting that cycle: the corroboration a weaker
error fit needs. A sluggish loop's valve integrates its slowly wandering error and stays
below this in 93-99 % of its windows; a valve that does not move is no corroboration."""

SINUSOID_MIN_PERIODS: Final = 1.6
"""A slow cycle must show at least this many periods in the window: slower wander is drift."""

SINUSOID_MIN_SAMPLES: Final = 8.0
"""Shortest period (samples) searched by :func:`dominant_sinusoid`."""

CONFIDENCE_CALIBRATION: Final[Mapping[str, tuple[tuple[float, float], ...]]] = {
    "aggressive_tuning": ((0.76, 0.981), (0.9, 0.993)),
    "external_disturbance": ((0.774, 0.82), (0.943, 0.996)),
    "mode_issue": ((0.95, 0.995),),
    "saturation": ((0.9, 0.997),),
    "sensor_fault": ((0.95, 0.994),),
    "sensor_noise": ((0.8, 0.996),),
    "sluggish_tuning": ((0.6, 0.998),),
    "stiction": ((0.5, 0.976), (0.526, 0.997)),
}
"""Per category, breakpoints ``(rule confidence, calibrated confidence)`` (piecewise linear;
held above the last, scaled towards 0 below the first, where no finding was seen): the
share of findings right at that rule confidence on the simulated fleet
(``bench/fleet_verdicts.py --loops 300 --hours 6 --seed 100000 --calibrate``: a development
seed, not the reported one; 15-minute windows; isotonic fit, Laplace-smoothed). Categories
missing here keep the rule's own confidence, among them ``oscillation``: a symptom whose
confidence says how sure the loop oscillates, not what causes it. On the simulated fleet
every rule is right far more often than its author guessed (stiction "0.5" was right 98 %
of the time); a fleet or plant with harder cases calls for a new fit."""


@dataclass(frozen=True)
class Finding:
    """One diagnosed problem of a loop in a window.

    Attributes
    ----------
    category : str
        One of :data:`CATEGORIES`.
    severity : float
        How much it hurts, 0-1.
    confidence : float
        How sure the rule is, 0-1.
    evidence : Mapping
        The numbers that led to the finding (JSON-compatible scalars).
    recommendation : str
        One sentence an engineer can act on.
    explained : tuple of Finding
        Findings this one explains (see :mod:`clpm_shared.analytics.verdict`): kept as its
        evidence, not reported as problems of their own.
    """

    category: Category
    severity: float
    confidence: float
    evidence: Evidence
    recommendation: str
    explained: tuple[Finding, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "severity": self.severity,
            "confidence": self.confidence,
            "evidence": dict(self.evidence),
            "recommendation": self.recommendation,
            "explained": [finding.to_dict() for finding in self.explained],
        }


@dataclass(frozen=True)
class OscillationSummary:
    """What the plant-wide analysis needs to know about one oscillating loop."""

    loop_id: str
    period_s: float
    amplitude_pct: float | None = None
    regularity: float | None = None
    stiction_verdict: str = "undetermined"
    stiction_index: float | None = None
    apparent_stiction_pct: float | None = None


@dataclass(frozen=True)
class LoopDiagnosis:
    """The findings of one loop and window resolved to their root cause, and what they rest on.

    ``findings`` holds the root cause first (with the findings it explains in its
    ``explained``), then the independent problems; ``primary`` is the root cause's category.
    """

    findings: tuple[Finding, ...]
    primary: Category | None
    kpis: KpiResult
    stiction: StictionResult | None = None
    oscillation: OscillationSummary | None = None
    notes: Mapping[str, str] = field(default_factory=dict)
    dropped: tuple[Finding, ...] = ()
    """Findings that contradicted a more basic one (see :func:`resolve_root_cause`)."""


def _clip01(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def robust_noise_std(x: FloatArray) -> float | None:
    """White-noise σ of ``x`` from its first differences, robust to steps and slow trends.

    :math:`\\hat\\sigma = 1.4826\\,\\mathrm{MAD}(\\Delta x) / \\sqrt{2}`: the difference of two
    independent samples has variance :math:`2\\sigma^2`, and the median absolute deviation
    ignores the few large differences of steps and spikes.
    """
    step = np.diff(x)
    step = step[np.isfinite(step)]
    if step.size < 8:
        return None
    mad = float(np.median(np.abs(step - np.median(step))))
    return 1.4826 * mad / math.sqrt(2.0)


def count_spikes(x: FloatArray, noise_std: float) -> int:
    """Isolated samples more than :data:`SPIKE_SIGMAS` noise σ away from their 5-point median.

    A step moves the running median with it, so set-point steps and load changes are not
    spikes; only excursions of one or two samples are.
    """
    if noise_std <= 0.0 or x.size < 5:
        return 0
    padded = np.pad(x, 2, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 5)
    with warnings.catch_warnings():  # a gap's all-NaN windows: NaN median, no spike
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(windows, axis=1)
    outlier = np.abs(x - median) > SPIKE_SIGMAS * noise_std
    outlier &= np.isfinite(x)
    # count runs of outliers (a spike of two samples counts once)
    starts = outlier & ~np.concatenate(([False], outlier[:-1]))
    return int(np.count_nonzero(starts))


def error_correlation_time(e: FloatArray, ts: float) -> float | None:
    """Lag (s) at which the autocorrelation of the control error has decayed to 1/e.

    Measured relative to lag 1, :math:`\rho(k)/\rho(1) < e^{-1}`, because white
    measurement noise only raises lag 0 and would otherwise hide a slowly decaying error;
    an error whose lag-1 autocorrelation is below 0.1 counts as uncorrelated (one sample).
    """
    values = e[np.isfinite(e)]
    if values.size < 16:
        return None
    values = values - values.mean()
    if float(values @ values) <= 0.0:
        return None
    spectrum = np.fft.rfft(values, 2 * values.size)
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[: values.size]
    # white measurement noise only adds to lag 0: measure the decay from lag 1 on
    if acf[1] < WHITE_ERROR_ACF1 * acf[0]:
        return ts
    decay = acf[1:] / acf[1]
    below = np.flatnonzero(decay < math.exp(-1.0))
    return float((below[0] + 1 if below.size else values.size) * ts)


@dataclass(frozen=True)
class Sinusoid:
    """The single sinusoid that best fits a signal (least squares)."""

    period_s: float
    amplitude: float
    explained: float
    """Share of the (detrended) signal's variance it explains, 0-1."""


def sinusoid_share(y: FloatArray, t: FloatArray, freqs_hz: FloatArray) -> FloatArray:
    """Share of the variance of ``y`` explained by a sinusoid at each frequency (least squares).

    At each frequency the fit :math:`y_k \\approx c + a \\sin\\omega t_k + b \\cos\\omega t_k`
    is solved exactly (normal equations, batched over the frequencies) and
    :math:`p(\\omega) = 1 - \\chi^2(\\omega)/\\chi^2_0`, :math:`\\chi^2_0` the residual of the
    mean alone: the generalised Lomb-Scargle periodogram of Zechmeister & Kürster (2009)
    with a floating mean, which stays exact for a cycle of under two periods where the
    Fourier periodogram's sine and cosine are no longer orthogonal.
    """
    omega = 2.0 * np.pi * np.asarray(freqs_hz, dtype=np.float64)[:, None]
    sin = np.sin(omega * t[None, :])
    cos = np.cos(omega * t[None, :])
    n = float(t.size)
    gram = np.empty((omega.shape[0], 3, 3))
    gram[:, 0, 0] = n
    gram[:, 0, 1] = gram[:, 1, 0] = sin.sum(axis=1)
    gram[:, 0, 2] = gram[:, 2, 0] = cos.sum(axis=1)
    gram[:, 1, 1] = (sin * sin).sum(axis=1)
    gram[:, 1, 2] = gram[:, 2, 1] = (sin * cos).sum(axis=1)
    gram[:, 2, 2] = (cos * cos).sum(axis=1)
    rhs = np.stack([np.full(omega.shape[0], y.sum()), sin @ y, cos @ y], axis=1)
    coef = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
    centred = float(((y - y.mean()) ** 2).sum())
    explained = (coef * rhs).sum(axis=1) - y.sum() ** 2 / n
    share: FloatArray = np.clip(explained / centred, 0.0, 1.0) if centred > 0 else explained * 0
    return share


def trend_sinusoid_share(y: FloatArray, t: FloatArray, freqs_hz: FloatArray) -> FloatArray:
    """Share of the variance about a straight line that a sinusoid explains, fitted jointly.

    At each frequency the model :math:`y_k \\approx c_0 + c_1 t_k + a \\sin\\omega t_k +
    b \\cos\\omega t_k` is solved by least squares and

    .. math:: p(\\omega) = 1 - \\chi^2(\\omega) / \\chi^2_1,

    :math:`\\chi^2_1` the residual of the straight line alone. By the Frisch-Waugh-Lovell
    theorem this is the share of the detrended :math:`y` explained by the *detrended* sine
    and cosine (batched 2x2 normal equations). Fitting the line first and the sinusoid after
    (as :func:`sinusoid_share` on a detrended signal does) lets the line take part of a
    cycle of under two periods, which then looks like 92-95 % sinusoid at best and with its
    period pulled long; fitted jointly, a pure sinusoid of any phase gives 1.
    """
    t = np.asarray(t, dtype=np.float64)
    tc = t - t.mean()
    tt = float(tc @ tc)
    omega = 2.0 * np.pi * np.asarray(freqs_hz, dtype=np.float64)[:, None]

    def detrended(z: FloatArray) -> FloatArray:
        z = z - z.mean(axis=-1, keepdims=True)
        if tt <= 0.0:
            return z
        slope = (z @ tc) / tt
        return np.asarray(z - slope[..., None] * tc if z.ndim > 1 else z - slope * tc)

    yd = detrended(np.asarray(y, dtype=np.float64))
    sin = detrended(np.sin(omega * t[None, :]))
    cos = detrended(np.cos(omega * t[None, :]))
    ss = (sin * sin).sum(axis=1)
    sc = (sin * cos).sum(axis=1)
    cc = (cos * cos).sum(axis=1)
    sy = sin @ yd
    cy = cos @ yd
    det = ss * cc - sc * sc
    ok = det > 1e-12 * np.maximum(ss * cc, 1e-300)
    safe = np.where(ok, det, 1.0)
    explained = np.where(ok, (cc * sy * sy - 2.0 * sc * sy * cy + ss * cy * cy) / safe, 0.0)
    total = float(yd @ yd)
    share: FloatArray = np.clip(explained / total, 0.0, 1.0) if total > 0 else explained * 0
    return share


def dominant_sinusoid(
    x: FloatArray,
    ts: float,
    *,
    min_periods: float = SINUSOID_MIN_PERIODS,
    min_samples: float = SINUSOID_MIN_SAMPLES,
) -> Sinusoid | None:
    """Best least-squares sinusoid of the linearly detrended ``x``, with a floating mean.

    The peak of the periodogram of the detrended signal (FFT zero-padded to eight times its
    length) among periods of ``min_samples`` samples up to :math:`N t_s / m`
    (``m = min_periods``) is refined on nine frequencies within one padded bin by the exact
    least-squares share :func:`sinusoid_share` (generalised Lomb-Scargle, Zechmeister &
    Kürster 2009). Unlike the zero-crossing test of the KPI
    (:func:`~clpm_shared.analytics.oscillation.detect_oscillation`), which needs several
    periods, it finds a slow cycle that spans under two periods of a 15-minute window.

    References
    ----------
    M. Zechmeister, M. Kürster, "The generalised Lomb-Scargle periodogram", Astronomy &
    Astrophysics 496 (2009) 577-584.

    Returns
    -------
    Sinusoid or None
        None for fewer than 32 finite samples or a constant signal.
    """
    values = x[np.isfinite(x)]
    n = values.size
    if n < 32:
        return None
    y = detrend_linear(values)
    if float(np.std(y)) <= 0.0:
        return None
    t = np.arange(n, dtype=np.float64) * ts
    padded = 8 * n
    power = np.abs(np.fft.rfft(y, padded)) ** 2
    freqs = np.fft.rfftfreq(padded, ts)
    inside = (freqs >= min_periods / (n * ts)) & (freqs <= 1.0 / (min_samples * ts))
    if not np.any(inside):
        return None
    peak = float(freqs[inside][int(np.argmax(power[inside]))])
    step = 1.0 / (padded * ts)
    grid = np.linspace(max(peak - step, 1e-12), peak + step, 9)
    shares = trend_sinusoid_share(values, t, grid)
    k = int(np.argmax(shares))
    share = float(shares[k])
    omega = 2.0 * math.pi * float(grid[k])
    design = np.column_stack((np.ones(n), t, np.sin(omega * t), np.cos(omega * t)))
    coef = np.linalg.lstsq(design, values, rcond=None)[0]
    amplitude = float(math.hypot(coef[2], coef[3]))
    return Sinusoid(float(1.0 / grid[k]), amplitude, share)


def cycle_share(x: FloatArray, ts: float, period_s: float) -> float | None:
    """Share of the detrended ``x``'s variance explained by a sinusoid near ``period_s``.

    The least-squares share (:func:`sinusoid_share`), largest within ±15 % of the
    frequency :math:`1/T`: how much of the variability the cycle causes. A square or
    triangular cycle keeps 81-99 % of its power in the fundamental.
    """
    values = x[np.isfinite(x)]
    n = values.size
    if n < 32 or not period_s > 0:
        return None
    y = detrend_linear(values)
    if float(np.std(y)) <= 0.0:
        return None
    t = np.arange(n, dtype=np.float64) * ts
    f0 = 1.0 / period_s
    return float(np.max(sinusoid_share(y, t, np.linspace(0.85 * f0, 1.15 * f0, 25))))


def _slow_cycle_finding(
    error: FloatArray, op: FloatArray, ts: float, span: float | None, config: LoopConfig
) -> Finding | None:
    """An external sinusoid too slow for the KPI oscillation test (see the module docstring)."""
    fit = dominant_sinusoid(error, ts)
    if fit is None or fit.explained < SINUSOID_CORROBORATED_SHARE:
        return None
    moving = op[np.isfinite(op) & np.isfinite(error)]
    valve_share = (
        float(
            trend_sinusoid_share(
                moving,
                np.arange(moving.size, dtype=np.float64) * ts,
                np.array([1.0 / fit.period_s]),
            )[0]
        )
        if moving.size >= 32 and float(np.ptp(moving)) > 0.0
        else None
    )
    corroborated = valve_share is not None and valve_share >= SINUSOID_VALVE_SHARE
    if fit.explained < SINUSOID_MIN_SHARE and not corroborated:
        return None
    valve = op if config.loop_type != "level" else error
    valve = valve[np.isfinite(valve)]
    shape, _ = curve_fitting_index(valve, ts, fit.period_s)
    if shape is not None and shape > STICTION_SHAPE:
        return None  # a triangular valve signal: a sticky valve's cycle, not a sinusoid
    amplitude_pct = 100.0 * fit.amplitude / span if span else None
    confidence = (
        fit.explained
        if fit.explained >= SINUSOID_MIN_SHARE or valve_share is None
        else 0.5 * (fit.explained + valve_share)
    )
    return Finding(
        "external_disturbance",
        _clip01(fit.explained),
        _clip01(confidence),
        {
            "period_s": _r(fit.period_s, 1),
            "amplitude_pct_of_span": _r(amplitude_pct, 2),
            "sinusoid_share_of_error_variance": _r(fit.explained),
            "sinusoid_share_of_valve_variance": _r(valve_share),
            "curve_fit_si": _r(shape),
            "analysed": "sinusoid_fit",
        },
        f"A slow sinusoidal disturbance with a period of {fit.period_s:.0f} s explains "
        f"{100 * fit.explained:.0f} % of the control error: look for its source upstream "
        "(other loops cycling at the same period) rather than retuning this one.",
    )


def _mode_finding(kpis: KpiResult, config: LoopConfig) -> Finding | None:
    service = kpis.service_factor
    if service is None or service >= MIN_SERVICE_FACTOR:
        return None
    shares = kpis.mode_shares or {}
    outside = {m: s for m, s in shares.items() if m not in config.normal_modes}
    main_mode = max(outside, key=lambda m: outside[m]) if outside else "an abnormal mode"
    evidence: dict[str, float | int | str | bool | None] = {
        "service_factor": _r(service),
        "main_other_mode": main_mode,
        **{f"share_{m}": _r(s) for m, s in sorted(shares.items())},
    }
    return Finding(
        "mode_issue",
        _clip01(1.0 - service),
        0.95,
        evidence,
        f"Loop ran in {main_mode} for {100 * (1 - service):.0f} % of the window: find out why "
        "operators take it out of automatic (tuning, valve or measurement) and return it to "
        f"{sorted(config.normal_modes)[0]}.",
    )


def _sensor_findings(
    window: LoopWindow, config: LoopConfig, kpis: KpiResult, span: float | None
) -> list[Finding]:
    findings: list[Finding] = []
    pv = window.pv
    if kpis.dq_flatline:
        finite = pv[np.isfinite(pv)]
        frozen_at = float(finite[-1]) if finite.size else None
        findings.append(
            Finding(
                "sensor_fault",
                _clip01(kpis.dq_repeated if kpis.dq_repeated is not None else 1.0),
                0.95,
                {"fault": "flatline", "flatline": True, "frozen_value": _r(frozen_at, 4)},
                "PV has not changed for most of the window: check the transmitter, its "
                "impulse lines and the DCS input (frozen or bad-quality value) before "
                "trusting this loop's control.",
            )
        )
        return findings
    out_of_range = kpis.dq_out_of_range or 0.0
    if out_of_range >= OUT_OF_RANGE_SHARE:
        findings.append(
            Finding(
                "sensor_fault",
                _clip01(out_of_range * 5.0),
                0.9,
                {
                    "fault": "out_of_range",
                    "out_of_range_share": _r(out_of_range),
                    "pv_lo": config.pv_lo,
                    "pv_hi": config.pv_hi,
                },
                f"PV was outside its range [{config.pv_lo}, {config.pv_hi}] for "
                f"{100 * out_of_range:.1f} % of the window: check the transmitter range "
                "and calibration.",
            )
        )
    noise = robust_noise_std(pv)
    if noise is None or noise <= 0.0:
        return findings
    spikes = count_spikes(pv, noise)
    if spikes >= MIN_SPIKES:
        per_hour = spikes / max(window.hours, 1e-9)
        findings.append(
            Finding(
                "sensor_fault",
                _clip01(0.3 + spikes / 50.0),
                0.75,
                {"fault": "spikes", "spikes": spikes, "spikes_per_hour": _r(per_hour, 1)},
                f"PV shows {spikes} isolated spikes: check wiring, grounding and the "
                "transmitter, and add a spike filter on the DCS input meanwhile.",
            )
        )
    configured = config.pv_lo is not None and config.pv_hi is not None
    # the control error, not PV: set-point steps are not process variation
    error = window.sp - pv
    error = error[np.isfinite(error)]
    variation = float(np.std(detrend_linear(error))) if error.size > 2 else 0.0
    noise_share = noise / variation if variation > 0 else 0.0
    op_noise = robust_noise_std(window.op)
    op_noise_pct = None if op_noise is None else 100.0 * op_noise / config.op_span
    span_share = noise / span if configured and span else None
    noisy_for_span = span_share is not None and span_share > NOISE_SHARE_OF_CONFIGURED_SPAN
    noise_moves_valve = (
        noise_share > NOISE_SHARE_OF_VARIATION
        and op_noise_pct is not None
        and op_noise_pct > OP_NOISE_PCT
    )
    bandwidth: float | None = None
    hf_share: float | None = None
    if noisy_for_span or noise_moves_valve:
        # judged against the loop's bandwidth: variation the loop can act on is not noise
        bandwidth = closed_loop_bandwidth(error, window.ts)
        hf_share = 1.0 if bandwidth is None else high_frequency_share(error, window.ts, bandwidth)
        if hf_share is not None and hf_share < NOISE_MIN_SHARE_ABOVE_BANDWIDTH:
            noise_moves_valve = False
    if noisy_for_span or noise_moves_valve:
        findings.append(
            Finding(
                "sensor_noise",
                _clip01(
                    max(
                        min(noise_share, 1.0) ** 2,
                        (span_share or 0.0) / (5.0 * NOISE_SHARE_OF_CONFIGURED_SPAN),
                    )
                ),
                0.8,
                {
                    "fault": "noise",
                    "rule": "span" if noisy_for_span else "noise_moves_valve",
                    "noise_std": _r(noise, 5),
                    "noise_share_of_pv_variation": _r(noise_share),
                    "noise_pct_of_span": None if span_share is None else _r(100 * span_share, 2),
                    "op_noise_pct_of_span": _r(op_noise_pct, 3),
                    "op_travel_per_hour": _r(kpis.op_travel_per_hour, 1),
                    "closed_loop_bandwidth_hz": _r(bandwidth, 4),
                    "variance_above_bandwidth": _r(hf_share),
                },
                f"PV variation is {100 * min(noise_share, 1.0):.0f} % measurement noise "
                f"(σ = {noise:.3g}) and it moves the valve by {op_noise_pct or 0:.2f} % of "
                "span per sample: fix the transmitter or its installation, or add a PV "
                "filter of about one tenth of the closed-loop time constant.",
            )
        )
    return findings


def _saturation_finding(kpis: KpiResult, config: LoopConfig) -> Finding | None:
    share = kpis.saturation
    if share is None or share < SATURATION_SHARE:
        return None
    high = (kpis.sat_high or 0.0) >= (kpis.sat_low or 0.0)
    limit = config.op_hi if high else config.op_lo
    offset = kpis.error_mean_pct
    cannot_reach = offset is not None and abs(offset) > 1.0
    evidence = {
        "saturation": _r(share),
        "sat_high": _r(kpis.sat_high),
        "sat_low": _r(kpis.sat_low),
        "error_mean_pct": _r(offset),
        "limit": limit,
    }
    if high:
        action = (
            "the valve is too small or the load exceeds its capacity: check valve sizing "
            "(Cv), upstream pressure and the set point"
        )
    else:
        action = (
            "the valve is oversized or passing at its closed end: check valve sizing, seat "
            "leakage and the set point"
        )
    reach = " while PV stays away from SP" if cannot_reach else ""
    return Finding(
        "saturation",
        _clip01(share * (1.5 if cannot_reach else 1.0)),
        0.9 if share >= 0.2 else 0.7,
        evidence,
        f"OP sat at its {'upper' if high else 'lower'} limit ({limit:g} %) for "
        f"{100 * share:.0f} % of the time{reach}: {action}.",
    )


def _in_service_signals(
    window: LoopWindow, config: LoopConfig
) -> tuple[FloatArray, FloatArray, FloatArray]:
    modes = summarise_modes(window.mode, window.pv, config.normal_modes)
    keep = modes.in_service
    deviation = np.where(keep, window.pv - window.sp, np.nan)
    op = np.where(keep, window.op, np.nan)
    error = np.where(keep, window.sp - window.pv, np.nan)
    return deviation, op, error


def _steady_sp_stretch(window: LoopWindow, span: float | None) -> slice | None:
    """The longest stretch without a set-point change, minus its first tenth (settling).

    Set-point steps put transients into the control error that hide a cycle from the
    autocorrelation test; a stretch at constant SP shows it. None when the window has no
    SP change (the whole window was already tried) or the stretch is under a third of it.
    """
    sp = window.sp
    n = sp.size
    if n < 48 or not span:
        return None
    changes = np.flatnonzero(np.abs(np.diff(sp)) > SP_CHANGE_SHARE * span) + 1
    if changes.size == 0:
        return None
    bounds = np.concatenate(([0], changes, [n]))
    longest = int(np.argmax(np.diff(bounds)))
    start, stop = int(bounds[longest]), int(bounds[longest + 1])
    if stop - start < n / 3:
        return None
    return slice(start + (stop - start) // 10, stop)


def _judged_on_steady_sp(
    window: LoopWindow,
    span: float | None,
    deviation: FloatArray,
    op: FloatArray,
    config: LoopConfig,
    undetermined: StictionResult,
) -> StictionResult:
    """Stiction judged again on the longest stretch at constant SP, when that decides.

    Set-point steps put transients into OP that are neither triangles nor sinusoids and
    pull the curve-fitting index towards 0.5; a window-wide "undetermined" is replaced by
    the verdict of the steady stretch at the same period when that one is "stiction" or
    "no_stiction".
    """
    steady = _steady_sp_stretch(window, span)
    if steady is None or undetermined.period_s is None:
        return undetermined
    again = stiction_index(
        deviation[steady],
        op[steady],
        window.ts,
        config.loop_type,
        period_s=undetermined.period_s,
    )
    return again if again.verdict in {"stiction", "no_stiction"} else undetermined


@dataclass(frozen=True)
class _Cycle:
    """An oscillation found in the window (or in its longest stretch at constant SP)."""

    period_s: float
    amplitude_pct: float | None
    regularity: float | None
    stretch: str  # "window", "steady_sp" or "valve_cycle" (only the valve signal cycles)
    share: float | None = None  # share of the control error's variance in the cycle


def _oscillation_findings(
    cycle: _Cycle,
    stiction: StictionResult,
    reversals: float | None,
    op_span: float,
    harris: float | None = None,
) -> tuple[list[Finding], OscillationSummary]:
    """The oscillation finding and its cause (stiction, external, aggressive tuning)."""
    period = cycle.period_s
    amplitude_pct = cycle.amplitude_pct
    regularity = cycle.regularity
    severity = _clip01(cycle.share) if cycle.share is not None else 0.5
    confidence = _clip01((regularity or 1.0) / 3.0)
    scores = stiction.method_scores
    band_pct = (
        None if stiction.apparent_stiction is None else 100.0 * stiction.apparent_stiction / op_span
    )
    findings = [
        Finding(
            "oscillation",
            severity,
            confidence,
            {
                "period_s": _r(period, 1),
                "amplitude_pct_of_span": _r(amplitude_pct, 2),
                "regularity": _r(regularity, 2),
                "analysed": cycle.stretch,
            },
            f"Loop oscillates with a period of {period:.0f} s and an amplitude of "
            f"{amplitude_pct or 0:.1f} % of span: remove the cause named with it before "
            "retuning.",
        )
    ]
    summary = OscillationSummary(
        loop_id="",
        period_s=float(period),
        amplitude_pct=amplitude_pct,
        regularity=regularity,
        stiction_verdict=stiction.verdict,
        stiction_index=stiction.index,
        apparent_stiction_pct=band_pct,
    )
    stiction_evidence = {
        "stiction_verdict": stiction.verdict,
        "stiction_index": _r(stiction.index),
        "curve_fit_si": _r(scores.get("curve_fit")),
        "non_gaussianity": _r(scores.get("non_gaussianity")),
        "kurtosis": _r(scores.get("kurtosis")),
        "ellipse_orbit": _r(scores.get("ellipse")),
        "orbit_variation": _r(scores.get("orbit_variation")),
        **{f"vote_{method}": vote for method, vote in stiction.method_votes.items()},
        "apparent_stiction_pct": _r(band_pct, 2),
        "period_s": _r(period, 1),
        "cycle_source": stiction.cycle_source,
    }
    if stiction.verdict == "stiction":
        band_text = f"about {band_pct:.1f} % of span" if band_pct is not None else "a band"
        findings.append(
            Finding(
                "stiction",
                severity,
                max(0.5, stiction.confidence),
                stiction_evidence,
                f"Valve shows stiction of {band_text}: schedule valve maintenance "
                "(packing, actuator, positioner); meanwhile reduce integral action to "
                "slow the limit cycle.",
            )
        )
        return findings, summary
    shape = scores.get("curve_fit")
    determinism = scores.get("non_gaussianity")
    if (
        determinism is not None
        and determinism >= EXTERNAL_MIN_DETERMINISM
        and shape is not None
        and shape < EXTERNAL_MAX_SHAPE
    ):
        findings.append(
            Finding(
                "external_disturbance",
                severity,
                _clip01(0.4 + 0.3 * determinism + 0.3 * (1.0 - 2.0 * shape)),
                {**stiction_evidence, "op_reversals_per_hour": _r(reversals, 1)},
                f"A steady sinusoidal disturbance with a period of {period:.0f} s enters "
                "from outside the loop: look for its source upstream (other loops "
                "oscillating at the same period) rather than retuning this one.",
            )
        )
        return findings, summary
    triangular = shape is not None and shape > STICTION_SHAPE
    if determinism is not None and determinism < EXTERNAL_MIN_DETERMINISM and not triangular:
        rev_text = f"{reversals:.0f} OP reversals per hour" if reversals is not None else ""
        # the variance the tuning adds: above the minimum-variance bound (1 - Harris index)
        excess = 1.0 - harris if harris is not None else 0.0
        findings.append(
            Finding(
                "aggressive_tuning",
                _clip01(max(severity, excess)),
                _clip01(0.5 + 0.5 * (1.0 - determinism / EXTERNAL_MIN_DETERMINISM) * 0.8),
                {**stiction_evidence, "op_reversals_per_hour": _r(reversals, 1)},
                f"Loop rings at {period:.0f} s with no sign of a valve problem"
                f"{' and ' + rev_text if rev_text else ''}: reduce the controller gain "
                "(about 30-50 %) or increase the integral time.",
            )
        )
    return findings, summary


def _sluggish_finding(
    kpis: KpiResult,
    config: LoopConfig,
    window: LoopWindow,
    error: FloatArray,
    span: float | None = None,
) -> Finding | None:
    harris = kpis.harris_index
    if harris is None or harris >= POOR_HARRIS:
        return None
    ts = window.ts
    correlation_s = error_correlation_time(error, ts)
    if config.dead_time_s:
        bound = SLUGGISH_CORRELATION_DEAD_TIMES * config.dead_time_s
    else:
        bound = SLUGGISH_CORRELATION_SAMPLES * ts
    slow_error = correlation_s is not None and correlation_s > bound
    settling = kpis.settling_time_s
    reversals = kpis.op_reversals_per_hour
    travel = kpis.op_travel_per_hour
    quiet_valve = (
        reversals is not None
        and reversals < SLUGGISH_MAX_REVERSALS_PER_HOUR
        and travel is not None
        and travel < SLUGGISH_MAX_TRAVEL_PER_HOUR
    )
    if not (slow_error and quiet_valve) or correlation_s is None:
        return None
    filter_s = max(IDLE_MIN_FILTER_SAMPLES * ts, IDLE_FILTER_CORRELATION_SHARE * correlation_s)
    noise = robust_noise_std(window.pv) or 0.0
    idle = idle_index(
        window.pv, window.op, ts, filter_s, window.sp, IDLE_MIN_DEVIATION_NOISE * noise
    )
    creeping = idle.index is not None and idle.index > IDLE_SLUGGISH
    steps = (
        valve_step_responses(
            window.sp, window.op, SP_CHANGE_SHARE * span, robust_noise_std(window.op) or 0.0
        )
        if span and config.loop_type != "level"
        else []
    )
    step_overshoot = float(np.median([step.overshoot_share for step in steps])) if steps else None
    creeps_after_steps = step_overshoot is not None and step_overshoot < SLUGGISH_CREEP_OVERSHOOT
    confidence = 0.8 if config.dead_time_s else 0.6
    if creeping:
        # Hägglund's idle index agrees: OP and PV creep back together after disturbances
        confidence = min(0.9, confidence + 0.1)
    if creeps_after_steps:
        # set-point steps agree: the valve creeps to its new position, never past it
        confidence = min(0.9, confidence + 0.1)
    evidence = {
        "sp_steps_judged": len(steps),
        "sp_step_valve_overshoot": _r(step_overshoot),
        "sp_step_valve_kick": _r(float(np.median([st.kick_share for st in steps])))
        if steps
        else None,
        "idle_index": _r(idle.index),
        "idle_index_filter_s": _r(filter_s, 1),
        "idle_index_counted_share": _r(idle.moving_share),
        "harris_index": _r(harris),
        "error_correlation_time_s": _r(correlation_s, 1),
        "correlation_bound_s": _r(bound, 1),
        "settling_time_s": _r(settling, 1),
        "dead_time_s": config.dead_time_s,
        "error_std_pct": _r(kpis.error_std_pct, 2),
        "op_reversals_per_hour": _r(reversals, 1),
        "op_travel_per_hour": _r(travel, 1),
    }
    idle_text = (
        f"; OP and PV creep back together after disturbances (idle index {idle.index:.2f})"
        if creeping and idle.index is not None
        else ""
    )
    if creeps_after_steps and step_overshoot is not None:
        idle_text += (
            f"; after set-point steps the valve creeps to its new position (overshoot "
            f"{100 * step_overshoot:.0f} % of its move)"
        )
    return Finding(
        "sluggish_tuning",
        _clip01(1.0 - harris),
        confidence,
        evidence,
        f"Control error stays correlated for {correlation_s:.0f} s (Harris index "
        f"{harris:.2f}) without oscillating{idle_text}: increase the controller gain or "
        "shorten the integral time, for example to SIMC settings from a bump test.",
    )


def contradicts(a: str, b: str) -> bool:
    """Whether findings of categories ``a`` and ``b`` cannot both be true."""
    return frozenset((a, b)) in CONTRADICTORY_PAIRS


def _rank(finding: Finding) -> tuple[int, float]:
    order = PRECEDENCE.index(finding.category) if finding.category in PRECEDENCE else 99
    return order, -finding.severity * finding.confidence


def resolve_root_cause(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """Reported findings: the root cause (with what it explains) first, then independent ones.

    Findings are taken in :data:`PRECEDENCE` order (within a category, the one with the
    larger severity x confidence first). The first is the root cause. Each later finding is
    dropped when it contradicts a kept one (:data:`CONTRADICTORY_PAIRS`), reported when it
    is independent of every reported one (:data:`INDEPENDENT_PAIRS`), and otherwise kept
    under the root cause as explained evidence. A second finding of the root cause's own
    category is evidence too.

    Returns
    -------
    tuple of Finding
        Empty when ``findings`` is; no two reported or explained findings contradict.
    """
    return _resolve(findings)[0]


def _resolve(findings: Sequence[Finding]) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """Reported findings (see :func:`resolve_root_cause`) and the dropped contradicting ones."""
    if not findings:
        return (), ()
    ordered = sorted(findings, key=_rank)
    root = ordered[0]
    reported: list[Finding] = []
    explained: list[Finding] = []
    dropped: list[Finding] = []
    for finding in ordered[1:]:
        kept = [root, *reported, *explained]
        if any(contradicts(finding.category, other.category) for other in kept):
            dropped.append(finding)
            continue
        independent = finding.category != root.category and all(
            frozenset((finding.category, other.category)) in INDEPENDENT_PAIRS
            for other in (root, *reported)
        )
        if independent and finding.category not in {f.category for f in reported}:
            reported.append(finding)
        else:
            explained.append(finding)
    resolved = (replace(root, explained=root.explained + tuple(explained)), *reported)
    return resolved, tuple(dropped)


def calibrated(finding: Finding) -> Finding:
    """``finding`` with its confidence mapped through :data:`CONFIDENCE_CALIBRATION`.

    The rule's own confidence stays in the evidence as ``rule_confidence``. Calibration
    (Zadrozny & Elkan 2002, isotonic regression) makes a confidence of 0.8 mean "right
    about 80 % of the time" on the benchmark fleet rather than a rule author's guess.

    References
    ----------
    B. Zadrozny, C. Elkan, "Transforming classifier scores into accurate multiclass
    probability estimates", Proc. KDD 2002, 694-699.
    """
    table = CONFIDENCE_CALIBRATION.get(finding.category)
    if not table or "rule_confidence" in finding.evidence:
        return finding
    x0, y0 = table[0]
    # below the fitted range the fit says nothing: scale down towards 0 at 0
    value = float(y0) * min(1.0, finding.confidence / x0) if x0 > 0 else float(y0)
    if finding.confidence > x0:
        value = float(table[-1][1])
        for x1, y1 in table[1:]:
            if finding.confidence <= x1:
                value = y0 + (y1 - y0) * (finding.confidence - x0) / (x1 - x0) if x1 > x0 else y1
                break
            x0, y0 = x1, y1
    return replace(
        finding,
        confidence=round(_clip01(value), 3),
        evidence={**finding.evidence, "rule_confidence": _r(finding.confidence)},
    )


def _primary(findings: Sequence[Finding]) -> Category | None:
    resolved = resolve_root_cause(findings)
    return resolved[0].category if resolved else None


def _ordered(findings: Sequence[Finding], primary: Category | None) -> tuple[Finding, ...]:
    """The findings resolved to their root cause (``primary`` is its category)."""
    return resolve_root_cause(findings)


def diagnose_loop(
    window: LoopWindow,
    config: LoopConfig,
    kpis: KpiResult | None = None,
    *,
    loop_id: str = "",
) -> LoopDiagnosis:
    """Findings for one loop and window (see the module docstring for the rules).

    Parameters
    ----------
    window : LoopWindow
        The loop's samples on a uniform grid (raw data; from 1-minute means only the
        slow findings are possible).
    config : LoopConfig
        The loop's analysis settings (ranges, modes, dead time, loop type).
    kpis : KpiResult, optional
        KPIs of the same window when already computed; computed here otherwise.
    loop_id : str
        Carried into the oscillation summary for
        :func:`~clpm_shared.analytics.plant_oscillation.cluster_oscillations`.

    Returns
    -------
    LoopDiagnosis
        Findings, most important first; ``primary`` is the most likely root cause (a PV
        flatline always wins: nothing else can be judged on a frozen measurement).
    """
    kpis = kpis if kpis is not None else compute_kpis(window, config)
    span, _ = pv_span(window, config)
    findings: list[Finding] = []
    notes: dict[str, str] = {}
    mode = _mode_finding(kpis, config)
    if mode is not None:
        findings.append(mode)
    sensor = _sensor_findings(window, config, kpis, span)
    findings.extend(sensor)
    frozen = any(f.evidence.get("fault") == "flatline" for f in sensor)
    saturation = _saturation_finding(kpis, config)
    if saturation is not None:
        if frozen:
            saturation = replace(saturation, confidence=0.3, severity=saturation.severity * 0.5)
        findings.append(saturation)

    stiction: StictionResult | None = None
    summary: OscillationSummary | None = None
    service = kpis.service_factor if kpis.service_factor is not None else 1.0
    if frozen:
        notes["causes"] = "not judged: PV is frozen"
    elif service < MIN_SERVICE_FOR_CAUSES:
        notes["causes"] = f"not judged: only {100 * service:.0f} % of the window in service"
    elif window.source != "raw":
        notes["causes"] = "not judged: needs raw data, not 1-minute means"
    elif len(window) >= 24:
        deviation, op, error = _in_service_signals(window, config)
        stretch = slice(None)
        cycle: _Cycle | None = None
        if kpis.oscillating and kpis.osc_period_s is not None:
            cycle = _Cycle(kpis.osc_period_s, kpis.osc_amplitude, kpis.osc_regularity, "window")
        elif (kpis.osc_regularity or 0.0) > 1.0:
            # regular but faster than the KPI's 4 samples per period: near the sampling limit
            fast = detect_oscillation(error, window.ts)
            if fast.period_s is not None and fast.period_s < FAST_CYCLE_SAMPLES * window.ts:
                amplitude = 100.0 * fast.amplitude / span if fast.amplitude and span else None
                cycle = _Cycle(fast.period_s, amplitude, fast.regularity, "window")
        if cycle is None:
            steady = _steady_sp_stretch(window, span)
            if steady is not None:
                found = detect_oscillation(error[steady], window.ts)
                if found.oscillating and found.period_s is not None:
                    stretch = steady
                    amplitude = (
                        100.0 * found.amplitude / span
                        if found.amplitude is not None and span
                        else None
                    )
                    cycle = _Cycle(found.period_s, amplitude, found.regularity, "steady_sp")
        stiction = stiction_index(
            deviation[stretch],
            op[stretch],
            window.ts,
            config.loop_type,
            period_s=None if cycle is None else cycle.period_s,
        )
        if stiction.verdict == "undetermined" and cycle is not None and stretch == slice(None):
            judged = _judged_on_steady_sp(window, span, deviation, op, config, stiction)
            if judged is not stiction:
                notes["stiction"] = "judged on the longest stretch at constant SP"
                stiction = judged
        valve_only = stiction.cycle_source == "valve_band"
        if valve_only and stiction.verdict != "stiction":
            # only the band-passed valve signal cycles, and not like a sticky valve: the
            # loop is not oscillating by the KPI test, so no oscillation finding either
            notes["valve_cycle"] = f"valve signal cycles, stiction verdict {stiction.verdict}"
        elif cycle is None and stiction.period_s is not None:
            stretch_name = "valve_cycle" if valve_only else "window"
            cycle = _Cycle(stiction.period_s, kpis.osc_amplitude, None, stretch_name)
        if cycle is not None:
            cycle = replace(cycle, share=cycle_share(error, window.ts, cycle.period_s))
            oscillation, summary = _oscillation_findings(
                cycle, stiction, kpis.op_reversals_per_hour, config.op_span, kpis.harris_index
            )
            summary = replace(summary, loop_id=loop_id)
            if [f.category for f in oscillation] == ["oscillation"] and (
                cycle.share is not None and cycle.share < MIN_CYCLE_SHARE
            ):
                notes["oscillation"] = (
                    f"a cycle of {cycle.period_s:.0f} s explains only "
                    f"{100 * cycle.share:.0f} % of the error variance: not reported"
                )
                oscillation = []
            findings.extend(oscillation)
            # a periodic signal is not measurement noise: drop the valve-jitter noise rule
            findings = [f for f in findings if f.evidence.get("rule") != "noise_moves_valve"]
        else:
            slow = _slow_cycle_finding(error, op, window.ts, span, config)
            if slow is not None and stiction.verdict != "stiction":
                findings.append(slow)
            else:
                sluggish = _sluggish_finding(kpis, config, window, error, span)
                if sluggish is not None:
                    findings.append(sluggish)
    resolved, dropped = _resolve([calibrated(f) for f in findings])
    primary = resolved[0].category if resolved else None
    return LoopDiagnosis(resolved, primary, kpis, stiction, summary, notes, dropped)
