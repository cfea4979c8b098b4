"""Fleet summary from each loop's latest KPI: status distribution, bad actors, unit roll-up.

Ranking and roll-up are those of :mod:`clpm_shared.analytics.ranking`: bad-actor value
(100 - health) x criticality, offline loops not ranked; unit and plant health are
criticality-weighted means of the loops' health with the number of loops per status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clpm_shared.analytics.ranking import (
    LoopHealth,
    RollUp,
    rank_bad_actors,
    roll_up,
    roll_up_by,
)
from clpm_shared.db.repositories.loop_overview import LoopOverview

HISTOGRAM_BAND = 10


def loop_health(item: LoopOverview) -> LoopHealth:
    return LoopHealth(
        loop_id=item.loop.loop_id,
        score=item.health_score,
        status=item.status,
        criticality=item.criticality,
        unit=item.loop.unit,
        area=item.loop.area,
        main_problem=item.main_problem,
    )


def _histogram(loops: Sequence[LoopHealth]) -> list[dict[str, Any]]:
    bands = [0] * (100 // HISTOGRAM_BAND)
    for loop in loops:
        if loop.score is None:
            continue
        index = min(int(max(loop.score, 0.0) // HISTOGRAM_BAND), len(bands) - 1)
        bands[index] += 1
    return [
        {"from": i * HISTOGRAM_BAND, "to": (i + 1) * HISTOGRAM_BAND, "loops": count}
        for i, count in enumerate(bands)
    ]


def _unit(name: str | None, group: RollUp) -> dict[str, Any]:
    return {
        "unit": name,
        "loops": group.loops,
        "health_score": group.score,
        "status_counts": group.counts,
    }


def fleet_summary(items: Sequence[LoopOverview], top: int) -> dict[str, Any]:
    """Loops per status and per 10-point health band, the ``top`` bad actors, unit roll-ups
    (loops without a unit under ``null``, listed last) and the roll-up of the whole selection."""
    loops = [loop_health(item) for item in items]
    names = {item.loop.loop_id: item.loop.name for item in items}
    plant = roll_up(loops)
    by_unit = roll_up_by(loops, lambda loop: loop.unit)
    units = [_unit(name, group) for name, group in by_unit.items() if name]
    if "" in by_unit:
        units.append(_unit(None, by_unit[""]))
    return {
        "loops": plant.loops,
        "health_score": plant.score,
        "status_counts": plant.counts,
        "health_histogram": _histogram(loops),
        "bad_actors": [
            {
                "rank": actor.position,
                "loop_id": actor.loop.loop_id,
                "name": names[actor.loop.loop_id],
                "unit": actor.loop.unit,
                "area": actor.loop.area,
                "health_score": actor.loop.score,
                "criticality": actor.loop.criticality,
                "bad_actor_score": round(actor.rank_value, 3),
                "status": actor.loop.status,
                "main_problem": actor.loop.main_problem,
            }
            for actor in rank_bad_actors(loops, top)
        ],
        "units": units,
    }
