"""Simulated loop definitions: behaviour profiles, loop types and per-profile parameters."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache

import numpy as np
import numpy.typing as npt


class LoopProfile(StrEnum):
    """Behaviours the analytics must recognise in a simulated loop."""

    HEALTHY = "healthy"
    STICKY_VALVE = "sticky_valve"  # stiction S/J -> limit cycle, square-ish PV, triangular OP
    OVER_TUNED = "over_tuned"  # linear valve, aggressive gain -> sustained oscillation
    SLUGGISH = "sluggish"  # gain far too low, integral too slow -> long settling
    SATURATED = "saturated"  # a load the valve cannot compensate -> OP pinned at a limit
    MANUAL_PERIODS = "manual_periods"  # operator switches to MAN for a while, OP held
    FLATLINED_SENSOR = "flatlined_sensor"  # transmitter freezes: PV constant
    NOISY_SENSOR = "noisy_sensor"  # large measurement noise
    EXTERNAL_OSCILLATION = "external_oscillation"  # sinusoidal disturbance from elsewhere


class LoopType(StrEnum):
    """Kind of loop; level loops are integrating processes, the others self-regulating."""

    FLOW = "flow"
    PRESSURE = "pressure"
    TEMPERATURE = "temperature"
    LEVEL = "level"


MODES: tuple[str, ...] = ("AUT", "MAN", "CAS")
"""Controller modes as written to the ``Mode`` tag; simulators use their index as mode code."""

MODE_AUT, MODE_MAN, MODE_CAS = 0, 1, 2


@dataclass(frozen=True)
class _TypeDefaults:
    gain: float  # PV units per % OP (self-regulating) or PV units/s per % OP (integrating)
    time_constant_s: float  # 0 for integrating
    dead_time_s: float
    closed_loop_s: float  # λ of the healthy tuning
    pv_filter_s: float
    base_pv: float
    base_op: float
    noise_std: float  # PV units
    load_std: float  # % OP per sample, innovation of the AR(1) input load
    sp_step: float  # PV units
    valve_s: float  # stiction of the sticky profile, % of span
    valve_j: float


_TYPE_DEFAULTS: dict[LoopType, _TypeDefaults] = {
    LoopType.FLOW: _TypeDefaults(1.2, 6.0, 1.0, 3.0, 2.0, 50.0, 45.0, 0.25, 0.05, 4.0, 4.0, 1.5),
    LoopType.PRESSURE: _TypeDefaults(
        0.15, 20.0, 2.0, 10.0, 5.0, 8.0, 50.0, 0.02, 0.05, 0.5, 5.0, 3.0
    ),
    LoopType.TEMPERATURE: _TypeDefaults(
        1.5, 60.0, 5.0, 15.0, 5.0, 400.0, 60.0, 0.15, 0.03, 3.0, 6.0, 3.0
    ),
    LoopType.LEVEL: _TypeDefaults(0.01, 0.0, 3.0, 20.0, 5.0, 50.0, 50.0, 0.1, 0.02, 5.0, 6.0, 4.0),
}


@dataclass(frozen=True)
class SimulatedLoopSpec:
    """Everything that defines one simulated control loop.

    Process (deviation from the operating point ``base_pv`` at ``base_op``): first order plus
    dead time, ``G(s) = K e^{-θ s} / (τ s + 1)``, or integrating, ``G(s) = K e^{-θ s} / s``
    (``integrating=True``, level loops), discretised with a zero-order hold at ``ts``.
    Controller: PI in velocity form, ``ΔOP = Kc[(e_k - e_{k-1}) + ts/Ti e_k]``, clipped to
    ``[op_low, op_high]`` (which also stops integral wind-up), acting on the measurement
    through a first-order PV filter of time constant ``pv_filter_s`` (0 = none) as a DCS
    input block does; the reported PV is the unfiltered measurement. Valve: Choudhury et al. 2005
    stiction model with ``valve_s``/``valve_j`` (% of span; 0/0 = linear valve).

    Disturbances: an AR(1) load on the process input, in % OP, ``d_k = φ d_{k-1} + σ w_k``
    (``φ`` = ``disturbance_pole``, 1.0 = random walk), a constant input load ``input_load_pct``
    (% OP the controller must compensate), a sinusoid ``osc_amplitude`` with ``osc_period_s`` on
    the measurement (whose phase wanders as a random walk of ``osc_drift`` rad/√s when > 0:
    the period jitter of a real disturbance, which keeps independent disturbances of one
    nominal period from staying in phase), white measurement noise ``noise_std``; SP steps of
    ``±sp_step`` on average every ``sp_change_interval_s`` (0 = never). Mode: ``mode`` at the
    start; with ``auto_mean_s`` and ``manual_mean_s`` > 0 the operator switches AUT/CAS ↔ MAN
    (exponential durations). A flatlined transmitter freezes PV from ``flatline_after_s`` on.
    The process cannot leave its physical range ``[pv_low, pv_high]`` (a tank is full or
    empty; a flow is not negative).

    Coupling: a loop ``driven_by`` another loop of the same fleet (an upstream flow, a shared
    utility header) gets a load on its process input, in % OP, from the upstream loop's upset
    ``u = PV_u - SP_u`` (without measurement noise) through a dead time and a first-order lag,
    ``G_c(s) = K_c e^{-θ_c s} / (τ_c s + 1)`` (``coupling_gain``, ``coupling_delay_s``,
    ``coupling_lag_s``): what the upstream loop fails to hold, an oscillation above all,
    reaches it later, filtered, as in a plant (planned set-point moves upstream are left out:
    they would need a coordinated move downstream, which the simulator does not model).
    """

    loop_id: str
    profile: LoopProfile = LoopProfile.HEALTHY
    loop_type: LoopType = LoopType.TEMPERATURE
    ts: float = 1.0
    process_gain: float = 2.0
    time_constant_s: float = 90.0
    dead_time_s: float = 8.0
    integrating: bool = False
    kc: float = 0.3
    ti_s: float = 90.0
    pv_filter_s: float = 0.0
    valve_s: float = 0.0
    valve_j: float = 0.0
    op_low: float = 0.0
    op_high: float = 100.0
    noise_std: float = 0.1
    disturbance_std: float = 0.03
    disturbance_pole: float = 0.995
    input_load_pct: float = 0.0
    osc_amplitude: float = 0.0
    osc_period_s: float = 0.0
    osc_drift: float = 0.0
    sp_step: float = 0.0
    sp_change_interval_s: float = 0.0
    mode: str = "AUT"
    auto_mean_s: float = 0.0
    manual_mean_s: float = 0.0
    flatline_after_s: float | None = None
    pv_low: float = -math.inf
    pv_high: float = math.inf
    base_pv: float = 400.0
    base_sp: float = 400.0
    base_op: float = 60.0
    seed: int = 0
    driven_by: str | None = None
    coupling_gain: float = 0.0
    coupling_delay_s: float = 0.0
    coupling_lag_s: float = 0.0

    def __post_init__(self) -> None:
        positive = {"ts": self.ts, "ti_s": self.ti_s}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        non_negative = {
            "time_constant_s": self.time_constant_s,
            "dead_time_s": self.dead_time_s,
            "pv_filter_s": self.pv_filter_s,
            "valve_s": self.valve_s,
            "valve_j": self.valve_j,
            "noise_std": self.noise_std,
            "disturbance_std": self.disturbance_std,
            "osc_amplitude": self.osc_amplitude,
            "osc_period_s": self.osc_period_s,
            "osc_drift": self.osc_drift,
            "sp_step": self.sp_step,
            "sp_change_interval_s": self.sp_change_interval_s,
            "auto_mean_s": self.auto_mean_s,
            "manual_mean_s": self.manual_mean_s,
            "coupling_delay_s": self.coupling_delay_s,
            "coupling_lag_s": self.coupling_lag_s,
        }
        for name, value in non_negative.items():
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if not self.integrating and self.time_constant_s <= 0:
            raise ValueError("time_constant_s must be > 0 for a self-regulating process")
        if not self.process_gain > 0:
            raise ValueError(
                "process_gain must be > 0 (reverse-acting loops: OP up raises PV), "
                f"got {self.process_gain!r}"
            )
        if not self.pv_low < self.base_pv < self.pv_high:
            raise ValueError("base_pv must lie strictly between pv_low and pv_high")
        if not 0 <= self.disturbance_pole <= 1:
            raise ValueError("disturbance_pole must be within [0, 1]")
        if not 0 <= self.op_low < self.op_high <= 100:
            raise ValueError("op_low/op_high must satisfy 0 <= op_low < op_high <= 100")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.osc_amplitude > 0 and self.osc_period_s <= 0:
            raise ValueError("osc_period_s must be > 0 when osc_amplitude > 0")
        if self.driven_by == self.loop_id:
            raise ValueError("driven_by: a loop cannot drive itself")
        if not math.isfinite(self.coupling_gain):
            raise ValueError(f"coupling_gain must be finite, got {self.coupling_gain!r}")

    @property
    def dead_time_samples(self) -> int:
        return round(self.dead_time_s / self.ts)

    def coupled_to(
        self, upstream: str, gain: float, delay_s: float = 0.0, lag_s: float = 0.0
    ) -> SimulatedLoopSpec:
        """This loop with a load from ``upstream``'s PV deviation (see the class docstring)."""
        return replace(
            self,
            driven_by=upstream,
            coupling_gain=gain,
            coupling_delay_s=delay_s,
            coupling_lag_s=lag_s,
        )

    @classmethod
    def for_profile(
        cls,
        loop_id: str,
        profile: LoopProfile | str,
        loop_type: LoopType | str = LoopType.TEMPERATURE,
        *,
        seed: int = 0,
        ts: float = 1.0,
        base_pv: float | None = None,
        base_sp: float | None = None,
        base_op: float | None = None,
    ) -> SimulatedLoopSpec:
        """A loop of ``loop_type`` that shows ``profile``, with plant-like parameters.

        Healthy tuning follows the SIMC rules (Skogestad 2003) with a closed-loop time
        constant ``τc`` per loop type (never below ``θ``): self-regulating
        ``Kc = τ / (K (τc + θ))``, ``Ti = min(τ, 4 (τc + θ))``; integrating
        ``Kc = 1 / (K (τc + θ))``, ``Ti = 4 (τc + θ)``. The over-tuned loop gets 90 % of the
        ultimate gain of its own discrete loop (gain margin 1.1), so it rings at its
        ultimate period without any valve non-linearity.
        """
        profile = LoopProfile(profile)
        loop_type = LoopType(loop_type)
        d = _TYPE_DEFAULTS[loop_type]
        integrating = loop_type is LoopType.LEVEL
        pv0 = d.base_pv if base_pv is None else base_pv
        sp0 = pv0 if base_sp is None else base_sp
        op0 = d.base_op if base_op is None else base_op
        tau_c = max(d.closed_loop_s, d.dead_time_s, ts)
        if integrating:
            kc = 1.0 / (d.gain * (tau_c + d.dead_time_s))
            ti = 4.0 * (tau_c + d.dead_time_s)
        else:
            kc = d.time_constant_s / (d.gain * (tau_c + d.dead_time_s))
            ti = min(d.time_constant_s, 4.0 * (tau_c + d.dead_time_s))
        spec = cls(
            loop_id=loop_id,
            profile=profile,
            loop_type=loop_type,
            ts=ts,
            process_gain=d.gain,
            time_constant_s=d.time_constant_s,
            dead_time_s=d.dead_time_s,
            integrating=integrating,
            kc=kc,
            ti_s=ti,
            pv_filter_s=d.pv_filter_s,
            noise_std=d.noise_std,
            disturbance_std=d.load_std,
            disturbance_pole=0.995,
            sp_step=d.sp_step,
            sp_change_interval_s=1800.0,
            pv_low=0.0 if loop_type in (LoopType.FLOW, LoopType.LEVEL) else -math.inf,
            pv_high=100.0 if integrating else math.inf,
            base_pv=pv0,
            base_sp=sp0,
            base_op=op0,
            seed=seed,
        )
        return _apply_profile(spec, d)


