"""Bad-actor ranking of loops and roll-up of loop health to units and the plant."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

STATUSES: tuple[str, ...] = ("good", "fair", "poor", "offline", "not_assessed")


@dataclass(frozen=True, slots=True)
class LoopHealth:
    """Health of one loop as ranking and roll-up need it."""

    loop_id: str
    score: float | None
    status: str
    criticality: int = 3
    unit: str | None = None
    area: str | None = None
    main_problem: str | None = None


@dataclass(frozen=True, slots=True)
class BadActor:
    r"""A loop, its rank value :math:`(100 - health) \cdot c` and its position (1 = worst)."""

    position: int
    rank_value: float
    loop: LoopHealth


@dataclass(frozen=True)
class RollUp:
    """Health of a group of loops.

    Attributes
    ----------
    score : float or None
        Criticality-weighted mean of the loop scores (offline and not assessed loops
        excluded); None when no loop has a score.
    loops : int
        Number of loops in the group (offline and not assessed included).
    counts : dict
        Loops per status; every status is present (0 when none).
    """

    score: float | None
    loops: int
    counts: dict[str, int] = field(default_factory=dict)


def bad_actor_value(score: float, criticality: int) -> float:
    r"""Rank value :math:`(100 - health) \cdot criticality` (higher = worse actor)."""
    return (100.0 - score) * criticality


def rank_bad_actors(loops: Iterable[LoopHealth], limit: int | None = None) -> list[BadActor]:
    """Loops ordered by :func:`bad_actor_value`, worst first; offline loops are not ranked.

    Ties keep the order of lower health first, then loop id, so the ranking is stable.
    """
    scored = [loop for loop in loops if loop.score is not None]
    scored.sort(
        key=lambda loop: (
            -bad_actor_value(loop.score or 0.0, loop.criticality),
            loop.score,
            loop.loop_id,
        )
    )
    if limit is not None:
        scored = scored[: max(limit, 0)]
    return [
        BadActor(i + 1, bad_actor_value(loop.score or 0.0, loop.criticality), loop)
        for i, loop in enumerate(scored)
    ]


def roll_up(loops: Iterable[LoopHealth]) -> RollUp:
    r"""Roll-up :math:`\sum c_i h_i / \sum c_i` (criticality :math:`c_i`) and counts per status."""
    counts = dict.fromkeys(STATUSES, 0)
    weighted = 0.0
    weights = 0.0
    total = 0
    for loop in loops:
        total += 1
        counts[loop.status] = counts.get(loop.status, 0) + 1
        if loop.score is not None:
            weighted += loop.score * loop.criticality
            weights += loop.criticality
    return RollUp(round(weighted / weights, 2) if weights else None, total, counts)


def roll_up_by(
    loops: Iterable[LoopHealth], key: Callable[[LoopHealth], str | None]
) -> dict[str, RollUp]:
    """Roll-up per group, e.g. ``roll_up_by(loops, lambda h: h.unit)``; ``None`` keys go
    to the group ``""``."""
    groups: dict[str, list[LoopHealth]] = {}
    for loop in loops:
        groups.setdefault(key(loop) or "", []).append(loop)
    return {name: roll_up(members) for name, members in sorted(groups.items())}
