"""Which loops the simulator runs: the default plant catalogue and synthetic fleets for scale.

The default catalogue keeps the seed's five temperature loops TIC208030-TIC208034 and adds a
few flow, pressure and level loops, so that every behaviour profile shows up in a local run:
some loops are healthy, others have a sticky valve, aggressive or sluggish tuning, a saturated
valve, periods in manual, a frozen or noisy transmitter, or an oscillation from elsewhere.

Every loop has a transmitter range (``pv_lo``/``pv_hi``) around its operating point, as a plant
would configure it; :func:`catalogue_csv` writes them as a loop list for
``python -m clpm_shared.loop_catalogue`` (``deploy/local/demo-plant.csv`` holds the same
ranges for the default catalogue).

One oscillation is plant-wide: the sticky reflux valve FIC208041 disturbs the overhead drum
level LIC208050 (the reflux is drawn from the drum) and the condenser outlet temperature
TIC208033 of the same column, each through a dead time and a lag, so the clusters page shows
one real cluster with FIC208041 as its source; the other oscillating loops are independent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace

from clpm_shared.simulation import LoopProfile, LoopType, SimulatedLoopSpec


@dataclass(frozen=True)
class CatalogueEntry:
    loop_id: str
    loop_type: LoopType
    profile: LoopProfile
    base_pv: float | None = None
    base_sp: float | None = None
    base_op: float | None = None
    mode: str = "AUT"
    pv_range: tuple[float, float] | None = None
    """Transmitter range; None: the loop type's (:data:`TYPE_RANGES`)."""
    coupling: Coupling | None = None


TYPE_RANGES: dict[LoopType, tuple[float, float]] = {
    LoopType.FLOW: (0.0, 100.0),
    LoopType.PRESSURE: (0.0, 16.0),
    LoopType.TEMPERATURE: (0.0, 500.0),
    LoopType.LEVEL: (0.0, 100.0),
}
"""Transmitter range (pv_lo, pv_hi) of a loop type at the simulator's default operating points
(flow 50 m3/h, pressure 8 barg, temperature 400 degC, level 50 %)."""


@dataclass(frozen=True)
class Coupling:
    """A loop's process input follows another loop's PV (see ``SimulatedLoopSpec``)."""

    upstream: str
    gain: float  # % OP per PV unit of the upstream loop
    delay_s: float
    lag_s: float


DEMO_LEVEL_GAIN = 40.0
DEMO_CONDENSER_GAIN = 20.0

DEFAULT_CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry("TIC208030", LoopType.TEMPERATURE, LoopProfile.HEALTHY, 405.0, 405.0, 60.0),
    CatalogueEntry("TIC208031", LoopType.TEMPERATURE, LoopProfile.STICKY_VALVE, 398.0, 398.0, 55.0),
    CatalogueEntry("TIC208032", LoopType.TEMPERATURE, LoopProfile.OVER_TUNED, 410.0, 410.0, 62.0),
    CatalogueEntry(
        "TIC208033",
        LoopType.TEMPERATURE,
        LoopProfile.SLUGGISH,
        402.0,
        402.5,
        58.0,
        coupling=Coupling("FIC208041", DEMO_CONDENSER_GAIN, 10.0, 5.0),
    ),
    CatalogueEntry(
        "TIC208034", LoopType.TEMPERATURE, LoopProfile.MANUAL_PERIODS, 395.0, 395.0, 64.0
    ),
    CatalogueEntry("FIC208040", LoopType.FLOW, LoopProfile.HEALTHY, 52.0, 52.0, 47.0, "CAS"),
    CatalogueEntry(
        "FIC208041", LoopType.FLOW, LoopProfile.STICKY_VALVE, 35.0, 35.0, 40.0, pv_range=(0, 60)
    ),
    CatalogueEntry("FIC208042", LoopType.FLOW, LoopProfile.NOISY_SENSOR, 60.0, 60.0, 55.0),
    CatalogueEntry("PIC208060", LoopType.PRESSURE, LoopProfile.EXTERNAL_OSCILLATION, 8.0, 8.0),
    CatalogueEntry(
        "PIC208061", LoopType.PRESSURE, LoopProfile.SATURATED, 12.0, 12.0, 80.0, pv_range=(0, 20)
    ),
    CatalogueEntry(
        "LIC208050",
        LoopType.LEVEL,
        LoopProfile.HEALTHY,
        50.0,
        50.0,
        50.0,
        coupling=Coupling("FIC208041", DEMO_LEVEL_GAIN, 5.0, 10.0),
    ),
    CatalogueEntry("LIC208051", LoopType.LEVEL, LoopProfile.FLATLINED_SENSOR, 45.0, 45.0, 48.0),
)
"""Default loops of the local run (the first five are the seed's default loops)."""


def pv_range_of(entry: CatalogueEntry) -> tuple[float, float]:
    """The entry's transmitter range (its own, else its loop type's)."""
    return entry.pv_range or TYPE_RANGES[entry.loop_type]


SEED_LOOP_IDS: tuple[str, ...] = tuple(f"TIC20803{i}" for i in range(5))

