"""Closed-loop simulation of many control loops at once, one sample per step (numpy).

Each loop is a PI controller (honouring its mode), a valve with stiction (Choudhury et al.
2005) and a first-order-plus-dead-time or integrating process, with measurement noise, load
disturbances, an optional external sinusoid and occasional SP changes (see
:class:`~clpm_shared.simulation.spec.SimulatedLoopSpec`). All state lives in arrays of
length N, so one :meth:`FleetSimulator.step` advances 10,000 loops in about a millisecond.

Reproducibility: the random numbers of a fleet come from one generator seeded with the
``seed`` of every spec in order, so the same list of specs gives the same samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clpm_shared.simulation.spec import MODE_MAN, MODES, SimulatedLoopSpec
from clpm_shared.simulation.valve import StictionValve

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ModeArray = npt.NDArray[np.int8]
ObjectArray = npt.NDArray[np.object_]

_MODE_LOOKUP = np.array(MODES, dtype=object)


def mode_names(codes: npt.ArrayLike) -> ObjectArray:
    """Mode tag strings ('AUT', 'MAN', 'CAS') of an array of mode codes."""
    result: ObjectArray = _MODE_LOOKUP[np.asarray(codes, dtype=np.int64)]
    return result


@dataclass(frozen=True)
class FleetSample:
    """One sample of every loop of a fleet (arrays of length N, in spec order)."""

    step: int
    t_s: float
    pv: FloatArray
    sp: FloatArray
    op: FloatArray
    mode: ModeArray
    """Mode codes: index into :data:`~clpm_shared.simulation.spec.MODES`."""
    valve: FloatArray
    """True valve stem position (% of span); not measured in a plant, useful in tests."""


class FleetSimulator:
    """N closed loops advanced together, one sample (``ts`` seconds) per :meth:`step`.

    Parameters
    ----------
    specs : sequence of SimulatedLoopSpec
        The loops; all must share the same sample time ``ts``.
    """

    def __init__(self, specs: Sequence[SimulatedLoopSpec]) -> None:
        if not specs:
            raise ValueError("specs: at least one loop is required")
        ts_values = {spec.ts for spec in specs}
        if len(ts_values) != 1:
            raise ValueError(f"specs: all loops of a fleet must share ts, got {sorted(ts_values)}")
        self.specs: tuple[SimulatedLoopSpec, ...] = tuple(specs)
        self.ts = float(next(iter(ts_values)))
        n = len(specs)
        self.n_loops = n

        def column(name: str) -> FloatArray:
            return np.array([float(getattr(spec, name)) for spec in specs], dtype=np.float64)

        self._rng = np.random.default_rng([spec.seed & 0xFFFFFFFF for spec in specs])
        integrating = np.array([spec.integrating for spec in specs], dtype=bool)
        tau = np.where(integrating, 1.0, column("time_constant_s"))
        gain = column("process_gain")
        self._a = np.where(integrating, 1.0, np.exp(-self.ts / tau))
        self._b = np.where(integrating, gain * self.ts, gain * (1.0 - self._a))
        self._kc = column("kc")
        self._ki = self._kc * self.ts / column("ti_s")
        self._filter_keep = np.exp(-self.ts / np.maximum(column("pv_filter_s"), 1e-12))
        self._op_low = column("op_low")
        self._op_high = column("op_high")
        self._base_pv = column("base_pv")
        self._base_sp = column("base_sp")
        self._base_op = column("base_op")
        self._y_low = column("pv_low") - self._base_pv
        self._y_high = column("pv_high") - self._base_pv
        self._noise_std = column("noise_std")
        self._dist_pole = column("disturbance_pole")
        self._dist_std = column("disturbance_std")
        self._input_load = column("input_load_pct")
        self._osc_amp = column("osc_amplitude")
        period = column("osc_period_s")
        self._osc_omega = np.where(period > 0, 2.0 * math.pi / np.where(period > 0, period, 1.0), 0)
        self._osc_phase = self._rng.uniform(0.0, 2.0 * math.pi, n)
        self._has_osc = bool(np.any(self._osc_amp > 0))
        self._osc_drift = column("osc_drift") * math.sqrt(self.ts)
        self._has_drift = bool(np.any(self._osc_drift > 0))
        # a generator of its own: fleets without drift draw exactly the numbers they did
        self._drift_rng = np.random.default_rng([spec.seed & 0xFFFFFFFF for spec in specs] + [1])
        self._sp_step = column("sp_step")
        interval = column("sp_change_interval_s")
        self._p_sp = np.where(interval > 0, self.ts / np.where(interval > 0, interval, 1.0), 0.0)
        self._has_sp_changes = bool(np.any((self._p_sp > 0) & (self._sp_step > 0)))
        auto_mean = column("auto_mean_s")
        manual_mean = column("manual_mean_s")
        switching = (auto_mean > 0) & (manual_mean > 0)
        self._p_to_manual = np.where(switching, self.ts / np.where(switching, auto_mean, 1.0), 0)
        self._p_to_auto = np.where(switching, self.ts / np.where(switching, manual_mean, 1.0), 0)
        self._has_switching = bool(np.any(switching))
        self._nominal_mode = np.array([MODES.index(spec.mode) for spec in specs], dtype=np.int8)
        self._auto_mode = np.where(self._nominal_mode == MODE_MAN, 0, self._nominal_mode).astype(
            np.int8
        )
        flat_after = np.array(
            [math.inf if spec.flatline_after_s is None else spec.flatline_after_s for spec in specs]
        )
        self._flat_after_step = np.ceil(flat_after / self.ts)
        self._has_flatline = bool(np.any(np.isfinite(flat_after)))
        self._flat_value = np.full(n, np.nan)

        self._init_coupling(specs)

        delays = np.array([spec.dead_time_samples for spec in specs], dtype=np.int64)
        self._delay = delays
        self._buffer_len = int(delays.max()) + 1
        self._buffer = np.zeros((n, self._buffer_len), dtype=np.float64)
        self._rows = np.arange(n)

        # Start at the operating point: PV = base_pv with the valve at base_op.
        self._y = np.zeros(n)
        self._disturbance = np.zeros(n)
        self._sp = self._base_sp.copy()
        self._op = np.clip(self._base_op, self._op_low, self._op_high)
        self._mode = self._nominal_mode.copy()
        self._pv_filtered = self._base_pv.copy()
        self._e_prev = self._sp - self._base_pv
        self._valve = StictionValve(column("valve_s"), column("valve_j"), self._op)
        self._k = 0

        self._block = max(1, min(4096, 2**20 // n))
        self._normals = np.empty((0, 2, n))
        self._block_pos = 0

    def _init_coupling(self, specs: Sequence[SimulatedLoopSpec]) -> None:
        index = {spec.loop_id: i for i, spec in enumerate(specs)}
        driven = [i for i, spec in enumerate(specs) if spec.driven_by is not None]
        for i in driven:
            if specs[i].driven_by not in index:
                raise ValueError(
                    f"specs: {specs[i].loop_id} is driven_by {specs[i].driven_by!r}, "
                    "which is not in the fleet"
                )
        self._coupled = np.array(driven, dtype=np.int64)
        self._upstream = np.array([index[str(specs[i].driven_by)] for i in driven], dtype=np.int64)
        self._coupling_gain = np.array([specs[i].coupling_gain for i in driven])
        delay = np.array([round(specs[i].coupling_delay_s / self.ts) for i in driven])
        self._coupling_delay = delay.astype(np.int64)
        lag = np.array([specs[i].coupling_lag_s for i in driven])
        self._coupling_keep = np.where(lag > 0, np.exp(-self.ts / np.maximum(lag, 1e-12)), 0.0)
        self._coupling_len = int(delay.max()) + 1 if driven else 1
        self._coupling_history = np.zeros((len(driven), self._coupling_len))
        self._coupling_load = np.zeros(len(driven))
        self._coupling_rows = np.arange(len(driven))

    def _coupling(self, pv_true: FloatArray, k: int) -> FloatArray:
        """Load (% OP) of every loop from its upstream loop's upset, delayed and lagged."""
        column = k % self._coupling_len
        self._coupling_history[:, column] = pv_true[self._upstream] - self._sp[self._upstream]
        delayed = self._coupling_history[
            self._coupling_rows, (column - self._coupling_delay) % self._coupling_len
        ]
        keep = self._coupling_keep
        self._coupling_load = keep * self._coupling_load + (1.0 - keep) * delayed
        load = np.zeros(self.n_loops)
        load[self._coupled] = self._coupling_gain * self._coupling_load
        return load

    @property
    def step_count(self) -> int:
        """Number of samples produced so far."""
        return self._k

    def _draw_normals(self) -> FloatArray:
        if self._block_pos >= self._normals.shape[0]:
            self._normals = self._rng.standard_normal((self._block, 2, self.n_loops))
            self._block_pos = 0
        row: FloatArray = self._normals[self._block_pos]
        self._block_pos += 1
        return row

    def step(self) -> FleetSample:
        """Produce the sample at ``t = step_count * ts`` and advance every loop by ``ts``."""
        k = self._k
        t_s = k * self.ts
        normals = self._draw_normals()
        if self._has_switching:
            self._switch_modes()
        if self._has_sp_changes:
            self._change_setpoints()

        pv_true = self._base_pv + self._y
        if self._has_osc:
            pv_true = pv_true + self._osc_amp * np.sin(self._osc_omega * t_s + self._osc_phase)
            if self._has_drift:
                self._osc_phase += self._osc_drift * self._drift_rng.standard_normal(self.n_loops)
        pv = pv_true + self._noise_std * normals[0]
        if self._has_flatline:
            freeze = (k >= self._flat_after_step) & np.isnan(self._flat_value)
            self._flat_value = np.where(freeze, pv, self._flat_value)
            pv = np.where(np.isnan(self._flat_value), pv, self._flat_value)

        self._pv_filtered = self._filter_keep * self._pv_filtered + (1 - self._filter_keep) * pv
        error = self._sp - self._pv_filtered
        closed = self._mode != MODE_MAN
        delta = self._kc * (error - self._e_prev) + self._ki * error
        self._op = np.where(
            closed, np.clip(self._op + delta, self._op_low, self._op_high), self._op
        )
        self._e_prev = error
        valve = self._valve.step(self._op)

        column = k % self._buffer_len
        load = self._input_load + self._disturbance
        if self._coupled.size:
            load = load + self._coupling(pv_true, k)
        self._buffer[:, column] = valve - self._base_op + load
        delayed = self._buffer[self._rows, (column - self._delay) % self._buffer_len]
        self._y = np.clip(self._a * self._y + self._b * delayed, self._y_low, self._y_high)
        self._disturbance = self._dist_pole * self._disturbance + self._dist_std * normals[1]
        self._k = k + 1
        return FleetSample(
            step=k,
            t_s=t_s,
            pv=pv,
            sp=self._sp.copy(),
            op=self._op.copy(),
            mode=self._mode.copy(),
            valve=valve.copy(),
        )

    def _switch_modes(self) -> None:
        draw = self._rng.random(self.n_loops)
        manual = self._mode == MODE_MAN
        to_manual = ~manual & (draw < self._p_to_manual)
        to_auto = manual & (draw < self._p_to_auto)
        self._mode = np.where(
            to_manual, MODE_MAN, np.where(to_auto, self._auto_mode, self._mode)
        ).astype(np.int8)

    def _change_setpoints(self) -> None:
        draw = self._rng.random(self.n_loops)
        # In MAN the SP stays; cascade loops get their SP from the primary, here a random step.
        change = (draw < self._p_sp) & (self._mode != MODE_MAN)
        if not np.any(change):
            return
        idx = np.nonzero(change)[0]
        size = self._sp_step[idx] * self._rng.uniform(0.5, 1.5, idx.size)
        offset = self._sp[idx] - self._base_sp[idx]
        toward_base = -np.sign(offset)
        random_sign = np.where(self._rng.random(idx.size) < 0.5, -1.0, 1.0)
        far = np.abs(offset) >= 1.5 * self._sp_step[idx]
        sign = np.where(far, toward_base, random_sign)
        self._sp[idx] = self._sp[idx] + sign * size


