"""One verdict per loop and window: status, health, and one root cause with its evidence.

:func:`window_verdict` joins the KPI health score (:mod:`clpm_shared.analytics.health`) and
the rule-based findings (:func:`~clpm_shared.analytics.diagnosis.diagnose_loop`) into what an
engineer reads first: a status, a health score and the *main problem*, which is the root
cause of the loop's findings, never a symptom and never one of two contradicting stories.

Root cause by precedence
------------------------
Findings are ranked by :data:`PRECEDENCE`, an order of *what makes the other findings
unreliable or follows from what*, as in the cause-and-effect hierarchy of loop audits
(Jelali 2006; Bauer et al. 2016; Thornhill & Horch 2007):

1. ``sensor_fault`` — a frozen, spiking or out-of-range measurement: every other KPI is
   computed on it, and a frozen PV below SP winds the controller into a limit ("saturation
   low" on a flat-lined transmitter is a consequence, not a second fault).
2. ``sensor_noise`` — noise moves the valve and inflates the error statistics; a noisy
   transmitter makes a loop look over-active, never sluggish.
3. ``mode_issue`` — out of automatic the controller does not act: an error that is not
   corrected, a held OP, a limit reached by hand are what manual mode looks like.
4. ``saturation`` — at a limit the controller has no authority left: the error stays
   (looks sluggish), the valve does not travel, and no retuning can help ("increase the
   gain" on a pinned valve is harmful).
5. ``stiction`` — the valve's stick-slip limit cycle (Choudhury, Shah & Thornhill 2005)
   produces the oscillation, the OP reversals and the variance; it is the classic
   misdiagnosis as aggressive tuning or as an external disturbance (Horch 1999).
6. ``aggressive_tuning`` / ``sluggish_tuning`` — the controller itself, once the valve and
   the measurement are known to be sound.
7. ``external_disturbance`` — left when the loop's own components explain nothing.

``oscillation`` is a symptom: it is evidence under any cause and a problem on its own only
when no cause was found.

Explained, independent, contradictory
-------------------------------------
The root cause is the highest-precedence finding. Every other finding is then either

* **contradictory** to an already kept finding (:data:`CONTRADICTORY_PAIRS`: both cannot be
  true of one loop and window, e.g. a cycle made by the valve *and* entering from outside)
  — it is dropped;
* **independent** of the root cause (:data:`INDEPENDENT_PAIRS`: two faults of different
  equipment that do not follow from each other, e.g. a noisy transmitter on a loop with a
  sticky valve) — it is reported as a problem of its own after the root cause;
* otherwise **explained** by the root cause — kept as evidence in ``root.explained``.

Health and status
-----------------
``health = min(H_kpi, C(root))`` where ``H_kpi`` is :func:`~clpm_shared.analytics.health.
health_score` and the cap :math:`C = 79 - 40\\,s` (``s`` the root cause's severity, 0-1)
keeps a loop with a confirmed root cause out of "good" and makes a severe one "poor"
(``s > 0.475``). A loop without findings keeps its KPI health, and has no main problem.
A window with data completeness below ``min_completeness`` is ``not_assessed`` (with the
reason); a window without data is ``offline``. Above the threshold, missing samples no
longer lower the health: the data-quality sub-score is taken at full completeness (a
collection gap says nothing about the loop).

References
----------
M. Jelali, "An overview of control performance assessment technology and industrial
applications", Control Engineering Practice 14 (2006) 441-466.
M. Bauer, A. Horch, L. Xie, M. Jelali, N. Thornhill, "The current state of control loop
performance monitoring - A survey of application in industry", Journal of Process Control
38 (2016) 1-10.
N. F. Thornhill, A. Horch, "Advances and new directions in plant-wide disturbance detection
and diagnosis", Control Engineering Practice 15 (2007) 1196-1206.
A. Horch, "A simple method for detection of stiction in control valves", Control
Engineering Practice 7 (1999) 1221-1231.
M. A. A. S. Choudhury, S. L. Shah, N. F. Thornhill, "Modelling valve stiction", Control
Engineering Practice 13 (2005) 641-658.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from clpm_shared.analytics.diagnosis import Finding, LoopDiagnosis
from clpm_shared.analytics.health import health_score, status_of
from clpm_shared.analytics.kpis import KpiResult
from clpm_shared.analytics.loop_config import LoopConfig

Status = Literal["good", "fair", "poor", "offline", "not_assessed"]

PRECEDENCE: Final[tuple[str, ...]] = (
    "sensor_fault",
    "sensor_noise",
    "mode_issue",
    "saturation",
    "stiction",
    "aggressive_tuning",
    "sluggish_tuning",
    "external_disturbance",
    "oscillation",
)
"""Root-cause precedence, first wins (the reasons are in the module docstring)."""

CONTRADICTORY_PAIRS: Final[frozenset[frozenset[str]]] = frozenset(
    frozenset(pair)
    for pair in (
        # OP pinned at a limit: more gain cannot help ("increase the gain" is harmful)
        ("saturation", "sluggish_tuning"),
        # a valve that cannot move cannot cycle by itself, nor ring with the controller
        ("saturation", "aggressive_tuning"),
        # a frozen PV makes the controller wind up: the limit is not the valve's fault
        ("sensor_fault", "saturation"),
        ("sensor_fault", "sluggish_tuning"),
        ("sensor_fault", "aggressive_tuning"),
        ("sensor_fault", "stiction"),
        ("sensor_fault", "external_disturbance"),
        # one cycle has one origin: inside the valve, the controller, or outside the loop
        ("stiction", "external_disturbance"),
        ("stiction", "aggressive_tuning"),
        ("aggressive_tuning", "external_disturbance"),
        # a controller cannot be too slow and too fast at once
        ("aggressive_tuning", "sluggish_tuning"),
        ("stiction", "sluggish_tuning"),
        ("sluggish_tuning", "external_disturbance"),
        # noise is not a cycle: a noisy transmitter does not make the loop ring
        ("sensor_noise", "aggressive_tuning"),
        ("sensor_noise", "sluggish_tuning"),
    )
)
"""Pairs of findings that cannot both be true of one loop in one window."""

INDEPENDENT_PAIRS: Final[frozenset[frozenset[str]]] = frozenset(
    frozenset(pair)
    for pair in (
        # different equipment, neither follows from the other
        ("sensor_noise", "stiction"),
        ("sensor_noise", "saturation"),
        ("sensor_noise", "mode_issue"),
        ("sensor_noise", "external_disturbance"),
        ("mode_issue", "stiction"),
    )
)
"""Pairs of findings that are two problems, each reported (the root cause first)."""

HEALTH_CAP_OF_CAUSE: Final = 79.0
"""Highest health of a loop with a confirmed root cause (never "good", which is >= 80)."""

HEALTH_CAP_PER_SEVERITY: Final = 40.0
"""The cap falls by this per unit of the root cause's severity (79 → 39)."""


