"""Window verdict: one root cause per loop, no contradictions, status fed by the findings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from clpm_shared.analytics import LoopConfig, LoopWindow, compute_kpis
from clpm_shared.analytics.diagnosis import CATEGORIES, Finding, LoopDiagnosis, diagnose_loop
from clpm_shared.analytics.kpis import KpiResult
from clpm_shared.analytics.verdict import (
    CONTRADICTORY_PAIRS,
    PRECEDENCE,
    contradicts,
    health_cap,
    resolve_root_cause,
    window_verdict,
)
from clpm_shared.simulation import LoopProfile, LoopType, SimulatedLoopSpec, simulate_fleet

WARM_UP = 600
WINDOW = 3600


def _finding(category: str, severity: float = 0.6, confidence: float = 0.8) -> Finding:
    return Finding(category, severity, confidence, {}, f"fix the {category}")  # type: ignore[arg-type]


def _categories(findings: tuple[Finding, ...]) -> list[str]:
    return [f.category for f in findings]


def test_every_category_has_a_precedence() -> None:
    assert set(PRECEDENCE) == set(CATEGORIES)


def test_the_issue_s_contradictions_are_listed() -> None:
    for a, b in (
        ("saturation", "sluggish_tuning"),
        ("sensor_fault", "saturation"),
        ("stiction", "external_disturbance"),
        ("aggressive_tuning", "external_disturbance"),
        ("stiction", "aggressive_tuning"),
    ):
        assert contradicts(a, b)
        assert contradicts(b, a)


def test_no_verdict_ever_holds_both_of_a_contradictory_pair() -> None:
    """Every combination of categories (up to two findings each): no pair survives."""
    for size in range(1, len(CATEGORIES) + 1):
        for combination in itertools.combinations(CATEGORIES, size):
            findings = [_finding(c) for c in combination] + [
                _finding(c, 0.3) for c in combination[:2]
            ]
            resolved = resolve_root_cause(findings)
            kept = [*resolved, *resolved[0].explained]
            for a, b in itertools.combinations(kept, 2):
                assert frozenset((a.category, b.category)) not in CONTRADICTORY_PAIRS, (
                    combination,
                    _categories(tuple(kept)),
                )


def test_root_cause_follows_precedence_not_severity() -> None:
    resolved = resolve_root_cause(
        [
            _finding("oscillation", 0.9),
            _finding("aggressive_tuning", 0.2),
            _finding("stiction", 0.5),
        ]
    )
    assert _categories(resolved) == ["stiction"]
    assert _categories(resolved[0].explained) == ["oscillation"]


def test_saturation_drops_the_advice_to_increase_the_gain() -> None:
    resolved = resolve_root_cause([_finding("sluggish_tuning", 0.9), _finding("saturation", 0.4)])
    assert _categories(resolved) == ["saturation"]
    assert resolved[0].explained == ()


def test_independent_fault_is_reported_after_the_root_cause() -> None:
    resolved = resolve_root_cause(
        [_finding("stiction"), _finding("sensor_noise"), _finding("oscillation")]
    )
    assert _categories(resolved) == ["sensor_noise", "stiction"]
    assert _categories(resolved[0].explained) == ["oscillation"]


def test_explained_findings_are_in_the_root_cause_s_dict() -> None:
    resolved = resolve_root_cause([_finding("stiction"), _finding("oscillation", 0.7)])
    as_dict = resolved[0].to_dict()
    explained = as_dict["explained"]
    assert isinstance(explained, list)
    assert explained[0]["category"] == "oscillation"


def test_health_cap_keeps_a_confirmed_cause_out_of_good() -> None:
    assert health_cap(0.0) == pytest.approx(79.0)
    assert health_cap(1.0) == pytest.approx(39.0)
    assert health_cap(0.5) < 60.0 < health_cap(0.45)


def _kpis(completeness: float, samples: int = 900) -> KpiResult:
    return KpiResult(
        source="raw",
        samples=samples,
        service_factor=1.0,
        saturation=0.0,
        error_std_pct=0.5,
        oscillating=False,
        dq_completeness=completeness,
        dq_flatline=False,
        dq_out_of_range=0.0,
    )


def test_incomplete_window_is_not_assessed_with_the_reason() -> None:
    verdict = window_verdict(_kpis(0.49), None, LoopConfig(loop_type="flow"))
    assert verdict.status == "not_assessed"
    assert verdict.health_score is None
    assert verdict.main_problem is None
    assert verdict.not_assessed_reason is not None
    assert "49 %" in verdict.not_assessed_reason


def test_window_without_data_is_offline() -> None:
    verdict = window_verdict(_kpis(0.0, samples=0), None, LoopConfig(loop_type="flow"))
    assert (verdict.status, verdict.health_score, verdict.not_assessed_reason) == (
        "offline",
        None,
        None,
    )


def test_completeness_threshold_is_a_parameter() -> None:
    config = LoopConfig(loop_type="flow")
    assert window_verdict(_kpis(0.7), None, config, min_completeness=0.6).status == "good"
    with pytest.raises(ValueError, match="min_completeness"):
        window_verdict(_kpis(0.7), None, config, min_completeness=1.5)


@pytest.fixture(scope="module")
def simulated() -> dict[str, tuple[LoopConfig, LoopWindow]]:
    specs = [
        SimulatedLoopSpec.for_profile(f"{p.value}/{t.value}", p, t, seed=31)
        for p in (LoopProfile.HEALTHY, LoopProfile.STICKY_VALVE, LoopProfile.SATURATED)
        for t in (LoopType.FLOW, LoopType.TEMPERATURE)
    ]
    out = {}
    for spec, series in zip(specs, simulate_fleet(specs, WARM_UP + WINDOW), strict=True):
        keep = slice(WARM_UP, None)
        window = LoopWindow(
            t=1.7e9 + series.t[keep],
            pv=series.pv[keep],
            sp=series.sp[keep],
            op=series.op[keep],
            mode=series.mode[keep],
            ts=spec.ts,
        )
        out[spec.loop_id] = (
            LoopConfig(loop_type=spec.loop_type.value, dead_time_s=spec.dead_time_s),
            window,
        )
    return out


@pytest.mark.parametrize("loop_type", ["flow", "temperature"])
def test_healthy_loop_is_good_without_a_main_problem(
    simulated: dict[str, tuple[LoopConfig, LoopWindow]], loop_type: str
) -> None:
    config, window = simulated[f"healthy/{loop_type}"]
    kpis = compute_kpis(window, config)
    verdict = window_verdict(kpis, diagnose_loop(window, config, kpis), config)
    assert verdict.status == "good"
    assert verdict.main_problem is None
    assert verdict.findings == ()


@pytest.mark.parametrize(
    ("profile", "cause"), [("sticky_valve", "stiction"), ("saturated", "saturation")]
)
@pytest.mark.parametrize("loop_type", ["flow", "temperature"])
def test_faulty_loop_names_its_root_cause_and_is_not_good(
    simulated: dict[str, tuple[LoopConfig, LoopWindow]], profile: str, cause: str, loop_type: str
) -> None:
    config, window = simulated[f"{profile}/{loop_type}"]
    kpis = compute_kpis(window, config)
    verdict = window_verdict(kpis, diagnose_loop(window, config, kpis), config)
    assert verdict.main_problem == cause
    assert verdict.findings[0].category == cause
    assert verdict.status in {"fair", "poor"}
    assert verdict.health_score is not None
    assert verdict.health_score < 80.0
    assert "oscillation" not in _categories(verdict.findings)


def test_a_finding_caps_health_that_the_kpis_alone_call_good() -> None:
    kpis = _kpis(1.0)
    config = LoopConfig(loop_type="flow")
    plain = window_verdict(kpis, None, config)
    assert plain.status == "good"
    diagnosis = LoopDiagnosis((_finding("stiction", 0.8),), "stiction", kpis)
    verdict = window_verdict(kpis, diagnosis, config)
    assert verdict.main_problem == "stiction"
    assert verdict.health_score == pytest.approx(health_cap(0.8))
    assert verdict.status == "poor"
    assert np.isfinite(verdict.health_score)
