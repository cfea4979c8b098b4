"""One loop's PV/SP/OP/mode on a uniform time grid: the input of every KPI."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from clpm_shared.analytics.signal_preparation import FloatArray, checked_sample_period

WindowSource = Literal["raw", "agg_1m"]
SOURCES: tuple[str, ...] = ("raw", "agg_1m")

BoolArray = npt.NDArray[np.bool_]
ModeArray = npt.NDArray[np.str_]

AGG_1M_PERIOD_S = 60.0
DEFAULT_MAX_GAP_PERIODS = 5.0
"""Last-value hold bridges gaps up to this many sample periods (KPI_SPEC)."""


def _mode_array(mode: npt.ArrayLike | None, n: int) -> ModeArray:
    """Modes as a fixed-width unicode array; None/NaN/empty become ``""`` (unknown)."""
    if mode is None:
        return np.full(n, "", dtype="<U1")
    values = np.asarray(mode)
    if values.dtype.kind == "U":
        return values.reshape(-1)
    cleaned = [
        "" if (m is None or isinstance(m, float)) else str(m).strip() for m in values.ravel()
    ]
    return np.asarray(cleaned, dtype=np.str_) if cleaned else np.empty(0, dtype="<U1")


def _float_column(values: npt.ArrayLike, name: str, n: int) -> FloatArray:
    array = np.array(values, dtype=np.float64, copy=True).reshape(-1)
    if array.size != n:
        raise ValueError(f"{name}: expected {n} values (one per time stamp), got {array.size}")
    array[~np.isfinite(array)] = np.nan
    return array


@dataclass(frozen=True, eq=False)
class LoopWindow:
    """Uniformly sampled PV/SP/OP/mode of one loop over one KPI window.

    Attributes
    ----------
    t : ndarray
        Grid time stamps, epoch seconds, ``t[k] = t[0] + k·ts``.
    pv, sp, op : ndarray
        Values on the grid; NaN = missing.
    mode : ndarray of str
        Controller mode per sample (``""`` = unknown).
    ts : float
        Sample period in seconds.
    source : {"raw", "agg_1m"}
        Raw samples, or the means of 1-minute aggregates (fast KPIs are then None).
    fresh : ndarray of bool or None
        True where a new source sample arrived in ``(t[k] - ts, t[k]]`` (False where the
        value is held or missing); None means every non-NaN PV value is fresh.
    last_sample_t : float or None
        Epoch seconds of the newest source sample at or before the window end.
    observed : int or None
        Number of source samples with a PV value inside ``[start, end)``; None = unknown
        (completeness then counts fresh grid points).
    """

    t: FloatArray
    pv: FloatArray
    sp: FloatArray
    op: FloatArray
    mode: ModeArray
    ts: float
    source: WindowSource = "raw"
    fresh: BoolArray | None = None
    last_sample_t: float | None = None
    observed: int | None = None

    def __post_init__(self) -> None:
        t = _float_column(self.t, "t", np.asarray(self.t).size)
        n = t.size
        object.__setattr__(self, "t", t)
        for name in ("pv", "sp", "op"):
            object.__setattr__(self, name, _float_column(getattr(self, name), name, n))
        mode = _mode_array(self.mode, n)
        if mode.size != n:
            raise ValueError(f"mode: expected {n} values (one per time stamp), got {mode.size}")
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "ts", checked_sample_period(self.ts))
        if self.source not in SOURCES:
            raise ValueError(f"source: must be one of {SOURCES}, got {self.source!r}")
        if self.fresh is not None:
            fresh = np.asarray(self.fresh, dtype=bool).reshape(-1)
            if fresh.size != n:
                raise ValueError(f"fresh: expected {n} values, got {fresh.size}")
            object.__setattr__(self, "fresh", fresh)

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def start(self) -> float:
        """Window start, epoch seconds (NaN for an empty window)."""
        return float(self.t[0]) if self.t.size else math.nan

    @property
    def end(self) -> float:
        """Window end (exclusive), epoch seconds: ``t[0] + N·ts``."""
        return self.start + self.t.size * self.ts

    @property
    def hours(self) -> float:
        """Window length in hours."""
        return self.t.size * self.ts / 3600.0

    @classmethod
    def from_raw(
        cls,
        t: npt.ArrayLike,
        pv: npt.ArrayLike,
        sp: npt.ArrayLike,
        op: npt.ArrayLike,
        mode: npt.ArrayLike | None,
        *,
        start: float,
        end: float,
        ts: float = 1.0,
        max_gap: float | None = None,
    ) -> LoopWindow:
        """Put irregular raw samples on the grid ``start + k·ts`` (``start <= t_k < end``).

        Each field is held independently: grid point ``t_k`` takes the newest valid sample
        at or before ``t_k`` if that sample is at most ``max_gap`` seconds old (default
        ``5·ts``), else NaN. Samples before ``start`` may be passed to seed the hold.

        Parameters
        ----------
        t : array_like
            Sample times, epoch seconds, sorted ascending.
        pv, sp, op : array_like
            Sample values (NaN = field absent in that sample).
        mode : array_like of str or None
            Mode tag per sample (None/empty = unknown).
        start, end : float
            Window bounds, epoch seconds.
        ts : float
            Grid period in seconds.
        max_gap : float, optional
            Longest hold in seconds; default ``5·ts``.

        Raises
        ------
        ValueError
            Naming the parameter: unequal lengths, unsorted times, ``end <= start``,
            non-positive ``ts`` or ``max_gap``.
        """
        ts = checked_sample_period(ts)
        if max_gap is None:
            max_gap = DEFAULT_MAX_GAP_PERIODS * ts
        if not (math.isfinite(max_gap) and max_gap >= 0):
            raise ValueError(f"max_gap: must be a finite number >= 0, got {max_gap!r}")
        if not (math.isfinite(start) and math.isfinite(end) and end > start):
            raise ValueError(f"end: must be after start (start={start!r}, end={end!r})")
        times = _float_column(t, "t", np.asarray(t).size)
        if np.isnan(times).any():
            raise ValueError("t: sample times must be finite")
        if times.size > 1 and bool(np.any(np.diff(times) < 0)):
            raise ValueError("t: sample times must be sorted ascending")
        n_raw = times.size
        n = math.ceil((end - start) / ts - 1e-9)
        grid = start + ts * np.arange(n, dtype=np.float64)

        def held(values: FloatArray) -> FloatArray:
            valid = ~np.isnan(values)
            valid_t = times[valid]
            out = np.full(n, np.nan)
            if valid_t.size == 0:
                return out
            idx = np.searchsorted(valid_t, grid, side="right") - 1
            safe = np.maximum(idx, 0)
            ok = (idx >= 0) & (grid - valid_t[safe] <= max_gap + 1e-9)
            out[ok] = values[valid][safe[ok]]
            return out

        pv_raw = _float_column(pv, "pv", n_raw)
        pv_grid = held(pv_raw)
        sp_grid = held(_float_column(sp, "sp", n_raw))
        op_grid = held(_float_column(op, "op", n_raw))
        modes_raw = _mode_array(mode, n_raw)
        if modes_raw.size != n_raw:
            raise ValueError(
                f"mode: expected {n_raw} values (one per time stamp), got {modes_raw.size}"
            )
        known = modes_raw != ""
        modes = np.full(n, "", dtype=modes_raw.dtype if modes_raw.size else "<U1")
        if known.any():
            known_t = times[known]
            idx = np.searchsorted(known_t, grid, side="right") - 1
            safe = np.maximum(idx, 0)
            ok = (idx >= 0) & (grid - known_t[safe] <= max_gap + 1e-9)
            modes[ok] = modes_raw[known][safe[ok]]

        # a grid point is fresh when a sample with a PV value landed in (t_k - ts, t_k]
        pv_t = times[~np.isnan(pv_raw)]
        fresh = np.searchsorted(pv_t, grid, side="right") > np.searchsorted(
            pv_t, grid - ts, side="right"
        )
        inside = times[times < end]
        last_t = float(inside[-1]) if inside.size else None
        observed = int(np.count_nonzero((pv_t >= start) & (pv_t < end)))
        return cls(grid, pv_grid, sp_grid, op_grid, modes, ts, "raw", fresh, last_t, observed)

    @classmethod
    def from_agg_1m(
        cls,
        bucket_start: npt.ArrayLike,
        pv_mean: npt.ArrayLike,
        sp_mean: npt.ArrayLike,
        op_mean: npt.ArrayLike,
        mode_dominant: npt.ArrayLike | None,
        *,
        start: float,
        end: float,
    ) -> LoopWindow:
        """Window from 1-minute aggregate means (``source="agg_1m"``, ``ts=60``).

        Buckets are placed on the minute grid of ``[start, end)``; missing minutes stay NaN
        (no hold: a missing bucket means no raw data in that minute).

        Raises
        ------
        ValueError
            Naming the parameter: unequal lengths or ``end <= start``.
        """
        if not (math.isfinite(start) and math.isfinite(end) and end > start):
            raise ValueError(f"end: must be after start (start={start!r}, end={end!r})")
        starts = _float_column(bucket_start, "bucket_start", np.asarray(bucket_start).size)
        m = starts.size
        n = math.ceil((end - start) / AGG_1M_PERIOD_S - 1e-9)
        grid = start + AGG_1M_PERIOD_S * np.arange(n, dtype=np.float64)
        slot = np.floor((starts - start) / AGG_1M_PERIOD_S + 1e-9)
        inside = np.isfinite(slot) & (slot >= 0) & (slot < n)
        slot_i = slot[inside].astype(np.int64)

        def placed(values: npt.ArrayLike, name: str) -> FloatArray:
            out = np.full(n, np.nan)
            out[slot_i] = _float_column(values, name, m)[inside]
            return out

        pv = placed(pv_mean, "pv_mean")
        modes_in = _mode_array(mode_dominant, m)
        if modes_in.size != m:
            raise ValueError(f"mode_dominant: expected {m} values, got {modes_in.size}")
        modes = np.full(n, "", dtype=modes_in.dtype if modes_in.size else "<U1")
        modes[slot_i] = modes_in[inside]
        last_t = float(starts[inside].max()) + AGG_1M_PERIOD_S if slot_i.size else None
        return cls(
            grid,
            pv,
            placed(sp_mean, "sp_mean"),
            placed(op_mean, "op_mean"),
            modes,
            AGG_1M_PERIOD_S,
            "agg_1m",
            ~np.isnan(pv),
            last_t,
            int(np.count_nonzero(~np.isnan(pv))),
        )