@dataclass(frozen=True)
class WindowVerdict:
    """What one loop's window comes to.

    Attributes
    ----------
    status : {"good", "fair", "poor", "offline", "not_assessed"}
    health_score : float or None
        0-100; None when offline or not assessed.
    main_problem : str or None
        The root-cause category (e.g. ``"stiction"``); None for a loop without findings.
    sub_scores : dict
        KPI sub-scores of the health score (0-100).
    findings : tuple of Finding
        Reported problems: the root cause first, then independent ones. Findings the root
        cause explains are in ``findings[0].explained``.
    not_assessed_reason : str or None
        Why the window was not assessed (e.g. ``"data 49 % complete"``).
    """

    status: Status
    health_score: float | None
    main_problem: str | None
    sub_scores: dict[str, float]
    findings: tuple[Finding, ...]
    not_assessed_reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "health_score": self.health_score,
            "main_problem": self.main_problem,
            "sub_scores": dict(self.sub_scores),
            "findings": [finding.to_dict() for finding in self.findings],
            "not_assessed_reason": self.not_assessed_reason,
        }


def contradicts(a: str, b: str) -> bool:
    """Whether findings of categories ``a`` and ``b`` cannot both be true."""
    return frozenset((a, b)) in CONTRADICTORY_PAIRS


