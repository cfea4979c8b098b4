"""Request and response models of the gateway's HTTP API (OpenAPI schemas with examples).

Field names follow the original API: lowercase, snake_case, columnar data (``ts`` plus one list
per field). Large columnar answers are serialised directly; their models document the shape.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, FiniteFloat

from clpm_shared.timeseries import LOOP_ID_PATTERN

NAME_PATTERN = r"^[^\x00-\x1f\x7f]*$"
"""Names (unit, area, loop name): any text without control characters."""
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""Free text (descriptions): tabs and line breaks allowed, no other control characters."""

Iso = Annotated[str, Field(examples=["2025-01-10T10:00:00.000Z"])]
Mode = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,16}$", examples=["AUT"])]


# ------------------------------------------------------------------------------------------ data


class RawData(BaseModel):
    """Raw samples, columnar; only the requested fields are present."""

    loop_id: str = Field(examples=["FIC-101"])
    ts: list[Iso]
    pv: list[float | None] | None = Field(default=None, examples=[[50.1, 50.3]])
    op: list[float | None] | None = Field(default=None, examples=[[42.0, 42.4]])
    sp: list[float | None] | None = Field(default=None, examples=[[50.0, 50.0]])
    mode: list[str | None] | None = Field(default=None, examples=[["AUT", "AUT"]])
    count: int = Field(examples=[2])
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=["MS5hYmNkZWYwMS4xNzM2NTAzMjAwMDAwMDAwMDAwLjE"],
    )


class DataSource(StrEnum):
    AGG_1M = "agg_1m"
    AGG_1H = "agg_1h"
    RAW = "raw"


class AggregatedData(BaseModel):
    """Per-bucket statistics, columnar; ``pv``/``op``/``sp`` are bucket means."""

    loop_id: str = Field(examples=["FIC-101"])
    ts: list[Iso] = Field(description="bucket start times (UTC)")
    pv: list[float | None] = Field(examples=[[50.2]])
    op: list[float | None] = Field(examples=[[42.1]])
    sp: list[float | None] = Field(examples=[[50.0]])
    pv_count: list[int] = Field(examples=[[60]])
    pv_min: list[float | None] = Field(examples=[[49.8]])
    pv_max: list[float | None] = Field(examples=[[50.6]])
    op_min: list[float | None]
    op_max: list[float | None]
    sp_min: list[float | None]
    sp_max: list[float | None]
    count: int = Field(examples=[1])
    interval: str = Field(examples=["1m"])
    interval_s: int = Field(examples=[60])
    source: DataSource = Field(
        description="agg_1m / agg_1h: stored aggregates; raw: computed from raw samples "
        "because the database has no aggregates for the range."
    )


class RealtimeData(BaseModel):
    """The latest value of each requested field (null when there is none)."""

    model_config = ConfigDict(extra="allow")

    loop_id: str = Field(examples=["FIC-101"])
    ts: Iso | None = Field(description="time of the newest of the values")
    pv: float | None = Field(default=None, examples=[50.1])
    op: float | None = Field(default=None, examples=[42.0])
    sp: float | None = Field(default=None, examples=[50.0])
    mode: str | None = Field(default=None, examples=["AUT"])
    age_s: float | None = Field(description="seconds between ts and the answer", examples=[0.8])
    times: dict[str, Iso | None] = Field(description="time of each field's value")


class Span(BaseModel):
    start: Iso
    end: Iso


class DataRangeOut(BaseModel):
    """Data available for a loop: overall (broadest) and per source."""

    loop_id: str = Field(examples=["FIC-101"])
    start: Iso | None
    end: Iso | None
    raw: Span | None
    agg_1m: Span | None
    agg_1h: Span | None


# ----------------------------------------------------------------------------------------- loops


class LoopStatus(StrEnum):
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"
    OFFLINE = "offline"
    NOT_ASSESSED = "not_assessed"


class Period(StrEnum):
    """What a status, health and rank are judged over: the latest KPI window or the rating
    of the last shift, day or week (lengths: ASSESS_SHIFT_H, ASSESS_DAY_H, ASSESS_WEEK_D)."""

    WINDOW = "window"
    SHIFT = "shift"
    DAY = "day"
    WEEK = "week"


class AssessmentPeriod(StrEnum):
    SHIFT = "shift"
    DAY = "day"
    WEEK = "week"


class LoopSort(StrEnum):
    LOOP_ID = "loop_id"
    NAME = "name"
    UNIT = "unit"
    AREA = "area"
    HEALTH_SCORE = "health_score"
    STATUS = "status"
    CRITICALITY = "criticality"
    BAD_ACTOR = "bad_actor"


