"""Request and response bodies of the diagnostics API (pydantic, with OpenAPI examples)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from clpm_shared.timeseries import validate_loop_id

MAX_RANGE = timedelta(hours=24)
"""Longest window one request may analyse (raw data at 1 s: 86,400 samples per loop)."""
CLUSTER_MAX_RANGE = timedelta(days=7)
"""Plant-wide clusters over more than DIAG_CLUSTER_RAW_MAX_H use 1-minute means: up to a week."""

MAX_BATCH = 1000
"""Most loops in one batch request."""

Trigger = Literal["on_demand", "kpi_cycle"]


def range_problem(start: datetime, end: datetime, max_range: timedelta = MAX_RANGE) -> str | None:
    """Why ``[start, end)`` is not an acceptable window (a message about ``end``), or None."""
    if end <= start:
        return "must be after start"
    if end - start > max_range:
        return f"the window may span at most {max_range.total_seconds() / 3600:g} h"
    return None


class Window(BaseModel):
    """A time window ``[start, end)`` with timezone-aware ISO-8601 bounds."""

    start: AwareDatetime = Field(examples=["2025-01-10T10:00:00Z"])
    end: AwareDatetime = Field(examples=["2025-01-10T11:00:00Z"])


class DiagnoseRequest(Window):
    """Diagnose one loop over ``[start, end)``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "loop_id": "FIC-101",
                    "start": "2025-01-10T10:00:00Z",
                    "end": "2025-01-10T11:00:00Z",
                }
            ]
        }
    )

    loop_id: str = Field(examples=["FIC-101"])
    trigger: Trigger = "on_demand"

    @field_validator("loop_id")
    @classmethod
    def _loop_id(cls, value: str) -> str:
        try:
            return validate_loop_id(value)
        except ValueError as error:
            raise ValueError(str(error).removeprefix("loop_id: ")) from None


class BatchRequest(Window):
    """Diagnose several loops over the same window (what the KPI worker sends)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "loop_ids": ["FIC-101", "TIC-205"],
                    "start": "2025-01-10T10:00:00Z",
                    "end": "2025-01-10T10:15:00Z",
                    "trigger": "kpi_cycle",
                }
            ]
        }
    )

    loop_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    trigger: Trigger = "on_demand"

    @field_validator("loop_ids")
    @classmethod
    def _loop_ids(cls, value: list[str]) -> list[str]:
        for loop_id in value:
            try:
                validate_loop_id(loop_id)
            except ValueError as error:
                raise ValueError(f"{loop_id!r}: {error}".replace("loop_id: ", "")) from None
        return list(dict.fromkeys(value))


class FindingOut(BaseModel):
    """One finding: what is wrong, how bad, how sure, why, and what to do."""

    category: str = Field(examples=["stiction"])
    severity: float = Field(ge=0, le=1, examples=[0.7])
    confidence: float = Field(ge=0, le=1, examples=[0.8])
    evidence: dict[str, Any] = Field(
        examples=[{"stiction_index": 0.78, "curve_fit_si": 0.74, "apparent_stiction_pct": 2.1}]
    )
    recommendation: str = Field(
        examples=[
            "Valve shows stiction of about 2.1 % of span: schedule valve maintenance "
            "(packing, actuator, positioner); meanwhile reduce integral action to slow the "
            "limit cycle."
        ]
    )
    explained: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Findings this root cause explains (same fields, nested): evidence for "
        "it, not problems of their own; stored in diagnostic_results under "
        'evidence["explained"]',
    )


class LoopDiagnosisOut(BaseModel):
    """Diagnosis of one loop and window; the findings are also stored in diagnostic_results."""

    loop_id: str
    window_start: AwareDatetime
    window_end: AwareDatetime
    samples: int = Field(description="Raw samples found in the window")
    sample_period_s: float | None = Field(description="Grid period inferred from the data")
    primary: str | None = Field(description="Most likely root cause; null when healthy")
    findings: list[FindingOut]
    stiction: dict[str, Any] | None = Field(
        description="Stiction test result: verdict, index, confidence, method_scores "
        "(curve_fit, non_gaussianity, ellipse in 0-1, 1 = stiction-like), method_votes "
        "(+1 stiction-like, -1 linear cause, 0 undecided), apparent_stiction (OP units), "
        "period_s, reason"
    )
    oscillation: dict[str, Any] | None
    oscillation_components: list[dict[str, float]] = Field(
        default_factory=list,
        description="Every significant oscillation of the control error (PV when mostly "
        "out of service), largest first: period_s, regularity (r > 1), strength (ACF one "
        "period later), peak_ratio (spectral peak over its background), amplitude (signal "
        "units) and share (0-1) of the window in which it is present",
    )
    health_score: float | None
    notes: dict[str, str] = Field(description="Why parts of the analysis were skipped")


class ClusterMemberOut(BaseModel):
    """One loop of a cluster: where it is, how strongly it oscillates and why it belongs."""

    loop_id: str = Field(examples=["FIC-302"])
    role: Literal["source", "member"]
    unit: str | None
    area: str | None
    period_s: float | None = Field(examples=[88.0])
    amplitude_pct_of_span: float | None = Field(description="Oscillation amplitude, % of span")
    power_share: float | None = Field(
        description="Share of the loop's variance at the cluster's period (0-1)"
    )
    coherence_with_source: float | None = Field(
        description="Magnitude-squared coherence with the source at the period (0-1)"
    )
    lag_behind_source_s: float | None = Field(
        description="How far its control error lags the source's (within half a period)"
    )
    ngi: float | None = Field(description="Non-Gaussianity index (bicoherence)")
    nli: float | None = Field(description="Non-linearity index (bicoherence)")
    stiction_verdict: str
    why: str = Field(examples=["coherence 0.97 with PIC-301; period 88 s; lags it by 6 s"])


class ClusterOut(BaseModel):
    """Loops sharing one oscillation (coherent at a common period) and its likely source."""

    period_s: float = Field(examples=[88.0])
    members: list[ClusterMemberOut]
    likely_source: str = Field(examples=["PIC-301"])
    source_reason: str = Field(examples=["its valve is sticky (stiction verdict)"])
    source_evidence: dict[str, Any] = Field(
        examples=[{"stiction_verdict": "stiction", "stiction_index": 0.81}]
    )


class BatchOut(BaseModel):
    """Diagnoses of a batch, the clusters among its loops, and ids that are not loops."""

    count: int
    results: list[LoopDiagnosisOut]
    clusters: list[ClusterOut]
    unknown_loop_ids: list[str]


class ClustersOut(BaseModel):
    """Plant-wide oscillation clusters of a window."""

    start: AwareDatetime
    end: AwareDatetime
    loops_analysed: int
    oscillating_loops: int
    basis: Literal["raw", "minute_means"] = Field(
        description="What the loops were judged on: raw samples (windows up to "
        "DIAG_CLUSTER_RAW_MAX_H, every period, stiction evidence for the likely source) or "
        "1-minute means (longer windows: periods from 4 minutes; no stiction evidence)"
    )
    computed_at: AwareDatetime | None = Field(description="When the clusters were computed")
    precomputed: bool = Field(
        description="True when the answer is the stored run of a scheduled window "
        "(DIAG_CLUSTER_PRECOMPUTE_H, every DIAG_CLUSTER_INTERVAL_S): its start and end are the "
        "run's, at most one interval before the requested ones"
    )
    clusters: list[ClusterOut]
