"""Per-loop analysis settings (table loop_config) with the KPI_SPEC defaults."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

LoopType = Literal["flow", "pressure", "level", "temperature", "other"]
LOOP_TYPES: tuple[str, ...] = ("flow", "pressure", "level", "temperature", "other")

DEFAULT_NORMAL_MODES = frozenset({"AUT", "AUTO", "CAS"})
DEFAULT_APC_MODES = frozenset({"CAS"})
SAT_MARGIN_SHARE = 0.005
"""Default saturation margin: 0.5 % of the OP span."""
DEADBAND_SHARE = 0.002
"""Default reversal deadband: 0.2 % of the OP span."""


def _modes(value: Iterable[str] | str, name: str) -> frozenset[str]:
    if isinstance(value, str):
        raise ValueError(f"{name}: must be a collection of mode names, not a single string")
    modes = frozenset(str(m).strip() for m in value)
    if "" in modes:
        raise ValueError(f"{name}: mode names must not be empty")
    return modes


def _optional_finite(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name}: must be a finite number or unset, got {value!r}")
    return number


@dataclass(frozen=True)
class LoopConfig:
    """Analysis settings of one loop; ``None`` fields fall back to the documented default.

    Attributes
    ----------
    normal_modes : frozenset of str
        Modes counted as "in service" (default AUT, AUTO, CAS).
    op_lo, op_hi : float
        OP range (default 0-100 %).
    sat_margin : float or None
        OP saturation margin in OP units; default 0.5 % of ``op_hi - op_lo``.
    pv_lo, pv_hi : float or None
        PV range; when unset the span comes from the 0.1/99.9 percentiles of the data.
    deadband : float or None
        OP reversal deadband in OP units; default 0.2 % of the OP span.
    dead_time_s : float or None
        Process dead time, used for the Harris delay and the expected settling time.
    loop_type : {"flow", "pressure", "level", "temperature", "other"}
    criticality : int
        1 (minor) to 5 (critical); weights the bad-actor rank and roll-ups.
    apc_enabled : bool
        The loop is handled by advanced process control (APC attainment is computed).
    apc_modes : frozenset of str
        Modes meaning "available to APC" (default CAS).
    kpi_window_min : int
        KPI window length in minutes (default 15).
    """

    normal_modes: frozenset[str] = DEFAULT_NORMAL_MODES
    op_lo: float = 0.0
    op_hi: float = 100.0
    sat_margin: float | None = None
    pv_lo: float | None = None
    pv_hi: float | None = None
    deadband: float | None = None
    dead_time_s: float | None = None
    loop_type: LoopType = "other"
    criticality: int = 3
    apc_enabled: bool = False
    apc_modes: frozenset[str] = field(default=DEFAULT_APC_MODES)
    kpi_window_min: int = 15

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal_modes", _modes(self.normal_modes, "normal_modes"))
        object.__setattr__(self, "apc_modes", _modes(self.apc_modes, "apc_modes"))
        op_lo, op_hi = float(self.op_lo), float(self.op_hi)
        if not (math.isfinite(op_lo) and math.isfinite(op_hi) and op_hi > op_lo):
            raise ValueError(f"op_hi: must be greater than op_lo (got {op_lo!r}..{op_hi!r})")
        object.__setattr__(self, "op_lo", op_lo)
        object.__setattr__(self, "op_hi", op_hi)
        for name in ("sat_margin", "pv_lo", "pv_hi", "deadband", "dead_time_s"):
            object.__setattr__(self, name, _optional_finite(getattr(self, name), name))
        for name in ("sat_margin", "deadband", "dead_time_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name}: must be >= 0, got {value!r}")
        if self.pv_lo is not None and self.pv_hi is not None and self.pv_hi <= self.pv_lo:
            raise ValueError(f"pv_hi: must be greater than pv_lo ({self.pv_lo}..{self.pv_hi})")
        if self.loop_type not in LOOP_TYPES:
            raise ValueError(f"loop_type: must be one of {LOOP_TYPES}, got {self.loop_type!r}")
        if isinstance(self.criticality, bool) or self.criticality not in range(1, 6):
            raise ValueError(f"criticality: must be an integer 1-5, got {self.criticality!r}")
        if isinstance(self.kpi_window_min, bool) or not (1 <= int(self.kpi_window_min) <= 1440):
            raise ValueError(f"kpi_window_min: must be 1-1440, got {self.kpi_window_min!r}")

    @property
    def op_span(self) -> float:
        """``op_hi - op_lo``."""
        return self.op_hi - self.op_lo

    @property
    def effective_sat_margin(self) -> float:
        """Saturation margin in OP units (configured, else 0.5 % of the OP span)."""
        return self.sat_margin if self.sat_margin is not None else SAT_MARGIN_SHARE * self.op_span

    @property
    def effective_deadband(self) -> float:
        """Reversal deadband in OP units (configured, else 0.2 % of the OP span)."""
        return self.deadband if self.deadband is not None else DEADBAND_SHARE * self.op_span

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LoopConfig:
        """Build from a loop_config row (or any mapping); unknown keys and ``None`` are ignored.

        A ``None`` means "use the default", exactly like a NULL column.
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known and v is not None})
