"""End-to-end KPI worker cycle: N loops x one 15-min window at 1 Hz, influxd + PostgreSQL.

Starts a private influxd 1.6 and PostgreSQL (as the test harness does), writes ``--loops``
simulated closed loops (mixed behaviour profiles) for one KPI window, registers them, then
times :meth:`KpiWorker.run_range` for that window: raw read (chunked, next chunk read while the
current one is analysed), KPIs + diagnosis of every loop + window verdict in worker processes,
upsert into kpi_results and diagnostic_results, the plant-wide oscillation clusters. Baseline in
the same run: the straightforward path — one ``query_raw`` per loop, analysed in-process,
one row written at a time — on a subset of loops, extrapolated.

With ``--assessment-days D`` it then fills D days of synthetic KPI windows (random status,
health, root cause and its finding) for every loop before the cycle's window and times
:meth:`KpiWorker.rate_periods` — the shift, day and week ratings (and their previous periods)
of every loop summed in SQL, as after each cycle. Prints JSON.

    PYTHONPATH=. .venv/bin/python bench/kpi_worker_cycle.py --loops 10000 --assessment-days 14
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.process_cpu import cpu_snapshot, cpu_spent, server_pid
from clpm_kpi_worker.loop_analysis import analyse, window_from_raw
from clpm_kpi_worker.windows import KpiWindow
from clpm_kpi_worker.worker import KpiWorker
from clpm_shared.analytics import LoopConfig
from clpm_shared.config import InfluxSettings, KpiSettings, TimeSeriesBackend
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.repositories import LoopRepository
from clpm_shared.db.repositories.kpis_write import KpiWriteRepository
from clpm_shared.simulation import LoopProfile, SimulatedLoopSpec, simulate_fleet
from clpm_shared.timeseries import Point
from clpm_shared.timeseries.influxql import InfluxQLStore
from tests.harness.servers import InfluxServer, PostgresServer, free_port, migrate, start_postgres

START = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
WINDOW = KpiWindow(START, START + timedelta(minutes=15))
SAMPLES = 15 * 60


def _fleet_points(n_loops: int, seed: int) -> tuple[list[str], list[list[Point]]]:
    profiles = list(LoopProfile)
    specs = [
        SimulatedLoopSpec.for_profile(f"FIC{i:05d}", profiles[i % len(profiles)], seed=seed + i)
        for i in range(n_loops)
    ]
    batches: list[list[Point]] = []
    for offset in range(0, n_loops, 500):
        series = simulate_fleet(specs[offset : offset + 500], SAMPLES)
        batch: list[Point] = []
        for spec, s in zip(specs[offset : offset + 500], series, strict=True):
            for k in range(SAMPLES):
                batch.append(
                    Point(
                        spec.loop_id,
                        START + timedelta(seconds=float(s.t[k])),
                        float(s.pv[k]),
                        float(s.sp[k]),
                        float(s.op[k]),
                        str(s.mode[k]),
                    )
                )
        batches.append(batch)
    return [spec.loop_id for spec in specs], batches


async def _run(
    args: argparse.Namespace, influx: InfluxServer, pg: PostgresServer
) -> dict[str, object]:
    influx.create_database("bench")
    database = pg.create_database("bench")
    url = pg.url(database)
    settings = InfluxSettings(
        timeseries_backend=TimeSeriesBackend.INFLUXQL,
        influxdb_url=influx.url,
        influxdb_bucket="bench",
    )
    store = InfluxQLStore(settings)
    started = time.perf_counter()
    loop_ids, batches = _fleet_points(args.loops, args.seed)
    simulate_s = time.perf_counter() - started
    started = time.perf_counter()
    for batch in batches:
        await store.write(batch)
    write_s = time.perf_counter() - started
    del batches
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    async with sessions() as session, session.begin():
        await LoopRepository(session).register_discovered(loop_ids)

    worker = KpiWorker(
        KpiSettings(kpi_max_concurrency=args.concurrency),
        sessions,
        store,
        chunk_size=args.chunk_size,
    )
    parties = {"all": os.getpid(), "influxd": server_pid(influx), "postgres": server_pid(pg)}
    cpu_before = cpu_snapshot(parties, {"bench_main": os.getpid()})
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    stats = await worker.run_range(WINDOW.start, WINDOW.end)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cycle_s = time.perf_counter() - started
    cpu = cpu_spent(cpu_before, cpu_snapshot(parties, {"bench_main": os.getpid()}))
    cpu["analysis_processes"] = round(
        cpu.pop("all") - cpu["bench_main"] - cpu["influxd"] - cpu["postgres"], 2
    )
    worker.close()
    assessment = (
        await _rate_periods(worker, pg, database, loop_ids, args.assessment_days)
        if args.assessment_days
        else None
    )

    # baseline: one query per loop, analysed in-process, one upsert per loop
    subset = loop_ids[: args.baseline_loops]
    started = time.perf_counter()
    for loop_id in subset:
        page = await store.query_raw(loop_id, WINDOW.start - timedelta(seconds=5), WINDOW.end)
        analysis = analyse(loop_id, WINDOW, window_from_raw(page.series, WINDOW), LoopConfig())
        async with sessions() as session, session.begin():
            await KpiWriteRepository(session).upsert_kpis([analysis.kpi_row()])
    baseline_s = (time.perf_counter() - started) * len(loop_ids) / len(subset)

    await store.close()
    await engine.dispose()
    return {
        "loops": args.loops,
        "raw_lines": args.loops * SAMPLES,
        "simulate_s": round(simulate_s, 1),
        "write_s": round(write_s, 1),
        "write_points_per_s": round(args.loops * SAMPLES * 3 / write_s),
        "chunk_size": args.chunk_size,
        "cycle_s": round(cycle_s, 2),
        "cycle_ms_per_loop": round(cycle_s * 1000 / args.loops, 2),
        "cycle_raw_lines_per_s": round(args.loops * SAMPLES / cycle_s),
        "cycle_stats": stats.as_dict(),
        "assessment": assessment,
        "cycle_cpu_s": cpu,
        "cycle_cpu_us_per_raw_line": {
            name: round(seconds * 1e6 / (args.loops * SAMPLES), 2) for name, seconds in cpu.items()
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "baseline_per_loop_sequential_s_extrapolated": round(baseline_s, 1),
        "baseline_loops_measured": len(subset),
        "speedup_vs_baseline": round(baseline_s / cycle_s, 1),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }


SYNTHETIC_WINDOWS = """
INSERT INTO kpi_results (loop_id, window_start, window_end, computed_at, source, samples,
                         status, health_score, main_problem)
