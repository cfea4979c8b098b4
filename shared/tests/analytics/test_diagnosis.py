"""Diagnosis rules on simulated loops: each profile gets its cause, healthy loops get none."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import signal

from clpm_shared.analytics import LoopConfig, LoopWindow, stiction_index
from clpm_shared.analytics.diagnosis import (
    CATEGORIES,
    Finding,
    LoopDiagnosis,
    count_spikes,
    diagnose_loop,
    robust_noise_std,
)
from clpm_shared.analytics.oscillation import detect_regular_oscillation
from clpm_shared.simulation import (
    LoopProfile,
    LoopType,
    SimulatedLoopSpec,
    SimulatedSeries,
    simulate_fleet,
)

WARM_UP = 600
WINDOW = 3600
"""One-hour windows at 1 s: the slow temperature and level cycles (periods of 5-13 min)
need several periods in the window."""

FLEET_SEED = 2

EXPECTED_CAUSE: dict[LoopProfile, str | None] = {
    LoopProfile.HEALTHY: None,
    LoopProfile.STICKY_VALVE: "stiction",
    LoopProfile.OVER_TUNED: "aggressive_tuning",
    LoopProfile.SLUGGISH: "sluggish_tuning",
    LoopProfile.SATURATED: "saturation",
    LoopProfile.MANUAL_PERIODS: "mode_issue",
    LoopProfile.FLATLINED_SENSOR: "sensor_fault",
    LoopProfile.NOISY_SENSOR: "sensor_noise",
    LoopProfile.EXTERNAL_OSCILLATION: "external_disturbance",
}


def _window(series: SimulatedSeries, ts: float = 1.0) -> LoopWindow:
    keep = slice(WARM_UP, None)
    return LoopWindow(
        t=1.7e9 + series.t[keep],
        pv=series.pv[keep],
        sp=series.sp[keep],
        op=series.op[keep],
        mode=series.mode[keep],
        ts=ts,
    )


def _diagnose(spec: SimulatedLoopSpec, series: SimulatedSeries) -> LoopDiagnosis:
    config = LoopConfig(loop_type=spec.loop_type.value, dead_time_s=spec.dead_time_s)
    return diagnose_loop(_window(series, spec.ts), config, loop_id=spec.loop_id)


def _every_finding(diagnosis: LoopDiagnosis) -> list[Finding]:
    """Reported findings, those their root cause explains, and the dropped contradicting ones."""
    every: list[Finding] = []
    for finding in diagnosis.findings:
        every.append(finding)
        every.extend(finding.explained)
    return every + list(diagnosis.dropped)


@pytest.fixture(scope="module")
def fleet() -> dict[str, tuple[SimulatedLoopSpec, SimulatedSeries]]:
    """Every profile on every loop type, one fixed seed, simulated together (vectorised)."""
    specs = [
        SimulatedLoopSpec.for_profile(
            f"{profile.value}/{loop_type.value}", profile, loop_type, seed=FLEET_SEED
        )
        for profile in LoopProfile
        for loop_type in LoopType
    ]
    series = simulate_fleet(specs, WARM_UP + WINDOW)
    return {spec.loop_id: (spec, s) for spec, s in zip(specs, series, strict=True)}


@pytest.mark.parametrize("loop_type", list(LoopType), ids=lambda t: t.value)
@pytest.mark.parametrize("profile", list(LoopProfile), ids=lambda p: p.value)
def test_each_profile_is_diagnosed_as_its_cause(
    fleet: dict[str, tuple[SimulatedLoopSpec, SimulatedSeries]],
    profile: LoopProfile,
    loop_type: LoopType,
) -> None:
    spec, series = fleet[f"{profile.value}/{loop_type.value}"]
    diagnosis = _diagnose(spec, series)
    expected = EXPECTED_CAUSE[profile]
    if profile is LoopProfile.MANUAL_PERIODS:
        # the operator's switching is random: judge the window by what it holds
        manual_share = float(np.mean(series.mode[WARM_UP:] == "MAN"))
        expected = "mode_issue" if manual_share > 0.05 else None
    assert diagnosis.primary == expected, [(f.category, f.evidence) for f in diagnosis.findings]
    if diagnosis.primary is not None:
        assert diagnosis.findings[0].category == diagnosis.primary


def test_healthy_loops_get_no_finding_at_all(
    fleet: dict[str, tuple[SimulatedLoopSpec, SimulatedSeries]],
) -> None:
    for loop_type in LoopType:
        spec, series = fleet[f"healthy/{loop_type.value}"]
        assert _diagnose(spec, series).findings == ()


def test_findings_are_well_formed(
    fleet: dict[str, tuple[SimulatedLoopSpec, SimulatedSeries]],
) -> None:
    seen: set[str] = set()
    for spec, series in fleet.values():
        for finding in _every_finding(_diagnose(spec, series)):
            seen.add(finding.category)
            assert finding.category in CATEGORIES
            assert 0.0 <= finding.severity <= 1.0
            assert 0.0 <= finding.confidence <= 1.0
            assert finding.evidence
            # one actionable sentence
            assert finding.recommendation.endswith(".")
            assert ". " not in finding.recommendation
            assert finding.to_dict()["category"] == finding.category
    assert seen == set(CATEGORIES)  # every rule fires somewhere in the fleet


def test_sticky_valve_finding_quantifies_the_band_in_percent_of_span(
    fleet: dict[str, tuple[SimulatedLoopSpec, SimulatedSeries]],
) -> None:
    spec, series = fleet["sticky_valve/pressure"]
    diagnosis = _diagnose(spec, series)
    stiction = next(f for f in diagnosis.findings if f.category == "stiction")
    band = stiction.evidence["apparent_stiction_pct"]
    assert isinstance(band, float)
    assert 1.0 < band < 3.0 * spec.valve_s
    assert "% of span" in stiction.recommendation
    assert "maintenance" in stiction.recommendation
    assert diagnosis.oscillation is not None
    assert diagnosis.oscillation.loop_id == spec.loop_id


@pytest.mark.parametrize("loop_type", [LoopType.FLOW, LoopType.TEMPERATURE], ids=str)
def test_noisy_healthy_loop_is_neither_stiction_nor_oscillating(loop_type: LoopType) -> None:
    spec = SimulatedLoopSpec.for_profile("noisy", "healthy", loop_type, seed=4)
    spec = replace(spec, noise_std=3.0 * spec.noise_std)
    diagnosis = _diagnose(spec, simulate_fleet([spec], WARM_UP + WINDOW)[0])
    categories = {f.category for f in _every_finding(diagnosis)}
    assert "stiction" not in categories
    assert "oscillation" not in categories


def _irregular_loop(loop_type: LoopType, seed: int, sticky: bool) -> SimulatedLoopSpec:
    """Sticky-valve profile with twice the usual noise and no SP steps (a wandering cycle)."""
    spec = SimulatedLoopSpec.for_profile("irregular", "sticky_valve", loop_type, seed=seed)
    spec = replace(spec, noise_std=2.0 * spec.noise_std, sp_change_interval_s=0.0)
    return spec if sticky else replace(spec, valve_s=0.0, valve_j=0.0)


@pytest.mark.parametrize(
    ("loop_type", "seed"), [(LoopType.FLOW, 5), (LoopType.LEVEL, 4)], ids=["flow", "level"]
)
def test_sticky_loop_too_irregular_for_the_whole_signal_acf_is_diagnosed_as_stiction(
    loop_type: LoopType, seed: int
) -> None:
    spec = _irregular_loop(loop_type, seed, sticky=True)
    series = simulate_fleet([spec], WARM_UP + WINDOW)[0]
    error = (series.sp - series.pv)[WARM_UP:]
    # the whole-signal ACF test rejects the wandering cycle; the KPI filter bank finds it
    assert not detect_regular_oscillation(error, 1.0).oscillating
    diagnosis = _diagnose(spec, series)
    assert diagnosis.kpis.oscillating is True
    assert diagnosis.primary == "stiction"
    assert diagnosis.stiction is not None
    # the cycle is the valve's: kept as evidence under the stiction finding
    oscillation = next(f for f in diagnosis.findings[0].explained if f.category == "oscillation")
    assert oscillation.evidence["analysed"] == "window"
    stiction = next(f for f in diagnosis.findings if f.category == "stiction")
    assert stiction.evidence["period_s"] == pytest.approx(diagnosis.kpis.osc_period_s, abs=0.1)


@pytest.mark.parametrize(
    ("loop_type", "seed"), [(LoopType.FLOW, 5), (LoopType.LEVEL, 4)], ids=["flow", "level"]
)
def test_same_irregular_loop_with_a_linear_valve_gets_no_oscillation_or_stiction(
    loop_type: LoopType, seed: int
) -> None:
    spec = _irregular_loop(loop_type, seed, sticky=False)
    diagnosis = _diagnose(spec, simulate_fleet([spec], WARM_UP + WINDOW)[0])
    categories = {f.category for f in _every_finding(diagnosis)}
    assert "stiction" not in categories
    assert "oscillation" not in categories


def _level_window_with_a_set_point_step(triangular_after_step: bool) -> LoopWindow:
    """Level loop cycling with a 180 s period; SP steps at 1200 s. Before the step the cycle
    is sinusoidal, after it (the longest stretch at constant SP) triangular or sinusoidal."""
    rng = np.random.default_rng(1)
    t = np.arange(3600.0)
    sp = np.where(t < 1200, 50.0, 52.0)
    sine = np.sin(2 * np.pi * t / 180.0 - np.pi / 2)
    after = signal.sawtooth(2 * np.pi * t / 180.0, 0.5) if triangular_after_step else sine
    pv = sp + np.where(t < 1200, 1.3 * sine, after) + 0.2 * rng.standard_normal(t.size)
    op = 50 + 3 * np.sin(2 * np.pi * t / 180.0 - 1) + 0.3 * rng.standard_normal(t.size)
    return LoopWindow(t=1.7e9 + t, pv=pv, sp=sp, op=op, mode=np.full(t.size, "AUT"), ts=1.0)


def test_undecided_window_is_judged_again_on_the_steady_set_point_stretch() -> None:
    window = _level_window_with_a_set_point_step(triangular_after_step=True)
    config = LoopConfig(loop_type="level", pv_lo=0.0, pv_hi=100.0)
    diagnosis = diagnose_loop(window, config)
    assert diagnosis.kpis.oscillating
    # the whole window mixes a sinusoidal and a triangular stretch: undecided ...
    whole = stiction_index(
        window.pv - window.sp, window.op, 1.0, "level", period_s=diagnosis.kpis.osc_period_s
    )
    assert whole.verdict == "undetermined"
    # ... the stretch at constant SP after the step decides
    assert diagnosis.stiction is not None
    assert diagnosis.stiction.verdict == "stiction"
    assert diagnosis.primary == "stiction"
    assert "constant SP" in diagnosis.notes["stiction"]


def test_sinusoidal_cycle_on_the_steady_stretch_is_not_stiction() -> None:
    window = _level_window_with_a_set_point_step(triangular_after_step=False)
    diagnosis = diagnose_loop(window, LoopConfig(loop_type="level", pv_lo=0.0, pv_hi=100.0))
    assert diagnosis.kpis.oscillating
    assert "stiction" not in {f.category for f in _every_finding(diagnosis)}


@pytest.mark.parametrize("profile", ["over_tuned", "external_oscillation"])
def test_linear_oscillations_are_not_stiction(
    fleet: dict[str, tuple[SimulatedLoopSpec, SimulatedSeries]], profile: str
) -> None:
    for loop_type in LoopType:
        spec, series = fleet[f"{profile}/{loop_type.value}"]
        diagnosis = _diagnose(spec, series)
        assert "stiction" not in {f.category for f in _every_finding(diagnosis)}
        assert diagnosis.stiction is not None
        assert diagnosis.stiction.verdict != "stiction"


def test_flatline_wins_over_the_saturation_it_causes(
    fleet: dict[str, tuple[SimulatedLoopSpec, SimulatedSeries]],
) -> None:
    spec, series = fleet["flatlined_sensor/flow"]
    diagnosis = _diagnose(spec, series)
    assert diagnosis.primary == "sensor_fault"
    assert diagnosis.findings[0].evidence["fault"] == "flatline"
    # the wound-up OP is not a second fault: not reported, not even as evidence
    assert [f.category for f in diagnosis.findings] == ["sensor_fault"]
    assert "saturation" not in {f.category for f in diagnosis.findings[0].explained}
    saturation = [f for f in diagnosis.dropped if f.category == "saturation"]
    assert all(f.evidence["rule_confidence"] == 0.3 for f in saturation)
    assert all(f.confidence < 0.5 for f in saturation)  # calibrated, still untrusted


def test_saturation_names_valve_sizing(
    fleet: dict[str, tuple[SimulatedLoopSpec, SimulatedSeries]],
) -> None:
    spec, series = fleet["saturated/temperature"]
    finding = _diagnose(spec, series).findings[0]
    assert finding.category == "saturation"
    assert finding.evidence["sat_high"] == pytest.approx(1.0, abs=0.01)
    assert "upper limit" in finding.recommendation
    assert "sizing" in finding.recommendation


def test_robust_noise_std_of_white_noise_with_a_step() -> None:
    rng = np.random.default_rng(11)
    x = 2.0 * rng.standard_normal(20_000)
    x[10_000:] += 50.0  # a step does not count as noise
    assert robust_noise_std(x) == pytest.approx(2.0, rel=0.03)


def test_spikes_are_counted_but_steps_are_not() -> None:
    rng = np.random.default_rng(12)
    x = 0.1 * rng.standard_normal(3000)
    x[1500:] += 5.0
    for position in (100, 700, 1200, 2100, 2800):
        x[position] += 3.0
    assert count_spikes(x, 0.1) == 5


def test_spiky_pv_is_a_sensor_fault() -> None:
    spec = SimulatedLoopSpec.for_profile("FIC-9", "healthy", "flow", seed=5)
    series = simulate_fleet([spec], WARM_UP + WINDOW)[0]
    pv = series.pv.copy()
    pv[WARM_UP + np.arange(100, 2400, 300)] += 20.0
    spiky = replace(series, pv=pv)
    diagnosis = _diagnose(spec, spiky)
    assert diagnosis.primary == "sensor_fault"
    assert diagnosis.findings[0].evidence["spikes"] == 8


def test_out_of_range_pv_is_a_sensor_fault() -> None:
    spec = SimulatedLoopSpec.for_profile("FIC-8", "healthy", "flow", seed=6)
    series = simulate_fleet([spec], WARM_UP + WINDOW)[0]
    config = LoopConfig(loop_type="flow", dead_time_s=1.0, pv_lo=0.0, pv_hi=50.5)
    diagnosis = diagnose_loop(_window(series), config)
    fault = next(f for f in diagnosis.findings if f.evidence.get("fault") == "out_of_range")
    assert fault.evidence["out_of_range_share"] > 0.01  # type: ignore[operator]