@dataclass(frozen=True)
class LoopSample:
    """One sample of one simulated loop."""

    t_s: float
    pv: float
    sp: float
    op: float
    mode: str


class LoopSimulator:
    """One simulated loop, advanced one sample per :meth:`step` (a fleet of one)."""

    def __init__(self, spec: SimulatedLoopSpec) -> None:
        self.spec = spec
        self._fleet = FleetSimulator([spec])

    def step(self) -> LoopSample:
        sample = self._fleet.step()
        return LoopSample(
            t_s=sample.t_s,
            pv=float(sample.pv[0]),
            sp=float(sample.sp[0]),
            op=float(sample.op[0]),
            mode=MODES[int(sample.mode[0])],
        )


@dataclass(frozen=True)
class SimulatedSeries:
    """Samples of one simulated loop: time in seconds from the start, PV/SP/OP, mode tags."""

    loop_id: str
    t: FloatArray
    pv: FloatArray
    sp: FloatArray
    op: FloatArray
    mode: ObjectArray
    valve: FloatArray
    """True valve stem position (% of span), for tests; a plant does not measure it."""

    def __len__(self) -> int:
        return int(self.t.shape[0])


def simulate_fleet(specs: Sequence[SimulatedLoopSpec], n_samples: int) -> list[SimulatedSeries]:
    """Simulate several loops together for ``n_samples`` samples each (batch / test use)."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples!r}")
    fleet = FleetSimulator(specs)
    n = fleet.n_loops
    pv = np.empty((n_samples, n))
    sp = np.empty((n_samples, n))
    op = np.empty((n_samples, n))
    valve = np.empty((n_samples, n))
    mode = np.empty((n_samples, n), dtype=np.int8)
    for k in range(n_samples):
        sample = fleet.step()
        pv[k], sp[k], op[k], valve[k], mode[k] = (
            sample.pv,
            sample.sp,
            sample.op,
            sample.valve,
            sample.mode,
        )
    t = np.arange(n_samples, dtype=np.float64) * fleet.ts
    return [
        SimulatedSeries(
            loop_id=spec.loop_id,
            t=t.copy(),
            pv=pv[:, i].copy(),
            sp=sp[:, i].copy(),
            op=op[:, i].copy(),
            mode=mode_names(mode[:, i]),
            valve=valve[:, i].copy(),
        )
        for i, spec in enumerate(fleet.specs)
    ]


def simulate(spec: SimulatedLoopSpec, n_samples: int) -> SimulatedSeries:
    """Simulate one loop for ``n_samples`` samples (``t = 0, ts, 2 ts, ...``)."""
    return simulate_fleet([spec], n_samples)[0]
