"""Health score of a loop (0-100) from its KPIs, with thresholds per loop type.

Each KPI becomes a sub-score 0-100 through a piecewise-linear map between breakpoints
``(kpi value, score)``; below the first / above the last breakpoint the end score holds.
The tables (``THRESHOLDS``) are the documentation:

==================  ==========================  =====================================
sub-score           KPI (unit)                  breakpoints, per loop type
==================  ==========================  =====================================
service_factor      share in normal mode        all: 0.5→0, 0.8→60, 0.95→100
saturation          share of in-service time    all: 0→100, 0.05→80, 0.2→40, 0.5→0
oscillation         amplitude, % of PV span     100 when not oscillating, else
                                                flow/pressure/other: 0→75, 1→55, 5→0;
                                                level: 0→75, 3→55, 15→0;
                                                temperature: 0→75, 0.5→55, 3→0
control_error       error std, % of PV span     flow/pressure/other: 1→100, 3→80, 10→40,
                                                25→0; level: 2→100, 5→80, 15→40, 30→0;
                                                temperature: 0.5→100, 2→80, 5→40, 15→0
harris_index        η (0-1)                     flow/pressure: 0→20, 0.1→60, 0.3→100;
                                                level: 0→40, 0.05→60, 0.2→100 (averaging
                                                level control is slow on purpose);
                                                temperature/other: 0→20, 0.15→60, 0.4→100
variability         VI, %                       level: 40→100, 80→70, 100→40;
                                                others: 20→100, 50→70, 90→20
valve_travel        OP reversals per hour       flow/pressure: 60→100, 300→80, 900→40,
                                                1800→0; others: 30→100, 120→80, 600→40,
                                                1200→0
data_quality        see ``data_quality_score``  all loop types alike
==================  ==========================  =====================================

Health = weighted mean of the available sub-scores (weights in ``WEIGHTS``; the Harris
weight is halved when its delay was assumed), then capped by the lower of the
service-factor and data-quality sub-scores: a loop in manual or with bad data cannot be
healthy. Status: good >= 80, fair >= 60, poor < 60, offline without data. The main problem
is the first sub-score below 60, else below 80, in the cause order ``PROBLEM_PRIORITY``
(data quality, service factor, saturation, oscillation, control error, valve travel,
variability, Harris index).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from clpm_shared.analytics.loop_config import LoopConfig

if TYPE_CHECKING:
    from clpm_shared.analytics.kpis import KpiResult

Status = Literal["good", "fair", "poor", "offline"]
Breakpoints = Sequence[tuple[float, float]]

GOOD_FROM = 80.0
FAIR_FROM = 60.0

_SERVICE: Breakpoints = ((0.5, 0.0), (0.8, 60.0), (0.95, 100.0))
_SATURATION: Breakpoints = ((0.0, 100.0), (0.05, 80.0), (0.2, 40.0), (0.5, 0.0))
_OSC_FAST: Breakpoints = ((0.0, 75.0), (1.0, 55.0), (5.0, 0.0))
_ERR_FAST: Breakpoints = ((1.0, 100.0), (3.0, 80.0), (10.0, 40.0), (25.0, 0.0))
_HARRIS_FAST: Breakpoints = ((0.0, 20.0), (0.1, 60.0), (0.3, 100.0))
_HARRIS_SLOW: Breakpoints = ((0.0, 20.0), (0.15, 60.0), (0.4, 100.0))
_VI: Breakpoints = ((20.0, 100.0), (50.0, 70.0), (90.0, 20.0))
_REV_FAST: Breakpoints = ((60.0, 100.0), (300.0, 80.0), (900.0, 40.0), (1800.0, 0.0))
_REV_SLOW: Breakpoints = ((30.0, 100.0), (120.0, 80.0), (600.0, 40.0), (1200.0, 0.0))

THRESHOLDS: Mapping[str, Mapping[str, Breakpoints]] = {
    "flow": {
        "oscillation": _OSC_FAST,
        "control_error": _ERR_FAST,
        "harris_index": _HARRIS_FAST,
        "variability": _VI,
        "valve_travel": _REV_FAST,
    },
    "pressure": {
        "oscillation": _OSC_FAST,
        "control_error": _ERR_FAST,
        "harris_index": _HARRIS_FAST,
        "variability": _VI,
        "valve_travel": _REV_FAST,
    },
    "level": {
        "oscillation": ((0.0, 75.0), (3.0, 55.0), (15.0, 0.0)),
        "control_error": ((2.0, 100.0), (5.0, 80.0), (15.0, 40.0), (30.0, 0.0)),
        "harris_index": ((0.0, 40.0), (0.05, 60.0), (0.2, 100.0)),
        "variability": ((40.0, 100.0), (80.0, 70.0), (100.0, 40.0)),
        "valve_travel": _REV_SLOW,
    },
    "temperature": {
        "oscillation": ((0.0, 75.0), (0.5, 55.0), (3.0, 0.0)),
        "control_error": ((0.5, 100.0), (2.0, 80.0), (5.0, 40.0), (15.0, 0.0)),
        "harris_index": _HARRIS_SLOW,
        "variability": _VI,
        "valve_travel": _REV_SLOW,
    },
    "other": {
        "oscillation": _OSC_FAST,
        "control_error": _ERR_FAST,
        "harris_index": _HARRIS_SLOW,
        "variability": _VI,
        "valve_travel": _REV_SLOW,
    },
}
"""Per-loop-type breakpoints ``(kpi value, score)`` of the loop-type dependent sub-scores."""

COMMON_THRESHOLDS: Mapping[str, Breakpoints] = {
    "service_factor": _SERVICE,
    "saturation": _SATURATION,
}

WEIGHTS: Mapping[str, float] = {
    "service_factor": 1.0,
    "saturation": 1.5,
    "oscillation": 2.0,
    "control_error": 1.0,
    "harris_index": 1.0,
    "variability": 1.0,
    "valve_travel": 0.5,
    "data_quality": 1.0,
}

PROBLEM_PRIORITY: tuple[str, ...] = (
    "data_quality",
    "service_factor",
    "saturation",
    "oscillation",
    "control_error",
    "valve_travel",
    "variability",
    "harris_index",
)

_COMPLETENESS: Breakpoints = ((0.5, 0.0), (0.9, 80.0), (0.99, 100.0))
_OUT_OF_RANGE: Breakpoints = ((0.0, 100.0), (0.05, 50.0), (0.2, 0.0))
_REPEATED: Breakpoints = ((0.5, 100.0), (0.8, 70.0), (0.95, 30.0))


@dataclass(frozen=True)
class HealthResult:
    """Health of one loop over one window.

    Attributes
    ----------
    score : float or None
        0-100, None when offline.
    status : {"good", "fair", "poor", "offline"}
    sub_scores : dict
        ``{sub-score name: 0-100}`` for the KPIs that were available.
    main_problem : str or None
        Name of the lowest sub-score below 80, None when none is.
    """

    score: float | None
    status: Status
    sub_scores: dict[str, float]
    main_problem: str | None = None


def piecewise_score(value: float, breakpoints: Breakpoints) -> float:
    """Linear interpolation of ``value`` between breakpoints ``(x, score)`` (x ascending)."""
    x0, s0 = breakpoints[0]
    if value <= x0:
        return float(s0)
    for x1, s1 in breakpoints[1:]:
        if value <= x1:
            return float(s0 + (s1 - s0) * (value - x0) / (x1 - x0)) if x1 > x0 else float(s1)
        x0, s0 = x1, s1
    return float(s0)


def data_quality_score(
    completeness: float | None,
    flatline: bool | None,
    out_of_range: float | None,
    repeated: float | None,
) -> float | None:
    """Data-quality sub-score: the lowest of its parts (a flatline scores 0).

    completeness 0.5→0, 0.9→80, 0.99→100; out-of-range share 0→100, 0.05→50, 0.2→0;
    repeated-value share 0.5→100, 0.8→70, 0.95→30. None when nothing was measured.
    """
    if flatline:
        return 0.0
    parts = []
    if completeness is not None:
        parts.append(piecewise_score(completeness, _COMPLETENESS))
    if out_of_range is not None:
        parts.append(piecewise_score(out_of_range, _OUT_OF_RANGE))
    if repeated is not None:
        parts.append(piecewise_score(repeated, _REPEATED))
    return min(parts) if parts else None


def status_of(score: float | None) -> Status:
    """good >= 80, fair >= 60, poor < 60, offline for None."""
    if score is None:
        return "offline"
    if score >= GOOD_FROM:
        return "good"
    if score >= FAIR_FROM:
        return "fair"
    return "poor"


def health_score(kpis: KpiResult, config: LoopConfig) -> HealthResult:
    """Health score 0-100 of a loop from its KPIs (tables and rules in the module docstring).

    Parameters
    ----------
    kpis : KpiResult
        KPIs of the window (the health fields of it are ignored).
    config : LoopConfig
        Supplies ``loop_type``.

    Returns
    -------
    HealthResult
        ``offline`` when the window holds no PV data.
    """
    if kpis.samples == 0 or not kpis.dq_completeness:
        return HealthResult(None, "offline", {}, "no_data")
    table = THRESHOLDS[config.loop_type]
    sub: dict[str, float] = {}
    if kpis.service_factor is not None:
        sub["service_factor"] = piecewise_score(
            kpis.service_factor, COMMON_THRESHOLDS["service_factor"]
        )
    if kpis.saturation is not None:
        sub["saturation"] = piecewise_score(kpis.saturation, COMMON_THRESHOLDS["saturation"])
    if kpis.oscillating is not None:
        if kpis.oscillating and kpis.osc_amplitude is not None:
            sub["oscillation"] = piecewise_score(kpis.osc_amplitude, table["oscillation"])
        elif kpis.oscillating:
            sub["oscillation"] = table["oscillation"][0][1]
        else:
            sub["oscillation"] = 100.0
    if kpis.error_std_pct is not None:
        sub["control_error"] = piecewise_score(kpis.error_std_pct, table["control_error"])
    if kpis.harris_index is not None:
        sub["harris_index"] = piecewise_score(kpis.harris_index, table["harris_index"])
    if kpis.variability_index is not None:
        sub["variability"] = piecewise_score(kpis.variability_index, table["variability"])
    if kpis.op_reversals_per_hour is not None:
        sub["valve_travel"] = piecewise_score(kpis.op_reversals_per_hour, table["valve_travel"])
    dq = data_quality_score(
        kpis.dq_completeness, kpis.dq_flatline, kpis.dq_out_of_range, kpis.dq_repeated
    )
    if dq is not None:
        sub["data_quality"] = dq
    if not sub:
        return HealthResult(None, "offline", {}, "no_data")

    weights = {name: WEIGHTS[name] for name in sub}
    if "harris_index" in weights and kpis.harris_assumed_delay:
        weights["harris_index"] /= 2.0
    total_weight = sum(weights.values())
    score = sum(sub[name] * weights[name] for name in sub) / total_weight
    caps = [sub[name] for name in ("service_factor", "data_quality") if name in sub]
    if caps:
        score = min(score, *caps)
    score = round(min(max(score, 0.0), 100.0), 2)
    rounded = {name: round(value, 2) for name, value in sub.items()}
    return HealthResult(score, status_of(score), rounded, main_problem(sub))


def main_problem(sub_scores: Mapping[str, float]) -> str | None:
    """The sub-score to act on first: poor (< 60) before fair (< 80), then by cause order.

    ``PROBLEM_PRIORITY`` puts causes before symptoms: bad data and manual mode make every
    other KPI unreliable; saturation and oscillation drive the error statistics, the
    variability and the Harris index, which come last.
    """
    for limit in (FAIR_FROM, GOOD_FROM):
        for name in PROBLEM_PRIORITY:
            if name in sub_scores and sub_scores[name] < limit:
                return name
    return None
