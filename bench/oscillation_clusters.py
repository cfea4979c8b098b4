"""Benchmark of plant-wide oscillation clusters (``/oscillation-clusters``) on influxd.

Simulates ``--loops`` loops at 1 Hz for ``--hours`` (``clpm_shared.simulation``): a tenth of
them share one 15-minute oscillation (one cluster to find: TIC-0000 disturbed by it, whose
phase wanders, the others driven by TIC-0000 through lags), a tenth with
sticky valves, the rest healthy; writes them to a private influxd 1.6, registers the loops in a
SQLite database and stores their 1-minute aggregates there (``agg_1m``, the aggregation's bucket
code).
Then times, end to end, one request as the diagnostics service runs it
(``DiagnosisRunner.clusters``) on both bases, for the same window: on the raw samples (raw
reads of ``LOOPS_PER_READ`` loops at a time, diagnosis of every loop in a worker thread,
clustering) and on the 1-minute means (what windows longer than ``DIAG_CLUSTER_RAW_MAX_H``
use), and the raw read of the same loops and window alone (``query_raw_many``), the floor of
the raw basis. Reports seconds, loops per second, the clusters found, and the loop count that
fits in the gateway's default ``DIAG_TIMEOUT_S`` (30 s) at the measured rate. Then the
scheduled path: the diagnostics service's run of the window (``precompute_clusters``, raw
samples up to ``DIAG_CLUSTER_RAW_MAX_H``) and the request it then answers (the stored run read
and serialised). Prints one JSON object.

    PYTHONPATH=. .venv/bin/python bench/oscillation_clusters.py [--loops 200] [--hours 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_diagnostics.runs import ClusterRun, DiagnosisRunner, json_safe
from clpm_shared.aggregation.buckets import BucketTable, minute_buckets
from clpm_shared.config import DatabaseSettings, InfluxSettings, TimeSeriesBackend
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import Loop
from clpm_shared.db.repositories.aggregates import AggregateRepository
from clpm_shared.simulation import LoopProfile, SimulatedLoopSpec, simulate_fleet
from clpm_shared.timeseries import Point, RawSeries
from clpm_shared.timeseries.embedded import EmbeddedStore
from clpm_shared.timeseries.influxql import InfluxQLStore
from tests.harness.servers import (
    InfluxServer,
    free_port,
    migrate,
    start_postgres,
)

BASE = datetime(2025, 1, 10, 0, 0, tzinfo=UTC)
DIAG_TIMEOUT_S = 30.0
COMMON_PERIOD_S = 900.0
WRITE_BATCH = 50_000


COMMON_DRIFT = 0.025
"""Phase wander (rad/sqrt(s)) of the common disturbance, as the synthetic fleet's."""


