"""A loop's rating over an assessment period from the totals of its windows (pure).

The database sums a period's windows per loop (``AssessmentRepository``: counts per status,
the sum of the assessed windows' health, windows per root cause, findings per category);
:func:`rate_totals` turns those totals into the period rating with the rules of
``clpm_shared.analytics.assessment.assess_period``, so ten thousand loops x a week need no
window to leave the database. All windows of a period have the same length
(``KPI_WINDOW_MIN``), so a time-weighted mean is the mean over windows.

Rules (one window = one kpi_results row; windows missing after the loop's first window in
the period count as offline):

* status shares: windows per status / windows in the period;
* health :math:`\\bar h = \\frac{1}{n_a} \\sum_{i \\in A} h_i` over the assessed windows
  :math:`A` (good, fair, poor), status from :math:`\\bar h` (good >= 80, fair >= 60);
* a period with :math:`n_a < 0.5\\,n` is ``not_assessed`` (``offline`` without any data);
* finding persistence :math:`p_c = n_c / n_a` (windows with a finding of category :math:`c`),
  with its mean severity :math:`\\bar s_c`;
* main problem: among root causes (the windows' main problems) present in at least 25 % of
  the assessed windows, the one with the largest :math:`p_c \\bar s_c`; none for a good period.

References
----------
M. A. Paulonis, J. W. Cox, "A practical approach for large-scale controller performance
assessment, diagnosis, and improvement", Journal of Process Control 13 (2003) 155-168
(ratings over days, bad actors by persistence rather than by one snapshot).
M. Jelali, "Control Performance Management in Industrial Automation", Springer, 2013.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clpm_shared.analytics.health import status_of

PERIOD_STATUSES = ("good", "fair", "poor", "offline", "not_assessed")
ASSESSED = ("good", "fair", "poor")


@dataclass(frozen=True)
class WorstWindow:
    """The assessed window with the lowest health of the period."""

    start: str
    end: str
    health_score: float
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "health_score": self.health_score,
            "status": self.status,
        }


@dataclass(frozen=True)
class PeriodTotals:
    """What the database sums over one loop's windows of one period.

    Attributes
    ----------
    windows_total : int
        Windows in the period from the loop's first window in it (missing rows included).
    status_counts : Mapping[str, int]
        Stored windows per status.
    health_sum : float
        Sum of the health of the assessed windows.
    root_causes : Mapping[str, int]
        Assessed windows per main problem.
    findings : Mapping[str, tuple[int, float]]
        Category -> (assessed windows with such a finding, mean severity).
    worst : WorstWindow or None
    """

    windows_total: int
    status_counts: Mapping[str, int]
    health_sum: float = 0.0
    root_causes: Mapping[str, int] = field(default_factory=dict)
    findings: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    worst: WorstWindow | None = None


@dataclass(frozen=True)
class PeriodRating:
    """A loop's rating over a period (the API's assessment fields)."""

    status: str
    health_score: float | None
    main_problem: str | None
    status_shares: dict[str, float]
    findings: list[dict[str, Any]]
    worst_window: WorstWindow | None
    windows_assessed: int
    windows_total: int
    reason: str | None = None


def rate_totals(
    totals: PeriodTotals,
    *,
    min_assessed_share: float = 0.5,
    min_persistence: float = 0.25,
) -> PeriodRating:
    """The period rating from its window totals (rules in the module docstring)."""
    counts = {status: int(totals.status_counts.get(status, 0)) for status in PERIOD_STATUSES}
    stored = sum(counts.values())
    total = max(totals.windows_total, stored)
    counts["offline"] += total - stored
    assessed = sum(counts[status] for status in ASSESSED)
    shares = {status: (counts[status] / total if total else 0.0) for status in PERIOD_STATUSES}
    findings: list[dict[str, Any]] = sorted(
        (
            {
                "category": category,
                "persistence": round(windows / assessed, 4),
                "mean_severity": round(severity, 4),
            }
            for category, (windows, severity) in totals.findings.items()
            if assessed and windows
        ),
        key=lambda f: (-float(f["persistence"]) * float(f["mean_severity"]), str(f["category"])),
    )
    if total == 0 or counts["offline"] == total:
        return PeriodRating(
            "offline", None, None, shares, [], None, 0, total, "no data in the period"
        )
    if assessed < min_assessed_share * total:
        reason = f"{assessed} of {total} windows assessed"
        return PeriodRating(
            "not_assessed", None, None, shares, findings, None, assessed, total, reason
        )
    health = round(totals.health_sum / assessed, 2)
    status = status_of(health)
    severity = {str(f["category"]): float(f["mean_severity"]) for f in findings}
    candidates = [
        (windows / assessed * severity.get(cause, 0.0), cause)
        for cause, windows in totals.root_causes.items()
        if windows >= min_persistence * assessed
    ]
    main = max(candidates)[1] if candidates and status != "good" else None
    return PeriodRating(status, health, main, shares, findings, totals.worst, assessed, total, None)
