"""Stiction votes: the PV–OP ellipse-orbit test, the vote rule, and the oscillation gate."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import signal

from clpm_shared.analytics import (
    LoopConfig,
    LoopWindow,
    StictionResult,
    detect_oscillation,
    stiction_index,
)
from clpm_shared.analytics.diagnosis import diagnose_loop
from clpm_shared.analytics.stiction import (
    ELLIPSE_AGAINST,
    ELLIPSE_FOR,
    VALVE_CYCLE_MIN_PERIODS,
    combine_votes,
    ellipse_orbit_score,
    method_votes,
    valve_cycle,
)
from clpm_shared.simulation import LoopProfile, LoopType, SimulatedLoopSpec, simulate_fleet

WARM_UP = 600
WINDOW = 3600
SEEDS = (2, 3)
PROFILES = (
    LoopProfile.STICKY_VALVE,
    LoopProfile.OVER_TUNED,
    LoopProfile.EXTERNAL_OSCILLATION,
    LoopProfile.HEALTHY,
    LoopProfile.NOISY_SENSOR,
)
Signals = dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray, StictionResult]]


@pytest.fixture(scope="module")
def loops() -> Signals:
    """Control error, OP and the diagnosis' stiction result of each profile x loop type x
    seed, one hour at 1 s (the diagnosis passes the KPI period and re-judges an undecided
    window on its steady-SP stretch)."""
    specs = [
        SimulatedLoopSpec.for_profile(f"{p.value}/{t.value}/{seed}", p, t, seed=seed)
        for seed in SEEDS
        for p in PROFILES
        for t in LoopType
    ]
    keep = slice(WARM_UP, None)
    out: Signals = {}
    for spec, series in zip(specs, simulate_fleet(specs, WARM_UP + WINDOW), strict=True):
        window = LoopWindow(
            t=1.7e9 + series.t[keep],
            pv=series.pv[keep],
            sp=series.sp[keep],
            op=series.op[keep],
            mode=series.mode[keep],
            ts=spec.ts,
        )
        config = LoopConfig(loop_type=spec.loop_type.value, dead_time_s=spec.dead_time_s)
        judged = diagnose_loop(window, config, loop_id=spec.loop_id).stiction
        assert judged is not None
        key = (spec.profile.value, spec.loop_type.value, spec.seed)
        out[key] = (window.pv - window.sp, window.op, judged)
    return out


def test_ellipse_orbit_of_a_steady_cycle_and_of_gaussian_ringing() -> None:
    """A closed orbit has a constant radius (E = 1); a resonance excited by white noise has a
    Rayleigh radius, coefficient of variation sqrt(4/pi - 1) = 0.523 (E = 0)."""
    t = np.arange(6000.0)
    omega = 2 * np.pi / 100.0
    score, variation = ellipse_orbit_score(
        50 + 3 * np.cos(omega * t), 20 + np.cos(omega * t - 1.0), 1.0, 100.0
    )
    assert score is not None
    assert variation is not None
    assert variation < 0.02
    assert score > 0.95
    rng = np.random.default_rng(11)
    b, a = signal.iirpeak(1.0 / 100.0, 3.0, fs=1.0)
    op = signal.lfilter(b, a, rng.standard_normal(60_000))
    pv = np.roll(op, 20) + 0.01 * rng.standard_normal(op.size)  # the same ringing, lagging
    score, variation = ellipse_orbit_score(op, pv, 1.0, 100.0)
    assert variation == pytest.approx(math.sqrt(4 / math.pi - 1), abs=0.08)
    assert score is not None
    assert score < ELLIPSE_AGAINST


def test_ellipse_orbit_needs_six_periods() -> None:
    t = np.arange(500.0)
    assert ellipse_orbit_score(np.sin(t / 16), np.cos(t / 16), 1.0, 100.0) == (None, None)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("loop_type", list(LoopType), ids=str)
def test_sticky_valve_orbit_votes_for_stiction(
    loops: Signals, loop_type: LoopType, seed: int
) -> None:
    _, _, result = loops[("sticky_valve", loop_type.value, seed)]
    assert result.verdict == "stiction"
    assert result.method_votes["curve_fit"] == 1
    # the combined index averages all three scores
    scores = result.method_scores
    mean = (scores["curve_fit"] + scores["non_gaussianity"] + scores["ellipse"]) / 3
    assert result.index == pytest.approx(mean, abs=1e-3)


def test_sticky_valve_orbit_votes_for_stiction_on_nearly_every_sticky_loop(loops: Signals) -> None:
    """The orbit of a steady stick-slip cycle is a steady ellipse. One of the eight loops
    (level, seed 3) is judged on its whole window, set-point steps included, since the KPI
    filter bank finds its cycle there: the steps break up its orbit (E = 0.09, vote against),
    the other two votes still carry the stiction verdict."""
    results = [loops[("sticky_valve", t.value, seed)][2] for t in LoopType for seed in SEEDS]
    votes_for = [r for r in results if r.method_votes["ellipse"] == 1]
    assert len(votes_for) >= len(results) - 1
    assert all(r.method_scores["ellipse"] >= ELLIPSE_FOR for r in votes_for)
    assert all(r.verdict == "stiction" for r in results)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("loop_type", list(LoopType), ids=str)
def test_over_tuned_linear_valve_orbit_votes_against_stiction(
    loops: Signals, loop_type: LoopType, seed: int
) -> None:
    _, _, result = loops[("over_tuned", loop_type.value, seed)]
    assert result.verdict != "stiction"
    # Gaussian ringing: the orbit never votes for stiction, and nearly always against
    assert result.method_scores["ellipse"] < ELLIPSE_FOR
    assert result.method_scores["ellipse"] < 0.15
    if result.method_votes:  # flow rings faster than curve fitting can judge: no votes
        assert result.method_votes["ellipse"] <= 0
        assert result.verdict in {"no_stiction", "undetermined"}


def test_over_tuned_orbits_vote_against_stiction(loops: Signals) -> None:
    votes = [
        judged.method_votes["ellipse"]
        for (profile, _, _), (_, _, judged) in loops.items()
        if profile == "over_tuned" and judged.method_votes
    ]
    assert len(votes) >= 6
    assert sum(vote == -1 for vote in votes) >= len(votes) - 1


def test_healthy_and_noisy_loops_are_never_judged_and_mostly_have_no_steady_orbit(
    loops: Signals,
) -> None:
    """Healthy and noisy loops do not oscillate, so stiction is not judged (the gate of
    KPI_SPEC). Judged anyway at a cycle of 120 s they do not have, their PV–OP plot is
    mostly band-passed noise (E below the vote-against threshold); a set-point step can
    make one look like a breathing orbit, which is why the ellipse never opens the gate."""
    scores = []
    for (profile, loop_type, _), (error, op, judged) in loops.items():
        if profile not in {"healthy", "noisy_sensor"}:
            continue
        assert judged.verdict != "stiction"
        assert stiction_index(error, op, 1.0, loop_type).verdict != "stiction"
        score, _ = ellipse_orbit_score(op, error, 1.0, 120.0)
        assert score is not None
        scores.append(score)
    assert len(scores) == 16
    assert float(np.median(scores)) < ELLIPSE_AGAINST
    assert sum(score >= ELLIPSE_FOR for score in scores) <= 3


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("loop_type", [LoopType.FLOW, LoopType.PRESSURE, LoopType.LEVEL], ids=str)
def test_external_sinusoid_is_a_steady_orbit_that_the_shape_vote_rejects(
    loops: Signals, loop_type: LoopType, seed: int
) -> None:
    """An external sinusoid drives a limit cycle as steady as a sticky valve's: the ellipse
    votes for it, and only the shape test tells it apart - which is why the shape vote is
    required for a stiction verdict."""
    _, _, result = loops[("external_oscillation", loop_type.value, seed)]
    assert result.method_votes["ellipse"] == 1
    assert result.method_votes["curve_fit"] <= 0
    assert result.verdict != "stiction"


def _rule(shape: int, gaussian: int, ellipse: int) -> str:
    """The documented rule, spelled out."""
    if shape == 1 and gaussian + ellipse >= 0:
        return "stiction"
    if shape == -1 or gaussian + ellipse < 0:
        return "no_stiction"
    return "undetermined"


@pytest.mark.parametrize(
    ("shape", "gaussian", "ellipse"),
    list(itertools.product((1, 0, -1), (1, -1), (1, 0, -1))),
)
def test_vote_table(shape: int, gaussian: int, ellipse: int) -> None:
    votes = {"curve_fit": shape, "non_gaussianity": gaussian, "ellipse": ellipse}
    assert combine_votes(votes) == _rule(shape, gaussian, ellipse)


def test_votes_that_matter() -> None:
    # the two limit-cycle tests cannot call an external sinusoid stiction on their own ...
    assert combine_votes({"curve_fit": -1, "non_gaussianity": 1, "ellipse": 1}) == "no_stiction"
    assert combine_votes({"curve_fit": 0, "non_gaussianity": 1, "ellipse": 1}) == "undetermined"
    # ... and a triangular cycle whose kurtosis looks Gaussian needs the steady orbit
    assert combine_votes({"curve_fit": 1, "non_gaussianity": -1, "ellipse": 1}) == "stiction"
    assert combine_votes({"curve_fit": 1, "non_gaussianity": -1, "ellipse": 0}) == "no_stiction"
    # a steady-orbit vote against does not overturn shape and non-Gaussianity
    assert combine_votes({"curve_fit": 1, "non_gaussianity": 1, "ellipse": -1}) == "stiction"


def test_method_votes_thresholds() -> None:
    assert method_votes(0.61, 0.16, 0.3) == {"curve_fit": 1, "non_gaussianity": 1, "ellipse": 1}
    assert method_votes(0.39, 0.15, 0.09) == {
        "curve_fit": -1,
        "non_gaussianity": -1,
        "ellipse": -1,
    }
    assert method_votes(0.5, 0.5, None) == {"curve_fit": 0, "non_gaussianity": 1, "ellipse": 0}
    assert method_votes(0.5, 0.5, 0.2)["ellipse"] == 0


@pytest.mark.parametrize("seed", range(6))
def test_valve_cycle_gate_only_opens_on_a_regular_cycle_of_five_periods(seed: int) -> None:
    """KPI_SPEC: stiction is judged only on an oscillating loop. The valve-cycle gate is the
    only way in besides the KPI oscillation test: whenever it opens, the band-passed valve
    signal has Thornhill's regularity r > 1 and at least five periods in the window; and a
    loop that neither test calls oscillating never gets a stiction verdict."""
    rng = np.random.default_rng(500 + seed)
    n = 1800 + 600 * seed
    kinds = {
        "white": rng.standard_normal(n),
        "walk": np.cumsum(rng.standard_normal(n)),
        "ar2": signal.lfilter([1.0], [1.0, -1.6, 0.68], rng.standard_normal(n)),
        "held": np.repeat(rng.standard_normal(n // 20 + 1), 20)[:n],
        "ramp_and_steps": np.linspace(0, 10, n) + 5.0 * (np.arange(n) > n // 3),
    }
    for name, op in kinds.items():
        cycle = valve_cycle(op, 1.0)
        if cycle.oscillating:
            assert cycle.regularity is not None
            assert cycle.regularity > 1.0, name
            assert cycle.period_s is not None
            assert cycle.period_s * VALVE_CYCLE_MIN_PERIODS <= n, name
        pv = 0.4 * op + 0.3 * rng.standard_normal(n)
        for loop_type in ("flow", "level"):
            result = stiction_index(pv, op, 1.0, loop_type)
            oscillating = (
                detect_oscillation(pv, 1.0).oscillating
                or detect_oscillation(op, 1.0).oscillating
                or valve_cycle(pv if loop_type == "level" else op, 1.0).oscillating
            )
            if not oscillating:
                assert result.verdict == "no_oscillation", (name, loop_type)
            assert result.verdict != "stiction", (name, loop_type)


def test_irregular_band_passed_cycle_is_refused_with_its_regularity() -> None:
    """Band-passed white noise keeps r <= 1 at 3,600 samples: the gate names the reason."""
    rng = np.random.default_rng(9)
    refused = [valve_cycle(rng.standard_normal(3600), 1.0) for _ in range(10)]
    assert not any(cycle.oscillating for cycle in refused)
    assert any(cycle.reason and "r = " in cycle.reason for cycle in refused)


def test_stiction_finding_shows_each_method_score_and_vote() -> None:
    spec = SimulatedLoopSpec.for_profile("PIC-7", "sticky_valve", "pressure", seed=2)
    series = simulate_fleet([spec], WARM_UP + WINDOW)[0]
    keep = slice(WARM_UP, None)
    window = LoopWindow(
        t=1.7e9 + series.t[keep],
        pv=series.pv[keep],
        sp=series.sp[keep],
        op=series.op[keep],
        mode=series.mode[keep],
        ts=spec.ts,
    )
    config = LoopConfig(loop_type="pressure", dead_time_s=spec.dead_time_s)
    diagnosis = diagnose_loop(window, config, loop_id=spec.loop_id)
    finding = next(f for f in diagnosis.findings if f.category == "stiction")
    judged = diagnosis.stiction
    assert judged is not None
    evidence = finding.evidence
    assert evidence["curve_fit_si"] == pytest.approx(judged.method_scores["curve_fit"], abs=1e-3)
    assert evidence["non_gaussianity"] == pytest.approx(
        judged.method_scores["non_gaussianity"], abs=1e-3
    )
    assert evidence["ellipse_orbit"] == pytest.approx(judged.method_scores["ellipse"], abs=1e-3)
    assert evidence["orbit_variation"] is not None
    assert {key: evidence[f"vote_{key}"] for key in judged.method_votes} == dict(
        judged.method_votes
    )
    assert evidence["vote_curve_fit"] == 1
