"""The work process on a loop: kinds and states of work items, and when an acknowledgement holds.

An acknowledgement says "we know about this loop (or this finding of it); stop telling us". It
holds until a date, or, without a date, until what was acknowledged changes:

* a loop: its main problem differs from the one it had when acknowledged, its status got
  worse (good < fair < poor; a loop offline or not assessed tells nothing new), or a finding
  of a category it did not have then appeared (acknowledgements stored before the categories
  were kept skip this check);
* a finding category: the category is no longer among the loop's latest findings (it cleared),
  or its severity rose above the acknowledged one (it got worse).

A finished acknowledgement (state ``done`` or ``wont_fix``) never holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class WorkItemKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    ANNOTATION = "annotation"
    ASSIGNMENT = "assignment"


class WorkItemState(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    WONT_FIX = "wont_fix"

    @property
    def is_open(self) -> bool:
        return self in (WorkItemState.OPEN, WorkItemState.IN_PROGRESS)


OPEN_STATES = (WorkItemState.OPEN.value, WorkItemState.IN_PROGRESS.value)

_STATUS_RANK = {"good": 0, "fair": 1, "poor": 2}


@dataclass(frozen=True)
class LoopCondition:
    """What an acknowledgement without a date is compared against: the loop's status and main
    problem, and its latest findings as category -> severity."""

    status: str | None
    main_problem: str | None
    findings: Mapping[str, float]

    def snapshot(self, category: str | None) -> dict[str, Any]:
        """The part of the condition an acknowledgement of ``category`` (None: the loop) keeps."""
        if category is None:
            return {
                "status": self.status,
                "main_problem": self.main_problem,
                "categories": sorted(self.findings),
            }
        return {"category": category, "severity": self.findings.get(category)}


def acknowledgement_holds(
    *,
    state: str,
    category: str | None,
    until: datetime | None,
    snapshot: Mapping[str, Any] | None,
    now: datetime,
    current: LoopCondition | None,
) -> bool:
    """Whether an acknowledgement still suppresses attention to its loop or finding.

    With ``until`` it holds while ``now < until``. Without, it holds while ``current`` matches
    ``snapshot`` as the module docstring says; ``current`` None (not known) counts as unchanged.
    """
    if state not in OPEN_STATES:
        return False
    if until is not None:
        return now < until
    if current is None or snapshot is None:
        return True
    if category is None:
        if current.main_problem != snapshot.get("main_problem"):
            return False
        now_rank = _STATUS_RANK.get(current.status or "")
        then_rank = _STATUS_RANK.get(str(snapshot.get("status")))
        if now_rank is not None and then_rank is not None and now_rank > then_rank:
            return False
        known = snapshot.get("categories")
        return known is None or set(current.findings) <= set(known)
    severity = current.findings.get(category)
    if severity is None:
        return False
    acknowledged = snapshot.get("severity")
    return acknowledged is None or severity <= float(acknowledged)


def findings_by_category(findings: Sequence[tuple[str, float]]) -> dict[str, float]:
    """category -> highest severity among ``(category, severity)`` pairs."""
    worst: dict[str, float] = {}
    for category, severity in findings:
        worst[category] = max(severity, worst.get(category, severity))
    return worst


@dataclass(frozen=True)
class Acknowledgement:
    """The parts of an acknowledgement work item that decide whether it holds."""

    loop_id: str
    category: str | None
    state: str
    until: datetime | None
    snapshot: Mapping[str, Any] | None


def holding_acknowledgements(
    acknowledgements: Iterable[Acknowledgement],
    conditions: Mapping[str, LoopCondition],
    now: datetime,
) -> dict[str, frozenset[str | None]]:
    """loop id -> what of it is acknowledged now: ``None`` for the whole loop, else finding
    categories; loops without a holding acknowledgement are absent. ``conditions`` holds the
    current condition of the loops with an undated acknowledgement (absent: unknown)."""
    held: dict[str, set[str | None]] = {}
    for ack in acknowledgements:
        if acknowledgement_holds(
            state=ack.state,
            category=ack.category,
            until=ack.until,
            snapshot=ack.snapshot,
            now=now,
            current=conditions.get(ack.loop_id),
        ):
            held.setdefault(ack.loop_id, set()).add(ack.category)
    return {loop_id: frozenset(what) for loop_id, what in held.items()}
