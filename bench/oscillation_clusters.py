"""Benchmark of plant-wide oscillation clusters (``/oscillation-clusters``) on influxd.

Simulates ``--loops`` loops at 1 Hz for ``--hours`` (``clpm_shared.simulation``): a tenth of
them disturbed by one common external oscillation (one cluster to find), a tenth with sticky
valves, the rest healthy; writes them to a private influxd 1.6 and registers the loops in a
SQLite database. Then times, end to end, what the diagnostics service does for one request
(``DiagnosisRunner.clusters``: loop list and settings, raw reads of ``LOOPS_PER_READ`` loops at
a time, diagnosis of every loop in a worker thread, clustering), and in the same run its floor:
the raw read of the same loops and window alone (``query_raw_many``). Reports seconds, loops
per second, raw samples per second, the clusters found, and the loop count that fits in the
gateway's default ``DIAG_TIMEOUT_S`` (30 s) at the measured rate. Prints one JSON object.

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clpm_diagnostics.runs import DiagnosisRunner
from clpm_shared.config import DatabaseSettings, InfluxSettings, TimeSeriesBackend
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import Loop
from clpm_shared.simulation import LoopProfile, SimulatedLoopSpec, simulate_fleet
from clpm_shared.timeseries import Point
from clpm_shared.timeseries.influxql import InfluxQLStore
from tests.harness.servers import InfluxServer, free_port, migrate

BASE = datetime(2025, 1, 10, 0, 0, tzinfo=UTC)
DIAG_TIMEOUT_S = 30.0
COMMON_PERIOD_S = 240.0
WRITE_BATCH = 50_000


def fleet_specs(loops: int) -> list[SimulatedLoopSpec]:
    specs = []
    for index in range(loops):
        if index % 10 == 0:
            profile, extra = (
                LoopProfile.EXTERNAL_OSCILLATION,
                {
                    "osc_amplitude": 2.0,
                    "osc_period_s": COMMON_PERIOD_S,
                },
            )
        elif index % 10 == 5:
            profile, extra = LoopProfile.STICKY_VALVE, {"valve_s": 3.0, "valve_j": 1.0}
        else:
            profile, extra = LoopProfile.HEALTHY, {}
        specs.append(
            SimulatedLoopSpec(loop_id=f"TIC-{index:04d}", profile=profile, seed=index, **extra)
        )
    return specs


async def write_fleet(store: InfluxQLStore, specs: list[SimulatedLoopSpec], seconds: int) -> int:
    written = 0
    for offset in range(0, len(specs), 20):
        series = simulate_fleet(specs[offset : offset + 20], seconds)
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
            specs = fleet_specs(arguments.loops)
            seconds = int(arguments.hours * 3600)
            began = time.perf_counter()
            samples = await write_fleet(store, specs, seconds)
            write_s = time.perf_counter() - began
            async with sessions() as session:
                session.add_all(Loop(loop_id=spec.loop_id, unit="U1") for spec in specs)
                await session.commit()
            start, end = BASE, BASE + timedelta(seconds=seconds)
            runner = DiagnosisRunner(sessions, store)
            results: dict[str, Any] = {"samples_written": samples, "write_s": round(write_s, 1)}
            for repeat in range(arguments.repeats):
                began = time.perf_counter()
                raw = await store.query_raw_many([spec.loop_id for spec in specs], start, end)
                read_s = time.perf_counter() - began
                read_samples = sum(len(series) for series in raw.values())
                del raw
                began = time.perf_counter()
                clusters, analysed, oscillating = await runner.clusters(start, end)
                clusters_s = time.perf_counter() - began
                results[f"run_{repeat + 1}"] = {
                    "clusters_s": round(clusters_s, 2),
                    "raw_read_alone_s": round(read_s, 2),
                    "raw_samples": read_samples,
                    "loops_per_s": round(analysed / clusters_s, 1),
                    "raw_samples_per_s": round(read_samples / clusters_s),
                    "loops_in_diag_timeout": int(DIAG_TIMEOUT_S * analysed / clusters_s),
                    "loops_analysed": analysed,
                    "oscillating": oscillating,
                    "clusters": [
                        {
                            "members": len(cluster.members),
                            "period_s": round(cluster.period_s, 1),
                            "members_oscillating_externally": sum(
                                int(member.split("-")[1]) % 10 == 0 for member in cluster.members
                            ),
                            "likely_source": cluster.likely_source,
                        }
                        for cluster in clusters
                    ],
                }
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
        report["results"] = asyncio.run(measure(arguments, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report["uptime_after"] = uptime()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
