"""All KPIs of one loop over one window (one kpi_results row): ``compute_kpis``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from clpm_shared.analytics.control_error import error_statistics
from clpm_shared.analytics.data_quality import assess_data_quality
from clpm_shared.analytics.harris import harris_delay, harris_index
from clpm_shared.analytics.health import health_score
from clpm_shared.analytics.loop_config import LoopConfig
from clpm_shared.analytics.loop_window import LoopWindow
from clpm_shared.analytics.multiple_oscillations import OscillationComponent
from clpm_shared.analytics.op_movement import op_reversals_per_hour, op_travel_per_hour
from clpm_shared.analytics.oscillation import detect_oscillation, detect_oscillations
from clpm_shared.analytics.saturation import saturation_shares
from clpm_shared.analytics.service_factor import summarise_modes
from clpm_shared.analytics.signal_preparation import FloatArray, fill_gaps
from clpm_shared.analytics.step_response import find_sp_steps

SPAN_PERCENTILES = (0.1, 99.9)
"""Without pv_lo/pv_hi the span is estimated from these percentiles of PV and SP."""

SpanSource = Literal["configured", "estimated"]
"""Where a window's PV span came from: ``pv_lo``/``pv_hi``, or the estimate from its data."""

MIN_SERVICE_FOR_ERROR_SIGNAL = 0.8
"""Oscillation is judged on the control error when at least this share is in service
(the rest is interpolated), else on PV."""

FAST_DATA_MIN_PERIOD_S = 120.0
"""From 1-minute means, only oscillations of at least 2 minutes can be reported."""

EXPECTED_SETTLING_S: dict[str, float] = {
    "flow": 20.0,
    "pressure": 30.0,
    "level": 120.0,
    "temperature": 120.0,
    "other": 60.0,
}
"""Expected settling time per loop type; with a known dead time θ at least 5·θ. A step is
evaluated only with 3× this much data after it."""

NOT_FAST = "needs raw data: not computable from 1-minute means"


@dataclass(frozen=True)
class KpiResult:
    """KPIs of one loop over one window; the fields are the kpi_results columns.

    Every ``None`` has an entry in ``reasons`` (field name → why). ``loop_id`` and the
    window bounds are added by the caller when it stores the row (see :meth:`to_row`).
    """

    source: str
    samples: int
    service_factor: float | None = None
    mode_shares: dict[str, float] | None = None
    saturation: float | None = None
    sat_low: float | None = None
    sat_high: float | None = None
    error_mean: float | None = None
    error_std: float | None = None
    error_mean_pct: float | None = None
    error_std_pct: float | None = None
    iae_per_hour: float | None = None
    variability_index: float | None = None
    harris_index: float | None = None
    harris_assumed_delay: bool | None = None
    op_travel_per_hour: float | None = None
    op_reversals_per_hour: float | None = None
    oscillating: bool | None = None
    osc_period_s: float | None = None
    osc_regularity: float | None = None
    osc_amplitude: float | None = None
    osc_components: list[dict[str, float | None]] | None = None
    """Every significant oscillation of the window (:func:`component_row`), largest first;
    [] when the window was assessed and none was found."""
    sp_changes: int | None = None
    overshoot_pct: float | None = None
    settling_time_s: float | None = None
    rise_time_s: float | None = None
    dq_completeness: float | None = None
    dq_flatline: bool | None = None
    dq_out_of_range: float | None = None
    dq_repeated: float | None = None
    dq_stale_s: float | None = None
    health_score: float | None = None
    status: str = "offline"
    main_problem: str | None = None
    sub_scores: dict[str, float] | None = None
    reasons: dict[str, str] = field(default_factory=dict)
    span_source: SpanSource | None = None
    """Whether every "% of span" figure of the window is of the configured range or of the
    estimate (:func:`pv_span_of`); None when the span is unknown."""
    pv_span: float | None = None
    """PV span used for the % figures (not stored: it follows from loop_config and data)."""

    def to_row(self) -> dict[str, Any]:
        """Column → value mapping for the kpi_results table (JSON columns as plain dicts)."""
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del row["pv_span"]
        for name in ("mode_shares", "sub_scores", "reasons"):
            if row[name] is not None:
                row[name] = dict(row[name])
        if row["osc_components"] is not None:
            row["osc_components"] = [dict(c) for c in row["osc_components"]]
        return row


