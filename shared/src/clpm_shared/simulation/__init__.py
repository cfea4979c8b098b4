"""Closed-loop plant simulation: FOPTD/integrating processes, PI control, sticky valves.

Pure numpy, no I/O. Used by the data-streaming service to generate plant-like data and by
tests of the analytics, which must recognise each :class:`LoopProfile`.
"""

from clpm_shared.simulation.fleet import (
    FleetSample,
    FleetSimulator,
    LoopSample,
    LoopSimulator,
    SimulatedSeries,
    mode_names,
    simulate,
    simulate_fleet,
)
from clpm_shared.simulation.spec import (
    MODES,
    LoopProfile,
    LoopType,
    SimulatedLoopSpec,
    ultimate_gain,
)
from clpm_shared.simulation.valve import StictionValve, stiction_valve_response

__all__ = [
    "MODES",
    "FleetSample",
    "FleetSimulator",
    "LoopProfile",
    "LoopSample",
    "LoopSimulator",
    "LoopType",
    "SimulatedLoopSpec",
    "SimulatedSeries",
    "StictionValve",
    "mode_names",
    "simulate",
    "simulate_fleet",
    "stiction_valve_response",
    "ultimate_gain",
]