def _apply_profile(spec: SimulatedLoopSpec, d: _TypeDefaults) -> SimulatedLoopSpec:
    profile = spec.profile
    if profile is LoopProfile.STICKY_VALVE:
        return replace(spec, valve_s=d.valve_s, valve_j=d.valve_j)
    if profile is LoopProfile.OVER_TUNED:
        return replace(spec, kc=0.9 * ultimate_gain(spec))
    if profile is LoopProfile.SLUGGISH:
        return replace(spec, kc=0.15 * spec.kc, ti_s=4.0 * spec.ti_s)
    if profile is LoopProfile.SATURATED:
        # The valve would have to open 15 % beyond its upper limit to hold SP.
        return replace(spec, input_load_pct=-(spec.op_high - spec.base_op + 15.0))
    if profile is LoopProfile.MANUAL_PERIODS:
        return replace(spec, auto_mean_s=1800.0, manual_mean_s=900.0)
    if profile is LoopProfile.FLATLINED_SENSOR:
        return replace(spec, flatline_after_s=600.0)
    if profile is LoopProfile.NOISY_SENSOR:
        return replace(spec, noise_std=15.0 * spec.noise_std)
    if profile is LoopProfile.EXTERNAL_OSCILLATION:
        settle = spec.dead_time_s + (spec.time_constant_s if not spec.integrating else 30.0)
        return replace(spec, osc_amplitude=4.0 * d.sp_step / 3.0, osc_period_s=8.0 * settle)
    return spec


