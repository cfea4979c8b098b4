"""Closed-loop simulator: each behaviour profile shows the behaviour it is named after."""

from dataclasses import replace

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from clpm_shared.simulation import (
    FleetSimulator,
    LoopProfile,
    LoopSimulator,
    LoopType,
    SimulatedLoopSpec,
    simulate,
    simulate_fleet,
    ultimate_gain,
)


def acf_peak(x: np.ndarray) -> tuple[int, float]:
    """Lag and value of the first autocorrelation peak after the first zero crossing."""
    x = x - x.mean()
    n = x.size
    spectrum = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
    acf /= acf[0]
    zero = int(np.argmax(acf < 0))
    lag = zero + int(np.argmax(acf[zero : 4 * zero + 50]))
    return lag, float(acf[lag])


def quiet(spec: SimulatedLoopSpec) -> SimulatedLoopSpec:
    """The same loop without SP changes (oscillation checks look at regulation only)."""
    return replace(spec, sp_change_interval_s=0.0)


def deterministic(spec: SimulatedLoopSpec) -> SimulatedLoopSpec:
    return replace(spec, noise_std=0.0, disturbance_std=0.0, sp_change_interval_s=0.0)


def test_healthy_loop_tracks_setpoint_step() -> None:
    spec = deterministic(SimulatedLoopSpec.for_profile("FIC1", "healthy", "flow"))
    spec = replace(spec, base_sp=spec.base_pv + 5.0)
    run = simulate(spec, 300)
    assert np.all(run.sp == spec.base_sp)
    assert abs(run.pv[-50:] - spec.base_sp).max() < 0.05
    assert run.op[-1] == pytest.approx(spec.base_op + 5.0 / spec.process_gain, abs=0.05)


def test_healthy_loop_regulates_around_setpoint_with_noise_and_load() -> None:
    spec = SimulatedLoopSpec.for_profile("TIC1", "healthy", "temperature", seed=5)
    run = simulate(spec, 5000)
    error = (run.pv - run.sp)[500:]
    assert abs(error.mean()) < 0.1
    assert error.std() < 3 * spec.noise_std + 0.3
    assert np.any(np.diff(run.sp) != 0)  # occasional SP changes happen


@pytest.mark.parametrize("loop_type", list(LoopType))
def test_sticky_valve_loop_oscillates_in_a_limit_cycle(loop_type: LoopType) -> None:
    sticky = quiet(SimulatedLoopSpec.for_profile("X", "sticky_valve", loop_type, seed=3))
    run = simulate(sticky, 5000)
    period, strength = acf_peak((run.pv - run.sp)[1000:])
    assert strength > 0.4
    # the same limit cycle in both halves
    first, _ = acf_peak(run.op[1000:3000])
    second, _ = acf_peak(run.op[3000:])
    assert abs(first - second) < 0.2 * period
    # the valve really sticks: it rests while OP moves
    assert np.mean(np.diff(run.valve[1000:]) == 0) > 0.5

    healthy = quiet(replace(sticky, profile=LoopProfile.HEALTHY, valve_s=0.0, valve_j=0.0))
    _, healthy_strength = acf_peak((simulate(healthy, 5000).pv - sticky.base_sp)[1000:])
    assert healthy_strength < 0.25


@pytest.mark.parametrize("loop_type", list(LoopType))
def test_over_tuned_loop_oscillates_without_stiction(loop_type: LoopType) -> None:
    spec = quiet(SimulatedLoopSpec.for_profile("X", "over_tuned", loop_type, seed=3))
    assert spec.valve_s == spec.valve_j == 0.0
    run = simulate(spec, 4000)
    assert_allclose(run.valve, np.clip(run.op, 0, 100))
    _, strength = acf_peak(run.op[500:])
    assert strength > 0.6


def test_ultimate_gain_separates_decaying_from_growing_oscillation() -> None:
    base = deterministic(SimulatedLoopSpec.for_profile("TIC", "healthy", "temperature"))
    ku = ultimate_gain(base)

    def swing(kc: float) -> tuple[float, float]:
        run = simulate(replace(base, kc=kc, base_sp=base.base_pv + 0.01), 1500)
        e = run.pv - run.sp
        assert run.op.max() < 100.0  # linear all the way: no saturation limits the swing
        return float(np.ptp(e[300:500])), float(np.ptp(e[1300:]))

    early, late = swing(0.95 * ku)
    assert late < 0.5 * early
    early, late = swing(1.05 * ku)
    assert late > 2.0 * early