def _quantiles(values: FloatArray, low_pct: float, high_pct: float) -> tuple[float, float]:
    """Linear-interpolation percentiles (numpy's default) through one partial sort."""
    n = values.size
    positions = [(n - 1) * low_pct / 100.0, (n - 1) * high_pct / 100.0]
    anchors = sorted({min(math.floor(p) + k, n - 1) for p in positions for k in (0, 1)})
    part = np.partition(values, anchors)
    out = []
    for p in positions:
        lo = math.floor(p)
        hi = min(lo + 1, n - 1)
        out.append(float(part[lo] + (part[hi] - part[lo]) * (p - lo)))
    return out[0], out[1]


def pv_span(window: LoopWindow, config: LoopConfig) -> tuple[float | None, str | None]:
    """PV span of a window's samples (see :func:`pv_span_of`)."""
    return pv_span_of(window.pv, window.sp, config)


def pv_span_of(
    pv: FloatArray, sp: FloatArray, config: LoopConfig
) -> tuple[float | None, str | None]:
    """PV span: ``pv_hi - pv_lo`` when configured, else an estimate from PV and SP.

    The estimate is the width of the smallest zero-based range holding the 0.1-99.9
    percentiles ``[q_lo, q_hi]`` of PV and SP together (SP included so a set-point step
    widens it; NaN values ignored):

    .. math:: \\hat S = \\max(q_{hi}, 0) - \\min(q_{lo}, 0)

    Transmitter ranges of flows, pressures, levels and most temperatures start at zero and
    hold the operating point, so :math:`\\hat S` is the narrowest range the instrument can
    plausibly have: percentages of it are upper bounds of the percentages of the real
    range. The window's own percentile range (used before) made every loop's variation a
    large share of its "span" (a healthy loop's error σ about 1/6 of it, a ±3 °C cycle at
    398 °C a third of it); data that straddle zero keep that range. Which of the two a
    window used is :func:`pv_span_source`.

    Returns
    -------
    span, reason : float or None, str or None
        The span, or None with the reason when it cannot be known.
    """
    if config.pv_lo is not None and config.pv_hi is not None:
        return config.pv_hi - config.pv_lo, None
    values = np.concatenate((pv, sp))
    values = values[~np.isnan(values)]
    if values.size < 2:
        return None, "PV span unknown: no pv_lo/pv_hi configured and no data"
    lo, hi = _quantiles(values, *SPAN_PERCENTILES)
    span = max(hi, 0.0) - min(lo, 0.0)
    if not (math.isfinite(span) and span > 0 and hi > lo):
        return None, "PV span unknown: no pv_lo/pv_hi configured and PV/SP do not vary"
    return span, None


def pv_span_source(config: LoopConfig, span: float | None) -> SpanSource | None:
    """``"configured"`` with ``pv_lo``/``pv_hi``, ``"estimated"`` for a span from the data
    (:func:`pv_span_of`), None when there is no span."""
    if span is None:
        return None
    return "configured" if config.pv_lo is not None and config.pv_hi is not None else "estimated"


def component_row(component: OscillationComponent, span: float | None) -> dict[str, float | None]:
    r"""One oscillation component as stored in ``kpi_results.osc_components``.

    The fields of :class:`~clpm_shared.analytics.multiple_oscillations.OscillationComponent`
    (filter bank of Thornhill, Huang & Zhang 2003, J. Process Control 13(1), 91-100) plus
    ``amplitude_pct`` :math:`= 100\,A / \text{span}` (None when the span is unknown), like
    ``osc_amplitude``.
    """
    row: dict[str, float | None] = dict(component.to_dict())
    row["amplitude_pct"] = component.amplitude / span * 100.0 if span else None
    return row


def _expected_settling_s(config: LoopConfig) -> float:
    base = EXPECTED_SETTLING_S[config.loop_type]
    if config.dead_time_s is not None:
        return max(base, 5.0 * config.dead_time_s)
    return base


