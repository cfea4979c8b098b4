"""Rating of a loop over a period (shift, day, week) from the verdicts of its windows.

:func:`assess_period` rolls the stored window verdicts of one loop up into one rating: the
share of time in each status, how persistent each finding was, the worst window, a
time-weighted health score and the period's main problem. One bad 15-minute window does not
make a bad day, and one good window does not hide a valve that sticks all day: the period
rating follows what persists.

Definitions (``T`` the period, ``w_i`` the time window ``i`` overlaps it, ``A`` the set of
assessed windows — status good, fair or poor):

* status shares: :math:`\\sum_{i:\\,status_i = k} w_i / |T|`; time no window covers counts
  as ``offline`` (no data);
* assessed share :math:`a = \\sum_{i \\in A} w_i / |T|`; below ``min_assessed_share`` the
  period is ``not_assessed`` (``offline`` when no window had any data);
* health :math:`H = \\sum_{i \\in A} w_i H_i / \\sum_{i \\in A} w_i`, the status from it
  (good >= 80, fair >= 60, poor below);
* persistence of a finding :math:`p_c = \\sum_{i \\in A,\\, c \\in F_i} w_i / \\sum_{i \\in A}
  w_i` and its mean severity :math:`\\bar s_c` over those windows; findings with
  :math:`p_c` < ``min_persistence`` are sporadic and not part of the period's rating;
* main problem: among the windows' root causes (their ``main_problem``) with
  :math:`p_c \\ge` ``min_persistence``, the one with the largest :math:`p_c \\bar s_c`. A
  period with a main problem is not "good": its health is capped at 79 as a window's is
  (:data:`~clpm_shared.analytics.verdict.HEALTH_CAP_OF_CAUSE`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Final

from clpm_shared.analytics.health import status_of
from clpm_shared.analytics.verdict import HEALTH_CAP_OF_CAUSE

STATUSES: Final[tuple[str, ...]] = ("good", "fair", "poor", "offline", "not_assessed")
ASSESSED: Final[frozenset[str]] = frozenset({"good", "fair", "poor"})


@dataclass(frozen=True)
class WindowRating:
    """One stored window of a loop: its verdict and its findings' severities.

    Attributes
    ----------
    start, end : datetime
        Window bounds (``end`` exclusive).
    status : str
        One of :data:`STATUSES`.
    health_score : float or None
    main_problem : str or None
        The window's root cause.
    findings : Mapping
        ``{category: severity}`` of the window's reported findings.
    """

    start: datetime
    end: datetime
    status: str
    health_score: float | None
    main_problem: str | None
    findings: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FindingPersistence:
    """How persistent one finding was over the assessed part of a period."""

    category: str
    persistence: float
    mean_severity: float

    def to_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "persistence": self.persistence,
            "mean_severity": self.mean_severity,
        }


@dataclass(frozen=True)
class WorstWindow:
    """The assessed window with the lowest health."""

    start: datetime
    end: datetime
    health_score: float | None
    status: str

    def to_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "health_score": self.health_score,
            "status": self.status,
        }


@dataclass(frozen=True)
class PeriodAssessment:
    """Rating of one loop over one period (definitions in the module docstring).

    Attributes
    ----------
    start, end : datetime
    status : str
        good / fair / poor from the health; ``not_assessed`` or ``offline`` when too little
        of the period was assessed.
    health_score : float or None
        Time-weighted mean health of the assessed windows (capped at 79 with a main problem).
    main_problem : str or None
        The persistent root cause with the largest persistence x mean severity.
    status_shares : dict
        Share of the period's time in each status (sums to 1).
    findings : tuple of FindingPersistence
        Findings present in at least ``min_persistence`` of the assessed time, most
        persistent first.
    worst_window : WorstWindow or None
    windows_assessed, windows_total : int
        ``windows_total`` counts the windows the period should hold (from the windows'
        typical length) or the windows given, whichever is larger.
    """

    start: datetime
    end: datetime
    status: str
    health_score: float | None
    main_problem: str | None
    status_shares: dict[str, float]
    findings: tuple[FindingPersistence, ...]
    worst_window: WorstWindow | None
    windows_assessed: int
    windows_total: int

    def to_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "status": self.status,
            "health_score": self.health_score,
            "main_problem": self.main_problem,
            "status_shares": dict(self.status_shares),
            "findings": [finding.to_dict() for finding in self.findings],
            "worst_window": None if self.worst_window is None else self.worst_window.to_dict(),
            "windows_assessed": self.windows_assessed,
            "windows_total": self.windows_total,
        }


def _overlap_s(rating: WindowRating, start: datetime, end: datetime) -> float:
    lo = max(rating.start, start)
    hi = min(rating.end, end)
    return max(0.0, (hi - lo).total_seconds())


def assess_period(
    ratings: Sequence[WindowRating],
    start: datetime,
    end: datetime,
    *,
    min_assessed_share: float = 0.5,
    min_persistence: float = 0.25,
) -> PeriodAssessment:
    """Roll the window ratings of one loop up into the rating of ``[start, end)``.

    Parameters
    ----------
    ratings : sequence of WindowRating
        The loop's windows; those outside the period are ignored, those crossing its
        bounds count with the part inside.
    start, end : datetime
        The period (both aware or both naive, like the ratings).
    min_assessed_share : float
        Share of the period that must be assessed for a rating (0-1).
    min_persistence : float
        Share of the assessed time from which a finding is persistent (0-1).

    Returns
    -------
    PeriodAssessment
    """
    if not end > start:
        raise ValueError(f"end: must be after start, got {start!r} .. {end!r}")
    for name, value in (
        ("min_assessed_share", min_assessed_share),
        ("min_persistence", min_persistence),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: must be within [0, 1], got {value!r}")
    period_s = (end - start).total_seconds()
    inside = [(r, _overlap_s(r, start, end)) for r in ratings]
    inside = [(r, w) for r, w in inside if w > 0.0]
    for rating, _ in inside:
        if rating.status not in STATUSES:
            raise ValueError(f"ratings: unknown status {rating.status!r}")

    shares = dict.fromkeys(STATUSES, 0.0)
    for rating, weight in inside:
        shares[rating.status] += weight / period_s
    shares["offline"] += max(0.0, 1.0 - sum(shares.values()))
    status_shares = {k: round(v, 4) for k, v in shares.items()}

    durations = [(r.end - r.start).total_seconds() for r, _ in inside]
    typical = median(durations) if durations else 0.0
    expected = round(period_s / typical) if typical > 0 else 0
    windows_total = max(len(inside), expected)
    assessed = [(r, w) for r, w in inside if r.status in ASSESSED and r.health_score is not None]
    assessed_s = sum(w for _, w in assessed)

    if not assessed or assessed_s / period_s < min_assessed_share:
        has_data = any(r.status != "offline" for r, _ in inside)
        return PeriodAssessment(
            start,
            end,
            "not_assessed" if has_data else "offline",
            None,
            None,
            status_shares,
            (),
            None,
            len(assessed),
            windows_total,
        )

    health = sum(float(r.health_score or 0.0) * w for r, w in assessed) / assessed_s
    present: dict[str, float] = {}
    severity_sum: dict[str, float] = {}
    for rating, weight in assessed:
        categories = dict(rating.findings)
        if rating.main_problem is not None and rating.main_problem not in categories:
            categories[rating.main_problem] = 1.0
        for category, severity in categories.items():
            present[category] = present.get(category, 0.0) + weight
            severity_sum[category] = severity_sum.get(category, 0.0) + severity * weight
    persistence = {c: present[c] / assessed_s for c in present}
    mean_severity = {c: severity_sum[c] / present[c] for c in present}
    findings = tuple(
        FindingPersistence(c, round(persistence[c], 4), round(mean_severity[c], 4))
        for c in sorted(persistence, key=lambda c: (-persistence[c], c))
        if persistence[c] >= min_persistence
    )
    roots = {r.main_problem for r, _ in assessed if r.main_problem is not None}
    candidates = [c for c in roots if persistence.get(c, 0.0) >= min_persistence]
    main_problem = (
        max(candidates, key=lambda c: (persistence[c] * mean_severity[c], c))
        if candidates
        else None
    )
    if main_problem is not None:
        health = min(health, HEALTH_CAP_OF_CAUSE)
    health = round(health, 2)
    worst, _ = min(assessed, key=lambda item: (float(item[0].health_score or 0.0), item[0].start))
    return PeriodAssessment(
        start,
        end,
        status_of(health),
        health,
        main_problem,
        status_shares,
        findings,
        WorstWindow(worst.start, worst.end, worst.health_score, worst.status),
        len(assessed),
        windows_total,
    )


__all__ = [
    "ASSESSED",
    "STATUSES",
    "FindingPersistence",
    "PeriodAssessment",
    "WindowRating",
    "WorstWindow",
    "assess_period",
]
