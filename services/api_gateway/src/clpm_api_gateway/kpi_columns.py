"""KPI columns of the API and the mapping of the original system's kpi_results names to ours.

Clients of the original system read columns such as ``pi``, ``osc_index`` or ``sat_percent``.
Our KPIs follow the KPI specification and are named for what they are; each original name is
answered through :data:`ORIGINAL_ALIASES` (``columns=pi,osc_index`` on the KPI endpoints, and
``GET /kpis/aliases`` lists the table). Where the original column was a heuristic with no
counterpart here, the alias answers null and its note says why.

| original | ours | note |
|---|---|---|
| timestamp | window_end | end of the KPI window |
| service_factor, effective_sf | service_factor | share of valid samples in a normal mode |
| sat_percent | saturation x 100 | percent instead of share |
| saturation | saturation | share of in-service samples at an OP limit |
| output_travel, valve_travel | op_travel_per_hour | % of OP span per hour |
| valve_reversals | op_reversals_per_hour | per hour, beyond the deadband |
| pi | harris_index | minimum-variance performance index (1 = best) |
| osc_index | osc_regularity | Thornhill regularity r (> 1: oscillating) |
| settling_time, overshoot, rise_time | settling_time_s, overshoot_pct, rise_time_s | |
| integral_error | iae_per_hour | |
| control_error | error_mean | mean of SP - PV |
| noise_level | error_std | std of SP - PV |
| setpoint_changes | sp_changes | |
| (new) | osc_components | every significant oscillation of the window (period_s, strength, \
  regularity, share, amplitude, amplitude_pct), largest first |
| (new) | span_source | "configured" (pv_lo/pv_hi) or "estimated": the span of every % of span |
| rpi, stiction, deadband, peak_error, process_gain, time_constant, dead_time, mode_changes | \
  null | see the notes |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clpm_api_gateway.columnar import iso_time
from clpm_shared.db.models import KpiResult
from clpm_shared.web.problems import invalid_parameter

KPI_COLUMNS: tuple[str, ...] = (
    "loop_id",
    "window_start",
    "window_end",
    "computed_at",
    "source",
    "samples",
    "status",
    "health_score",
    "main_problem",
    "service_factor",
    "mode_shares",
    "saturation",
    "sat_low",
    "sat_high",
    "error_mean",
    "error_std",
    "error_mean_pct",
    "error_std_pct",
    "span_source",
    "iae_per_hour",
    "variability_index",
    "harris_index",
    "harris_assumed_delay",
    "op_travel_per_hour",
    "op_reversals_per_hour",
    "oscillating",
    "osc_period_s",
    "osc_regularity",
    "osc_amplitude",
    "osc_components",
    "sp_changes",
    "overshoot_pct",
    "settling_time_s",
    "rise_time_s",
    "dq_completeness",
    "dq_flatline",
    "dq_out_of_range",
    "dq_repeated",
    "dq_stale_s",
    "sub_scores",
    "reasons",
)
"""Columns of a KPI row, in answer order."""

NUMERIC_KPIS: tuple[str, ...] = (
    "health_score",
    "service_factor",
    "saturation",
    "error_mean",
    "error_std",
    "iae_per_hour",
    "variability_index",
    "harris_index",
    "op_travel_per_hour",
    "op_reversals_per_hour",
    "osc_period_s",
    "osc_regularity",
    "overshoot_pct",
    "settling_time_s",
    "dq_completeness",
)
"""KPIs summarised (mean/min/max/last) by ``/loops/{id}/kpis/summary``."""

_TIME_COLUMNS = {"window_start", "window_end", "computed_at"}


@dataclass(frozen=True)
class Alias:
    """An original column name: our column and a scale factor, or None with the reason."""

    column: str | None
    scale: float = 1.0
    note: str = ""


ORIGINAL_ALIASES: dict[str, Alias] = {
    "timestamp": Alias("window_end", note="end of the KPI window"),
    "effective_sf": Alias("service_factor", note="share of valid samples in a normal mode"),
    "sat_percent": Alias("saturation", 100.0, "saturation as percent of in-service samples"),
    "output_travel": Alias("op_travel_per_hour", note="OP travel, % of OP span per hour"),
    "valve_travel": Alias("op_travel_per_hour", note="OP travel, % of OP span per hour"),
    "valve_reversals": Alias("op_reversals_per_hour", note="OP reversals beyond the deadband"),
    "pi": Alias("harris_index", note="minimum-variance (Harris) performance index, 1 = best"),
    "osc_index": Alias("osc_regularity", note="Thornhill oscillation regularity r"),
    "settling_time": Alias("settling_time_s", note="mean over set-point steps, seconds"),
    "overshoot": Alias("overshoot_pct", note="mean over set-point steps, % of step"),
    "rise_time": Alias("rise_time_s", note="mean over set-point steps, seconds"),
    "integral_error": Alias("iae_per_hour", note="integral of |SP - PV| per hour, % of span"),
    "control_error": Alias("error_mean", note="mean of SP - PV in engineering units"),
    "noise_level": Alias("error_std", note="standard deviation of SP - PV"),
    "setpoint_changes": Alias("sp_changes", note="set-point steps > 1 % of span"),
    "rpi": Alias(None, note="needs a reference controller; not computed (see harris_index)"),
    "stiction": Alias(None, note="a diagnosis, not a KPI: see /loops/{id}/diagnostics"),
    "deadband": Alias(None, note="a loop setting: see /loops/{id}/config"),
    "peak_error": Alias(None, note="not computed; see error_std and overshoot_pct"),
    "process_gain": Alias(None, note="no process model is identified"),
    "time_constant": Alias(None, note="no process model is identified"),
    "dead_time": Alias(None, note="a loop setting (dead_time_s): see /loops/{id}/config"),
    "mode_changes": Alias(None, note="not computed; see mode_shares"),
}

DEFAULT_COLUMNS = KPI_COLUMNS


def resolve_columns(requested: Sequence[str] | None, parameter: str = "columns") -> list[str]:
    """Output column names: ours or original aliases, comma lists allowed, order kept."""
    if not requested:
        return list(DEFAULT_COLUMNS)
    names: list[str] = []
    for value in requested:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            if name not in KPI_COLUMNS and name not in ORIGINAL_ALIASES:
                raise invalid_parameter(
                    parameter,
                    f"unknown column {part.strip()[:64]!r}; see GET /kpis/aliases for the names",
                )
            if name not in names:
                names.append(name)
    if not names:
        raise invalid_parameter(parameter, "at least one column is required")
    return names


def _plain(column: str, value: Any) -> Any:
    if column in _TIME_COLUMNS:
        return iso_time(value)
    return value


def kpi_row(result: KpiResult, columns: Sequence[str]) -> dict[str, Any]:
    """One KPI row with the requested columns (original names answered through aliases)."""
    row: dict[str, Any] = {}
    for column in columns:
        if column in KPI_COLUMNS:
            row[column] = _plain(column, getattr(result, column))
            continue
        alias = ORIGINAL_ALIASES[column]
        if alias.column is None:
            row[column] = None
            continue
        value = getattr(result, alias.column)
        if alias.scale != 1.0 and value is not None:
            value = value * alias.scale
        row[column] = _plain(alias.column, value)
    return row


def alias_table() -> list[dict[str, Any]]:
    return [
        {"original": name, "column": alias.column, "scale": alias.scale, "note": alias.note}
        for name, alias in ORIGINAL_ALIASES.items()
    ]