class LoopFields(BaseModel):
    name: str | None = Field(
        default=None, max_length=256, pattern=NAME_PATTERN, examples=["Feed flow"]
    )
    description: str | None = Field(
        default=None, max_length=4000, pattern=TEXT_PATTERN, examples=["Reactor feed"]
    )
    unit: str | None = Field(default=None, max_length=128, pattern=NAME_PATTERN, examples=["U100"])
    area: str | None = Field(
        default=None, max_length=128, pattern=NAME_PATTERN, examples=["Reactors"]
    )
    engineering_units: str | None = Field(
        default=None, max_length=32, pattern=NAME_PATTERN, examples=["m3/h"]
    )
    active: bool | None = Field(default=None, examples=[True])


class LoopCreate(LoopFields):
    model_config = ConfigDict(extra="forbid")

    loop_id: str = Field(pattern=LOOP_ID_PATTERN.pattern, examples=["FIC-101"])


class LoopUpdate(LoopFields):
    """Fields to change; omitted fields keep their value."""

    model_config = ConfigDict(extra="forbid")


class LoopOut(BaseModel):
    loop_id: str = Field(examples=["FIC-101"])
    name: str = Field(examples=["Feed flow"])
    description: str
    unit: str | None = Field(examples=["U100"])
    area: str | None = Field(examples=["Reactors"])
    engineering_units: str | None
    data_source: str | None = Field(
        default=None,
        description="where the samples come from: simulated, import or opcua (null: unknown)",
        examples=["import"],
    )
    data_source_detail: str | None = Field(
        default=None,
        description="the imported file names, or the OPC UA endpoint and node",
        examples=["plant-2024-03.csv"],
    )
    active: bool
    created_at: datetime | None
    updated_at: datetime | None
    status: LoopStatus = Field(
        description="status over the period asked for (the listing's `period`, else the latest "
        "KPI window); offline without data"
    )
    health_score: float | None = Field(examples=[72.5])
    main_problem: str | None = Field(examples=["oscillation"])
    kpi_window_end: datetime | None = Field(
        description="end of the latest KPI window, or of the period rated"
    )
    reason: str | None = Field(
        default=None,
        description="why an offline / not_assessed loop has no health",
        examples=["data 49 % complete (at least 80 % needed)"],
    )
    criticality: int = Field(examples=[3])
    bad_actor_score: float | None = Field(
        description="(100 - health_score) x criticality", examples=[82.5]
    )


class LoopPage(BaseModel):
    items: list[LoopOut]
    total: int = Field(examples=[1])
    offset: int = Field(examples=[0])
    limit: int = Field(examples=[100])


class LoopType(StrEnum):
    FLOW = "flow"
    PRESSURE = "pressure"
    LEVEL = "level"
    TEMPERATURE = "temperature"
    OTHER = "other"


class LoopConfigFields(BaseModel):
    """Analysis settings of a loop; null means "use the default"."""

    model_config = ConfigDict(extra="forbid")

    loop_type: LoopType | None = Field(default=None, examples=["flow"])
    criticality: int | None = Field(default=None, ge=1, le=5, examples=[3])
    normal_modes: list[Mode] | None = Field(default=None, max_length=32, examples=[["AUT", "CAS"]])
    op_lo: FiniteFloat | None = Field(default=None, examples=[0.0])
    op_hi: FiniteFloat | None = Field(default=None, examples=[100.0])
    sat_margin: FiniteFloat | None = Field(default=None, ge=0, examples=[0.5])
    pv_lo: FiniteFloat | None = Field(default=None, examples=[0.0])
    pv_hi: FiniteFloat | None = Field(default=None, examples=[200.0])
    deadband: FiniteFloat | None = Field(default=None, ge=0, examples=[0.2])
    dead_time_s: FiniteFloat | None = Field(default=None, ge=0, le=86400, examples=[4.0])
    apc_enabled: bool | None = Field(default=None, examples=[False])
    apc_modes: list[Mode] | None = Field(default=None, max_length=32, examples=[["CAS"]])
    kpi_window_min: int | None = Field(default=None, ge=1, le=1440, examples=[15])


class LoopConfigOut(BaseModel):
    loop_id: str = Field(examples=["FIC-101"])
    is_default: bool = Field(description="true when the loop has no stored configuration")
    loop_type: str
    criticality: int
    normal_modes: list[str] | None
    op_lo: float
    op_hi: float
    sat_margin: float | None
    pv_lo: float | None
    pv_hi: float | None
    deadband: float | None
    dead_time_s: float | None
    apc_enabled: bool
    apc_modes: list[str] | None
    kpi_window_min: int
    updated_at: datetime | None
    updated_by: str | None


# ------------------------------------------------------------------------------------------ KPIs