def _mean_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def compute_kpis(window: LoopWindow, config: LoopConfig) -> KpiResult:
    """Compute every KPI of KPI_SPEC for one loop window, then its health score.

    Definitions and references are in the functions used: service factor and mode shares
    (:func:`~clpm_shared.analytics.service_factor.summarise_modes`), saturation
    (:func:`~clpm_shared.analytics.saturation.saturation_shares`), error statistics, IAE and
    variability index (:func:`~clpm_shared.analytics.control_error.error_statistics`),
    Harris index (:func:`~clpm_shared.analytics.harris.harris_index`, on the in-service
    control error, delay from ``dead_time_s``), OP travel and reversals
    (:mod:`~clpm_shared.analytics.op_movement`), oscillation
    (:func:`~clpm_shared.analytics.oscillation.detect_oscillation` on the control error when
    at least 80 % of the window is in service, else on PV), set-point steps
    (:func:`~clpm_shared.analytics.step_response.find_sp_steps`), data quality
    (:func:`~clpm_shared.analytics.data_quality.assess_data_quality`) and health
    (:func:`~clpm_shared.analytics.health.health_score`).

    With ``window.source == "agg_1m"`` the KPIs that need fast data (Harris, reversals,
    set-point step responses, oscillations shorter than 2 minutes) are None with a reason.

    Parameters
    ----------
    window : LoopWindow
    config : LoopConfig

    Returns
    -------
    KpiResult
        Never raises for any data in the window; every None carries a reason.
    """
    with np.errstate(all="ignore"):
        return _compute(window, config)


