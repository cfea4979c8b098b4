"""A small rated fleet for the report tests: loops, their day and week ratings, KPI windows of
both periods and work items, written through the models (known answers in the docstring).

REP-1 (criticality 5) is the worst actor: health 40 (poor) over the day, 70 (fair) the day
before; REP-2 (criticality 1) health 30, poor both days; REP-3 (criticality 3) health 90
(good), fair the day before; REP-4 is never rated (offline). Work items: #1 opened in the
day (open), #2 opened before and closed in the day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import KpiResult, Loop, LoopAssessment, LoopConfig, WorkItem

WORST_LOOP = "REP-1"
LOOPS = {"REP-1": 5, "REP-2": 1, "REP-3": 3, "REP-4": 3}
RATINGS: dict[str, tuple[str, float, str, float, str | None]] = {
    # status, health, previous status, previous health, main problem
    "REP-1": ("poor", 40.0, "fair", 70.0, "valve_stiction"),
    "REP-2": ("poor", 30.0, "poor", 35.0, None),
    "REP-3": ("good", 90.0, "fair", 60.0, None),
}


def _assessment(loop_id: str, period: str, start: datetime, end: datetime) -> LoopAssessment:
    status, health, before, before_health, problem = RATINGS[loop_id]
    findings: list[dict[str, Any]] = (
        [{"category": "valve_stiction", "persistence": 0.8, "mean_severity": 0.6}]
        if problem
        else []
    )
    return LoopAssessment(
        loop_id=loop_id,
        period=period,
        period_start=start,
        period_end=end,
        computed_at=end,
        status=status,
        health_score=health,
        main_problem=problem,
        reason=None,
        status_shares={status: 1.0},
        findings=findings,
        worst_window=None,
        windows_assessed=96,
        windows_total=96,
        previous_health_score=before_health,
        previous_status=before,
    )


async def seed_report_fleet(session: AsyncSession, end: datetime) -> None:
    """Write the fleet rated over the day and week ending at ``end`` (the caller commits)."""
    session.add_all(
        [Loop(loop_id=loop_id, name=f"Loop {loop_id}", unit="U1", area="A") for loop_id in LOOPS]
    )
    await session.flush()
    session.add_all(
        [LoopConfig(loop_id=loop_id, criticality=crit) for loop_id, crit in LOOPS.items()]
    )
    for loop_id in RATINGS:
        session.add(_assessment(loop_id, "day", end - timedelta(hours=24), end))
        session.add(_assessment(loop_id, "week", end - timedelta(days=7), end))
    # one KPI window per loop in each of the last two days (health: this day / the day before)
    for loop_id, (status, health, before, before_health, _) in RATINGS.items():
        for start, value, state in (
            (end - timedelta(hours=12), health, status),
            (end - timedelta(hours=36), before_health, before),
        ):
            session.add(
                KpiResult(
                    loop_id=loop_id,
                    window_start=start,
                    window_end=start + timedelta(minutes=15),
                    health_score=value,
                    status=state,
                    saturation=0.1 if start > end - timedelta(hours=24) else 0.05,
                )
            )
    session.add_all(
        [
            WorkItem(
                loop_id="REP-1",
                kind="assignment",
                text="repack the valve",
                assignee="alice",
                state="open",
                work_order="WO-7",
                created_by="engineer",
                created_at=end - timedelta(hours=3),
                updated_by="engineer",
                updated_at=end - timedelta(hours=3),
            ),
            WorkItem(
                loop_id="REP-3",
                kind="assignment",
                text="retune",
                assignee="bob",
                state="done",
                created_by="engineer",
                created_at=end - timedelta(days=3),
                updated_by="bob",
                updated_at=end - timedelta(hours=5),
            ),
        ]
    )
    await session.flush()
