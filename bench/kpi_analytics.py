"""Benchmark of clpm_shared.analytics.compute_kpis: ms per loop, time per KPI, 2 processes.

Simulates N loops x one 15-minute window at 1 Hz (900 samples) with a mix of behaviours
(noise, oscillation, drift, set-point steps, manual periods, saturation), then measures:

* ``compute_kpis`` per loop (single process; wall and CPU time, since the machine is shared)
  and the share of time per KPI (each building block timed on its own over the same loops);
* raw samples → ``LoopWindow.from_raw`` (grid building) per loop;
* the same loops through a pool of 2 processes (wall time), extrapolated to 10,000 loops;
* two naive baselines in the same run on a subset of loops: oscillation via pandas
  ``Series.autocorr`` lag by lag, and the Harris index with a pandas ``shift`` regressor
  matrix solved by SVD least squares (``numpy.linalg.lstsq``).

Run: ``PYTHONPATH=. .venv/bin/python bench/kpi_analytics.py [--loops 1000]``; prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from clpm_shared.analytics import LoopConfig, LoopWindow, compute_kpis, harris_index
from clpm_shared.analytics.control_error import error_statistics
from clpm_shared.analytics.data_quality import assess_data_quality
from clpm_shared.analytics.harris import harris_delay
from clpm_shared.analytics.health import health_score
from clpm_shared.analytics.kpis import pv_span
from clpm_shared.analytics.op_movement import op_reversals_per_hour, op_travel_per_hour
from clpm_shared.analytics.oscillation import detect_oscillation
from clpm_shared.analytics.saturation import saturation_shares
from clpm_shared.analytics.service_factor import summarise_modes
from clpm_shared.analytics.signal_preparation import fill_gaps
from clpm_shared.analytics.step_response import find_sp_steps

N_SAMPLES = 900
T0 = 1_700_000_000.0
LOOP_TYPES = ("flow", "pressure", "level", "temperature", "other")


def simulate_raw(index: int) -> dict[str, Any]:
    """Irregular-ish raw samples of one loop (1 Hz with jitter and dropped samples)."""
    rng = np.random.default_rng(index)
    k = np.arange(N_SAMPLES, dtype=np.float64)
    behaviour = index % 5
    sp = np.full(N_SAMPLES, 50.0)
    noise = rng.standard_normal(N_SAMPLES)
    if behaviour == 0:  # well-behaved: white-ish noise
        pv = sp + 0.5 * noise
    elif behaviour == 1:  # oscillating
        period = rng.uniform(30.0, 200.0)
        pv = sp + 2.0 * np.sin(2 * np.pi * k / period) + 0.3 * noise
    elif behaviour == 2:  # slow drift (random walk)
        pv = sp + np.cumsum(0.1 * noise)
    elif behaviour == 3:  # set-point step with a first-order response
        at = int(rng.integers(100, 500))
        sp[at:] = 60.0
        response = np.where(k >= at, 10.0 * (1 - np.exp(-(k - at) / 15.0)), 0.0)
        pv = 50.0 + response + 0.2 * noise
    else:  # AR(1) disturbance, partly in manual
        pv = sp + 0.02 * np.cumsum(noise) + 0.3 * noise
    op = np.clip(40.0 + 0.5 * (sp - pv) + np.cumsum(0.05 * rng.standard_normal(N_SAMPLES)), 0, 100)
    if index % 7 == 0:
        op[200:320] = 100.0  # saturated stretch
    modes = np.full(N_SAMPLES, "AUT", dtype="<U3")
    if behaviour == 4:
        modes[: int(rng.integers(0, 300))] = "MAN"
    t = T0 + k + rng.uniform(-0.2, 0.2, N_SAMPLES)
    keep = rng.random(N_SAMPLES) > 0.01  # ~1 % dropped samples
    return {
        "t": t[keep],
        "pv": pv[keep],
        "sp": sp[keep],
        "op": op[keep],
        "mode": modes[keep],
        "loop_type": LOOP_TYPES[index % 5],
    }


def build_window(raw: dict[str, Any]) -> LoopWindow:
    return LoopWindow.from_raw(
        raw["t"],
        raw["pv"],
        raw["sp"],
        raw["op"],
        raw["mode"],
        start=T0,
        end=T0 + N_SAMPLES,
        ts=1.0,
    )


def config_for(raw: dict[str, Any]) -> LoopConfig:
    return LoopConfig(loop_type=raw["loop_type"], pv_lo=0.0, pv_hi=100.0)


def per_kpi_seconds(windows: list[LoopWindow], configs: list[LoopConfig]) -> dict[str, float]:
    """Time each building block of compute_kpis on its own over all loops."""
    prepared = []
    for window, config in zip(windows, configs, strict=True):
        modes = summarise_modes(window.mode, window.pv, config.normal_modes)
        span, _ = pv_span(window, config)
        e = window.sp - window.pv
        prepared.append((window, config, modes.in_service, span or 1.0, e))
    results = [compute_kpis(w, c) for w, c in zip(windows, configs, strict=True)]

    def harris(w: LoopWindow, c: LoopConfig, ins: Any, e: Any) -> None:
        filled = fill_gaps(np.where(ins, e, np.nan))
        if filled is not None:
            with contextlib.suppress(ValueError):
                harris_index(filled, harris_delay(c.dead_time_s, w.ts)[0])

    blocks: dict[str, Callable[[LoopWindow, LoopConfig, Any, float, Any], object]] = {
        "service_factor_and_modes": lambda w, c, ins, s, e: summarise_modes(
            w.mode, w.pv, c.normal_modes
        ),
        "pv_span": lambda w, c, ins, s, e: pv_span(w, c),
        "saturation": lambda w, c, ins, s, e: saturation_shares(
            w.op, ins, c.op_lo, c.op_hi, c.effective_sat_margin
        ),
        "error_stats_iae_vi": lambda w, c, ins, s, e: error_statistics(e, ins, s, w.ts, w.hours),
        "harris_index": lambda w, c, ins, s, e: harris(w, c, ins, e),
        "op_travel": lambda w, c, ins, s, e: op_travel_per_hour(w.op, c.op_span, w.hours),
        "op_reversals": lambda w, c, ins, s, e: op_reversals_per_hour(
            w.op, c.effective_deadband, w.hours
        ),
        "oscillation": lambda w, c, ins, s, e: detect_oscillation(np.where(ins, e, np.nan), w.ts),
        "sp_steps": lambda w, c, ins, s, e: find_sp_steps(w.t, w.sp, w.pv, s, 60.0),
        "data_quality": lambda w, c, ins, s, e: assess_data_quality(
            w, c.pv_lo, c.pv_hi, c.op_lo, c.op_hi
        ),
    }
    seconds: dict[str, float] = {}  # CPU seconds: robust to other work on the machine
    for name, block in blocks.items():
        started = time.process_time()
        with np.errstate(all="ignore"):
            for window, config, in_service, span, e in prepared:
                block(window, config, in_service, span, e)
        seconds[name] = time.process_time() - started
    started = time.process_time()
    for result, config in zip(results, configs, strict=True):
        health_score(result, config)
    seconds["health_score"] = time.process_time() - started
    return seconds


def naive_oscillation_period(x: np.ndarray) -> float | None:
    """Straightforward ACF: pandas autocorr lag by lag, then zero crossings."""
    series = pd.Series(x).interpolate(limit_direction="both")
    series = series - series.mean()
    acf = np.array([series.autocorr(lag) for lag in range(1, len(series) // 2)])
    crossings = np.flatnonzero(np.signbit(acf[1:]) != np.signbit(acf[:-1]))
    if crossings.size < 4:
        return None
    return float(2 * np.diff(crossings[:11]).mean())


def naive_harris(y: np.ndarray, delay: int, order: int = 20) -> float:
    """Straightforward Harris: pandas shift() regressors, SVD least squares, ψ by recursion."""
    frame = pd.DataFrame({"y": pd.Series(y) - np.mean(y)})
    for lag in range(1, order + 1):
        frame[f"lag{lag}"] = frame["y"].shift(lag)
    frame = frame.dropna()
    regressors = frame[[f"lag{lag}" for lag in range(1, order + 1)]].to_numpy()
    a, *_ = np.linalg.lstsq(regressors, frame["y"].to_numpy(), rcond=None)
    residual = frame["y"].to_numpy() - regressors @ a
    psi = [1.0]
    for j in range(1, delay):
        psi.append(sum(a[i - 1] * psi[j - i] for i in range(1, min(j, order) + 1)))
    return float(np.var(residual) * np.sum(np.square(psi)) / np.var(frame["y"].to_numpy()))


def compute_chunk(indices: list[int]) -> tuple[float, float, float]:
    """Worker of the 2-process run: simulates and grids its loops first (untimed), then
    returns the monotonic start and end of its compute_kpis loop (CLOCK_MONOTONIC is shared
    by all processes, so the wall time is max(end) - min(start))."""
    prepared = []
    for index in indices:
        raw = simulate_raw(index)
        prepared.append((build_window(raw), config_for(raw)))
    started, cpu_started = time.perf_counter(), time.process_time()
    for window, config in prepared:
        compute_kpis(window, config)
    return started, time.perf_counter(), time.process_time() - cpu_started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=1000)
    parser.add_argument("--naive-loops", type=int, default=50)
    args = parser.parse_args()
    n = args.loops

    raws = [simulate_raw(i) for i in range(n)]
    configs = [config_for(raw) for raw in raws]

    started = time.perf_counter()
    windows = [build_window(raw) for raw in raws]
    grid_s = time.perf_counter() - started

    compute_kpis(windows[0], configs[0])  # warm-up (imports, caches)
    started, cpu_started = time.perf_counter(), time.process_time()
    results = [compute_kpis(w, c) for w, c in zip(windows, configs, strict=True)]
    kpi_s = time.perf_counter() - started
    kpi_cpu_s = time.process_time() - cpu_started

    blocks = per_kpi_seconds(windows, configs)
    blocks_total = sum(blocks.values())
    dominant = max(blocks, key=lambda name: blocks[name])
    # shares of the compute_kpis time; the rest is assembling the result (and the cache
    # effects of running each block alone over all loops, which makes blocks look cheaper)
    share = {name: round(100 * s / kpi_cpu_s, 1) for name, s in blocks.items()}
    rest = max(kpi_cpu_s - blocks_total, 0.0)
    share["result_assembly_and_other"] = round(100 * rest / kpi_cpu_s, 1)

    # the same loops split over 2 processes
    chunks = [list(range(i, n, 2)) for i in range(2)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        spans = pool.map(compute_chunk, chunks, chunksize=1)
    pool_kpi_s = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
    pool_cpu_s = max(cpu for _, _, cpu in spans)  # the busier worker's CPU time

    m = min(args.naive_loops, n)
    started = time.perf_counter()
    for window in windows[:m]:
        naive_oscillation_period(window.sp - window.pv)
    naive_osc_s = time.perf_counter() - started
    started = time.perf_counter()
    for window in windows[:m]:
        detect_oscillation(window.sp - window.pv, window.ts)
    fast_osc_s = time.perf_counter() - started

    harris_inputs = []
    for window in windows[:m]:
        filled = fill_gaps(window.sp - window.pv)
        if filled is not None:
            harris_inputs.append(filled)
    started = time.perf_counter()
    for y in harris_inputs:
        naive_harris(y, 3)
    naive_harris_s = time.perf_counter() - started
    started = time.perf_counter()
    for y in harris_inputs:
        harris_index(y, 3)
    fast_harris_s = time.perf_counter() - started

    statuses: dict[str, int] = {}
    for result in results:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    ms_per_loop = 1000 * kpi_s / n
    report = {
        "loops": n,
        "samples_per_loop": N_SAMPLES,
        "compute_kpis_ms_per_loop": round(ms_per_loop, 3),
        "compute_kpis_cpu_ms_per_loop": round(1000 * kpi_cpu_s / n, 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "target_ms_per_loop": 2.0,
        "grid_build_ms_per_loop": round(1000 * grid_s / n, 3),
        "share_of_time_per_kpi_pct": share,
        "dominant_kpi": dominant,
        "per_kpi_cpu_ms_per_loop": {name: round(1000 * s / n, 4) for name, s in blocks.items()},
        "extrapolated_10k_loops_1_process_s": round(ms_per_loop * 10, 1),
        "extrapolated_10k_loops_1_idle_core_s": round(kpi_cpu_s * 10_000 / n, 1),
        "two_processes_wall_s": round(pool_kpi_s, 3),
        "two_processes_ms_per_loop": round(1000 * pool_kpi_s / n, 3),
        "extrapolated_10k_loops_2_processes_s": round(pool_kpi_s * 10_000 / n, 1),
        "two_processes_busier_worker_cpu_s": round(pool_cpu_s, 3),
        "extrapolated_10k_loops_2_idle_cores_s": round(pool_cpu_s * 10_000 / n, 1),
        "oscillating_loops": sum(1 for r in results if r.oscillating),
        "status_counts": statuses,
        "baseline": {
            "loops": m,
            "naive_pandas_acf_oscillation_ms": round(1000 * naive_osc_s / m, 3),
            "detect_oscillation_ms": round(1000 * fast_osc_s / m, 3),
            "oscillation_speedup": round(naive_osc_s / fast_osc_s, 1),
            "naive_pandas_lstsq_harris_ms": round(1000 * naive_harris_s / len(harris_inputs), 3),
            "harris_index_ms": round(1000 * fast_harris_s / len(harris_inputs), 3),
            "harris_speedup": round(naive_harris_s / fast_harris_s, 1),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