class KpiRows(BaseModel):
    """KPI rows of a loop, oldest first; each row is an object of the requested columns."""

    loop_id: str = Field(examples=["FIC-101"])
    start: Iso
    end: Iso
    count: int = Field(examples=[1])
    columns: list[str] = Field(examples=[["window_start", "service_factor", "health_score"]])
    items: list[dict[str, Any]] = Field(
        examples=[
            [
                {
                    "window_start": "2025-01-10T10:00:00.000Z",
                    "service_factor": 0.98,
                    "health_score": 81.0,
                }
            ]
        ]
    )


class KpiLatest(BaseModel):
    model_config = ConfigDict(extra="allow")

    loop_id: str = Field(examples=["FIC-101"])
    window_start: Iso | None
    window_end: Iso | None
    status: LoopStatus
    health_score: float | None = Field(examples=[81.0])


class KpiStatistic(BaseModel):
    mean: float | None
    min: float | None
    max: float | None
    last: float | None


class KpiSummary(BaseModel):
    loop_id: str = Field(examples=["FIC-101"])
    start: Iso
    end: Iso
    windows: int = Field(examples=[96])
    status_counts: dict[str, int] = Field(examples=[{"good": 90, "fair": 6}])
    latest_status: LoopStatus
    kpis: dict[str, KpiStatistic]


class KpiComprehensive(BaseModel):
    """A loop's headline, configuration, latest KPIs, KPI summary and latest findings."""

    loop: LoopOut
    config: LoopConfigOut
    latest: dict[str, Any] = Field(description="all KPI columns of the latest window")
    summary: KpiSummary
    diagnostics: Findings


class AliasEntry(BaseModel):
    original: str = Field(examples=["osc_index"])
    column: str | None = Field(examples=["osc_regularity"])
    scale: float = Field(examples=[1.0])
    note: str


class BadActor(BaseModel):
    rank: int = Field(examples=[1])
    loop_id: str = Field(examples=["TIC-205"])
    name: str
    unit: str | None
    area: str | None
    health_score: float = Field(examples=[35.0])
    criticality: int = Field(examples=[5])
    bad_actor_score: float = Field(examples=[325.0])
    status: LoopStatus
    main_problem: str | None = Field(examples=["stiction"])


class UnitRollup(BaseModel):
    unit: str | None = Field(examples=["U100"])
    loops: int = Field(examples=[12])
    health_score: float | None = Field(
        description="criticality-weighted mean of the loops' health scores", examples=[74.2]
    )
    status_counts: dict[str, int] = Field(examples=[{"good": 8, "fair": 2, "poor": 1}])


class FleetSummary(BaseModel):
    period: Period = Field(examples=["day"])
    loops: int = Field(examples=[120])
    health_score: float | None = Field(description="plant roll-up", examples=[77.5])
    status_counts: dict[str, int] = Field(
        examples=[{"good": 80, "fair": 25, "poor": 10, "offline": 5}]
    )
    health_histogram: list[dict[str, Any]] = Field(
        description="loops per 10-point health band",
        examples=[[{"from": 90, "to": 100, "loops": 40}]],
    )
    bad_actors: list[BadActor]
    units: list[UnitRollup]


class NotRanked(BaseModel):
    """A loop without a health over the period: left out of ranking and roll-ups."""

    loop_id: str = Field(examples=["PIC-400"])
    name: str
    unit: str | None
    area: str | None
    status: LoopStatus = Field(examples=["not_assessed"])
    reason: str | None = Field(examples=["40 of 96 windows assessed"])


class FleetRanking(BaseModel):
    """The whole fleet's bad-actor ranking over a period, one page of it."""

    period: Period = Field(examples=["day"])
    total: int = Field(description="loops ranked (with a health)", examples=[9870])
    offset: int = Field(examples=[0])
    limit: int = Field(examples=[100])
    items: list[BadActor]
    not_ranked_total: int = Field(examples=[130])
    not_ranked: list[NotRanked] = Field(
        description="every loop of the selection without a health, by id (on every page)"
    )


class RollupGroup(BaseModel):
    name: str | None = Field(description="unit / area (null: none set); 'plant'", examples=["U100"])
    loops: int = Field(examples=[12])
    health_score: float | None = Field(
        description="criticality-weighted mean health of the loops with one", examples=[74.2]
    )
    status_counts: dict[str, int] = Field(
        examples=[{"good": 8, "fair": 2, "poor": 1, "offline": 0, "not_assessed": 1}]
    )


class FleetRollups(BaseModel):
    period: Period = Field(examples=["day"])
    by: str = Field(examples=["area"])
    groups: list[RollupGroup]


