"""A loop's rating over an assessment period from the totals of its windows (pure).

The database sums a period's windows per loop (``AssessmentRepository``: windows per status,
the sum of the assessed windows' health, the root causes, windows and severity sum per
finding category, the worst window); :func:`rate_totals` turns those totals into the
:class:`~clpm_shared.analytics.assessment.PeriodAssessment` that
:func:`~clpm_shared.analytics.assessment.assess_period` gives for the same windows, so ten
thousand loops x a week need no window to leave the database. The windows of a period all
have the same length ``W`` (``KPI_WINDOW_MIN``) and lie inside it, so every time weight
:math:`w_i = W` and the time-weighted sums of ``assess_period`` become counts:

* status shares :math:`n_k W / |T|`, the rest of the period offline;
* health :math:`H = \\frac{1}{n_A} \\sum_{i \\in A} H_i` over the assessed windows :math:`A`;
  below ``min_assessed_share`` of the period assessed: ``not_assessed`` (``offline`` when no
  window had data);
* persistence :math:`p_c = n_c / n_A`, mean severity :math:`\\bar s_c = \\sum s_{c,i} / n_c`;
  a root cause without any stored finding counts with severity 1 (as in ``assess_period``);
* main problem: the root cause with :math:`p_c \\ge` ``min_persistence`` and the largest
  impact :math:`p_c \\bar s_c`; the health is then capped, :math:`H \\le C(p_c \\bar s_c)`
  (``verdict.health_cap``).

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
from clpm_shared.analytics.verdict import health_cap


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
        health = min(health, health_cap(persistence[main_problem] * severity[main_problem]))
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
