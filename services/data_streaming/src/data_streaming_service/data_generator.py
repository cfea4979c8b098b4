"""Plant-like PV/SP/OP samples of many control loops, one sample of every loop per call.

Each loop is simulated as a real closed loop (:mod:`clpm_shared.simulation`): process, PI
controller in its mode, valve (with stiction where the profile says so), noise, disturbances
and occasional SP changes. Samples come out columnar (:class:`SampleChunk`), so 10,000 loops
cost a few numpy operations per tick; :meth:`SampleChunk.to_points` makes the
:class:`~clpm_shared.timeseries.Point` objects the time-series store writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from clpm_shared.simulation import (
    MODES,
    FleetSimulator,
    LoopProfile,
    LoopType,
    SimulatedLoopSpec,
)
from clpm_shared.timeseries import Point, RawSeries, from_ns, to_ns, validate_loop_id
from data_streaming_service.catalogue import default_loop_specs

FloatArray = npt.NDArray[np.float64]
ModeArray = npt.NDArray[np.int8]

FIELDS_PER_SAMPLE = 3
"""A sample carries PV, SP and OP: three points in the seed's ``_field``/``_value`` view."""


@dataclass(frozen=True)
class SampleChunk:
    """One sample of several loops at one time (columns in ``loop_ids`` order)."""

    t_ns: int
    loop_ids: tuple[str, ...]
    pv: FloatArray
    sp: FloatArray
    op: FloatArray
    mode: ModeArray
    """Mode codes: index into :data:`clpm_shared.simulation.MODES`."""

    def __len__(self) -> int:
        return len(self.loop_ids)

    @property
    def points(self) -> int:
        """Field values in the chunk (PV, SP and OP of each sample)."""
        return FIELDS_PER_SAMPLE * len(self.loop_ids)

    def to_points(self) -> list[Point]:
        """The samples as store points (tags ``loop_id`` and ``Mode``, fields PV/SP/OP)."""
        moment = from_ns(self.t_ns)
        modes = [MODES[code] for code in self.mode.tolist()]
        return [
            Point(loop_id, moment, pv, sp, op, mode)
            for loop_id, pv, sp, op, mode in zip(
                self.loop_ids,
                self.pv.tolist(),
                self.sp.tolist(),
                self.op.tolist(),
                modes,
                strict=True,
            )
        ]


_MODE_NAMES = np.array(MODES, dtype=object)


def history_series(chunks: Sequence[SampleChunk]) -> list[RawSeries]:
    """Consecutive chunks (the same loops) as one columnar block per loop, for bulk writes."""
    if not chunks:
        return []
    t_ns = np.array([chunk.t_ns for chunk in chunks], dtype=np.int64)
    pv = np.stack([chunk.pv for chunk in chunks], axis=1)
    sp = np.stack([chunk.sp for chunk in chunks], axis=1)
    op = np.stack([chunk.op for chunk in chunks], axis=1)
    mode = _MODE_NAMES[np.stack([chunk.mode for chunk in chunks], axis=1)]
    return [
        RawSeries(loop_id, t_ns, pv[i], sp[i], op[i], mode[i])
        for i, loop_id in enumerate(chunks[0].loop_ids)
    ]


class ControlLoopDataGenerator:
    """Simulated control loops of a plant; every :meth:`next_chunk` advances all of them.

    Parameters
    ----------
    loops : sequence of SimulatedLoopSpec, optional
        The loops to simulate; by default the plant catalogue (TIC208030-TIC208034 and a few
        flow, pressure and level loops, with a mix of good and bad behaviour).
    interval_s : float
        Time between samples (STREAM_INTERVAL); every loop is sampled at this rate.
    seed : int
        Base seed of the default catalogue and of :meth:`add_custom_loop`.

    Examples
    --------
    >>> generator = ControlLoopDataGenerator()
    >>> spec = generator.add_custom_loop("CUSTOM_LOOP", base_pv=400.0, base_sp=400.5, base_op=60.0)
    >>> "CUSTOM_LOOP" in generator.loop_ids
    True
    """

    def __init__(
        self,
        loops: Sequence[SimulatedLoopSpec] | None = None,
        *,
        interval_s: float = 1.0,
        seed: int = 42,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self.seed = seed
        specs = default_loop_specs(seed, interval_s) if loops is None else list(loops)
        self._specs: list[SimulatedLoopSpec] = []
        self._fleets: list[FleetSimulator] = []
        self._pending: list[SimulatedLoopSpec] = []
        self._loop_ids: tuple[str, ...] = ()
        for spec in specs:
            self._add(spec)

    @property
    def loop_ids(self) -> tuple[str, ...]:
        return tuple(spec.loop_id for spec in self._specs)

    @property
    def specs(self) -> tuple[SimulatedLoopSpec, ...]:
        return tuple(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def _add(self, spec: SimulatedLoopSpec) -> SimulatedLoopSpec:
        validate_loop_id(spec.loop_id, "name")
        if any(existing.loop_id == spec.loop_id for existing in self._specs):
            raise ValueError(f"name: loop {spec.loop_id!r} is already simulated")
        if spec.ts != self.interval_s:
            spec = replace(spec, ts=self.interval_s)
        self._specs.append(spec)
        self._pending.append(spec)
        return spec

    def add_custom_loop(
        self,
        name: str,
        base_pv: float,
        base_sp: float,
        base_op: float,
        *,
        profile: LoopProfile | str = LoopProfile.HEALTHY,
        loop_type: LoopType | str = LoopType.TEMPERATURE,
    ) -> SimulatedLoopSpec:
        """Simulate one more loop around the operating point ``base_pv``/``base_sp``/``base_op``.

        The loop starts at PV = ``base_pv`` with OP = ``base_op`` and its controller drives PV
        to ``base_sp``. ``profile`` chooses its behaviour (healthy by default) and
        ``loop_type`` its process (temperature: first order plus dead time; level:
        integrating). Loops already running keep their state.
        """
        if not 0.0 <= base_op <= 100.0:
            raise ValueError(f"base_op: must be within 0-100 % of span, got {base_op!r}")
        spec = SimulatedLoopSpec.for_profile(
            name,
            profile,
            loop_type,
            seed=self.seed + len(self._specs),
            ts=self.interval_s,
            base_pv=base_pv,
            base_sp=base_sp,
            base_op=base_op,
        )
        return self._add(spec)

    def next_chunk(self, t_ns: int) -> SampleChunk:
        """The next sample of every loop, stamped ``t_ns`` (epoch nanoseconds)."""
        if self._pending:
            self._fleets.append(FleetSimulator(self._pending))
            self._pending = []
            self._loop_ids = tuple(spec.loop_id for fleet in self._fleets for spec in fleet.specs)
        samples = [fleet.step() for fleet in self._fleets]
        if len(samples) == 1:
            only = samples[0]
            return SampleChunk(t_ns, self._loop_ids, only.pv, only.sp, only.op, only.mode)
        return SampleChunk(
            t_ns,
            self._loop_ids,
            np.concatenate([s.pv for s in samples]),
            np.concatenate([s.sp for s in samples]),
            np.concatenate([s.op for s in samples]),
            np.concatenate([s.mode for s in samples]),
        )

    def generate_points(self, moment: datetime | None = None) -> list[Point]:
        """One sample of every loop as store points, stamped ``moment`` (default: now, UTC)."""
        when = datetime.now(UTC) if moment is None else moment
        return self.next_chunk(to_ns(when)).to_points()