def ultimate_gain(spec: SimulatedLoopSpec) -> float:
    """Controller gain at which the sampled PI loop of ``spec`` reaches the stability limit.

    Loop transfer function per unit gain, with the simulator's sampling (the valve acts on
    the process one sample after the measurement) and a linear valve:

    ``L(z) = [(1 - z^{-1}) + ts/Ti] / (1 - z^{-1}) · b z^{-(d+1)} / (1 - a z^{-1})
    · (1 - c) / (1 - c z^{-1})``

    where ``a = e^{-ts/τ}``, ``b = K (1 - a)`` (integrating: ``a = 1``, ``b = K ts``), ``d``
    is the dead time in samples and ``c = e^{-ts/T_f}`` the PV filter (``c = 0`` without).
    The ultimate gain is ``1 / |L(e^{jω₁₈₀})|`` at the first frequency where the phase falls
    through -180°.
    """
    ku = _ultimate_gain(
        spec.integrating,
        spec.process_gain,
        spec.time_constant_s,
        spec.ts,
        spec.ti_s,
        spec.dead_time_samples,
        spec.pv_filter_s,
    )
    if math.isnan(ku):
        raise ValueError(f"loop {spec.loop_id!r} never reaches -180°: no ultimate gain")
    return ku


@lru_cache(maxsize=256)
def _ultimate_gain(
    integrating: bool,
    gain: float,
    time_constant_s: float,
    ts: float,
    ti_s: float,
    delay: int,
    pv_filter_s: float,
) -> float:
    if integrating:
        a, b = 1.0, gain * ts
    else:
        a = math.exp(-ts / time_constant_s)
        b = gain * (1.0 - a)
    keep = math.exp(-ts / pv_filter_s) if pv_filter_s > 0 else 0.0

    def loop_at(omega: npt.NDArray[np.float64]) -> npt.NDArray[np.complex128]:
        z_inv = np.exp(-1j * omega)
        controller = ((1.0 - z_inv) + ts / ti_s) / (1.0 - z_inv)
        plant = b * z_inv ** (delay + 1) / (1.0 - a * z_inv)
        pv_filter = (1.0 - keep) / (1.0 - keep * z_inv)
        result: npt.NDArray[np.complex128] = controller * plant * pv_filter
        return result

    # Coarse grid on a log scale, then a fine grid inside the bracket of the crossing.
    omega = np.geomspace(1e-5, math.pi, 4096)
    for _ in range(2):
        loop = loop_at(omega)
        phase = np.unwrap(np.angle(loop))
        # Integrating plants start near -180°: skip to where the PI lead has lifted the phase.
        start = int(np.argmax(phase > -math.pi)) if phase[0] <= -math.pi else 0
        below = np.nonzero(phase[start:] <= -math.pi)[0]
        if below.size == 0:
            return math.nan
        k = start + int(below[0])
        lower = omega[max(k - 1, 0)]
        omega = np.linspace(lower, omega[k], 4096)
    return float(1.0 / abs(loop[k]))
