"""Rate the OPC UA bridge sustains: N simulated loops behind a real OPC UA server, into the store.

A child process runs asyncua's own server (as the tests do) with PV, SP, OP and mode nodes of
N loops, updated from the project's simulator every interval. This process runs the bridge
(subscribe, then poll) against it into an embedded store for ``--seconds`` each and prints one
JSON object: ticks expected and done, samples and points written per second, CPU seconds of
the bridge process. Baseline in the same run: the simulator streaming the same loops at the
same interval into the same kind of store (its own write rate), and the simulator's backfill
(as fast as the store takes points). A point is one field value (PV, SP or OP).

    PYTHONPATH=. .venv/bin/python bench/opcua_bridge.py --loops 1000 --interval 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from clpm_shared.config import OpcUaMode
from clpm_shared.ingest.tag_map import TagMap, parse_tag_map_csv
from clpm_shared.timeseries import EmbeddedStore
from data_streaming_service.catalogue import loop_specs
from data_streaming_service.data_generator import ControlLoopDataGenerator
from data_streaming_service.opcua_bridge import BridgeOptions, OpcUaBridge
from data_streaming_service.streaming import StreamingService, StreamOptions
from tests.harness.opcua_server import OpcUaTestServer
from tests.harness.servers import free_port

ROLES = ("PV", "SP", "OP", "MODE")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def generator_for(loops: int, interval: float) -> ControlLoopDataGenerator:
    return ControlLoopDataGenerator(loop_specs(loops, seed=1, interval_s=interval)[:loops],
                                    interval_s=interval, seed=1)  # fmt: skip


async def serve(port: int, loops: int, interval: float) -> None:
    """Child process: the OPC UA server, its nodes updated from the simulator every interval."""
    generator = generator_for(loops, interval)
    initial: dict[str, Any] = {}
    for loop_id in generator.loop_ids:
        initial |= {f"{loop_id}.{role}": 0.0 for role in ROLES[:3]}
        initial[f"{loop_id}.MODE"] = 0
    server = OpcUaTestServer(initial, port=port)
    await server.start()
    print("ready", flush=True)
    while True:
        started = time.monotonic()
        chunk = generator.next_chunk(time.time_ns())
        values: dict[str, Any] = {}
        for i, loop_id in enumerate(chunk.loop_ids):
            values[f"{loop_id}.PV"] = float(chunk.pv[i])
            values[f"{loop_id}.SP"] = float(chunk.sp[i])
            values[f"{loop_id}.OP"] = float(chunk.op[i])
            values[f"{loop_id}.MODE"] = int(chunk.mode[i])
        await server.write(values)
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


def tag_map(loop_ids: tuple[str, ...]) -> TagMap:
    lines = ["loop_id,pv_tag,sp_tag,op_tag,mode_tag,mode_map"]
    for loop_id in loop_ids:
        tags = ",".join(f'"{OpcUaTestServer.node_id(f"{loop_id}.{r}")}"' for r in ROLES)
        lines.append(f"{loop_id},{tags},0=AUT;1=MAN;2=CAS")
    return parse_tag_map_csv("\n".join(lines))


async def run_bridge(
    endpoint: str, tags: TagMap, mode: OpcUaMode, interval: float, seconds: float, db: Path
) -> dict[str, Any]:
    store = EmbeddedStore(db)
    options = BridgeOptions(
        endpoint=endpoint, mode=mode, interval_s=interval, timeout_s=30.0, summary_every_s=3600
    )
    bridge = OpcUaBridge(tags, store, options)
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    await asyncio.wait_for(bridge.connected.wait(), 120)
    cpu, started = _cpu_s(), time.monotonic()
    ticks0, samples0 = bridge.summary.ticks, bridge.summary.samples
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    ticks, samples = bridge.summary.ticks - ticks0, bridge.summary.samples - samples0
    cpu = _cpu_s() - cpu
    stop.set()
    summary = await task
    await store.close()
    return {
        "mode": mode.value,
        "ticks_expected": round(elapsed / interval),
        "ticks": ticks,
        "samples_per_s": round(samples / elapsed),
        "points_per_s": round(3 * samples / elapsed),
        "cpu_s_per_s": round(cpu / elapsed, 2),
        "written_equals_generated": summary.written_points == summary.generated_points,
        "dropped_points": summary.dropped_points,
    }


async def run_simulator(loops: int, interval: float, seconds: float, db: Path) -> dict[str, Any]:
    store = EmbeddedStore(db)
    service = StreamingService(
        generator_for(loops, interval),
        store,
        StreamOptions(interval_s=interval, duration_s=seconds, summary_every_s=3600),
    )
    cpu, started = _cpu_s(), time.monotonic()
    summary = await service.run(asyncio.Event())
    elapsed = time.monotonic() - started
    cpu = _cpu_s() - cpu
    await store.close()
    store = EmbeddedStore(db.with_name("backfill.db"))
    backfill = StreamingService(
        generator_for(loops, interval),
        store,
        StreamOptions(interval_s=interval, backfill_hours=0.25, backfill_only=True),
    )
    started_backfill = time.monotonic()
    history = await backfill.run(asyncio.Event())
    backfill_s = time.monotonic() - started_backfill
    await store.close()
    return {
        "live_points_per_s": round(summary.written_points / elapsed),
        "live_cpu_s_per_s": round(cpu / elapsed, 2),
        "backfill_points_per_s": round(history.written_points / backfill_s),
    }


async def bench(loops: int, interval: float, seconds: float) -> dict[str, Any]:
    port = free_port()
    child = subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
        [sys.executable, __file__, "--serve", str(port), "--loops", str(loops),
         "--interval", str(interval)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = await asyncio.to_thread(child.stdout.readline)
        if line.strip() != b"ready":
            raise RuntimeError("OPC UA server did not start")
        endpoint = f"opc.tcp://127.0.0.1:{port}/clpm/"
        tags = tag_map(generator_for(loops, interval).loop_ids)
        with tempfile.TemporaryDirectory() as tmp:
            results = [
                await run_bridge(endpoint, tags, mode, interval, seconds, Path(tmp) / f"{mode}.db")
                for mode in (OpcUaMode.SUBSCRIBE, OpcUaMode.POLL)
            ]
            baseline = await run_simulator(loops, interval, seconds, Path(tmp) / "sim.db")
    finally:
        child.terminate()
        child.wait(10)
    return {
        "loops": loops,
        "interval_s": interval,
        "seconds": seconds,
        "target_points_per_s": round(3 * loops / interval),
        "bridge": results,
        "baseline_simulator": baseline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loops", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for name in ("asyncua", "asyncua.server", "asyncua.client"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.loops, args.interval))
        return
    print(json.dumps(asyncio.run(bench(args.loops, args.interval, args.seconds)), indent=2))


if __name__ == "__main__":
    main()
