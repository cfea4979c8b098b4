"""What a fleet report says: its content assembled from repository results, without I/O.

:func:`assemble_fleet_report` takes each loop's stored rating over the period (the
``loop_assessments`` row the KPI worker recomputes after each cycle, with the rating of the
period before it), the fleet's trend buckets over both periods, the fleet's KPI means over
both periods and the work items touched in the period, and returns a :class:`FleetReport`
that the renderers (:mod:`clpm_shared.reports.xlsx`, :mod:`clpm_shared.reports.pdf`) only
lay out.

Bad actors are ranked as ``GET /fleet/ranking`` ranks them
(:func:`clpm_shared.analytics.ranking.rank_bad_actors`: :math:`(100 - h) \\cdot c`, worst
first); the fleet health is the criticality-weighted roll-up
:math:`\\sum_i c_i h_i / \\sum_i c_i` of :func:`clpm_shared.analytics.ranking.roll_up`, for the
period and for the one before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from clpm_shared.analytics.ranking import STATUSES, LoopHealth, rank_bad_actors, roll_up

ReportPeriod = Literal["day", "week"]
REPORT_PERIODS: tuple[str, ...] = ("day", "week")
CLOSED_STATES: tuple[str, ...] = ("done", "wont_fix")
OPEN_STATES: tuple[str, ...] = ("open", "in_progress")
_STATUS_ORDER = {"good": 0, "fair": 1, "poor": 2}
"""Only these statuses compare: a loop going offline or not assessed is neither worse nor
better (the same rule the acknowledgements use)."""


@dataclass(frozen=True, slots=True)
class AssessedLoop:
    """One loop's stored rating over the period and the period before it (an input)."""

    loop_id: str
    name: str | None
    unit: str | None
    area: str | None
    criticality: int
    status: str
    health_score: float | None
    main_problem: str | None
    previous_status: str | None = None
    previous_health_score: float | None = None
    reason: str | None = None
    findings: Sequence[Mapping[str, Any]] = ()
    """``[{"category", "persistence", "mean_severity"}]`` as stored in loop_assessments."""
    period_start: datetime | None = None
    period_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """The fleet over one trend bucket (an input: a plant-wide ``fleet_trend`` bucket)."""

    bucket_start: datetime
    windows: int
    health_score: float | None
    status_shares: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkItemEntry:
    """A work item (an input): opened or closed in the period, or open at its end."""

    item_id: int
    loop_id: str
    kind: str
    state: str
    category: str | None
    assignee: str | None
    due_date: date | None
    work_order: str | None
    text: str
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LoopRow:
    """A loop in the report: its rank (None when it has no health over the period)."""

    rank: int | None
    loop_id: str
    name: str | None
    unit: str | None
    area: str | None
    criticality: int
    status: str
    health_score: float | None
    previous_status: str | None
    previous_health_score: float | None
    health_change: float | None
    bad_actor_score: float | None
    main_problem: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A loop whose status got worse or better than over the previous period."""

    loop_id: str
    name: str | None
    before: str
    after: str
    direction: Literal["worse", "better"]
    health_change: float | None


@dataclass(frozen=True, slots=True)
class FindingSummary:
    """One finding category over the fleet: how many loops have it persistently."""

    category: str
    loops: int
    mean_persistence: float
    mean_severity: float
    worst_loop_id: str
    """The loop with the largest persistence x mean severity of this category."""


@dataclass(frozen=True, slots=True)
class KpiChange:
    """A fleet-wide KPI mean over the period against the previous period."""

    kpi: str
    current: float | None
    previous: float | None
    change: float | None


@dataclass(frozen=True, slots=True)
class WorkItemSummary:
    """Work items: counts and the items opened or closed in the period or still open."""

    opened: int
    closed: int
    open_now: int
    items: tuple[WorkItemEntry, ...]


@dataclass(frozen=True, slots=True)
class FleetReport:
    """The content of a daily or weekly fleet report."""

    period: str
    period_start: datetime
    period_end: datetime
    generated_at: datetime
    scope: str | None
    loops_total: int
    loops_rated: int
    health_score: float | None
    previous_health_score: float | None
    health_change: float | None
    status_counts: dict[str, int]
    previous_status_counts: dict[str, int]
    loops: tuple[LoopRow, ...]
    """Ranked loops worst first, then the loops without a health (by id)."""
    status_changes: tuple[StatusChange, ...]
    findings: tuple[FindingSummary, ...]
    kpis: tuple[KpiChange, ...]
    trend: tuple[TrendPoint, ...]
    previous_trend: tuple[TrendPoint, ...]
    work_items: WorkItemSummary

    @property
    def bad_actors(self) -> tuple[LoopRow, ...]:
        """The ranked loops, worst first."""
        return tuple(row for row in self.loops if row.rank is not None)

    @property
    def title(self) -> str:
        what = "Daily" if self.period == "day" else "Weekly"
        scope = f" ({self.scope})" if self.scope else ""
        return f"{what} fleet report{scope}"

    @property
    def period_label(self) -> str:
        """``2026-12-04 06:00 – 2026-12-05 06:00 UTC``."""
        fmt = "%Y-%m-%d %H:%M"
        return f"{self.period_start.strftime(fmt)} – {self.period_end.strftime(fmt)} UTC"

    def file_name(self, extension: str) -> str:
        """``clpm-fleet-day-20261205T0600Z.pdf``."""
        stamp = self.period_end.strftime("%Y%m%dT%H%MZ")
        return f"clpm-fleet-{self.period}-{stamp}.{extension}"


def period_length(period: str, day_h: float, week_d: float) -> timedelta:
    """Length of a report period (the assessment lengths: ASSESS_DAY_H, ASSESS_WEEK_D)."""
    return timedelta(hours=day_h) if period == "day" else timedelta(days=week_d)


def report_window(
    loops: Sequence[AssessedLoop], length: timedelta, now: datetime
) -> tuple[datetime, datetime]:
    """The period a report covers: the newest stored rating's ``[start, end)``, or the
    ``length`` before ``now`` when no loop has been rated yet."""
    ends = [loop.period_end for loop in loops if loop.period_end is not None]
    if not ends:
        return now - length, now
    end = max(ends)
    starts = [
        loop.period_start
        for loop in loops
        if loop.period_end == end and loop.period_start is not None
    ]
    return (min(starts) if starts else end - length), end


def _change(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None:
        return None
    return round(current - previous, 3)


def _health(loop: AssessedLoop, previous: bool) -> LoopHealth:
    status = (loop.previous_status or "offline") if previous else loop.status
    score = loop.previous_health_score if previous else loop.health_score
    if status not in _STATUS_ORDER:
        score = None
    return LoopHealth(loop.loop_id, score, status, loop.criticality, loop.unit, loop.area)


def _loop_row(loop: AssessedLoop, rank: int | None, value: float | None) -> LoopRow:
    reason = loop.reason
    if rank is None and reason is None:
        reason = "no rating yet" if loop.period_end is None else "no data"
    return LoopRow(
        rank=rank,
        loop_id=loop.loop_id,
        name=loop.name,
        unit=loop.unit,
        area=loop.area,
        criticality=loop.criticality,
        status=loop.status,
        health_score=loop.health_score,
        previous_status=loop.previous_status,
        previous_health_score=loop.previous_health_score,
        health_change=_change(loop.health_score, loop.previous_health_score),
        bad_actor_score=None if value is None else round(value, 3),
        main_problem=loop.main_problem,
        reason=None if rank is not None else reason,
    )


def _status_changes(loops: Sequence[AssessedLoop]) -> tuple[StatusChange, ...]:
    changes: list[StatusChange] = []
    for loop in loops:
        before, after = loop.previous_status, loop.status
        if before not in _STATUS_ORDER or after not in _STATUS_ORDER or before == after:
            continue
        assert before is not None
        worse = _STATUS_ORDER[after] > _STATUS_ORDER[before]
        changes.append(
            StatusChange(
                loop.loop_id,
                loop.name,
                before,
                after,
                "worse" if worse else "better",
                _change(loop.health_score, loop.previous_health_score),
            )
        )
    # worse first, the largest change of status, then the largest drop of health
    changes.sort(
        key=lambda c: (
            c.direction != "worse",
            -abs(_STATUS_ORDER[c.after] - _STATUS_ORDER[c.before]),
            c.health_change if c.health_change is not None else 0.0,
            c.loop_id,
        )
    )
    return tuple(changes)


def _findings(loops: Sequence[AssessedLoop]) -> tuple[FindingSummary, ...]:
    per_category: dict[str, list[tuple[str, float, float]]] = {}
    for loop in loops:
        for finding in loop.findings:
            category = str(finding.get("category"))
            persistence = float(finding.get("persistence") or 0.0)
            severity = float(finding.get("mean_severity") or 0.0)
            per_category.setdefault(category, []).append((loop.loop_id, persistence, severity))
    out = []
    for category, entries in per_category.items():
        worst = max(entries, key=lambda e: (e[1] * e[2], e[0]))
        out.append(
            FindingSummary(
                category=category,
                loops=len(entries),
                mean_persistence=round(sum(e[1] for e in entries) / len(entries), 4),
                mean_severity=round(sum(e[2] for e in entries) / len(entries), 4),
                worst_loop_id=worst[0],
            )
        )
    out.sort(key=lambda f: (-f.loops, f.category))
    return tuple(out)


def _kpis(
    current: Mapping[str, float | None], previous: Mapping[str, float | None]
) -> tuple[KpiChange, ...]:
    names = list(current) + [name for name in previous if name not in current]
    return tuple(
        KpiChange(name, now, before, _change(now, before))
        for name in names
        for now, before in [(current.get(name), previous.get(name))]
    )


def _work_items(items: Sequence[WorkItemEntry], start: datetime, end: datetime) -> WorkItemSummary:
    opened = sum(1 for item in items if start <= item.created_at < end)
    closed = sum(
        1 for item in items if item.state in CLOSED_STATES and start <= item.updated_at < end
    )
    open_now = sum(1 for item in items if item.state in OPEN_STATES)
    ordered = sorted(items, key=lambda item: (item.state in CLOSED_STATES, -item.item_id))
    return WorkItemSummary(opened, closed, open_now, tuple(ordered))


def assemble_fleet_report(
    *,
    period: str,
    start: datetime,
    end: datetime,
    generated_at: datetime,
    loops: Sequence[AssessedLoop],
    trend: Sequence[TrendPoint] = (),
    kpi_means: Mapping[str, float | None] | None = None,
    previous_kpi_means: Mapping[str, float | None] | None = None,
    work_items: Sequence[WorkItemEntry] = (),
    scope: str | None = None,
) -> FleetReport:
    """The report of ``loops`` over ``[start, end)`` against the period before it.

    Parameters
    ----------
    period : {"day", "week"}
    start, end : datetime
        The period (see :func:`report_window`); the previous period is the same length
        before ``start``.
    generated_at : datetime
    loops : sequence of AssessedLoop
        Every loop of the scope with its stored rating (loops never rated: status
        ``offline``).
    trend : sequence of TrendPoint
        Plant-wide trend buckets over both periods; buckets before ``start`` form the
        previous period's trend.
    kpi_means, previous_kpi_means : mapping
        Fleet-wide KPI means over the period and the previous one.
    work_items : sequence of WorkItemEntry
        Items created or closed in the period, or open at its end.
    scope : str, optional
        ``unit X`` / ``area Y`` when the report covers part of the fleet.
    """
    current = [_health(loop, previous=False) for loop in loops]
    before = [_health(loop, previous=True) for loop in loops]
    ranked = rank_bad_actors(current)
    by_id = {loop.loop_id: loop for loop in loops}
    rows = [
        _loop_row(by_id[actor.loop.loop_id], actor.position, actor.rank_value) for actor in ranked
    ]
    ranked_ids = {actor.loop.loop_id for actor in ranked}
    rows.extend(
        _loop_row(loop, None, None)
        for loop in sorted(loops, key=lambda loop: loop.loop_id)
        if loop.loop_id not in ranked_ids
    )
    now_rollup = roll_up(current)
    before_rollup = roll_up(before)
    return FleetReport(
        period=period,
        period_start=start,
        period_end=end,
        generated_at=generated_at,
        scope=scope,
        loops_total=len(loops),
        loops_rated=len(ranked),
        health_score=now_rollup.score,
        previous_health_score=before_rollup.score,
        health_change=_change(now_rollup.score, before_rollup.score),
        status_counts={status: now_rollup.counts.get(status, 0) for status in STATUSES},
        previous_status_counts={status: before_rollup.counts.get(status, 0) for status in STATUSES},
        loops=tuple(rows),
        status_changes=_status_changes(loops),
        findings=_findings(loops),
        kpis=_kpis(kpi_means or {}, previous_kpi_means or {}),
        trend=tuple(point for point in trend if start <= point.bucket_start < end),
        previous_trend=tuple(point for point in trend if point.bucket_start < start),
        work_items=_work_items(work_items, start, end),
    )
