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
from datetime import datetime, timedelta

from clpm_shared.analytics.assessment import (
    ASSESSED,
    STATUSES,
    FindingPersistence,
    PeriodAssessment,
    WorstWindow,
)
from clpm_shared.analytics.health import status_of
from clpm_shared.analytics.verdict import HEALTH_CAP_OF_CAUSE


@dataclass(frozen=True)
class PeriodTotals:
    """What the database sums over one loop's windows of one period.

    Attributes
    ----------
    status_counts : Mapping[str, int]
        Stored windows per status.
    health_sum : float
        Sum of the health of the assessed windows (those with a health score).
    root_causes : Mapping[str, int]
        Assessed windows per main problem.
    findings : Mapping[str, tuple[int, float]]
        Category -> (assessed windows with such a finding, sum of their severities).
    worst : WorstWindow or None
        The assessed window with the lowest health (earliest on a tie).
    """

    status_counts: Mapping[str, int] = field(default_factory=dict)
    health_sum: float = 0.0
    root_causes: Mapping[str, int] = field(default_factory=dict)
    findings: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    worst: WorstWindow | None = None


def rate_totals(
    totals: PeriodTotals,
    start: datetime,
    end: datetime,
    window: timedelta,
    *,
    min_assessed_share: float = 0.5,
    min_persistence: float = 0.25,
) -> PeriodAssessment:
    """The rating of ``[start, end)`` from its window totals (rules in the module docstring).

    Parameters
    ----------
    totals : PeriodTotals
    start, end : datetime
        The period.
    window : timedelta
        The length of every window.
    min_assessed_share, min_persistence : float
        As in :func:`~clpm_shared.analytics.assessment.assess_period`.
    """
    if not end > start:
        raise ValueError(f"end: must be after start, got {start!r} .. {end!r}")
    counts = {status: int(totals.status_counts.get(status, 0)) for status in STATUSES}
    stored = sum(counts.values())
    period_s = (end - start).total_seconds()
    weight = window.total_seconds() / period_s
    shares = {status: counts[status] * weight for status in STATUSES}
    shares["offline"] += max(0.0, 1.0 - sum(shares.values()))
    status_shares = {k: round(v, 4) for k, v in shares.items()}
    windows_total = max(stored, round(period_s / window.total_seconds())) if stored else 0
    assessed = sum(counts[status] for status in ASSESSED)
    if not assessed or assessed * weight < min_assessed_share:
        has_data = stored > counts["offline"]
        return PeriodAssessment(
            start,
            end,
            "not_assessed" if has_data else "offline",
            None,
            None,
            status_shares,
            (),
            None,
            assessed,
            windows_total,
        )
    health = totals.health_sum / assessed
    present = {c: n for c, (n, _) in totals.findings.items() if n}
    severity = {c: totals.findings[c][1] / n for c, n in present.items()}
    for cause, n in totals.root_causes.items():
        if cause not in present:
            present[cause], severity[cause] = n, 1.0
    persistence = {c: n / assessed for c, n in present.items()}
    findings = tuple(
        FindingPersistence(c, round(persistence[c], 4), round(severity[c], 4))
        for c in sorted(persistence, key=lambda c: (-persistence[c], c))
        if persistence[c] >= min_persistence
    )
    candidates = [c for c in totals.root_causes if persistence.get(c, 0.0) >= min_persistence]
    main_problem = (
        max(candidates, key=lambda c: (persistence[c] * severity[c], c)) if candidates else None
    )
    if main_problem is not None:
        health = min(health, HEALTH_CAP_OF_CAUSE)
    health = round(health, 2)
    return PeriodAssessment(
        start,
        end,
        status_of(health),
        health,
        main_problem,
        status_shares,
        findings,
        totals.worst,
        assessed,
        windows_total,
    )


def not_assessed_reason(assessment: PeriodAssessment) -> str | None:
    """Why a period has no rating (None when it has one)."""
    if assessment.status == "offline":
        return "no data in the period"
    if assessment.status == "not_assessed":
        return f"{assessment.windows_assessed} of {assessment.windows_total} windows assessed"
    return None