def _rank(finding: Finding) -> tuple[int, float]:
    order = PRECEDENCE.index(finding.category) if finding.category in PRECEDENCE else 99
    return order, -finding.severity * finding.confidence


def resolve_root_cause(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """Reported findings: the root cause (with what it explains) first, then independent ones.

    Findings are taken in :data:`PRECEDENCE` order (within a category, the one with the
    larger severity x confidence first). The first is the root cause. Each later finding is
    dropped when it contradicts a kept one (:data:`CONTRADICTORY_PAIRS`), reported when it
    is independent of every reported one (:data:`INDEPENDENT_PAIRS`), and otherwise kept
    under the root cause as explained evidence. A second finding of the root cause's own
    category is evidence too.

    Returns
    -------
    tuple of Finding
        Empty when ``findings`` is; no two reported or explained findings contradict.
    """
    if not findings:
        return ()
    ordered = sorted(findings, key=_rank)
    root = ordered[0]
    reported: list[Finding] = []
    explained: list[Finding] = []
    for finding in ordered[1:]:
        kept = [root, *reported, *explained]
        if any(contradicts(finding.category, other.category) for other in kept):
            continue
        independent = finding.category != root.category and all(
            frozenset((finding.category, other.category)) in INDEPENDENT_PAIRS
            for other in (root, *reported)
        )
        if independent and finding.category not in {f.category for f in reported}:
            reported.append(finding)
        else:
            explained.append(finding)
    return (replace(root, explained=root.explained + tuple(explained)), *reported)


def health_cap(severity: float) -> float:
    """Highest health of a loop whose root cause has ``severity`` (0-1): ``79 - 40 s``."""
    s = min(1.0, max(0.0, severity))
    return HEALTH_CAP_OF_CAUSE - HEALTH_CAP_PER_SEVERITY * s


def window_verdict(
    kpis: KpiResult,
    diagnosis: LoopDiagnosis | None,
    config: LoopConfig,
    *,
    min_completeness: float = 0.8,
) -> WindowVerdict:
    """Status, health, main problem and findings of one loop's window.

    Parameters
    ----------
    kpis : KpiResult
        KPIs of the window.
    diagnosis : LoopDiagnosis or None
        Findings of the same window; None when it was not diagnosed (KPI health alone).
    config : LoopConfig
        The loop's settings (loop type for the health tables).
    min_completeness : float
        Data completeness (``dq_completeness``, 0-1) below which the window is
        ``not_assessed``.

    Returns
    -------
    WindowVerdict
        ``offline`` without data, ``not_assessed`` below ``min_completeness``; otherwise
        ``health = min(H_kpi, 79 - 40 s_root)`` and the status from it (good >= 80,
        fair >= 60, poor below); the main problem is the root cause of
        :func:`resolve_root_cause`, None when there are no findings.
    """
    if not 0.0 <= min_completeness <= 1.0:
        raise ValueError(f"min_completeness: must be within [0, 1], got {min_completeness!r}")
    completeness = kpis.dq_completeness
    if kpis.samples == 0 or not completeness:
        return WindowVerdict("offline", None, None, {}, ())
    if completeness < min_completeness:
        health = health_score(kpis, config)
        reason = (
            f"data {100 * completeness:.0f} % complete (at least "
            f"{100 * min_completeness:.0f} % needed)"
        )
        return WindowVerdict("not_assessed", None, None, health.sub_scores, (), reason)
    # completeness decides whether the window is assessed, not how well the loop performs
    health = health_score(replace(kpis, dq_completeness=1.0), config)
    if health.score is None:
        return WindowVerdict("offline", None, None, {}, ())
    findings = resolve_root_cause(diagnosis.findings if diagnosis is not None else ())
    score = health.score
    if findings:
        score = round(min(score, health_cap(findings[0].severity)), 2)
    status: Status = status_of(score)
    return WindowVerdict(
        status,
        score,
        findings[0].category if findings else None,
        health.sub_scores,
        findings,
    )


__all__ = [
    "CONTRADICTORY_PAIRS",
    "INDEPENDENT_PAIRS",
    "PRECEDENCE",
    "Status",
    "WindowVerdict",
    "contradicts",
    "health_cap",
    "resolve_root_cause",
    "window_verdict",
]
