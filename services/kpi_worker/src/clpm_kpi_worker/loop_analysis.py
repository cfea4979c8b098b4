"""Turn one loop's data for one window into kpi_results / apc_attainment / diagnostic_results
rows (pure): KPIs, the diagnosis of every loop, and the window's verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from clpm_kpi_worker.windows import KpiWindow
from clpm_shared.aggregation.buckets import BucketTable
from clpm_shared.analytics import KpiResult, LoopConfig, LoopWindow, apc_attainment, compute_kpis
from clpm_shared.analytics.diagnosis import LoopDiagnosis, OscillationSummary, diagnose_loop
from clpm_shared.analytics.verdict import WindowVerdict, window_verdict
from clpm_shared.timeseries import RawSeries

RAW_SAMPLE_PERIOD_S = 1.0
"""Grid period for raw data (the simulator and typical DCS historians sample at 1 s)."""


@dataclass(frozen=True)
class LoopAnalysis:
    """KPI row (with the window's verdict), APC row and findings of one loop and window."""

    loop_id: str
    window: KpiWindow
    kpis: KpiResult
    apc: dict[str, Any] | None
    verdict: WindowVerdict | None = None
    diagnosis: LoopDiagnosis | None = None

    @property
    def oscillation(self) -> OscillationSummary | None:
        """The loop's oscillation, for the plant-wide clusters of the window."""
        return self.diagnosis.oscillation if self.diagnosis is not None else None

    def kpi_row(self) -> dict[str, Any]:
        row = {
            "loop_id": self.loop_id,
            "window_start": self.window.start,
            "window_end": self.window.end,
            **self.kpis.to_row(),
        }
        verdict = self.verdict
        if verdict is not None:
            row["status"] = verdict.status
            row["health_score"] = verdict.health_score
            row["main_problem"] = verdict.main_problem
            row["sub_scores"] = dict(verdict.sub_scores) or None
            if verdict.not_assessed_reason is not None:
                row["reasons"] = {**(row["reasons"] or {}), "status": verdict.not_assessed_reason}
        return row

    def findings(self) -> list[dict[str, Any]]:
        """The reported findings (root cause first), as diagnostic_results wants them."""
        if self.verdict is None:
            return []
        return [finding.to_dict() for finding in self.verdict.findings]

    def apc_row(self) -> dict[str, Any] | None:
        if self.apc is None:
            return None
        return {
            "loop_id": self.loop_id,
            "window_start": self.window.start,
            "window_end": self.window.end,
            **self.apc,
        }

    def with_diagnosis(
        self, diagnosis: LoopDiagnosis, config: LoopConfig, min_completeness: float
    ) -> LoopAnalysis:
        """The same window judged on another diagnosis (e.g. with the plant-wide context)."""
        verdict = window_verdict(self.kpis, diagnosis, config, min_completeness=min_completeness)
        return replace(self, verdict=verdict, diagnosis=diagnosis)


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


def analyse(
    loop_id: str,
    window: KpiWindow,
    data: LoopWindow,
    config: LoopConfig,
    min_completeness: float = 0.8,
) -> LoopAnalysis:
    """compute_kpis, the diagnosis (every loop with enough data), the window's verdict, and
    apc_attainment for APC loops, on one prepared window."""
    kpis = compute_kpis(data, config)
    diagnosis = (
        diagnose_loop(data, config, kpis, loop_id=loop_id)
        if kpis.samples > 0 and (kpis.dq_completeness or 0.0) >= min_completeness
        else None  # offline or not_assessed: nothing to diagnose
    )
    verdict = window_verdict(kpis, diagnosis, config, min_completeness=min_completeness)
    apc = apc_attainment(data, config).to_row() if config.apc_enabled else None
    return LoopAnalysis(loop_id, window, kpis, apc, verdict, diagnosis)


@dataclass(frozen=True)
class AnalysisJob:
    """One loop's input, sent to an analysis worker process: its raw samples, or (when it has
    none) the window already built from its 1-minute aggregates."""

    loop_id: str
    window: KpiWindow
    config: LoopConfig
    raw: RawSeries | None = None
    data: LoopWindow | None = None
    min_completeness: float = 0.8

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
            out.append(
                analyse(
                    job.loop_id, job.window, job.loop_window(), job.config, job.min_completeness
                )
            )
        except Exception as exc:
            out.append({"loop_id": job.loop_id, "error": f"{type(exc).__name__}: {exc}"})
    return out
