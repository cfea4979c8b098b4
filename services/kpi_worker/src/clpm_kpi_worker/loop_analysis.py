"""Turn one loop's data for one window into kpi_results / apc_attainment rows (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clpm_kpi_worker.windows import KpiWindow
from clpm_shared.aggregation.buckets import BucketTable
from clpm_shared.analytics import KpiResult, LoopConfig, LoopWindow, apc_attainment, compute_kpis
from clpm_shared.timeseries import RawSeries

RAW_SAMPLE_PERIOD_S = 1.0
"""Grid period for raw data (the simulator and typical DCS historians sample at 1 s)."""


@dataclass(frozen=True)
class LoopAnalysis:
    """KPI row (and APC row for APC loops) of one loop and window, ready to upsert."""

    loop_id: str
    window: KpiWindow
    kpis: KpiResult
    apc: dict[str, Any] | None

    def kpi_row(self) -> dict[str, Any]:
        return {
            "loop_id": self.loop_id,
            "window_start": self.window.start,
            "window_end": self.window.end,
            **self.kpis.to_row(),
        }

    def apc_row(self) -> dict[str, Any] | None:
        if self.apc is None:
            return None
        return {
            "loop_id": self.loop_id,
            "window_start": self.window.start,
            "window_end": self.window.end,
            **self.apc,
        }


def loop_config_from_row(row: Mapping[str, Any] | None) -> LoopConfig:
    """LoopConfig from a loop_config row; a missing row or NULL column means the default.

    An invalid stored value (e.g. op_hi <= op_lo) falls back to the defaults rather than
    stopping the worker; the caller logs it.
    """
    return LoopConfig.from_mapping(row or {})


def window_from_raw(
    series: RawSeries, window: KpiWindow, ts: float = RAW_SAMPLE_PERIOD_S
) -> LoopWindow:
    """Put raw samples on the ``ts`` grid of ``window`` by last-value hold (KPI_SPEC Inputs)."""
    t = series.t_ns.astype(np.float64) / 1e9
    unknown = series.mode == None  # noqa: E711 - elementwise comparison of an object array
    mode = np.where(unknown, "", series.mode).astype(np.str_)  # fixed-width: no per-item loop
    return LoopWindow.from_raw(
        t,
        series.pv,
        series.sp,
        series.op,
        mode,
        start=window.start.timestamp(),
        end=window.end.timestamp(),
        ts=ts,
    )


def window_from_buckets(buckets: BucketTable, window: KpiWindow) -> LoopWindow:
    """Window of one loop's 1-minute aggregate means (``source = "agg_1m"``: fast KPIs None)."""
    return LoopWindow.from_agg_1m(
        buckets.bucket_ns.astype(np.float64) / 1e9,
        buckets.stats["pv_mean"],
        buckets.stats["sp_mean"],
        buckets.stats["op_mean"],
        ["" if m is None else str(m) for m in buckets.mode_dominant],
        start=window.start.timestamp(),
        end=window.end.timestamp(),
    )


def analyse(loop_id: str, window: KpiWindow, data: LoopWindow, config: LoopConfig) -> LoopAnalysis:
    """compute_kpis (and apc_attainment for APC loops) on one prepared window."""
    kpis = compute_kpis(data, config)
    apc = apc_attainment(data, config).to_row() if config.apc_enabled else None
    return LoopAnalysis(loop_id, window, kpis, apc)


@dataclass(frozen=True)
class AnalysisJob:
    """One loop's input, sent to an analysis worker process: its raw samples, or (when it has
    none) the window already built from its 1-minute aggregates."""

    loop_id: str
    window: KpiWindow
    config: LoopConfig
    raw: RawSeries | None = None
    data: LoopWindow | None = None

    def loop_window(self) -> LoopWindow:
        """The grid the KPIs are computed on (built here, in the worker, from raw samples)."""
        if self.raw is not None:
            return window_from_raw(self.raw, self.window)
        if self.data is None:
            raise ValueError(f"{self.loop_id}: a job needs raw samples or a prepared window")
        return self.data


def analyse_batch(jobs: Sequence[AnalysisJob]) -> list[LoopAnalysis | dict[str, str]]:
    """Build each loop's window and analyse it (runs in a worker process); a failure is
    returned, not raised, as ``{"loop_id", "error"}`` so one bad loop never stops the others."""
    out: list[LoopAnalysis | dict[str, str]] = []
    for job in jobs:
        try:
            out.append(analyse(job.loop_id, job.window, job.loop_window(), job.config))
        except Exception as exc:
            out.append({"loop_id": job.loop_id, "error": f"{type(exc).__name__}: {exc}"})
    return out