class FindingPersistenceOut(BaseModel):
    category: str = Field(examples=["stiction"])
    persistence: float = Field(description="share of the assessed windows", examples=[0.92])
    mean_severity: float = Field(examples=[0.7])


class WorstWindowOut(BaseModel):
    start: datetime
    end: datetime
    health_score: float | None = Field(examples=[31.5])
    status: str = Field(examples=["poor"])


class PreviousPeriod(BaseModel):
    health_score: float | None = Field(examples=[70.1])
    status: LoopStatus = Field(examples=["fair"])


class Change(BaseModel):
    health_score: float | None = Field(
        description="health now minus health of the previous period", examples=[-12.3]
    )


class Assessment(BaseModel):
    """A loop's rating over the last shift, day or week (recomputed after each KPI cycle)."""

    loop_id: str = Field(examples=["TIC-205"])
    period: AssessmentPeriod = Field(examples=["day"])
    start: datetime | None
    end: datetime | None
    status: LoopStatus = Field(examples=["poor"])
    health_score: float | None = Field(examples=[52.4])
    main_problem: str | None = Field(examples=["stiction"])
    reason: str | None = Field(description="why there is no rating", examples=[None])
    status_shares: dict[str, float] = Field(
        examples=[{"good": 0.1, "fair": 0.2, "poor": 0.7, "offline": 0.0, "not_assessed": 0.0}]
    )
    findings: list[FindingPersistenceOut]
    worst_window: WorstWindowOut | None
    windows_assessed: int = Field(examples=[96])
    windows_total: int = Field(examples=[96])
    previous: PreviousPeriod | None
    change: Change


class ApcLoop(BaseModel):
    loop_id: str = Field(examples=["FIC-101"])
    name: str
    unit: str | None
    area: str | None
    windows: int = Field(examples=[96])
    samples: int = Field(examples=[86400])
    attainment: float | None = Field(examples=[0.93])
    wrong_mode_share: float | None = Field(examples=[0.05])
    saturated_share: float | None = Field(examples=[0.02])
    bad_data_share: float | None = Field(examples=[0.0])


class ApcSummary(BaseModel):
    start: Iso
    end: Iso
    loops: int
    attainment: float | None = Field(
        description="sample-weighted attainment of all APC loops", examples=[0.91]
    )
    items: list[ApcLoop]


class ApcWindow(BaseModel):
    window_start: Iso
    window_end: Iso
    samples: int = Field(examples=[900])
    attainment: float | None = Field(examples=[0.93])
    wrong_mode_share: float | None = Field(examples=[0.05])
    saturated_share: float | None = Field(examples=[0.02])
    bad_data_share: float | None = Field(examples=[0.0])


class ApcHistory(BaseModel):
    """A loop's APC attainment per KPI window, oldest first."""

    loop_id: str = Field(examples=["FIC-101"])
    start: Iso
    end: Iso
    count: int
    items: list[ApcWindow]


# ----------------------------------------------------------------------------------- diagnostics


class ExplainedFinding(BaseModel):
    """A finding its root cause explains: evidence for it, not a problem of its own."""

    category: str = Field(examples=["oscillation"])
    severity: float = Field(examples=[0.6])
    confidence: float = Field(examples=[0.9])
    evidence: dict[str, Any] = Field(examples=[{"period_s": 120.0}])
    recommendation: str
    explained_by: str = Field(description="Category of the root cause", examples=["stiction"])


class Finding(BaseModel):
    loop_id: str = Field(examples=["TIC-205"])
    window_start: datetime
    window_end: datetime
    category: str = Field(examples=["stiction"])
    severity: float = Field(examples=[0.7])
    confidence: float = Field(examples=[0.85])
    evidence: dict[str, Any] = Field(examples=[{"stiction_index": 0.78}])
    recommendation: str = Field(examples=["Inspect the valve TV-205 for static friction."])
    trigger: str = Field(examples=["scheduled"])
    created_at: datetime | None
    explained: list[ExplainedFinding] = Field(
        default_factory=list,
        description="Findings this root cause explains (e.g. the oscillation of a sticky "
        "valve), kept under it instead of reported as problems of their own",
    )


class Findings(BaseModel):
    loop_id: str = Field(examples=["TIC-205"])
    count: int
    items: list[Finding]


class DiagnoseRequest(BaseModel):
    """Window to analyse; defaults to the last hour."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime | None = Field(default=None, examples=["2025-01-10T09:00:00Z"])
    end: AwareDatetime | None = Field(default=None, examples=["2025-01-10T10:00:00Z"])


# ------------------------------------------------------------------------------------ operations


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    service: str = Field(examples=["api-gateway"])
    version: str = Field(examples=["0.1.0"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    checks: dict[str, str] = Field(examples=[{"database": "ok", "timeseries": "ok"}])
