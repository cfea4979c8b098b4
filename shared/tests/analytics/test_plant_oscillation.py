"""Plant-wide oscillation clusters: shared oscillations cluster, a shared period alone does not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from clpm_shared.analytics import LoopConfig, LoopWindow
from clpm_shared.analytics.diagnosis import LoopDiagnosis, OscillationSummary, diagnose_loop
from clpm_shared.analytics.plant_oscillation import (
    LoopSignal,
    OscillationCluster,
    PlantStructure,
    bicoherence_indices,
    cluster_oscillations,
    coherence_threshold,
    cramer_von_mises_quantile,
    phase_wander,
    wander_threshold,
    with_plant_context,
)
from clpm_shared.simulation import SimulatedLoopSpec, simulate_fleet

WARM_UP = 600
SYNTHETIC_OSC_DRIFT = 0.025  # rad/sqrt(s), as the data-streaming service's synthetic loops
WINDOW = 3600


def _diagnosed(
    specs: Sequence[SimulatedLoopSpec], window: int = WINDOW
) -> dict[str, tuple[LoopDiagnosis, LoopSignal | None]]:
    """Simulate ``specs`` together, diagnose each loop, keep the oscillating ones' errors."""
    out: dict[str, tuple[LoopDiagnosis, LoopSignal | None]] = {}
    for spec, s in zip(specs, simulate_fleet(specs, WARM_UP + window), strict=True):
        keep = slice(WARM_UP, None)
        t = 1.7e9 + s.t[keep]
        window_ = LoopWindow(
            t=t, pv=s.pv[keep], sp=s.sp[keep], op=s.op[keep], mode=s.mode[keep], ts=spec.ts
        )
        config = LoopConfig(loop_type=spec.loop_type.value, dead_time_s=spec.dead_time_s)
        diagnosis = diagnose_loop(window_, config, loop_id=spec.loop_id)
        signal = (
            None
            if diagnosis.oscillation is None
            else LoopSignal(diagnosis.oscillation, s.sp[keep] - s.pv[keep], unit="U209")
        )
        out[spec.loop_id] = (diagnosis, signal)
    return out


def _signals(diagnosed: dict[str, tuple[LoopDiagnosis, LoopSignal | None]]) -> list[LoopSignal]:
    return [signal for _, signal in diagnosed.values() if signal is not None]


def _drifting_sinusoid(rng: np.random.Generator, period_s: float, n: int) -> np.ndarray:
    """A sinusoid of nominal period whose phase wanders (frequency drift) plus noise."""
    phase = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, 0.03, n))
    t = np.arange(n, dtype=np.float64)
    return np.sin(2 * np.pi * t / period_s + phase) + 0.3 * rng.standard_normal(n)


def test_independent_loops_sharing_a_nominal_period_form_no_cluster() -> None:
    rng = np.random.default_rng(7)
    n = 7200
    loops = [
        LoopSignal(
            OscillationSummary(f"L{i}", 60.0 * (1 + 0.01 * i), 5.0),
            _drifting_sinusoid(rng, 60.0 * (1 + 0.01 * i), n),
        )
        for i in range(8)
    ]
    assert cluster_oscillations(loops, 1.0) == []


def test_a_common_drifting_oscillation_through_lags_and_gains_is_one_cluster() -> None:
    rng = np.random.default_rng(11)
    n = 7200
    common = _drifting_sinusoid(rng, 60.0, n + 100)
    loops = [LoopSignal(OscillationSummary("SRC", 60.0, 5.0), common[100:] * 1.0)]
    for i, (lag, gain) in enumerate([(5, 0.8), (12, -1.5), (20, 0.5)]):
        x = gain * common[100 - lag : 100 - lag + n] + 0.2 * rng.standard_normal(n)
        loops.append(LoopSignal(OscillationSummary(f"D{i}", 60.0 * (1 + 0.02 * i), 3.0), x))
    # and an independent loop of the same nominal period
    loops.append(LoopSignal(OscillationSummary("OTHER", 61.0, 5.0), _drifting_sinusoid(rng, 61, n)))
    clusters = cluster_oscillations(loops, 1.0)
    assert len(clusters) == 1
    assert set(clusters[0].member_ids) == {"SRC", "D0", "D1", "D2"}
    assert clusters[0].likely_source == "SRC"  # the purest copy of the oscillation
    lags = {m.loop_id: m.lag_s for m in clusters[0].members}
    # the delayed copies lag the common oscillation by their delay; a negative gain adds half
    # a period of phase (12 s + 30 s, seen within half a period: -18 s)
    assert lags["D0"] == pytest.approx(5.0, abs=2.0)
    assert lags["D1"] == pytest.approx(-18.0, abs=2.0)
    assert lags["D2"] == pytest.approx(20.0, abs=2.0)


