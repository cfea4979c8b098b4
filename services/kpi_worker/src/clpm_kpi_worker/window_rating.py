"""The verdict of one loop and window: status, health and main problem from KPIs + diagnosis.

One function, :func:`rate_window`, with the signature of
``clpm_shared.analytics.verdict.window_verdict``; the worker calls only this, so switching to
the library's verdict is the one import below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clpm_shared.analytics import KpiResult, LoopConfig
from clpm_shared.analytics.diagnosis import Finding, LoopDiagnosis
from clpm_shared.analytics.health import health_score, status_of

NOT_ASSESSED = "not_assessed"
OFFLINE = "offline"


@dataclass(frozen=True)
class WindowVerdict:
    """Status, health and root cause of one window (the library verdict's fields)."""

    status: str
    health_score: float | None
    main_problem: str | None
    sub_scores: dict[str, float]
    findings: tuple[Finding, ...]
    not_assessed_reason: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def is_assessable(kpis: KpiResult, min_completeness: float) -> bool:
    """Whether the window holds enough data to be judged (and diagnosed) at all."""
    return kpis.samples > 0 and (kpis.dq_completeness or 0.0) >= min_completeness


def rate_window(
    kpis: KpiResult,
    diagnosis: LoopDiagnosis | None,
    config: LoopConfig,
    *,
    min_completeness: float = 0.8,
) -> WindowVerdict:
    """Offline without data; not_assessed below ``min_completeness``; otherwise the health
    score's status, and the diagnosis' root cause as the main problem (none when good)."""
    if kpis.samples == 0 or not kpis.dq_completeness:
        return WindowVerdict(OFFLINE, None, None, {}, (), "no data in the window")
    if kpis.dq_completeness < min_completeness:
        reason = f"data {100.0 * kpis.dq_completeness:.0f} % complete"
        return WindowVerdict(NOT_ASSESSED, None, None, {}, (), reason)
    health = health_score(kpis, config)
    findings = diagnosis.findings if diagnosis is not None else ()
    status = status_of(health.score)
    main = diagnosis.primary if diagnosis is not None and findings else None
    if status == "good":
        main = None
    return WindowVerdict(status, health.score, main, dict(health.sub_scores), tuple(findings))