SELECT loop_id, w, w + interval '15 minutes', now(), 'raw', 900,
       CASE WHEN r < 0.05 THEN 'not_assessed' WHEN h >= 80 THEN 'good'
            WHEN h >= 60 THEN 'fair' ELSE 'poor' END,
       CASE WHEN r < 0.05 THEN NULL ELSE h END,
       CASE WHEN r >= 0.05 AND h < 80 THEN (ARRAY['stiction', 'saturation',
            'aggressive_tuning', 'sensor_noise'])[1 + abs(hashtext(loop_id)) % 4] END
FROM (SELECT loop_id, w, random() AS r, 30 + 70 * random() AS h
      FROM loops, generate_series(timestamptz '{first}', timestamptz '{last}',
                                  interval '15 minutes') AS w) AS s
ON CONFLICT (loop_id, window_start) DO NOTHING;
INSERT INTO diagnostic_results (loop_id, window_start, category, window_end, created_at,
                                severity, confidence, evidence, recommendation, trigger)
SELECT loop_id, window_start, main_problem, window_end, now(), random(), 0.8, '{{}}'::jsonb,
       '-', 'kpi_cycle'
FROM kpi_results WHERE main_problem IS NOT NULL AND window_start < timestamptz '{end}'
ON CONFLICT DO NOTHING;
ANALYZE kpi_results; ANALYZE diagnostic_results;
"""
"""Synthetic windows of every loop (bench set-up through psql, like the other benches)."""


async def _rate_periods(
    worker: KpiWorker, pg: PostgresServer, database: str, loop_ids: list[str], days: int
) -> dict[str, object]:
    """Fill ``days`` of windows before the cycle's window, then time the period ratings."""
    first = WINDOW.start - timedelta(days=days)
    last = WINDOW.start - timedelta(minutes=15)
    started = time.perf_counter()
    pg.psql(
        SYNTHETIC_WINDOWS.format(
            first=first.isoformat(), last=last.isoformat(), end=WINDOW.start.isoformat()
        ),
        database=database,
    )
    fill_s = time.perf_counter() - started
    rows = int(pg.psql("SELECT count(*) FROM kpi_results", database=database))
    findings = int(pg.psql("SELECT count(*) FROM diagnostic_results", database=database))
    runs = [await worker.rate_periods(loop_ids, WINDOW.end) for _ in range(2)]
    rated = int(pg.psql("SELECT count(*) FROM loop_assessments", database=database))
    return {
        "days": days,
        "kpi_rows": rows,
        "finding_rows": findings,
        "fill_s": round(fill_s, 1),
        "rate_periods_s": [round(run, 2) for run in runs],
        "loop_assessment_rows": rated,
        "ms_per_loop": round(min(runs) * 1000 / len(loop_ids), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=1000, help="number of loops (10000 = target)")
    parser.add_argument("--concurrency", type=int, default=5, help="KPI_MAX_CONCURRENCY")
    parser.add_argument("--baseline-loops", type=int, default=200)
    parser.add_argument("--chunk-size", type=int, default=250, help="loops read per chunk")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", help="write a cProfile of the bench process's cycle here")
    parser.add_argument(
        "--assessment-days",
        type=int,
        default=0,
        help="days of synthetic KPI windows per loop, then time the period ratings (14: a week "
        "and the week before it)",
    )
    args = parser.parse_args()
    influx_dir = Path(tempfile.mkdtemp(prefix="bench-influx-"))
    influx = InfluxServer("influxd", free_port(), influx_dir, rpc_port=free_port())
    influx.write_config()
    pg: PostgresServer | None = None
    try:
        influx.start()
        pg = start_postgres("bench-pg-")
        pg.psql(f'CREATE DATABASE "{pg.template}"')
        migrate(pg.url(pg.template))
        print(json.dumps(asyncio.run(_run(args, influx, pg)), indent=2))
    finally:
        influx.stop()
        shutil.rmtree(influx_dir, ignore_errors=True)
        if pg is not None:
            pg.stop()
            shutil.rmtree(pg.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