def test_manual_mode_holds_op() -> None:
    spec = replace(SimulatedLoopSpec.for_profile("PIC1", "healthy", "pressure", seed=1), mode="MAN")
    run = simulate(spec, 2000)
    assert np.all(run.mode == "MAN")
    assert np.all(run.op == spec.base_op)
    assert np.std(run.pv) > 0  # the process still moves; nobody corrects it


def test_manual_periods_alternate_and_op_is_held_while_in_manual() -> None:
    spec = SimulatedLoopSpec.for_profile("FIC2", "manual_periods", "flow", seed=2)
    run = simulate(spec, 14_400)
    manual = run.mode == "MAN"
    assert 0.1 < manual.mean() < 0.7
    assert set(run.mode) == {"AUT", "MAN"}
    held = manual[1:] & manual[:-1]
    assert np.all(np.diff(run.op)[held] == 0)
    closed = ~manual[1:] & ~manual[:-1]
    assert np.mean(np.diff(run.op)[closed] != 0) > 0.9


def test_saturated_profile_pins_op_at_the_upper_limit() -> None:
    spec = SimulatedLoopSpec.for_profile("TIC2", "saturated", "temperature", seed=4)
    run = simulate(spec, 3000)
    assert np.mean(run.op[600:] == spec.op_high) > 0.95
    assert np.mean(run.pv[600:] < run.sp[600:]) > 0.95


def test_flatlined_sensor_gives_constant_pv() -> None:
    spec = replace(
        SimulatedLoopSpec.for_profile("LIC1", "flatlined_sensor", "level", seed=6),
        flatline_after_s=300.0,
    )
    run = simulate(spec, 1200)
    assert np.ptp(run.pv[300:]) == 0.0
    assert np.ptp(run.pv[:300]) > 0.0


def test_noisy_sensor_is_much_noisier_than_healthy() -> None:
    healthy = quiet(SimulatedLoopSpec.for_profile("F", "healthy", "flow", seed=8))
    noisy = quiet(SimulatedLoopSpec.for_profile("F", "noisy_sensor", "flow", seed=8))
    jitter_healthy = np.std(np.diff(simulate(healthy, 3000).pv))
    jitter_noisy = np.std(np.diff(simulate(noisy, 3000).pv))
    assert jitter_noisy > 8 * jitter_healthy


def test_external_oscillation_shows_at_its_period_with_a_linear_valve() -> None:
    spec = quiet(SimulatedLoopSpec.for_profile("P", "external_oscillation", "pressure", seed=9))
    run = simulate(spec, 4000)
    period, strength = acf_peak(run.pv[500:])
    assert period == pytest.approx(spec.osc_period_s, rel=0.1)
    assert strength > 0.5
    assert spec.valve_s == 0.0


def test_sluggish_loop_settles_much_slower_than_healthy() -> None:
    def rise_time(profile: str) -> int:
        spec = deterministic(SimulatedLoopSpec.for_profile("T", profile, "temperature"))
        run = simulate(replace(spec, base_sp=spec.base_pv + 5.0), 3000)
        return int(np.argmax(run.pv - spec.base_pv >= 4.5))

    healthy, sluggish = rise_time("healthy"), rise_time("sluggish")
    assert healthy > 0
    assert sluggish > 3 * healthy


def test_same_seed_same_samples_other_seed_other_samples() -> None:
    spec = SimulatedLoopSpec.for_profile("TIC208030", "sticky_valve", seed=11)
    first, again = simulate(spec, 500), simulate(spec, 500)
    assert_array_equal(first.pv, again.pv)
    assert_array_equal(first.mode, again.mode)
    other = simulate(replace(spec, seed=12), 500)
    assert not np.array_equal(first.pv, other.pv)


def test_loop_simulator_steps_through_the_same_samples_as_simulate() -> None:
    spec = SimulatedLoopSpec.for_profile("LIC2", "manual_periods", "level", seed=3)
    batch = simulate(spec, 300)
    stepper = LoopSimulator(spec)
    samples = [stepper.step() for _ in range(300)]
    assert_allclose([s.pv for s in samples], batch.pv)
    assert_allclose([s.op for s in samples], batch.op)
    assert [s.mode for s in samples] == list(batch.mode)
    assert samples[10].t_s == 10.0