def fleet_specs(loops: int, common_period_s: float = COMMON_PERIOD_S) -> list[SimulatedLoopSpec]:
    """Every tenth loop shares one oscillation: TIC-0000 is disturbed by it (phase wandering
    as a real disturbance's), the others are driven by TIC-0000 through lags of 5-35 s."""
    specs = []
    for index in range(loops):
        loop_id = f"TIC-{index:04d}"
        if index == 0:
            spec = SimulatedLoopSpec(
                loop_id=loop_id,
                profile=LoopProfile.EXTERNAL_OSCILLATION,
                seed=index,
                osc_amplitude=2.0,
                osc_period_s=common_period_s,
                osc_drift=COMMON_DRIFT,
            )
        elif index % 10 == 0:
            spec = SimulatedLoopSpec(
                loop_id=loop_id, profile=LoopProfile.HEALTHY, seed=index
            ).coupled_to("TIC-0000", 20.0, 5.0 * (1 + index // 10 % 7), 10.0)
        elif index % 10 == 5:
            spec = SimulatedLoopSpec(
                loop_id=loop_id,
                profile=LoopProfile.STICKY_VALVE,
                seed=index,
                valve_s=3.0,
                valve_j=1.0,
            )
        else:
            spec = SimulatedLoopSpec(loop_id=loop_id, profile=LoopProfile.HEALTHY, seed=index)
        specs.append(spec)
    return specs


def simulation_groups(specs: list[SimulatedLoopSpec], size: int) -> list[list[SimulatedLoopSpec]]:
    """The loops sharing the common oscillation in one group (simulated together, as the
    coupling needs), the others in groups of ``size``."""
    planted = [spec for spec in specs if spec.loop_id == "TIC-0000" or spec.driven_by]
    others = [spec for spec in specs if spec not in planted]
    return [planted] + [others[i : i + size] for i in range(0, len(others), size)]


async def write_fleet(store: InfluxQLStore, specs: list[SimulatedLoopSpec], seconds: int) -> int:
    written = 0
    for group in simulation_groups(specs, 20):
        series = simulate_fleet(group, seconds)
        points = [
            Point(
                s.loop_id,
                BASE + timedelta(seconds=float(s.t[k])),
                pv=float(s.pv[k]),
                sp=float(s.sp[k]),
                op=float(s.op[k]),
                mode=str(s.mode[k]),
            )
            for s in series
            for k in range(seconds)
        ]
        for start in range(0, len(points), WRITE_BATCH):
            written += await store.write(points[start : start + WRITE_BATCH])
    return written


async def store_minute_means(
    store: InfluxQLStore,
    sessions: async_sessionmaker[AsyncSession],
    specs: list[SimulatedLoopSpec],
    start: datetime,
    seconds: int,
) -> int:
    """agg_1m of the written samples, built with the aggregation's bucket code."""
    rows = 0
    end = start + timedelta(seconds=seconds)
    for offset in range(0, len(specs), 50):
        loop_ids = [spec.loop_id for spec in specs[offset : offset + 50]]
        raw = await store.query_raw_many(loop_ids, start, end)
        async with sessions() as session, session.begin():
            repository = AggregateRepository(session)
            rows += await repository.upsert("agg_1m", minute_buckets(raw).buckets)
    return rows


def minute_means_of(specs: list[SimulatedLoopSpec], minutes: int) -> BucketTable:
    """Synthetic agg_1m rows: the fleet simulated at one sample a minute (one-sample buckets)."""
    per_minute = [replace(spec, ts=60.0, time_constant_s=900.0, ti_s=900.0) for spec in specs]
    rows = []
    for group in simulation_groups(per_minute, 200):
        if not group:
            continue
        for series in simulate_fleet(group, minutes):
            t_ns = int(BASE.timestamp()) * 1_000_000_000 + (series.t * 1e9).astype(np.int64)
            mode = np.asarray(series.mode, dtype=object)
            rows.append(RawSeries(series.loop_id, t_ns, series.pv, series.sp, series.op, mode))
    return minute_buckets(rows).buckets


async def precomputed_report(
    runner: DiagnosisRunner, start: datetime, end: datetime
) -> dict[str, Any]:
    """The scheduled run of the window (the diagnostics service's worker side) and the request
    it then answers: the stored run read and serialised as the route answers it."""
    span = end - start
    scheduled = DiagnosisRunner(
        runner.sessions,
        runner.store,
        cluster_raw_max=runner.cluster_raw_max,
        cluster_spans=(span,),
        cluster_interval=timedelta(minutes=15),
    )
    began = time.perf_counter()
    [run] = await scheduled.precompute_clusters(end)
    scheduled_s = time.perf_counter() - began
    asked_at = end + timedelta(minutes=5)  # the page asks a few minutes after the run
    began = time.perf_counter()
    stored = await scheduled.stored_clusters(asked_at - span, asked_at)
    body = json.dumps(json_safe(stored), default=str)
    served_s = time.perf_counter() - began
    assert stored is not None
    return {
        "scheduled_run_s": round(scheduled_s, 2),
        "served_request_s": round(served_s, 3),
        "answer_bytes": len(body),
        "basis": run.basis,
        **request_report(run, scheduled_s),
    }


def request_report(answer: ClusterRun, elapsed_s: float) -> dict[str, Any]:
    """Time, rates and clusters of one request (planted members: every tenth loop)."""
    return {
        "clusters_s": round(elapsed_s, 2),
        "loops_per_s": round(answer.loops_analysed / elapsed_s, 1),
        "loops_in_diag_timeout": int(DIAG_TIMEOUT_S * answer.loops_analysed / elapsed_s),
        "oscillating": answer.oscillating_loops,
        "clusters": [
            {
                "members": len(cluster.members),
                "period_s": round(cluster.period_s, 1),
                "members_oscillating_externally": sum(
                    int(member.split("-")[1]) % 10 == 0 for member in cluster.member_ids
                ),
                "likely_source": cluster.likely_source,
            }
            for cluster in answer.clusters
        ],
    }


async def measure_means_on_postgres(arguments: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Only the minute-means basis, on PostgreSQL, for plants too large to simulate at 1 Hz."""
    postgres = await asyncio.to_thread(start_postgres, "clpm-bench-clusters-pg-")
    try:
        postgres.psql('CREATE DATABASE "bench"')
        migrate(postgres.url("bench"))
        engine = create_engine(DatabaseSettings(database_url=postgres.url("bench")))
        sessions = create_session_factory(engine)
        try:
            specs = fleet_specs(arguments.loops, arguments.common_period)
            minutes = int(arguments.hours * 60)
            async with sessions() as session, session.begin():
                session.add_all(Loop(loop_id=spec.loop_id, unit="U1") for spec in specs)
            rows = 0
            # bounded memory: 200 loops at a time, the planted (coupled) loops together
            for group in simulation_groups(specs, 200):
                table = minute_means_of(group, minutes)
                async with sessions() as session, session.begin():
                    rows += await AggregateRepository(session).upsert("agg_1m", table)
                del table
            unused_store = EmbeddedStore(root / "unused.db")  # the means basis reads no raw data
            runner = DiagnosisRunner(sessions, unused_store, cluster_raw_max=timedelta(0))
            results: dict[str, Any] = {"agg_1m_rows": rows}
            start, end = BASE, BASE + timedelta(minutes=minutes)
            for repeat in range(arguments.repeats):
                began = time.perf_counter()
                answer = await runner.clusters(start, end)
                elapsed = time.perf_counter() - began
                results[f"run_{repeat + 1}"] = {"minute_means": request_report(answer, elapsed)}
            results["precomputed"] = await precomputed_report(runner, start, end)
            await unused_store.close()
            return results
        finally:
            await engine.dispose()
    finally:
        postgres.stop()
        shutil.rmtree(postgres.workdir, ignore_errors=True)


async def measure(arguments: argparse.Namespace, root: Path) -> dict[str, Any]:
    influx = InfluxServer("influxd", free_port(), root / "influx", rpc_port=free_port())
    influx.workdir.mkdir()
    influx.write_config()
    influx.start()
    try:
        influx.create_database("bench")
        database_url = f"sqlite+aiosqlite:///{root / 'clpm.db'}"
        migrate(database_url)
        store = InfluxQLStore(
            InfluxSettings(
                timeseries_backend=TimeSeriesBackend.INFLUXQL,
                influxdb_url=influx.url,
                influxdb_database="bench",
            )
        )
        engine = create_engine(DatabaseSettings(database_url=database_url))
        sessions = create_session_factory(engine)
        try:
            specs = fleet_specs(arguments.loops, arguments.common_period)
            seconds = int(arguments.hours * 3600)
            began = time.perf_counter()
            samples = await write_fleet(store, specs, seconds)
            write_s = time.perf_counter() - began
            async with sessions() as session:
                session.add_all(Loop(loop_id=spec.loop_id, unit="U1") for spec in specs)
                await session.commit()
            start, end = BASE, BASE + timedelta(seconds=seconds)
            minute_rows = await store_minute_means(store, sessions, specs, BASE, seconds)
            on_raw = DiagnosisRunner(sessions, store, cluster_raw_max=timedelta(days=7))
            on_means = DiagnosisRunner(sessions, store, cluster_raw_max=timedelta(0))
            results: dict[str, Any] = {
                "samples_written": samples,
                "write_s": round(write_s, 1),
                "agg_1m_rows": minute_rows,
            }
            loop_ids = [spec.loop_id for spec in specs]
            for repeat in range(arguments.repeats):
                run: dict[str, Any] = {}
                if not arguments.no_raw_on_demand:
                    began = time.perf_counter()
                    raw = await store.query_raw_many(loop_ids, start, end)
                    run["raw_read_alone_s"] = round(time.perf_counter() - began, 2)
                    run["raw_samples"] = sum(len(series) for series in raw.values())
                    del raw
                for basis, runner in (("raw", on_raw), ("minute_means", on_means)):
                    if basis == "raw" and arguments.no_raw_on_demand:
                        continue
                    began = time.perf_counter()
                    answer = await runner.clusters(start, end)
                    elapsed = time.perf_counter() - began
                    assert answer.basis == basis
                    run[basis] = request_report(answer, elapsed)
                results[f"run_{repeat + 1}"] = run
            results["precomputed"] = await precomputed_report(on_raw, start, end)
            return results
        finally:
            await store.close()
            await engine.dispose()
    finally:
        influx.stop()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=200, help="simulated loops")
    parser.add_argument("--hours", type=float, default=2.0, help="window (the web page's default)")
    parser.add_argument("--repeats", type=int, default=2, help="measured requests")
    parser.add_argument(
        "--common-period",
        type=float,
        default=COMMON_PERIOD_S,
        help="period (s) of the oscillation every tenth loop shares; the coherence needs ten "
        "periods in the window",
    )
    parser.add_argument(
        "--no-raw-on-demand",
        action="store_true",
        help="skip the on-demand request on raw samples and the raw read alone (minutes and "
        "gigabytes for thousands of loops)",
    )
    parser.add_argument(
        "--means-on-postgres",
        action="store_true",
        help="only the minute-means basis, on PostgreSQL, from synthetic agg_1m rows (no raw "
        "samples: for plants of thousands of loops over days)",
    )
    arguments = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "oscillation-clusters",
        "loops": arguments.loops,
        "hours": arguments.hours,
        "cpu_count": os.cpu_count(),
        "uptime_before": uptime(),
    }
    root = Path(tempfile.mkdtemp(prefix="clpm-bench-clusters-"))
    try:
        run = measure_means_on_postgres if arguments.means_on_postgres else measure
        report["results"] = asyncio.run(run(arguments, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report["uptime_after"] = uptime()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