def test_loops_driven_by_an_upstream_sticky_valve_are_one_cluster_named_after_it() -> None:
    source = SimulatedLoopSpec.for_profile("FIC-SRC", "sticky_valve", "flow", seed=1)
    specs = [
        source,
        SimulatedLoopSpec.for_profile("FIC-D1", "healthy", "flow", seed=4).coupled_to(
            "FIC-SRC", 1.0, 3.0, 3.0
        ),
        SimulatedLoopSpec.for_profile("TIC-D2", "healthy", "temperature", seed=3).coupled_to(
            "FIC-SRC", 10.0, 10.0, 5.0
        ),
        # independent loops oscillating at about the same period: no members
        SimulatedLoopSpec.for_profile("FIC-X", "sticky_valve", "flow", seed=11),
        SimulatedLoopSpec.for_profile("FIC-Y", "sticky_valve", "flow", seed=12),
    ]
    diagnosed = _diagnosed(specs)
    signals = _signals(diagnosed)
    oscillating = {s.loop_id for s in signals}
    assert {"FIC-SRC", "FIC-D1", "FIC-X", "FIC-Y"} <= oscillating
    periods = [s.summary.period_s for s in signals if s.loop_id in {"FIC-SRC", "FIC-X", "FIC-Y"}]
    assert max(periods) / min(periods) < 1.15  # a period-only grouping would merge them
    clusters = cluster_oscillations(signals, 1.0)
    assert len(clusters) == 1
    cluster = clusters[0]
    assert cluster.likely_source == "FIC-SRC"
    assert "FIC-D1" in cluster.member_ids
    assert not {"FIC-X", "FIC-Y"} & set(cluster.member_ids)
    member = next(m for m in cluster.members if m.loop_id == "FIC-D1")
    assert member.coherence is not None
    assert member.coherence > 0.8
    assert member.lag_s is not None
    assert 0 < member.lag_s < 15
    assert member.unit == "U209"
    assert "FIC-SRC" in member.why
    assert "coherence" in member.why
    assert cluster.members[0].role == "source"
    assert "sticky" in cluster.source_reason


def test_independent_oscillations_of_one_nominal_period_over_an_hour_form_no_cluster() -> None:
    """The synthetic fleet's external oscillations: one exact nominal period per loop type,
    phases wandering independently (0.025 rad/sqrt(s)). Over one hour their relative phases
    move by about two radians only: the Gaussian null of the coherence (independent phases
    per segment) linked several of them; the phase-wander null does not."""
    specs = [
        replace(
            SimulatedLoopSpec.for_profile(f"FIC9{i:05d}", "external_oscillation", "flow", seed=i),
            osc_drift=SYNTHETIC_OSC_DRIFT,
        )
        for i in range(16)
    ]
    signals = [
        LoopSignal(OscillationSummary(spec.loop_id, spec.osc_period_s, 5.0), s.sp - s.pv)
        for spec, s in zip(specs, simulate_fleet(specs, WINDOW), strict=True)
    ]
    assert cluster_oscillations(signals, 1.0) == []