def _compute(window: LoopWindow, config: LoopConfig) -> KpiResult:
    values: dict[str, Any] = {}
    reasons: dict[str, str] = {}

    def none(reason: str, *names: str) -> None:
        for name in names:
            values[name] = None
            reasons[name] = reason

    n = len(window)
    fast = window.source == "raw"
    pv, sp, op = window.pv, window.sp, window.op
    pv_present = ~np.isnan(pv)
    samples = int(np.count_nonzero(pv_present))

    # data quality first: it is meaningful even for an empty window
    dq = assess_data_quality(window, config.pv_lo, config.pv_hi, config.op_lo, config.op_hi)
    values.update(
        dq_completeness=dq.completeness,
        dq_flatline=dq.flatline,
        dq_out_of_range=dq.out_of_range,
        dq_repeated=dq.repeated,
        dq_stale_s=dq.stale_s,
    )
    reasons.update(dq.reasons)

    modes = summarise_modes(window.mode, pv, config.normal_modes)
    values["service_factor"] = modes.service_factor
    values["mode_shares"] = modes.mode_shares
    if modes.reason:
        for name in ("service_factor", "mode_shares"):
            reasons[name] = modes.reason
    in_service = modes.in_service

    saturation = saturation_shares(
        op, in_service, config.op_lo, config.op_hi, config.effective_sat_margin
    )
    if saturation is None:
        none("no in-service sample with an OP value", "saturation", "sat_low", "sat_high")
    else:
        values.update(
            saturation=saturation.saturation,
            sat_low=saturation.sat_low,
            sat_high=saturation.sat_high,
        )

    span, span_reason = pv_span(window, config)
    if span is None:
        reasons["span_source"] = span_reason or "PV span unknown"
    e = sp - pv
    stats = error_statistics(e, in_service, span, window.ts, window.hours)
    error_names = (
        "error_mean",
        "error_std",
        "error_mean_pct",
        "error_std_pct",
        "iae_per_hour",
        "variability_index",
    )
    if stats is None:
        none("no in-service sample with both SP and PV", *error_names)
    else:
        for name in error_names:
            values[name] = getattr(stats, name)
            if values[name] is None:
                reasons[name] = span_reason or "too few consecutive in-service samples"

    # Harris index on the in-service control error
    delay, assumed = harris_delay(config.dead_time_s, window.ts)
    if not fast:
        none(NOT_FAST, "harris_index", "harris_assumed_delay")
    else:
        controlled = fill_gaps(np.where(in_service, e, np.nan))
        if controlled is None:
            none(
                "needs at least 80 % of the window in service with SP and PV",
                "harris_index",
                "harris_assumed_delay",
            )
        else:
            try:
                values["harris_index"] = harris_index(controlled, delay)
                values["harris_assumed_delay"] = assumed
            except ValueError as error:
                none(f"not computable: {error}", "harris_index", "harris_assumed_delay")

    travel = op_travel_per_hour(op, config.op_span, window.hours)
    if travel is None:
        none("fewer than two consecutive OP samples", "op_travel_per_hour")
    else:
        values["op_travel_per_hour"] = travel
    if not fast:
        none(NOT_FAST, "op_reversals_per_hour")
    else:
        reversals = op_reversals_per_hour(op, config.effective_deadband, window.hours)
        if reversals is None:
            none("fewer than two OP samples", "op_reversals_per_hour")
        else:
            values["op_reversals_per_hour"] = reversals

    # oscillation: on the control error when mostly in service, else on PV (manual)
    in_service_share = float(np.count_nonzero(in_service)) / n if n else 0.0
    signal = (
        np.where(in_service, e, np.nan) if in_service_share >= MIN_SERVICE_FOR_ERROR_SIGNAL else pv
    )
    osc_names = ("oscillating", "osc_period_s", "osc_regularity", "osc_amplitude")
    oscillation = detect_oscillation(signal, window.ts)
    if not fast and not (
        oscillation.oscillating
        and oscillation.period_s is not None
        and oscillation.period_s >= FAST_DATA_MIN_PERIOD_S
    ):
        none(f"{NOT_FAST} (only oscillations of 2 minutes or more show in means)", *osc_names)
    elif not oscillation.assessed:
        none(f"oscillation not assessed: {oscillation.reason}", *osc_names)
    else:
        values["oscillating"] = oscillation.oscillating
        values["osc_regularity"] = oscillation.regularity
        if oscillation.regularity is None:
            reasons["osc_regularity"] = oscillation.reason or "no period found"
        if oscillation.oscillating:
            values["osc_period_s"] = oscillation.period_s
            if oscillation.amplitude is not None and span is not None:
                values["osc_amplitude"] = oscillation.amplitude / span * 100.0
            else:
                none(span_reason or "amplitude not estimated", "osc_amplitude")
        else:
            none(f"not oscillating: {oscillation.reason}", "osc_period_s", "osc_amplitude")
    if values.get("oscillating") is None:
        none(reasons.get("oscillating", "oscillation not assessed"), "osc_components")
    else:
        values["osc_components"] = [
            component_row(c, span)
            for c in detect_oscillations(signal, window.ts)
            if fast or c.period_s >= FAST_DATA_MIN_PERIOD_S
        ]

    step_names = ("sp_changes", "overshoot_pct", "settling_time_s", "rise_time_s")
    if not fast:
        none(NOT_FAST, *step_names)
    elif span is None:
        none(span_reason or "PV span unknown", *step_names)
    else:
        steps = find_sp_steps(window.t, sp, pv, span, _expected_settling_s(config))
        values["sp_changes"] = len(steps)
        if not steps:
            none("no set-point step > 1 % of span with enough data after it", *step_names[1:])
        else:
            values["overshoot_pct"] = _mean_or_none([s.overshoot_pct for s in steps])
            values["settling_time_s"] = _mean_or_none([s.settling_time_s for s in steps])
            values["rise_time_s"] = _mean_or_none([s.rise_time_s for s in steps])
            if values["settling_time_s"] is None:
                reasons["settling_time_s"] = "PV did not settle within 5 % after any step"
            if values["rise_time_s"] is None:
                reasons["rise_time_s"] = "PV never reached 90 % of any step"

    # the health fields are filled in below from the KPIs above
    for name, value in list(values.items()):
        if isinstance(value, float) and not math.isfinite(value):
            none("not finite (values out of numeric range)", name)
    result = KpiResult(
        source=window.source,
        samples=samples,
        reasons=reasons,
        pv_span=span,
        span_source=pv_span_source(config, span),
        **values,
    )
    health = health_score(result, config)
    if health.score is None:
        reasons["health_score"] = reasons["sub_scores"] = "offline: no data in the window"
    if health.main_problem is None:
        reasons["main_problem"] = "no sub-score below 80"
    return dataclasses.replace(
        result,
        health_score=health.score,
        status=health.status,
        main_problem=health.main_problem,
        sub_scores=health.sub_scores or None,
        reasons=reasons,
    )
