"""Fleet summary from each loop's latest KPI: status distribution, bad actors, unit roll-up.

Bad-actor score = (100 - health) x criticality (KPI specification); loops without a health
score (offline) are not ranked. Unit and plant health = criticality-weighted mean of the loops'
health scores, with the number of loops per status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clpm_shared.db.repositories.loop_overview import LoopOverview

STATUSES = ("good", "fair", "poor", "offline")
HISTOGRAM_BAND = 10


def _status_counts(loops: Sequence[LoopOverview]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for loop in loops:
        counts[loop.status] = counts.get(loop.status, 0) + 1
    return counts


def weighted_health(loops: Sequence[LoopOverview]) -> float | None:
    """Criticality-weighted mean health of the loops that have a score; None if none has."""
    scored = [
        (loop.health_score, loop.criticality) for loop in loops if loop.health_score is not None
    ]
    weight = sum(criticality for _, criticality in scored)
    if not scored or weight <= 0:
        return None
    total = sum(score * criticality for score, criticality in scored)
    return round(total / weight, 3)


def _histogram(loops: Sequence[LoopOverview]) -> list[dict[str, Any]]:
    bands = [0] * (100 // HISTOGRAM_BAND)
    for loop in loops:
        if loop.health_score is None:
            continue
        index = min(int(max(loop.health_score, 0.0) // HISTOGRAM_BAND), len(bands) - 1)
        bands[index] += 1
    return [
        {"from": i * HISTOGRAM_BAND, "to": (i + 1) * HISTOGRAM_BAND, "loops": count}
        for i, count in enumerate(bands)
    ]


def bad_actors(loops: Sequence[LoopOverview], top: int) -> list[dict[str, Any]]:
    """The ``top`` loops by bad-actor score, worst first (ties by loop id)."""
    ranked = sorted(
        (loop for loop in loops if loop.bad_actor_score is not None),
        key=lambda loop: (-(loop.bad_actor_score or 0.0), loop.loop.loop_id),
    )
    return [
        {
            "rank": rank,
            "loop_id": item.loop.loop_id,
            "name": item.loop.name,
            "unit": item.loop.unit,
            "area": item.loop.area,
            "health_score": item.health_score,
            "criticality": item.criticality,
            "bad_actor_score": round(item.bad_actor_score or 0.0, 3),
            "status": item.status,
            "main_problem": item.main_problem,
        }
        for rank, item in enumerate(ranked[:top], start=1)
    ]


def unit_rollup(loops: Sequence[LoopOverview]) -> list[dict[str, Any]]:
    """One entry per unit (loops without a unit under null, listed last)."""
    groups: dict[str | None, list[LoopOverview]] = {}
    for loop in loops:
        groups.setdefault(loop.loop.unit, []).append(loop)
    ordered = sorted(groups, key=lambda unit: (unit is None, unit or ""))
    return [
        {
            "unit": unit,
            "loops": len(groups[unit]),
            "health_score": weighted_health(groups[unit]),
            "status_counts": _status_counts(groups[unit]),
        }
        for unit in ordered
    ]


def fleet_summary(loops: Sequence[LoopOverview], top: int) -> dict[str, Any]:
    return {
        "loops": len(loops),
        "health_score": weighted_health(loops),
        "status_counts": _status_counts(loops),
        "health_histogram": _histogram(loops),
        "bad_actors": bad_actors(loops, top),
        "units": unit_rollup(loops),
    }