_SCALE_PROFILES: tuple[tuple[LoopProfile, int], ...] = (
    (LoopProfile.HEALTHY, 60),
    (LoopProfile.STICKY_VALVE, 8),
    (LoopProfile.OVER_TUNED, 5),
    (LoopProfile.SLUGGISH, 8),
    (LoopProfile.SATURATED, 4),
    (LoopProfile.MANUAL_PERIODS, 5),
    (LoopProfile.FLATLINED_SENSOR, 2),
    (LoopProfile.NOISY_SENSOR, 4),
    (LoopProfile.EXTERNAL_OSCILLATION, 4),
)
"""Share (per cent) of each profile in a synthetic fleet: mostly healthy, as in a plant."""

SYNTHETIC_OSC_DRIFT = 0.025
"""Phase wander (rad/√s) of a synthetic loop's external oscillation: about 5 % period jitter
at the 3-minute period of a pressure loop, so that two of them lose their phase relation
within an hour."""

_TYPE_PREFIX = {
    LoopType.FLOW: "FIC",
    LoopType.PRESSURE: "PIC",
    LoopType.TEMPERATURE: "TIC",
    LoopType.LEVEL: "LIC",
}
_TYPE_ORDER = (
    LoopType.FLOW,
    LoopType.FLOW,
    LoopType.TEMPERATURE,
    LoopType.PRESSURE,
    LoopType.LEVEL,
)


def default_loop_specs(seed: int, interval_s: float = 1.0) -> list[SimulatedLoopSpec]:
    """The default catalogue as simulator specs (loop ``i`` is seeded with ``seed + i``)."""
    specs = []
    for index, entry in enumerate(DEFAULT_CATALOGUE):
        spec = SimulatedLoopSpec.for_profile(
            entry.loop_id,
            entry.profile,
            entry.loop_type,
            seed=seed + index,
            ts=interval_s,
            base_pv=entry.base_pv,
            base_sp=entry.base_sp,
            base_op=entry.base_op,
        )
        if entry.mode != spec.mode:
            spec = replace(spec, mode=entry.mode)
        if entry.coupling is not None:
            c = entry.coupling
            spec = spec.coupled_to(c.upstream, c.gain, c.delay_s, c.lag_s)
        specs.append(spec)
    return specs


def profile_for_index(index: int) -> LoopProfile:
    """Profile of synthetic loop ``index``: the shares of the scale mix, interleaved."""
    slot = (index * 37) % 100  # 37 is coprime with 100: every run of 100 holds the full mix
    for profile, share in _SCALE_PROFILES:
        if slot < share:
            return profile
        slot -= share
    return LoopProfile.HEALTHY


def loop_specs(n_loops: int, seed: int, interval_s: float = 1.0) -> list[SimulatedLoopSpec]:
    """``n_loops`` loops: the default catalogue first, then synthetic loops.

    ``n_loops = 0`` means the default catalogue alone. Synthetic loops are named by type,
    ``FIC900001``, ``TIC900002``, ... and follow the profile mix of a plant (60 % healthy).
    Fewer loops than the catalogue take its first ``n_loops`` entries; a coupled loop whose
    driving loop is left out then runs on its own.
    """
    if n_loops < 0:
        raise ValueError(f"loops: must be >= 0, got {n_loops!r}")
    catalogue = default_loop_specs(seed, interval_s)
    if n_loops == 0:
        return catalogue
    if n_loops <= len(catalogue):
        kept = catalogue[:n_loops]
        ids = {spec.loop_id for spec in kept}
        return [
            spec
            if spec.driven_by is None or spec.driven_by in ids
            else replace(spec, driven_by=None, coupling_gain=0.0)
            for spec in kept
        ]
    specs = catalogue
    for index in range(n_loops - len(catalogue)):
        loop_type = _TYPE_ORDER[index % len(_TYPE_ORDER)]
        number = 900_001 + index
        spec = SimulatedLoopSpec.for_profile(
            f"{_TYPE_PREFIX[loop_type]}{number}",
            profile_for_index(index),
            loop_type,
            seed=seed + len(catalogue) + index,
            ts=interval_s,
        )
        if spec.osc_amplitude > 0:
            # independent disturbances of one nominal period drift apart, as in a plant
            spec = replace(spec, osc_drift=SYNTHETIC_OSC_DRIFT)
        specs.append(spec)
    return specs


CATALOGUE_COLUMNS = ("loop_id", "loop_type", "pv_lo", "pv_hi")


def catalogue_csv(specs: Sequence[SimulatedLoopSpec]) -> str:
    """A loop list (``clpm_shared.loop_catalogue`` columns) with the transmitter range of
    every simulated loop: the catalogue's own, else the loop type's."""
    ranges = {entry.loop_id: pv_range_of(entry) for entry in DEFAULT_CATALOGUE}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CATALOGUE_COLUMNS)
    for spec in specs:
        lo, hi = ranges.get(spec.loop_id, TYPE_RANGES[spec.loop_type])
        writer.writerow((spec.loop_id, spec.loop_type.value, f"{lo:g}", f"{hi:g}"))
    return out.getvalue()
