"""Streaming rate of the data-streaming service: 10,000 loops x 3 fields at 1 Hz into influxd.

Starts a private influxd 1.6 (as the test harness does) and prints one JSON object with:

* generation: ticks of the simulated fleet per second (``next_chunk``), and with the conversion
  to store points (``to_points``);
* pipeline: ``--history-s`` seconds of history written as fast as the store takes it through
  the service's buffer and writer (the ``--backfill`` path) - the sustained write rate;
* realtime: the service streaming live at STREAM_INTERVAL = 1 s for ``--realtime-s`` seconds:
  ticks produced and written, the largest backlog, skipped ticks, CPU used;
* baseline in the same run: naive per-point writes (one HTTP request per sample, keep-alive);
* with ``--latest-values``: the live streaming again through the store that keeps each loop's
  latest values in a private Redis (``LatestValuesStore``), with Redis's CPU, against the plain
  store's run (``realtime_1hz``) as the baseline, and the history pipeline too.

Points count field values as the seed's ``_field``/``_value`` records: a sample of a loop is
three points (PV, SP, OP). The requirement is to keep up with 30,000 points/s sustained.

    PYTHONPATH=. .venv/bin/python bench/streaming.py --loops 10000 [--latest-values]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from clpm_shared.config import CacheSettings, InfluxSettings
from clpm_shared.timeseries import InfluxQLStore
from clpm_shared.timeseries.latest_values import LatestValuesStore
from data_streaming_service.catalogue import loop_specs
from data_streaming_service.data_generator import ControlLoopDataGenerator
from data_streaming_service.streaming import StreamingService, StreamOptions
from tests.harness.servers import InfluxServer, RedisServer, free_port


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu_s(pid: int | None) -> float:
    """CPU time (user + system) another process used so far (0 without one)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_store(server: InfluxServer, database: str, redis: RedisServer | None) -> InfluxQLStore:
    """The plain InfluxQL store, or (with ``redis``) the one keeping latest values there."""
    settings = InfluxSettings(
        influxdb_url=server.url, influxdb_database=database, influxdb_username=None
    )
    if redis is None:
        return InfluxQLStore(settings)
    return LatestValuesStore(settings, CacheSettings(redis_url=redis.url))  # type: ignore[arg-type]


def _pid(redis: RedisServer | None) -> int | None:
    return redis.process.pid if redis is not None and redis.process is not None else None


def measure_generation(loops: int, ticks: int) -> dict[str, Any]:
    generator = ControlLoopDataGenerator(loop_specs(loops, seed=1), seed=1)
    generator.next_chunk(0)  # builds the fleet
    started = time.perf_counter()
    for k in range(1, ticks + 1):
        chunk = generator.next_chunk(k * 1_000_000_000)
    simulate_s = (time.perf_counter() - started) / ticks
    started = time.perf_counter()
    for k in range(ticks + 1, 2 * ticks + 1):
        generator.next_chunk(k * 1_000_000_000).to_points()
    with_points_s = (time.perf_counter() - started) / ticks
    return {
        "ms_per_tick": round(simulate_s * 1000, 2),
        "points_per_s": round(chunk.points / simulate_s),
        "ms_per_tick_with_points": round(with_points_s * 1000, 2),
        "points_per_s_with_points": round(chunk.points / with_points_s),
    }


def count_points(server: InfluxServer, database: str) -> int:
    answer = server.query("SELECT count(PV) FROM control_loops", database)
    series = answer["results"][0].get("series", [])
    return 3 * int(series[0]["values"][0][1]) if series else 0


async def measure_pipeline(
    server: InfluxServer,
    database: str,
    loops: int,
    history_s: int,
    redis: RedisServer | None = None,
) -> dict[str, Any]:
    store = make_store(server, database, redis)
    redis_cpu = _process_cpu_s(_pid(redis))
    generator = ControlLoopDataGenerator(loop_specs(loops, seed=2), seed=2)
    options = StreamOptions(backfill_hours=history_s / 3600, backfill_only=True)
    service = StreamingService(generator, store, options)
    cpu = _cpu_s()
    started = time.perf_counter()
    summary = await service.run(asyncio.Event())
    elapsed = time.perf_counter() - started
    cpu = _cpu_s() - cpu
    redis_cpu = _process_cpu_s(_pid(redis)) - redis_cpu
    await store.close()
    stored = count_points(server, database)
    return {
        "redis_cpu_s": round(redis_cpu, 2),
        "history_s": history_s,
        "points": summary.written_points,
        "stored_points": stored,
        "seconds": round(elapsed, 2),
        "points_per_s": round(summary.written_points / elapsed),
        "client_cpu_s": round(cpu, 2),
        "write_calls": service.writer.stats.write_calls,
        "dropped_points": summary.dropped_points,
    }


