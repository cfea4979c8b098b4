"""Plant-wide oscillations: which oscillating loops share one cause, and which loop is it.

A common period is not evidence of a common cause: in a plant of thousands of loops many
oscillate near 40 s or 3 min independently of each other. Two loops share an oscillation
when their signals stay phase-locked at that period over the whole window, which the
magnitude-squared coherence measures (Welch-averaged cross-spectrum; Carter 1987), and
independent oscillations do not: their phases drift apart from one segment to the next.

:func:`cluster_oscillations` therefore

1. takes the oscillating loops (period, amplitude and, where known, stiction verdict from the
   single-loop diagnosis) with their control errors on one time grid;
2. compares the loops whose periods agree within a tolerance: the coherence at the common
   frequency (segments of about six periods, Hann window, 50 % overlap), tested against the
   null distribution of independent signals, ``P(C > c) = (1 - c)^{K-1}`` for ``K``
   independent segments, at a significance corrected for the number of pairs compared
   (Bonferroni), and at least :data:`MIN_COHERENCE`; and tested against a second null, two
   independent oscillations whose phases wander slowly as random walks (the segments of a
   short window are then not independent: :func:`phase_wander`, :func:`wander_threshold`);
   a configured connection between the two loops (the plant structure) makes it a single
   test with a lower floor;
3. forms clusters as the connected components of the coherent pairs;
4. ranks the members of a cluster for the root cause (Thornhill, Cox & Paulonis 2003;
   Thornhill 2005): a sticky-valve verdict of the single-loop diagnosis first, then the
   non-linearity of the signal (bicoherence indices NGI/NLI, Choudhury, Shah & Thornhill
   2004), which is strongest at the source and is filtered out as the oscillation travels
   through the plant, then propagation: the oscillation travels from the source together
   with the source's own variation, so the source's past predicts the other members and not
   the reverse (pairwise Granger causality, Yuan & Qin 2014). The phase lag of each member
   behind the source (cross-spectrum, within half a period) is reported, not ranked on: the
   control error of a loop that rejects a disturbance leads that disturbance by up to 90
   degrees (its controller's sensitivity function), so phase lags between control errors do
   not order the loops along the plant.

Every member carries why it belongs (coherence with the source, its lag, the period), its
unit and area and the strength of its oscillation. :func:`with_plant_context` then tells a
member that is not the source where its oscillation comes from.

References
----------
N. F. Thornhill, J. W. Cox, M. A. Paulonis, "Diagnosis of plant-wide oscillation through
data-driven analysis and process understanding", Control Engineering Practice 11 (2003)
1481-1490.
N. F. Thornhill, "Finding the source of nonlinearity in a process with plant-wide
oscillation", IEEE Transactions on Control Systems Technology 13 (2005) 434-443.
M. A. A. S. Choudhury, S. L. Shah, N. F. Thornhill, "Diagnosis of poor control-loop
performance using higher-order statistics", Automatica 40 (2004) 1719-1728.
C. W. J. Granger, "Investigating causal relations by econometric models and cross-spectral
methods", Econometrica 37 (1969) 424-438; J. Geweke, "Measurement of linear dependence and
feedback between multiple time series", J. Am. Stat. Assoc. 77 (1982) 304-313.
T. Yuan, S. J. Qin, "Root cause diagnosis of plant-wide oscillations using Granger
causality", Journal of Process Control 24 (2014) 450-459.
G. C. Carter, "Coherence and time delay estimation", Proceedings of the IEEE 75 (1987)
236-255.
T. W. Anderson, D. A. Darling, "Asymptotic theory of certain 'goodness of fit' criteria based
on stochastic processes", Annals of Mathematical Statistics 23 (1952) 193-212.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import optimize, special
from scipy import signal as sps
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import chi2

from clpm_shared.analytics.diagnosis import (
    Finding,
    LoopDiagnosis,
    OscillationSummary,
    _ordered,
    _primary,
)

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
Evidence = Mapping[str, str | float | int | bool | None]

PERIOD_TOLERANCE: Final = 0.15
"""Two loops are compared when their periods agree within ±15 % (the single-loop period
estimate scatters by several per cent); the coherence decides whether they share it."""

SIGNIFICANCE: Final = 0.01
"""Family-wise significance of the coherence tests (Bonferroni over the pairs compared)."""

MIN_COHERENCE: Final = 0.9
"""Coherence below this never links two loops that are not known to be connected. Two
independent oscillations of one period whose phases drift slowly (a few per cent of period
jitter) stay nearly phase-locked over a window of a hundred periods and reach a coherence of
0.8-0.9 however many segments are averaged: the null distribution of Gaussian signals does
not hold for them. Loops that share one oscillation reach 0.95 and more."""

MIN_COHERENCE_CONNECTED: Final = 0.5
"""The floor for two loops connected in the plant structure: the process says they can
interact, the coherence only has to be significant."""

PERIODS_PER_SEGMENT: Final = 6.0
"""Welch segments span about six periods (a frequency resolution of a sixth of ``f0``)."""

KEPT_BINS: Final = 16
"""Frequency bins kept of each segment spectrum (a segment spans 2.5-12 periods)."""

PAIRS_PER_BLOCK: Final = 20_000
"""Pairs judged at once (bounded memory: pairs x segments x 3 bins of complex numbers)."""

WANDER_TAIL_MARGIN: Final = 3.0
"""The phase-wander test (:func:`wander_threshold`) is run at a third of its significance:
its small-wander approximation underestimates the chance tail."""

MIN_SEGMENTS: Final = 4
"""Fewer independent segments than this cannot tell coherence from chance: no link."""

BICOHERENCE_SAMPLES_PER_PERIOD: Final = 16
"""The bicoherence is estimated on the signal resampled to 16 samples per period."""
BICOHERENCE_SEGMENT: Final = 64
"""Bicoherence segments of 64 samples (four periods)."""
BICOHERENCE_ALPHA: Final = 0.05
"""Significance of the bicoherence threshold of the NGI."""
GRANGER_SAMPLES_PER_PERIOD: Final = 16
"""Granger causality is tested at 16 samples per period with one period of lags."""
MAX_SOURCE_CANDIDATES: Final = 20
"""Members tested as the source by propagation (the likeliest by non-linearity, strength)."""
MIN_BICOHERENCE_SEGMENTS: Final = 30
"""With fewer segments (a window of fewer than about 60 periods) the bicoherence scatters too
much for its NLI to be trusted: the source is then ranked by propagation alone."""


@dataclass(frozen=True)
class LoopSignal:
    """An oscillating loop as the plant-wide analysis needs it.

    Attributes
    ----------
    summary : OscillationSummary
        Period, amplitude, regularity and stiction evidence of the single-loop diagnosis.
    values : ndarray
        The control error (SP - PV; PV for a loop in manual) on the common time grid of the
        analysis, NaN where missing.
    unit, area : str or None
        Where the loop sits in the plant.
    """

    summary: OscillationSummary
    values: FloatArray
    unit: str | None = None
    area: str | None = None

    @property
    def loop_id(self) -> str:
        return self.summary.loop_id


@dataclass(frozen=True)
class PlantStructure:
    """Known connections between loops (upstream, downstream), e.g. from the P&ID."""

    connections: frozenset[tuple[str, str]] = frozenset()

    def connected(self, a: str, b: str) -> bool:
        return (a, b) in self.connections or (b, a) in self.connections


@dataclass(frozen=True)
class ClusterMember:
    """One loop of a cluster: where it is, how strongly it oscillates, why it belongs."""

    loop_id: str
    role: str  # "source" or "member"
    unit: str | None
    area: str | None
    period_s: float
    amplitude_pct: float | None
    power_share: float | None
    coherence: float | None
    lag_s: float | None
    granger_from_source: float | None
    granger_to_source: float | None
    ngi: float | None
    nli: float | None
    stiction_verdict: str
    why: str

    def to_dict(self) -> dict[str, object]:
        return {
            "loop_id": self.loop_id,
            "role": self.role,
            "unit": self.unit,
            "area": self.area,
            "period_s": _r(self.period_s, 1),
            "amplitude_pct_of_span": _r(self.amplitude_pct, 2),
            "power_share": _r(self.power_share),
            "coherence_with_source": _r(self.coherence),
            "lag_behind_source_s": _r(self.lag_s, 1),
            "granger_from_source": _r(self.granger_from_source),
            "granger_to_source": _r(self.granger_to_source),
            "ngi": _r(self.ngi),
            "nli": _r(self.nli),
            "stiction_verdict": self.stiction_verdict,
            "why": self.why,
        }


@dataclass(frozen=True)
class OscillationCluster:
    """Loops sharing one oscillation (coherent at a common period) and its likely source."""

    period_s: float
    members: tuple[ClusterMember, ...]
    likely_source: str
    source_reason: str
    source_evidence: Evidence

    @property
    def member_ids(self) -> tuple[str, ...]:
        return tuple(member.loop_id for member in self.members)

    def to_dict(self) -> dict[str, object]:
        return {
            "period_s": self.period_s,
            "members": [member.to_dict() for member in self.members],
            "likely_source": self.likely_source,
            "source_reason": self.source_reason,
            "source_evidence": dict(self.source_evidence),
        }


def _r(value: float | None, digits: int = 3) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _prepared(values: FloatArray) -> FloatArray | None:
    """Missing samples interpolated (at most 20 %), linear trend removed, unit variance."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    if finite.sum() < max(16, 0.8 * x.size):
        return None
    if not finite.all():
        index = np.arange(x.size)
        x = np.interp(index, index[finite], x[finite])
    x = sps.detrend(x)
    std = float(np.std(x))
    if std <= 0.0:
        return None
    prepared: FloatArray = x / std
    return prepared