def test_fleet_advances_each_loop_as_if_it_were_alone() -> None:
    specs = [
        replace(deterministic(SimulatedLoopSpec.for_profile(f"L{i}", p, t)), base_sp=sp)
        for i, (p, t, sp) in enumerate(
            [
                ("sticky_valve", "flow", 53.0),
                ("healthy", "level", 55.0),
                ("saturated", "temperature", 400.0),
                ("sluggish", "pressure", 8.3),
            ]
        )
    ]
    together = simulate_fleet(specs, 600)
    for spec, series in zip(specs, together, strict=True):
        alone = simulate(spec, 600)
        assert_allclose(series.pv, alone.pv, atol=1e-12)
        assert_allclose(series.op, alone.op, atol=1e-12)


def test_fleet_of_ten_thousand_loops_steps_in_one_vector_operation() -> None:
    profiles = list(LoopProfile)
    types = list(LoopType)
    specs = [
        SimulatedLoopSpec.for_profile(f"L{i}", profiles[i % 9], types[i % 4], seed=i)
        for i in range(10_000)
    ]
    fleet = FleetSimulator(specs)
    for _ in range(5):
        sample = fleet.step()
    assert sample.pv.shape == (10_000,)
    assert np.all(np.isfinite(sample.pv))
    assert fleet.step_count == 5


def test_invalid_spec_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="ts"):
        SimulatedLoopSpec("X", ts=0.0)
    with pytest.raises(ValueError, match="mode"):
        SimulatedLoopSpec("X", mode="AUTO")
    with pytest.raises(ValueError, match="share ts"):
        FleetSimulator([SimulatedLoopSpec("A"), SimulatedLoopSpec("B", ts=2.0)])


def test_a_driven_loop_gets_the_upstream_oscillation_delayed_by_its_coupling() -> None:
    upstream = SimulatedLoopSpec.for_profile("PIC-UP", "external_oscillation", "pressure", seed=1)
    quiet = replace(upstream, noise_std=0.0, disturbance_std=0.0, sp_step=0.0)
    driven = SimulatedLoopSpec(
        "FI-DOWN", kc=0.0, noise_std=0.0, disturbance_std=0.0, time_constant_s=1.0, dead_time_s=0
    ).coupled_to("PIC-UP", 2.0, delay_s=20.0)
    up, down = simulate_fleet([quiet, driven], 4000)
    deviation = up.pv - up.sp
    # an open loop (kc = 0) with a fast process: PV follows 2 x the upstream deviation,
    # 20 s later (plus the process sample and its lag)
    lags = np.arange(0, 60)
    tail = slice(1000, 3900)
    errors = [
        float(
            np.mean(
                (
                    down.pv[tail]
                    - driven.base_pv
                    - 2.0 * driven.process_gain * np.roll(deviation, lag)[tail]
                )
                ** 2
            )
        )
        for lag in lags
    ]
    assert 20 <= int(lags[int(np.argmin(errors))]) <= 23
    assert np.std(down.pv[tail]) > 0.5 * 2.0 * driven.process_gain * np.std(deviation[tail])


def test_coupling_to_an_unknown_or_the_same_loop_is_refused() -> None:
    spec = SimulatedLoopSpec.for_profile("A", "healthy")
    with pytest.raises(ValueError, match="driven_by"):
        spec.coupled_to("A", 1.0)
    with pytest.raises(ValueError, match="not in the fleet"):
        simulate_fleet([spec.coupled_to("B", 1.0)], 10)


def test_a_drifting_external_oscillation_keeps_its_period_but_loses_its_phase() -> None:
    base = deterministic(SimulatedLoopSpec.for_profile("P", "external_oscillation", "pressure"))
    steady, drifting = simulate_fleet([base, replace(base, loop_id="D", osc_drift=0.025)], 7200)
    # without drift the loop gives exactly the samples it always did
    assert_array_equal(steady.pv, simulate(base, 7200).pv)
    lag, _ = acf_peak(drifting.pv[600:])
    assert lag == pytest.approx(base.osc_period_s, rel=0.1)

    def phases(pv: np.ndarray) -> np.ndarray:
        """Phase of the nominal-period component in each 16-minute block (complex demodulation)."""
        t = np.arange(pv.size)
        carrier = np.exp(-2j * np.pi * t / base.osc_period_s)
        blocks = (pv - pv.mean()) * carrier
        return np.angle([blocks[k : k + 960].sum() for k in range(600, 7200 - 960, 960)])

    assert np.ptp(np.unwrap(phases(steady.pv))) < 0.2
    assert np.ptp(np.unwrap(phases(drifting.pv))) > 1.0