async def measure_realtime(
    server: InfluxServer,
    database: str,
    loops: int,
    seconds: float,
    redis: RedisServer | None = None,
) -> dict[str, Any]:
    store = make_store(server, database, redis)
    generator = ControlLoopDataGenerator(loop_specs(loops, seed=3), seed=3)
    options = StreamOptions(interval_s=1.0, duration_s=seconds, summary_every_s=3600)
    service = StreamingService(generator, store, options)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    backlog = 0
    cpu = _cpu_s()
    redis_cpu = _process_cpu_s(_pid(redis))
    started = time.perf_counter()
    while not task.done():
        backlog = max(backlog, service.buffer.points)
        await asyncio.sleep(0.05)
    summary = task.result()
    elapsed = time.perf_counter() - started
    cpu = _cpu_s() - cpu
    redis_cpu = _process_cpu_s(_pid(redis)) - redis_cpu
    await store.close()
    stored = count_points(server, database)
    return {
        "redis_cpu_share_of_one_core": round(redis_cpu / elapsed, 3),
        "seconds": round(elapsed, 1),
        "ticks": summary.cycles,
        "generated_points": summary.generated_points,
        "written_points": summary.written_points,
        "stored_points": stored,
        "points_per_s": round(summary.written_points / elapsed),
        "largest_backlog_points": backlog,
        "skipped_ticks": summary.skipped_ticks,
        "dropped_points": summary.dropped_points,
        "cpu_share_of_one_core": round(cpu / elapsed, 2),
        "keeps_up": summary.skipped_ticks == 0
        and summary.dropped_points == 0
        and stored == summary.generated_points,
    }


def measure_naive_per_point(server: InfluxServer, database: str, samples: int) -> dict[str, Any]:
    generator = ControlLoopDataGenerator(loop_specs(samples, seed=4), seed=4)
    points = generator.next_chunk(1_736_503_500_000_000_000).to_points()
    with httpx.Client(base_url=server.url) as client:
        started = time.perf_counter()
        for point in points:
            line = (
                f"control_loops,Mode={point.mode},loop_id={point.loop_id} "
                f"PV={point.pv!r},SP={point.sp!r},OP={point.op!r} "
                f"{1_736_503_500_000_000_000}"
            )
            response = client.post(
                "/write", params={"db": database, "precision": "ns"}, content=line
            )
            response.raise_for_status()
        elapsed = time.perf_counter() - started
    return {
        "samples": len(points),
        "seconds": round(elapsed, 2),
        "points_per_s": round(3 * len(points) / elapsed),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=10_000)
    parser.add_argument("--history-s", type=int, default=60)
    parser.add_argument("--realtime-s", type=float, default=30.0)
    parser.add_argument("--generation-ticks", type=int, default=50)
    parser.add_argument("--baseline-samples", type=int, default=2000)
    parser.add_argument(
        "--latest-values",
        action="store_true",
        help="also stream through the store keeping latest values in a private Redis",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        server = InfluxServer("influxd", free_port(), Path(workdir), rpc_port=free_port())
        server.write_config()
        server.start()
        try:
            result: dict[str, Any] = {"loops": args.loops, "fields_per_sample": 3}
            result["generation"] = measure_generation(args.loops, args.generation_ticks)
            result["pipeline"] = await measure_pipeline(
                server, server.create_database("bench_pipeline"), args.loops, args.history_s
            )
            result["realtime_1hz"] = await measure_realtime(
                server, server.create_database("bench_realtime"), args.loops, args.realtime_s
            )
            if args.latest_values:
                redis = RedisServer("redis", free_port(), Path(workdir) / "redis")
                (Path(workdir) / "redis").mkdir()
                redis.start()
                try:
                    result["pipeline_latest_values"] = await measure_pipeline(
                        server,
                        server.create_database("bench_pipeline_lv"),
                        args.loops,
                        args.history_s,
                        redis,
                    )
                    result["realtime_1hz_latest_values"] = await measure_realtime(
                        server,
                        server.create_database("bench_realtime_lv"),
                        args.loops,
                        args.realtime_s,
                        redis,
                    )
                finally:
                    redis.stop()
            result["load_average"] = [round(x, 2) for x in os.getloadavg()]
            result["baseline_naive_per_point"] = measure_naive_per_point(
                server, server.create_database("bench_naive"), args.baseline_samples
            )
            result["required_points_per_s"] = 3 * args.loops
            result["speedup_over_naive"] = round(
                result["pipeline"]["points_per_s"]
                / result["baseline_naive_per_point"]["points_per_s"],
                1,
            )
        finally:
            server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