def segment_length(period_s: float, ts: float, n: int) -> int | None:
    """Welch segment of about six periods (a power of two), or None when the window is short.

    The segment must hold at least 2.5 periods, and the window at least
    :data:`MIN_SEGMENTS` segments.
    """
    wanted = 2 ** math.ceil(math.log2(max(PERIODS_PER_SEGMENT * period_s / ts, 8.0)))
    longest = 2 ** math.floor(math.log2(max(n // MIN_SEGMENTS, 1)))
    length = min(wanted, longest)
    if length < 2.5 * period_s / ts or length < 8:
        return None
    return int(length)


def _phase_persistence(z: ComplexArray) -> FloatArray:
    """How much of a loop's phase at one frequency survives one segment length, per row.

    ``z`` holds the spectra of 50 %-overlapping segments (rows: pairs, columns: segments) at
    one bin; segments ``k`` and ``k + 2`` are adjacent, one segment length ``L`` apart:

    .. math:: \\rho(L) = \\frac{|\\sum_k Z_{k+2} Z_k^*|}{\\sum_k |Z_{k+2}| |Z_k|}

    A constant frequency offset from the bin turns every product by the same angle and
    leaves ``rho`` at 1; a phase that wanders as a random walk of diffusion ``D`` gives
    ``rho = exp(-D L / 2)``. Too few segments: 1 (no drift seen).
    """
    if z.shape[1] < 3:
        return np.ones(z.shape[0])
    products = z[:, 2:] * np.conj(z[:, :-2])
    total = np.sum(np.abs(products), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.abs(np.sum(products, axis=1)) / total
    return np.where(total > 0, np.clip(rho, 0.0, 1.0), 1.0)


def phase_wander(segments: float | FloatArray, persistence: float | FloatArray) -> FloatArray:
    """How far two independent oscillations' relative phase wanders over the window.

    The null distribution of :func:`coherence_threshold` assumes that the two signals'
    phases are independent from one segment to the next. Two independent narrow-band
    oscillations of one nominal period are not like that: their relative phase ``psi``
    wanders as a random walk, slowly, so over a short window it stays nearly constant and
    the coherence of two independent loops is high. With ``rho_ab`` the product of the two
    loops' phase persistence over one segment (:func:`_phase_persistence`; independent
    phases multiply), ``psi`` diffuses by ``D L / 2 = -ln rho_ab`` per segment, and over the
    window of ``K`` segments by

    .. math:: a = \\frac{D W}{2} = -K \\ln \\rho_{ab}.

    Returns ``a`` (0: neither phase moves, two such loops cannot be told apart).
    """
    k = np.asarray(segments, dtype=np.float64)
    rho = np.clip(np.asarray(persistence, dtype=np.float64), 1e-300, 1.0)
    wander: FloatArray = -k * np.log(rho)
    return wander


def _log_cramer_von_mises_cdf(x: float) -> float:
    """``ln P(omega^2 <= x)`` of the limiting Cramér-von Mises distribution.

    Series of Anderson & Darling (1952), with ``u_k = (4k + 1)^2 / (16 x)``:

    .. math:: F(x) = \\frac{1}{\\pi \\sqrt{x}} \\sum_{k \\ge 0}
              \\frac{\\Gamma(k + 1/2)}{\\Gamma(1/2)\\, k!} \\sqrt{4k + 1}\\,
              e^{-u_k} K_{1/4}(u_k)

    summed in logarithms (``scipy.special.kve``) so that tiny probabilities keep their
    precision.
    """
    k = np.arange(12)
    m = 4.0 * k + 1.0
    u = m**2 / (16.0 * x)
    terms = (
        special.gammaln(k + 0.5)
        - special.gammaln(0.5)
        - special.gammaln(k + 1.0)
        + 0.5 * np.log(m)
        - 2.0 * u
        + np.log(special.kve(0.25, u))
    )
    return float(special.logsumexp(terms) - math.log(math.pi * math.sqrt(x)))


def cramer_von_mises_quantile(probability: float) -> float:
    """``x`` with ``P(omega^2 <= x) = probability`` (limiting Cramér-von Mises law)."""
    if not 0 < probability < 1:
        raise ValueError(f"probability: must be within (0, 1), got {probability!r}")
    target = math.log(probability)
    return float(
        optimize.brentq(lambda x: _log_cramer_von_mises_cdf(x) - target, 1e-4, 50.0, xtol=1e-12)
    )


def wander_threshold(wander: float | FloatArray, alpha: float) -> FloatArray:
    """Coherence that two independent oscillations of phase wander ``a`` exceed with
    probability ``alpha``.

    Over one window the coherence of signals whose relative phase is ``psi(t)`` is
    ``C = |mean e^{i psi}|^2 >= 1 - var_t(psi)``, close to equality when ``psi`` moves
    little. For a random walk of diffusion ``D`` over ``W``, ``var_t(psi) / (D W)`` follows
    the limiting Cramér-von Mises distribution ``omega^2`` (the time variance of a Brownian
    path about its mean is that of a Brownian bridge; Anderson & Darling 1952), so

    .. math:: P(C > c) \\approx P\\left(\\omega^2 < \\frac{1 - c}{2a}\\right),
              \\qquad c_\\alpha = 1 - 2a\\, q_{\\omega^2}(\\alpha / m)

    with ``m =`` :data:`WANDER_TAIL_MARGIN`, since the approximation underestimates the
    tail (by up to about twice at these thresholds in simulation). Two loops whose
    56-s oscillations wander by 0.025 rad/sqrt(s) have ``a`` of about 2 over an hour, and
    a coherence of 0.96 is then reached by chance once in a million pairs.
    """
    x = cramer_von_mises_quantile(alpha / WANDER_TAIL_MARGIN)
    threshold: FloatArray = 1.0 - 2.0 * np.asarray(wander, dtype=np.float64) * x
    return threshold


def coherence_threshold(segments: float, alpha: float, floor: float = MIN_COHERENCE) -> float:
    """Magnitude-squared coherence exceeded by chance with probability ``alpha``.

    For ``K`` independent segments of two independent Gaussian signals,
    ``P(C > c) = (1 - c)^{K - 1}`` (Carter 1987), so ``c = 1 - alpha^{1/(K-1)}``. Welch
    segments overlapping by half are not independent: ``K`` is taken as the window length
    over the segment length (conservative). The threshold is never below ``floor``.
    """
    if segments <= 1:
        return 1.0
    return float(max(floor, 1.0 - alpha ** (1.0 / (segments - 1.0))))


class _Spectra:
    """Each loop's Welch segment spectra (Hann window, 50 % overlap, ``numpy.fft.rfft`` of the
    segments, as ``scipy.signal.csd`` averages them), computed once per segment length."""

    def __init__(self, loops: Sequence[LoopSignal], ts: float) -> None:
        self.ts = ts
        self.prepared = [_prepared(loop.values) for loop in loops]
        self._cache: dict[tuple[int, int], ComplexArray] = {}

    def segments(self, index: int, length: int) -> ComplexArray | None:
        key = (index, length)
        if key not in self._cache:
            x = self.prepared[index]
            if x is None or x.size < length:
                return None
            window = sps.get_window("hann", length)
            hop = length // 2
            frames = np.lib.stride_tricks.sliding_window_view(x, length)[::hop]
            spectra = np.fft.rfft(frames * window, axis=1).T  # (frequencies, segments)
            # a segment holds at most 12 periods: the bins of the oscillation are below 16
            self._cache[key] = np.ascontiguousarray(spectra[:KEPT_BINS].T)
        return self._cache[key]

    def stacked(self, indices: Sequence[int], length: int) -> ComplexArray:
        """Segment spectra of ``indices`` at ``length``, shape (loops, segments, bins)."""
        return np.stack([self.segments(i, length) for i in indices])  # type: ignore[misc]


def _coherence_of_pairs(
    spectra: _Spectra,
    first: npt.NDArray[np.int64],
    second: npt.NDArray[np.int64],
    periods: FloatArray,
    n: int,
    tolerance: float,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64], FloatArray]:
    """Coherence, lag (s), independent segments and phase wander of many pairs at once
    (NaN: not judged).

    Vectorised form of :func:`_pair`: pairs are grouped by segment length; each pair is
    judged at the bin, among the three nearest its mean period and inside the ±tolerance
    band, where the two loops' band-normalised powers add up most. The independent segments
    and the phase wander (:func:`phase_wander`) are those of the two null hypotheses.
    """
    coherence = np.full(first.size, np.nan)
    lag = np.full(first.size, np.nan)
    segments = np.zeros(first.size, dtype=np.int64)
    wander = np.full(first.size, np.nan)
    # the segment of a pair is that of its longer period (segment_length grows with it)
    own = np.array([segment_length(p, spectra.ts, n) or 0 for p in periods])
    longer = np.where(periods[first] >= periods[second], first, second)
    lengths = own[longer]
    usable = np.array([x is not None and x.size >= 8 for x in spectra.prepared])
    for length in (int(value) for value in np.unique(lengths[lengths > 0])):
        chosen = np.flatnonzero((lengths == length) & usable[first] & usable[second])
        if chosen.size == 0:
            continue
        involved = np.unique(np.concatenate([first[chosen], second[chosen]]))
        row = np.full(len(spectra.prepared), -1)
        row[involved] = np.arange(involved.size)
        z = spectra.stacked(involved.tolist(), length)  # (loops, segments, bins)
        for start in range(0, chosen.size, PAIRS_PER_BLOCK):
            block = chosen[start : start + PAIRS_PER_BLOCK]
            a, b = row[first[block]], row[second[block]]
            mean_period = 0.5 * (periods[first[block]] + periods[second[block]])
            centre = np.rint(length * spectra.ts / mean_period).astype(np.int64)
            bins = np.clip(centre[:, None] + np.array([-1, 0, 1]), 1, z.shape[2] - 1)
            frequency = bins / (length * spectra.ts)
            f0 = 1.0 / mean_period[:, None]
            inside = (frequency >= f0 / (1.0 + tolerance)) & (frequency <= f0 * (1.0 + tolerance))
            inside[:, 1] |= ~inside.any(axis=1)  # the centre bin when none is inside
            every = np.arange(z.shape[1])[None, :, None]
            za = z[a[:, None, None], every, bins[:, None, :]]  # (pairs, segments, 3)
            zb = z[b[:, None, None], every, bins[:, None, :]]
            pa = np.mean(np.abs(za) ** 2, axis=1)
            pb = np.mean(np.abs(zb) ** 2, axis=1)
            cross = np.mean(za * np.conj(zb), axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                score = np.where(
                    inside,
                    pa / np.sum(pa * inside, axis=1, keepdims=True)
                    + pb / np.sum(pb * inside, axis=1, keepdims=True),
                    -np.inf,
                )
                peak = np.argmax(np.nan_to_num(score, nan=-np.inf), axis=1)[:, None]
                pa_peak = np.take_along_axis(pa, peak, axis=1)[:, 0]
                pb_peak = np.take_along_axis(pb, peak, axis=1)[:, 0]
                cross_peak = np.take_along_axis(cross, peak, axis=1)[:, 0]
                value = np.abs(cross_peak) ** 2 / (pa_peak * pb_peak)
            frequency_peak = np.take_along_axis(frequency, peak, axis=1)[:, 0]
            valid = np.isfinite(value) & (pa_peak > 0) & (pb_peak > 0)
            coherence[block] = np.where(valid, value, np.nan)
            lag[block] = np.angle(cross_peak) / (2.0 * math.pi * frequency_peak)
            persistence = _phase_persistence(
                np.take_along_axis(za, peak[:, None, :], axis=2)[:, :, 0]
            ) * _phase_persistence(np.take_along_axis(zb, peak[:, None, :], axis=2)[:, :, 0])
            segments[block] = n // length
            wander[block] = phase_wander(n / length, persistence)
    return coherence, lag, segments, wander


@dataclass(frozen=True)
class _Pair:
    coherence: float
    lag_s: float  # how much the second loop lags the first, within ±T/4
    period_s: float


def _pair(
    spectra: _Spectra, i: int, j: int, period_i: float, period_j: float, n: int
) -> tuple[_Pair, int] | None:
    """Coherence and lag of two loops at their common period, and the segments it rests on."""
    period = 0.5 * (period_i + period_j)
    length = segment_length(max(period_i, period_j), spectra.ts, n)
    if length is None:
        return None
    zi, zj = spectra.segments(i, length), spectra.segments(j, length)
    if zi is None or zj is None:
        return None
    freqs = np.fft.rfftfreq(length, spectra.ts)[: zi.shape[1]]
    f0 = 1.0 / period
    band = np.flatnonzero(
        (freqs >= f0 / (1.0 + PERIOD_TOLERANCE)) & (freqs <= f0 * (1.0 + PERIOD_TOLERANCE))
    )
    if band.size == 0:
        band = np.array([int(np.argmin(np.abs(freqs - f0)))])
    pii = np.mean(np.abs(zi[:, band]) ** 2, axis=0)
    pjj = np.mean(np.abs(zj[:, band]) ** 2, axis=0)
    pij = np.mean(zi[:, band] * np.conj(zj[:, band]), axis=0)
    peak = int(np.argmax(pii / pii.sum() + pjj / pjj.sum()))
    denominator = float(pii[peak] * pjj[peak])
    if denominator <= 0.0:
        return None
    coherence = float(abs(pij[peak]) ** 2 / denominator)
    # P_ij = E[X_i conj(X_j)] = |X|^2 e^{+i w tau} when x_j lags x_i by tau: lags within half
    # a period either way
    phase = float(np.angle(pij[peak]))
    frequency = float(freqs[band[peak]])
    lag = phase / (2.0 * math.pi * frequency) if frequency > 0 else 0.0
    return _Pair(coherence, lag, period), n // length


def band_power_share(x: FloatArray, ts: float, period_s: float) -> float | None:
    """Share of the signal's variance within ±15 % of the oscillation frequency (Welch PSD)."""
    length = segment_length(period_s, ts, x.size)
    if length is None:
        return None
    freqs, psd = sps.welch(x, fs=1.0 / ts, nperseg=length)
    total = float(psd.sum())
    if total <= 0.0:
        return None
    f0 = 1.0 / period_s
    near = (freqs >= f0 / (1.0 + PERIOD_TOLERANCE)) & (freqs <= f0 * (1.0 + PERIOD_TOLERANCE))
    return float(psd[near].sum()) / total


def bicoherence_indices(x: FloatArray, ts: float, period_s: float) -> tuple[float, float] | None:
    """Non-Gaussianity and non-linearity indices from the squared bicoherence.

    The signal is resampled to :data:`BICOHERENCE_SAMPLES_PER_PERIOD` samples per period
    (anti-alias filtered, ``scipy.signal.resample_poly``) and cut into ``K`` Hann-windowed
    segments of :data:`BICOHERENCE_SEGMENT` samples (50 % overlap). Squared bicoherence
    (Kim & Powers 1979) over the principal domain ``f2 <= f1``, ``f1 + f2 <= fs/2``:

    .. math:: b^2(f_1, f_2) = \\frac{|E[X(f_1) X(f_2) X^*(f_1 + f_2)]|^2}
              {E[|X(f_1) X(f_2)|^2]\\, E[|X(f_1 + f_2)|^2]}

    and (Choudhury, Shah & Thornhill 2004)

    .. math:: NGI = \\overline{b^2} - b^2_{crit}, \\quad
              NLI = b^2_{max} - (\\overline{b^2} + 2\\sigma_{b^2})

    with ``b^2_crit = chi^2_alpha(2) / (2K)``. A signal is non-Gaussian when ``NGI > 0`` and
    non-linear when besides ``NLI > 0``. Quadratic phase coupling only: a symmetric limit
    cycle (odd harmonics) may go unseen; the stiction verdict of the single-loop diagnosis
    covers it.

    Returns
    -------
    (NGI, NLI) or None when the window holds fewer than :data:`MIN_BICOHERENCE_SEGMENTS`
    segments.
    """
    samples_per_period = period_s / ts
    up = BICOHERENCE_SAMPLES_PER_PERIOD
    down = max(1, round(samples_per_period))
    y = sps.resample_poly(x, up, down) if down != up else x
    length = BICOHERENCE_SEGMENT
    hop = length // 2
    starts = np.arange(0, y.size - length + 1, hop)
    if starts.size < MIN_BICOHERENCE_SEGMENTS:
        return None
    window = sps.get_window("hann", length)
    segments = np.stack([y[s : s + length] for s in starts])
    segments = segments - segments.mean(axis=1, keepdims=True)
    spectra = np.fft.rfft(segments * window, axis=1)
    half = length // 2
    f1, f2 = np.meshgrid(np.arange(1, half), np.arange(1, half), indexing="ij")
    domain = (f2 <= f1) & (f1 + f2 < half)
    a, b = f1[domain], f2[domain]
    x1, x2, x3 = spectra[:, a], spectra[:, b], spectra[:, a + b]
    numerator = np.abs(np.mean(x1 * x2 * np.conj(x3), axis=0)) ** 2
    denominator = np.mean(np.abs(x1 * x2) ** 2, axis=0) * np.mean(np.abs(x3) ** 2, axis=0)
    valid = denominator > 0
    if not valid.any():
        return None
    bic2 = numerator[valid] / denominator[valid]
    critical = float(chi2.ppf(1.0 - BICOHERENCE_ALPHA, 2)) / (2.0 * len(starts))
    mean, std = float(bic2.mean()), float(bic2.std())
    return mean - critical, float(bic2.max()) - (mean + 2.0 * std)


def _candidate_pairs(
    periods: FloatArray, tolerance: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Every pair whose periods agree within ``±tolerance`` (indices into ``periods``)."""
    order = np.argsort(periods, kind="stable")
    ordered = periods[order]
    last = np.searchsorted(ordered, ordered * (1.0 + tolerance), side="right")
    counts = np.maximum(last - np.arange(ordered.size) - 1, 0)
    first = np.repeat(np.arange(ordered.size), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    second = first + 1 + offsets
    return order[first].astype(np.int64), order[second].astype(np.int64)


@dataclass(frozen=True)
class _Nonlinearity:
    ngi: float | None
    nli: float | None

    @property
    def nonlinear(self) -> bool:
        return (self.ngi or 0.0) > 0.0 and (self.nli or 0.0) > 0.0


def _nonlinearity(x: FloatArray | None, ts: float, period_s: float) -> _Nonlinearity:
    indices = None if x is None else bicoherence_indices(x, ts, period_s)
    return _Nonlinearity(*(indices or (None, None)))


def cluster_oscillations(
    loops: Sequence[LoopSignal],
    ts: float,
    *,
    structure: PlantStructure | None = None,
    tolerance: float = PERIOD_TOLERANCE,
    alpha: float = SIGNIFICANCE,
) -> list[OscillationCluster]:
    """Clusters of loops that share one oscillation, each with its likely source.

    Parameters
    ----------
    loops : sequence of LoopSignal
        The oscillating loops, their control errors all on one grid of step ``ts``.
    ts : float
        Step of that grid, seconds.
    structure : PlantStructure, optional
        Known connections; a connected pair is tested alone (no multiple-test correction)
        against the lower floor :data:`MIN_COHERENCE_CONNECTED`.
    tolerance : float
        Periods compared when they agree within ``±tolerance``.
    alpha : float
        Family-wise significance of the coherence tests.

    Returns
    -------
    list of OscillationCluster
        Largest first; loops that share their oscillation with no other loop are in none.

    See the module docstring for the method and the papers.
    """
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance: must be within (0, 1), got {tolerance!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be within (0, 1), got {alpha!r}")
    if not ts > 0:
        raise ValueError(f"ts: must be > 0, got {ts!r}")
    usable = [
        loop for loop in loops if math.isfinite(loop.summary.period_s) and loop.summary.period_s > 0
    ]
    if len(usable) < 2:
        return []
    lengths = {loop.values.size for loop in usable}
    if len(lengths) != 1:
        raise ValueError("loops: all signals must lie on one grid (same length)")
    n = lengths.pop()
    structure = structure or PlantStructure()
    periods = np.array([loop.summary.period_s for loop in usable])
    spectra = _Spectra(usable, ts)
    first, second = _candidate_pairs(periods, tolerance)
    coherence, _, segments, wander = _coherence_of_pairs(
        spectra, first, second, periods, n, tolerance
    )
    tested = max(1, first.size)
    # two nulls, both must be rejected: phases independent from segment to segment
    # (broadband, coherence_threshold) and phases wandering slowly (narrow-band oscillations
    # of one nominal period, wander_threshold)
    by_wander = wander_threshold(wander, alpha / tested)
    by_wander_connected = wander_threshold(wander, alpha)
    found: list[tuple[int, int]] = []
    for k in np.flatnonzero(np.isfinite(coherence)):
        i, j = int(first[k]), int(second[k])
        if structure.connected(usable[i].loop_id, usable[j].loop_id):
            threshold = max(
                coherence_threshold(segments[k], alpha, MIN_COHERENCE_CONNECTED),
                float(by_wander_connected[k]),
            )
        elif coherence[k] < MIN_COHERENCE:
            continue
        else:
            threshold = max(coherence_threshold(segments[k], alpha / tested), float(by_wander[k]))
        if coherence[k] >= threshold:
            found.append((i, j))
    if not found:
        return []
    rows = np.array([i for i, _ in found])
    cols = np.array([j for _, j in found])
    graph = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(len(usable), len(usable)))
    _, labels = connected_components(graph, directed=False)
    clusters = []
    for label in np.unique(labels):
        group = [int(i) for i in np.flatnonzero(labels == label)]
        if len(group) >= 2:
            clusters.append(_cluster(usable, group, spectra, n, structure))
    clusters.sort(key=lambda c: (-len(c.members), c.period_s))
    return clusters


def _decimated(x: FloatArray, ts: float, period_s: float) -> FloatArray:
    """``x`` at about :data:`GRANGER_SAMPLES_PER_PERIOD` samples per period (anti-aliased)."""
    down = max(1, round(period_s / ts / GRANGER_SAMPLES_PER_PERIOD))
    if down == 1:
        return x
    y: FloatArray = sps.resample_poly(x, 1, down)
    return y


def _lagged(x: FloatArray, order: int) -> FloatArray:
    n = x.size
    return np.column_stack([x[order - k - 1 : n - k - 1] for k in range(order)])


class _Granger:
    """Pairwise Granger causality of the members of one cluster (Geweke's measure).

    For loops ``x`` and ``y`` on a grid of about 16 samples per period and ``p`` lags (one
    period), the residual variance of the autoregression of ``y`` on its own past,
    ``σ²(y | y⁻)``, and on its own and ``x``'s past, ``σ²(y | y⁻, x⁻)`` (least squares), give

    .. math:: F_{x \\to y} = \\ln \\frac{\\sigma^2(y \\mid y^-)}{\\sigma^2(y \\mid y^-, x^-)}

    (Granger 1969, Geweke 1982): how much of what is new in ``y`` the past of ``x`` predicts.
    An oscillation travels downstream with the upstream loop's own variation, none of a
    downstream loop's goes back upstream, so the source is the member with the largest net
    outflow ``sum_j F_{i -> j} - F_{j -> i}`` (Yuan & Qin 2014).
    """

    def __init__(self, signals: Mapping[int, FloatArray]) -> None:
        self.order = GRANGER_SAMPLES_PER_PERIOD
        self.signals = {i: x for i, x in signals.items() if x.size > 4 * self.order}
        self._own: dict[int, tuple[FloatArray, FloatArray, float]] = {}
        self._measure: dict[tuple[int, int], float] = {}

    def _own_fit(self, j: int) -> tuple[FloatArray, FloatArray, float]:
        if j not in self._own:
            y = self.signals[j]
            target = y[self.order :]
            design = np.column_stack([np.ones(target.size), _lagged(y, self.order)])
            residual = target - design @ np.linalg.lstsq(design, target, rcond=None)[0]
            self._own[j] = (target, design, float(np.var(residual)))
        return self._own[j]

    def measure(self, i: int, j: int) -> float | None:
        """``F_{i -> j}``, or None when either signal is too short."""
        if i not in self.signals or j not in self.signals:
            return None
        if (i, j) not in self._measure:
            target, own, own_var = self._own_fit(j)
            x = self.signals[i]
            n = min(x.size, self.signals[j].size)
            if n != target.size + self.order:
                return None
            design = np.column_stack([own, _lagged(x, self.order)])
            residual = target - design @ np.linalg.lstsq(design, target, rcond=None)[0]
            full_var = float(np.var(residual))
            ratio = own_var / full_var if full_var > 0 else 1.0
            self._measure[(i, j)] = float(np.log(max(ratio, 1.0)))
        return self._measure[(i, j)]

    def net_outflow(self, i: int, others: Sequence[int]) -> float:
        total = 0.0
        for j in others:
            if j == i:
                continue
            forward, backward = self.measure(i, j), self.measure(j, i)
            if forward is not None and backward is not None:
                total += forward - backward
        return total


def _cluster(
    loops: Sequence[LoopSignal],
    group: Sequence[int],
    spectra: _Spectra,
    n: int,
    structure: PlantStructure,
) -> OscillationCluster:
    ts = spectra.ts
    period = float(np.median([loops[i].summary.period_s for i in group]))
    nonlinearity = {i: _nonlinearity(spectra.prepared[i], ts, period) for i in group}
    strength = {
        i: band_power_share(x, ts, period) if (x := spectra.prepared[i]) is not None else None
        for i in group
    }
    granger = _Granger(
        {i: _decimated(x, ts, period) for i in group if (x := spectra.prepared[i]) is not None}
    )

    def evidence(i: int) -> tuple[bool, bool]:
        return loops[i].summary.stiction_verdict == "stiction", nonlinearity[i].nonlinear

    # the propagation test costs two regressions per pair: it runs for the most likely
    # candidates only (by non-linearity evidence, then strength)
    candidates = sorted(group, key=lambda i: (evidence(i), strength[i] or 0.0), reverse=True)
    candidates = candidates[:MAX_SOURCE_CANDIDATES]
    outflow = {i: granger.net_outflow(i, group) for i in candidates}
    source = max(candidates, key=lambda i: (evidence(i), outflow[i]))
    src = loops[source].summary
    src_nl = nonlinearity[source]
    reasons = []
    if src.stiction_verdict == "stiction":
        reasons.append("its valve is sticky (stiction verdict)")
    if src_nl.nonlinear:
        reasons.append(
            f"a non-linear signal (bicoherence NGI {src_nl.ngi or 0:.2f}, "
            f"NLI {src_nl.nli or 0:.2f}): non-linearity fades as an oscillation propagates"
        )
    if outflow[source] > 0 and outflow[source] == max(outflow.values()):
        reasons.append(
            "its past predicts the other members' variation more than theirs predicts its "
            f"own (Granger net outflow {outflow[source]:.2f}): the oscillation travels from it"
        )
    if not reasons:
        reasons.append("no member stands out by non-linearity or propagation: uncertain")
    relations: dict[int, _Pair] = {}
    for i in group:
        if i != source:
            a, b = min(i, source), max(i, source)
            result = _pair(spectra, a, b, loops[a].summary.period_s, loops[b].summary.period_s, n)
            if result is not None:
                pair = result[0]
                relations[i] = pair if a == source else replace(pair, lag_s=-pair.lag_s)
    members = [
        _member(
            loops[i],
            loops[source],
            i == source,
            relations.get(i),
            nonlinearity[i],
            strength[i],
            (granger.measure(source, i), granger.measure(i, source)),
            structure,
            period,
        )
        for i in group
    ]
    members.sort(key=lambda m: (m.role != "source", -(m.granger_from_source or 0.0)))
    return OscillationCluster(
        period_s=round(period, 2),
        members=tuple(members),
        likely_source=src.loop_id,
        source_reason="; ".join(reasons),
        source_evidence={
            "stiction_verdict": src.stiction_verdict,
            "stiction_index": _r(src.stiction_index),
            "apparent_stiction_pct": _r(src.apparent_stiction_pct, 2),
            "amplitude_pct_of_span": _r(src.amplitude_pct, 2),
            "ngi": _r(src_nl.ngi),
            "nli": _r(src_nl.nli),
            "granger_net_outflow": _r(outflow[source]),
        },
    )


def _member(
    loop: LoopSignal,
    src: LoopSignal,
    is_source: bool,
    relation: _Pair | None,
    nl: _Nonlinearity,
    power: float | None,
    granger: tuple[float | None, float | None],
    structure: PlantStructure,
    period: float,
) -> ClusterMember:
    from_source, to_source = granger
    coherence = relation.coherence if relation else None
    lag = relation.lag_s if relation else None
    if is_source:
        why = "likely source of the cluster's oscillation"
    else:
        parts = [
            f"coherence {coherence:.2f} with {src.loop_id}"
            if coherence is not None
            else f"linked to {src.loop_id} through other members",
            f"period {loop.summary.period_s:.0f} s (cluster {period:.0f} s)",
        ]
        if from_source is not None and to_source is not None:
            direction = "driven by it" if from_source > to_source else "not clearly driven by it"
            parts.append(f"{direction} (Granger {from_source:.2f} from it, {to_source:.2f} back)")
        if lag is not None:
            parts.append(
                f"its cycle runs {lag:.0f} s behind the source's"
                if lag >= 0
                else f"its cycle runs {-lag:.0f} s ahead of the source's"
            )
        if structure.connected(loop.loop_id, src.loop_id):
            parts.append("connected in the plant structure")
        elif loop.unit is not None and loop.unit == src.unit:
            parts.append(f"same unit ({loop.unit})")
        elif loop.area is not None and loop.area == src.area:
            parts.append(f"same area ({loop.area})")
        why = "; ".join(parts)
    return ClusterMember(
        loop_id=loop.loop_id,
        role="source" if is_source else "member",
        unit=loop.unit,
        area=loop.area,
        period_s=loop.summary.period_s,
        amplitude_pct=loop.summary.amplitude_pct,
        power_share=power,
        coherence=coherence,
        lag_s=lag,
        granger_from_source=None if is_source else from_source,
        granger_to_source=None if is_source else to_source,
        ngi=nl.ngi,
        nli=nl.nli,
        stiction_verdict=loop.summary.stiction_verdict,
        why=why,
    )


def with_plant_context(
    diagnosis: LoopDiagnosis, loop_id: str, clusters: Collection[OscillationCluster]
) -> LoopDiagnosis:
    """Add the plant-wide view: a cluster member that is not the source is disturbed.

    When ``loop_id`` shares its oscillation with a cluster whose likely source is another loop
    showing stiction, its own aggressive-tuning or undecided explanation gives way to an
    external_disturbance finding naming that source. A member whose own diagnosis reports no
    cycle (one too small to hurt) is left as it is.
    """
    cluster = next((c for c in clusters if loop_id in c.member_ids), None)
    if cluster is None or cluster.likely_source == loop_id:
        return diagnosis
    if cluster.source_evidence.get("stiction_verdict") != "stiction":
        return diagnosis
    if any(f.category in {"stiction", "external_disturbance"} for f in diagnosis.findings):
        return diagnosis
    if not any(f.category in {"oscillation", "aggressive_tuning"} for f in diagnosis.findings):
        return diagnosis  # its share of the cycle was too small to report: nothing to explain
    member = next(m for m in cluster.members if m.loop_id == loop_id)
    kept = [f for f in diagnosis.findings if f.category != "aggressive_tuning"]
    severity = max((f.severity for f in kept if f.category == "oscillation"), default=0.5)
    kept.append(
        Finding(
            "external_disturbance",
            severity,
            0.7,
            {
                "cluster_period_s": cluster.period_s,
                "likely_source": cluster.likely_source,
                "cluster_size": len(cluster.members),
                "coherence_with_source": _r(member.coherence),
                "lag_behind_source_s": _r(member.lag_s, 1),
                "source_stiction_index": cluster.source_evidence.get("stiction_index"),
            },
            f"Loop oscillates together with {len(cluster.members) - 1} other loop(s) at about "
            f"{cluster.period_s:.0f} s, most likely driven by the sticky valve of "
            f"{cluster.likely_source}: repair that valve first, then re-check this loop.",
        )
    )
    primary = _primary(kept)
    return replace(diagnosis, findings=_ordered(kept, primary), primary=primary)