def test_phase_wander_threshold_follows_the_cramer_von_mises_law() -> None:
    # known quantiles of the limiting Cramér-von Mises distribution (Anderson & Darling 1952)
    assert cramer_von_mises_quantile(0.95) == pytest.approx(0.46136, abs=1e-4)
    assert cramer_von_mises_quantile(0.01) == pytest.approx(0.02480, abs=1e-4)
    # a relative phase that does not move at all gives no evidence: threshold 1
    assert float(wander_threshold(0.0, 0.01)) == 1.0
    # c = 1 - 2a q(alpha / 3); the more the phases wander, the lower the threshold
    q = cramer_von_mises_quantile(0.01 / 3)
    assert float(wander_threshold(2.0, 0.01)) == pytest.approx(1.0 - 4.0 * q)
    assert float(wander_threshold(4.0, 0.01)) < float(wander_threshold(2.0, 0.01))
    # a = -K ln(rho_a rho_b): seven segments, each phase keeping 0.85 over one segment
    assert float(phase_wander(7, 0.85 * 0.85)) == pytest.approx(-7 * np.log(0.85**2))


def test_loops_driven_by_a_shared_disturbance_are_one_cluster_named_after_the_driving_loop() -> (
    None
):
    # the shared disturbance wanders in phase as a real one does: a perfectly periodic one
    # looks the same in two independent loops of that exact period, coherence cannot tell
    # them apart
    source = SimulatedLoopSpec.for_profile("PIC-SRC", "external_oscillation", "pressure", seed=5)
    specs = [
        replace(source, osc_drift=SYNTHETIC_OSC_DRIFT),
        SimulatedLoopSpec.for_profile("TIC-E1", "healthy", "temperature", seed=6).coupled_to(
            "PIC-SRC", 40.0, 15.0, 20.0
        ),
        SimulatedLoopSpec.for_profile("FIC-E2", "healthy", "flow", seed=7).coupled_to(
            "PIC-SRC", 20.0, 5.0, 5.0
        ),
        SimulatedLoopSpec.for_profile("LIC-E3", "healthy", "level", seed=8).coupled_to(
            "PIC-SRC", 20.0, 25.0, 10.0
        ),
    ]
    for window in (WINDOW, 2 * WINDOW):
        clusters = cluster_oscillations(_signals(_diagnosed(specs, window)), 1.0)
        assert len(clusters) == 1
        assert set(clusters[0].member_ids) == {"PIC-SRC", "TIC-E1", "FIC-E2", "LIC-E3"}
        assert clusters[0].likely_source == "PIC-SRC"
        # no stiction, no non-linearity: the source is found by propagation
        assert "Granger" in clusters[0].source_reason
        for member in clusters[0].members[1:]:
            assert member.granger_from_source is not None
            assert member.granger_to_source is not None
            assert member.granger_from_source > member.granger_to_source
            assert "driven by it" in member.why
        assert clusters[0].period_s == pytest.approx(specs[0].osc_period_s, rel=0.05)


def test_a_configured_connection_is_tested_alone() -> None:
    """A modest coherence links two loops only when the plant structure connects them."""
    rng = np.random.default_rng(0)
    n = 7200
    common = _drifting_sinusoid(rng, 64.0, n)
    a = common + 4.0 * rng.standard_normal(n)  # a shared oscillation buried in local noise
    b = common + 4.0 * rng.standard_normal(n)
    loops = [
        LoopSignal(OscillationSummary("A", 64.0), a),
        LoopSignal(OscillationSummary("B", 64.0), b),
    ]
    loops += [
        LoopSignal(OscillationSummary(f"N{i}", 64.0), _drifting_sinusoid(rng, 64.0, n))
        for i in range(20)
    ]
    assert cluster_oscillations(loops, 1.0) == []
    connected = cluster_oscillations(loops, 1.0, structure=PlantStructure(frozenset({("A", "B")})))
    assert [set(c.member_ids) for c in connected] == [{"A", "B"}]
    member = next(m for m in connected[0].members if m.role == "member")
    assert "connected in the plant structure" in member.why


def test_coherence_threshold_follows_the_null_distribution() -> None:
    # P(C > c) = (1 - c)^(K - 1): K = 5, alpha = 0.01 -> c = 1 - 0.01^(1/4)
    assert coherence_threshold(5, 0.01, floor=0.5) == pytest.approx(1 - 0.01**0.25)
    assert coherence_threshold(101, 0.01, floor=0.5) == 0.5  # never below the floor
    assert coherence_threshold(101, 0.01) == 0.9
    assert coherence_threshold(1, 0.01) == 1.0


