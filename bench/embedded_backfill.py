"""Start-up history of the simulator into the embedded store: bulk blocks against tick by tick.

Writes ``--hours`` of history of ``--loops`` simulated loops at 1 s into a fresh embedded store
the way ``data-streaming --backfill`` does (``StreamingService`` with ``backfill_only``: blocks
of ticks written as per-loop columns, one transaction each). Baseline in the same run: the
previous path, one chunk per tick through the write buffer as ``Point`` objects
(``store.write``), for ``--baseline-minutes`` of history (its rate does not depend on the
length; the full span is extrapolated). Prints JSON with seconds, samples/s and CPU seconds.

    PYTHONPATH=. nice .venv/bin/python bench/embedded_backfill.py --loops 2000 --hours 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from clpm_shared.timeseries import EmbeddedStore
from data_streaming_service.catalogue import loop_specs
from data_streaming_service.data_generator import ControlLoopDataGenerator
from data_streaming_service.streaming import StreamingService, StreamOptions, grid_floor
from data_streaming_service.write_buffer import PointBuffer, StoreWriter

_NS = 1_000_000_000


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


async def tick_by_tick(loops: int, minutes: float, path: Path) -> dict[str, Any]:
    """The previous backfill: a chunk per tick into the buffer, the writer drains it."""
    generator = ControlLoopDataGenerator(loop_specs(loops, 42, 1.0), interval_s=1.0, seed=42)
    store = EmbeddedStore(path)
    buffer = PointBuffer(2_000_000)
    writer = StoreWriter(store, buffer)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    ticks = round(minutes * 60)
    end = grid_floor(time.time_ns(), _NS)
    high_water = buffer.max_points // 2
    started, cpu = time.perf_counter(), _cpu_s()
    for k in range(ticks):
        while buffer.points >= high_water:
            await buffer.wait_changed(buffer.version, timeout_s=0.5)
        buffer.append(generator.next_chunk(end - (ticks - k) * _NS))
        if k % 200 == 0:
            await asyncio.sleep(0)
    while not writer.idle:
        await buffer.wait_changed(buffer.version, timeout_s=0.5)
    seconds, cpu = time.perf_counter() - started, _cpu_s() - cpu
    stop.set()
    buffer.wake()
    await task
    await store.close()
    return _figures(loops, ticks, seconds, cpu)


async def bulk(loops: int, hours: float, path: Path) -> dict[str, Any]:
    """The backfill as the service runs it now."""
    generator = ControlLoopDataGenerator(loop_specs(loops, 42, 1.0), interval_s=1.0, seed=42)
    store = EmbeddedStore(path)
    service = StreamingService(
        generator, store, StreamOptions(backfill_hours=hours, backfill_only=True)
    )
    started, cpu = time.perf_counter(), _cpu_s()
    summary = await service.run(asyncio.Event())
    seconds, cpu = time.perf_counter() - started, _cpu_s() - cpu
    await store.close()
    return _figures(loops, summary.backfilled_points // (3 * loops), seconds, cpu)


def _figures(loops: int, ticks: int, seconds: float, cpu: float) -> dict[str, Any]:
    samples = loops * ticks
    return {
        "ticks": ticks,
        "samples": samples,
        "seconds": round(seconds, 1),
        "samples_per_s": round(samples / seconds),
        "points_per_s": round(3 * samples / seconds),
        "cpu_s": round(cpu, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loops", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=2.0, help="history of the bulk path")
    parser.add_argument("--baseline-minutes", type=float, default=10.0,
                        help="history of the tick-by-tick baseline (0: none)")  # fmt: skip
    args = parser.parse_args()
    report: dict[str, Any] = {"loops": args.loops, "hours": args.hours}
    with tempfile.TemporaryDirectory(prefix="clpm-backfill-") as tmp:
        if args.baseline_minutes > 0:
            base = await tick_by_tick(args.loops, args.baseline_minutes, Path(tmp) / "base.db")
            base["extrapolated_seconds_for_hours"] = round(
                args.loops * args.hours * 3600 / base["samples_per_s"], 1
            )
            report["baseline_tick_by_tick"] = base
        report["bulk"] = await bulk(args.loops, args.hours, Path(tmp) / "bulk.db")
    if "baseline_tick_by_tick" in report:
        report["speed_up"] = round(
            report["bulk"]["samples_per_s"] / report["baseline_tick_by_tick"]["samples_per_s"], 1
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
