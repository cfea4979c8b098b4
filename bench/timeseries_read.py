"""Read rate of ``query_raw_many`` (the aggregation's 30-s poll) on influxd and the embedded store.

Starts a private influxd (as the test harness does), writes ``--loops`` loops x ``--seconds``
samples at 1 Hz, then reads the window back several times and prints JSON: lines/s of the
batched ``query_raw_many`` and, as a baseline in the same run, of one ``query_raw`` per loop.

    PYTHONPATH=. .venv/bin/python bench/timeseries_read.py --loops 1000 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clpm_shared.config import InfluxSettings
from clpm_shared.timeseries.base import Point, TimeSeriesStore
from clpm_shared.timeseries.embedded import EmbeddedStore
from clpm_shared.timeseries.influxql import InfluxQLStore
from tests.harness.servers import InfluxServer, free_port

BASE = datetime(2025, 1, 10, 10, 0, 0, tzinfo=UTC)


def _points(loops: list[str], seconds: int) -> list[Point]:
    return [
        Point(
            loop,
            BASE + timedelta(seconds=s),
            pv=50.0 + s % 7,
            sp=50.0,
            op=30.0 + i % 11,
            mode="AUT",
        )
        for i, loop in enumerate(loops)
        for s in range(seconds)
    ]


async def _measure(
    store: TimeSeriesStore, loops: list[str], seconds: int, repeats: int
) -> dict[str, float]:
    end = BASE + timedelta(seconds=seconds)
    expected = len(loops) * seconds
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = await store.query_raw_many(loops, BASE, end)
        elapsed = time.perf_counter() - started
        assert sum(len(s) for s in result.values()) == expected
        best = min(best, elapsed)
    baseline_loops = loops[: min(len(loops), 200)]
    started = time.perf_counter()
    lines = 0
    for loop in baseline_loops:
        lines += len((await store.query_raw(loop, BASE, end)).series)
    per_loop = time.perf_counter() - started
    return {
        "lines": expected,
        "many_best_s": round(best, 3),
        "many_lines_per_s": round(expected / best),
        "per_loop_query_lines_per_s": round(lines / per_loop),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loops-per-query", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=3)
    args = parser.parse_args()
    loops = [f"TIC{i:05d}" for i in range(args.loops)]
    points = _points(loops, args.seconds)
    report: dict[str, object] = {"loops": args.loops, "seconds": args.seconds}

    with tempfile.TemporaryDirectory(prefix="bench-influx-") as tmp:
        server = InfluxServer("influxd", free_port(), Path(tmp), rpc_port=free_port())
        server.write_config()
        server.start()
        try:
            server.create_database("bench")
            settings = InfluxSettings(
                timeseries_backend="influxql",  # type: ignore[arg-type]
                influxdb_url=server.url,
                influxdb_database="bench",
            )
            store = InfluxQLStore(
                settings, loops_per_query=args.loops_per_query, max_in_flight=args.in_flight
            )
            started = time.perf_counter()
            await store.write(points)
            report["influxql_write_points_per_s"] = round(
                len(points) / (time.perf_counter() - started)
            )
            report["influxql"] = await _measure(store, loops, args.seconds, args.repeats)
            await store.close()
        finally:
            server.stop()

        embedded = EmbeddedStore(Path(tmp) / "embedded.db")
        started = time.perf_counter()
        await embedded.write(points)
        report["embedded_write_points_per_s"] = round(len(points) / (time.perf_counter() - started))
        report["embedded"] = await _measure(embedded, loops, args.seconds, args.repeats)
        await embedded.close()
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