def test_bicoherence_sees_quadratic_phase_coupling_and_not_a_sinusoid() -> None:
    rng = np.random.default_rng(5)
    n = 16 * 400
    t = np.arange(n, dtype=np.float64)
    sine = np.sin(2 * np.pi * t / 16.0) + 0.1 * rng.standard_normal(n)
    indices = bicoherence_indices(sine, 1.0, 16.0)
    assert indices is not None
    assert not (indices[0] > 0 and indices[1] > 0)
    # f1 = 1/16, f2 = 3/32, and f1 + f2 with the sum of their phases: quadratic coupling
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    coupled = (
        np.cos(2 * np.pi * t / 16 + p1)
        + np.cos(2 * np.pi * 3 * t / 32 + p2)
        + np.cos(2 * np.pi * 5 * t / 32 + p1 + p2)
        + 0.1 * rng.standard_normal(n)
    )
    ngi, nli = bicoherence_indices(coupled, 1.0, 16.0) or (0.0, 0.0)
    assert ngi > 0
    assert nli > 0


def test_too_few_loops_or_bad_parameters() -> None:
    one = LoopSignal(OscillationSummary("A", 60.0), np.zeros(600))
    assert cluster_oscillations([one], 1.0) == []
    with pytest.raises(ValueError, match=r"^tolerance:"):
        cluster_oscillations([one, one], 1.0, tolerance=1.5)
    with pytest.raises(ValueError, match=r"^ts:"):
        cluster_oscillations([one, one], 0.0)
    other = LoopSignal(OscillationSummary("B", 60.0), np.zeros(300))
    with pytest.raises(ValueError, match=r"^loops:"):
        cluster_oscillations([one, other], 1.0)


def test_cluster_member_is_told_its_disturbance_comes_from_the_sticky_source() -> None:
    specs = [
        SimulatedLoopSpec.for_profile("FIC-SRC", "sticky_valve", "flow", seed=1),
        SimulatedLoopSpec.for_profile("FIC-D1", "healthy", "flow", seed=4).coupled_to(
            "FIC-SRC", 2.0, 3.0, 3.0
        ),
    ]
    diagnosed = _diagnosed(specs)
    clusters: list[OscillationCluster] = cluster_oscillations(_signals(diagnosed), 1.0)
    assert [c.likely_source for c in clusters] == ["FIC-SRC"]
    own = diagnosed["FIC-D1"][0]
    assert own.primary in {"aggressive_tuning", "oscillation"}  # alone: own tuning or undecided
    placed = with_plant_context(own, "FIC-D1", clusters)
    assert placed.primary == "external_disturbance"
    finding = placed.findings[0]
    assert finding.evidence["likely_source"] == "FIC-SRC"
    assert finding.evidence["coherence_with_source"] > 0.8  # type: ignore[operator]
    assert "FIC-SRC" in finding.recommendation
    # the source itself and loops outside every cluster keep their own diagnosis
    source = diagnosed["FIC-SRC"][0]
    assert with_plant_context(source, "FIC-SRC", clusters) is source
    assert with_plant_context(own, "ELSEWHERE", clusters) is own


def test_a_member_whose_share_of_the_cycle_does_not_hurt_gets_no_finding() -> None:
    """Coupled weakly, the cycle explains 5 % of the member's error variance: not reported."""
    specs = [
        SimulatedLoopSpec.for_profile("FIC-SRC", "sticky_valve", "flow", seed=1),
        SimulatedLoopSpec.for_profile("FIC-D1", "healthy", "flow", seed=4).coupled_to(
            "FIC-SRC", 1.0, 3.0, 3.0
        ),
    ]
    diagnosed = _diagnosed(specs)
    clusters = cluster_oscillations(_signals(diagnosed), 1.0)
    assert [c.likely_source for c in clusters] == ["FIC-SRC"]
    own = diagnosed["FIC-D1"][0]
    assert own.primary is None
    assert "not reported" in own.notes["oscillation"]
    assert with_plant_context(own, "FIC-D1", clusters) is own
