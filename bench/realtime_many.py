"""Latest values of 1,000 loops at the gateway: one batched request against 1,000 single ones.

Starts private PostgreSQL, influxd 1.x and Redis as ``bench/gateway.py`` does, registers
``--loops`` loops and writes ``--minutes`` of 1-Hz samples of each (PV, SP, OP, Mode) ending now,
then keeps writing one sample per loop every second while it measures, as a plant does (the
newest samples sit in influxd's cache, the history in its files; measuring starts once influxd
has compacted the history). Runs the gateway as its own
process (one worker, Redis cache) and measures, in the same run:

* ``batch_uncached``: ``GET /api/v1/data/realtime?loopIds=<all loops>`` with
  ``Cache-Control: no-cache`` as an engineer (a viewer's no-cache is answered from the
  cache): one batched store read (``latest_many``), one request at a time; median and p90
  latency;
* ``batch_cached``: the same request answered from the Redis response cache;
* ``single_uncached`` / ``single_cached``: the same loops asked one ``loopId`` per request (what
  a page had to do before), over ``--concurrency`` keep-alive connections; wall time for all.

``--latest-cache both`` (the default) measures the batched requests twice, in the same run: with
the latest-values table in Redis (``LATEST_VALUES_CACHE=true``: the bench's writes keep it, the
gateway reads it) and then against a second gateway with ``LATEST_VALUES_CACHE=false`` (every
latest value from influxd, the baseline), under ``latest_cache_on`` and ``latest_cache_off``;
the single requests with the first gateway only. ``on``/``off`` measure one of them.

    PYTHONPATH=. .venv/bin/python bench/realtime_many.py [--loops 1000] [--minutes 180]
        [--latest-cache both|on|off]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.gateway import _exchange, password_token, start_gateway, start_servers
from clpm_shared.config import load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import Loop
from clpm_shared.timeseries import Point, RawSeries
from clpm_shared.timeseries.factory import create_store
from clpm_shared.timeseries.influxql import InfluxQLStore
from clpm_shared.timeseries.latest_values import LatestValuesStore

SECOND_NS = 1_000_000_000


async def timed_requests(
    port: int, paths: list[str], headers: dict[str, str], concurrency: int
) -> tuple[float, list[float], dict[int, int]]:
    """Each path once over ``concurrency`` keep-alive connections: wall s, latencies, statuses."""
    header_text = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    queue = list(reversed(paths))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                path = queue.pop()
                request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header_text}\r\n".encode()
                started = time.perf_counter()
                status = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


def samples(loop_id: str, t_ns: np.ndarray[Any, np.dtype[np.int64]]) -> RawSeries:
    """1-Hz samples of one loop at ``t_ns``: every field and the Mode in each."""
    k = t_ns // SECOND_NS
    return RawSeries(
        loop_id,
        t_ns,
        50.0 + (k % 60) / 10,
        np.full(t_ns.size, 50.0),
        30.0 + (k % 7),
        np.full(t_ns.size, "AUT", dtype=object),
    )


async def seed_history(store: InfluxQLStore, loops: Sequence[str], minutes: int) -> int:
    """``minutes`` of 1-Hz samples of each loop, the newest one second ago; the next second."""
    now_s = int(time.time())
    t_ns = np.arange(now_s - minutes * 60, now_s, dtype=np.int64) * SECOND_NS
    for offset in range(0, len(loops), 20):
        await store.write_series([samples(i, t_ns) for i in loops[offset : offset + 20]])
    return now_s


async def feed(store: InfluxQLStore, loops: Sequence[str], second: int) -> None:
    """One sample of each loop every second from ``second`` on, until cancelled (as points:
    a one-sample series each would cost 1.7 s of this process's time per second)."""
    while True:
        await asyncio.sleep(max(0.0, second - time.time()))
        moment = datetime.fromtimestamp(second, UTC)
        k = second % 420
        await store.write(
            [
                Point(i, moment, pv=50.0 + (k % 60) / 10, sp=50.0, op=30.0 + k % 7, mode="AUT")
                for i in loops
            ]
        )
        second = max(second + 1, int(time.time()))


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settle(pid: int, deadline_s: float) -> float:
    """Wait until influxd's compactions of the history are over (under a fifth of a core for
    two seconds), at most ``deadline_s``; the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        before = cpu_s(pid)
        await asyncio.sleep(2.0)
        if cpu_s(pid) - before < 0.4:
            break
    return round(time.monotonic() - started, 1)


async def register(database_url: str, loops: Sequence[str]) -> None:
    settings = load_settings(database={"database_url": database_url})
    engine = create_engine(settings.database)
    async with create_session_factory(engine)() as session:
        session.add_all(Loop(loop_id=loop_id, name=loop_id, unit="U1") for loop_id in loops)
        await session.commit()
    await engine.dispose()


def engineer_token(base: str) -> str:
    form = urllib.parse.urlencode(
        {
            "grant_type": "password",
            "client_id": "clpm-cli",
            "client_secret": "clpm-cli-secret",
            "username": "engineer",
            "password": "engineer",
        }
    ).encode()
    url = f"{base}/realms/clpm/protocol/openid-connect/token"
    with urllib.request.urlopen(url, data=form, timeout=10) as response:
        return str(json.load(response)["access_token"])


def fetch(url: str, headers: dict[str, str]) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as answer:
        return bytes(answer.read())


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))] * 1000, 1),
        "runs": len(ordered),
    }


async def measure_gateway(
    arguments: argparse.Namespace,
    root: Path,
    database_url: str,
    servers: tuple[Any, Any],
    loops: Sequence[str],
    latest_cache: bool,
    singles: bool,
) -> dict[str, Any]:
    """Batched (and with ``singles`` single-loop) requests against one gateway process."""
    influx, redis = servers
    environment = {"LATEST_VALUES_CACHE": "true" if latest_cache else "false"}
    gateway, base = start_gateway(root, database_url, influx, redis, 1, environment)
    result: dict[str, Any] = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        port = int(base.rsplit(":", 1)[1])
        auth = {"Authorization": f"Bearer {password_token(base)}"}
        # no-cache is honoured for engineers only (a viewer's is answered from the cache)
        fresh = {"Authorization": f"Bearer {engineer_token(base)}", "Cache-Control": "no-cache"}
        batch = f"/api/v1/data/realtime?loopIds={','.join(loops)}"
        single_paths = [f"/api/v1/data/realtime?loopId={loop_id}" for loop_id in loops]
        body = await asyncio.to_thread(fetch, f"{base}{batch}", fresh)
        answer = json.loads(body)
        assert answer["count"] == len(loops), answer.get("unknown", [])[:5]
        assert all(entry["pv"] is not None for entry in answer["loops"])
        ages = [entry["age_s"] for entry in answer["loops"]]
        result["batch_answer_bytes"] = len(body)
        result["answer_age_s_max"] = max(ages)
        # warm-up (connections, token memory, caches)
        await timed_requests(port, [batch] * 3, fresh, 1)
        if singles:
            await timed_requests(port, single_paths, auth, arguments.concurrency)
        _, latencies, statuses = await timed_requests(port, [batch] * arguments.repeats, fresh, 1)
        result["batch_uncached"] = {**summary(latencies), "statuses": statuses}
        await timed_requests(port, [batch], auth, 1)  # fill the cache entry
        _, latencies, statuses = await timed_requests(port, [batch] * arguments.repeats, auth, 1)
        result["batch_cached"] = {**summary(latencies), "statuses": statuses}
        for name, headers in (("single_uncached", fresh), ("single_cached", auth)):
            if not singles:
                break
            walls: list[float] = []
            for _ in range(3):
                wall, latencies, statuses = await timed_requests(
                    port, single_paths, headers, arguments.concurrency
                )
                walls.append(wall)
            result[name] = {
                "wall_ms_for_all_loops": round(statistics.median(walls) * 1000, 1),
                "per_request": summary(latencies),
                "statuses": statuses,
            }
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
        return result
    finally:
        gateway.terminate()
        gateway.wait(15)


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    loops = [f"FIC-{i:04d}" for i in range(arguments.loops)]
    root = Path(tempfile.mkdtemp(prefix="clpm-bench-rtm-"))
    postgres, influx, redis, database_url = start_servers(root)
    keep_table = arguments.latest_cache != "off"
    settings = load_settings(
        influx={
            "timeseries_backend": "influxql",
            "influxdb_url": influx.url,
            "influxdb_database": "bench",
        },
        cache={"cache_backend": "redis", "redis_url": redis.url, "latest_values_cache": keep_table},
    )
    # the bench writes as the streaming service does: through the table when it is on
    store = create_store(settings.influx, settings.cache)
    assert isinstance(store, InfluxQLStore)
    assert isinstance(store, LatestValuesStore) == keep_table
    feeding: asyncio.Task[None] | None = None
    try:
        await register(database_url, loops)
        started = time.perf_counter()
        second = await seed_history(store, loops, arguments.minutes)
        feeding = asyncio.create_task(feed(store, loops, second))
        result: dict[str, Any] = {
            "loops": len(loops),
            "minutes": arguments.minutes,
            "seed_s": round(time.perf_counter() - started, 1),
            "concurrency": arguments.concurrency,
        }
        assert influx.process is not None
        result["settle_s"] = await settle(influx.process.pid, 300.0)
        order = {"both": (True, False), "on": (True,), "off": (False,)}[arguments.latest_cache]
        for index, latest_cache in enumerate(order):
            name = "latest_cache_on" if latest_cache else "latest_cache_off"
            result[name] = await measure_gateway(
                arguments, root, database_url, (influx, redis), loops, latest_cache, index == 0
            )
        result["fed_throughout"] = not feeding.done()
        return result
    finally:
        if feeding is not None:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
        await store.close()
        for server in (redis, influx, postgres):
            server.stop()
        shutil.rmtree(postgres.workdir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=180, help="history of each loop")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--latest-cache",
        choices=("both", "on", "off"),
        default="both",
        help="latest values from the table in Redis, from influxd (baseline), or both in turn",
    )
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
