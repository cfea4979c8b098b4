"""Latest values of 1,000 loops at the gateway: one batched request against 1,000 single ones.

Starts private PostgreSQL, influxd 1.x and Redis as ``bench/gateway.py`` does, seeds ``--loops``
loops (10 minutes of 1 Hz raw samples), runs the gateway as its own process (one worker, Redis
cache) and measures, in the same run:

* ``batch_uncached``: ``GET /api/v1/data/realtime?loopIds=<all loops>`` with
  ``Cache-Control: no-cache`` as an engineer (a viewer's no-cache is answered from the
  cache): one batched InfluxQL request (``last()`` per field and the newest Mode,
  ``GROUP BY loop_id``), one request at a time; median and p90 latency;
* ``batch_cached``: the same request answered from the Redis response cache;
* ``single_uncached`` / ``single_cached``: the same loops asked one ``loopId`` per request (what
  a page had to do before), over ``--concurrency`` keep-alive connections; wall time for all.

    PYTHONPATH=. .venv/bin/python bench/realtime_many.py [--loops 1000] [--repeats 20]
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
from pathlib import Path
from typing import Any

from bench.gateway import _exchange, password_token, seed, start_gateway, start_servers


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


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    loops = [f"FIC-{i:04d}" for i in range(arguments.loops)]
    root = Path(tempfile.mkdtemp(prefix="clpm-bench-rtm-"))
    postgres, influx, redis, database_url = start_servers(root)
    gateway = None
    try:
        await seed(database_url, influx.url, loops)
        gateway, base = start_gateway(root, database_url, influx, redis, 1)
        port = int(base.rsplit(":", 1)[1])
        auth = {"Authorization": f"Bearer {password_token(base)}"}
        # no-cache is honoured for engineers only (a viewer's is answered from the cache)
        fresh = {"Authorization": f"Bearer {engineer_token(base)}", "Cache-Control": "no-cache"}
        batch = f"/api/v1/data/realtime?loopIds={','.join(loops)}"
        singles = [f"/api/v1/data/realtime?loopId={loop_id}" for loop_id in loops]
        result: dict[str, Any] = {"loops": len(loops), "concurrency": arguments.concurrency}
        body = await asyncio.to_thread(fetch, f"{base}{batch}", fresh)
        answer = json.loads(body)
        assert answer["count"] == len(loops), answer.get("unknown", [])[:5]
        assert all(entry["pv"] is not None for entry in answer["loops"])
        result["batch_answer_bytes"] = len(body)
        # warm-up (connections, token memory, caches)
        await timed_requests(port, [batch] * 3, fresh, 1)
        await timed_requests(port, singles, auth, arguments.concurrency)

        _, latencies, statuses = await timed_requests(port, [batch] * arguments.repeats, fresh, 1)
        result["batch_uncached"] = {**summary(latencies), "statuses": statuses}
        await timed_requests(port, [batch], auth, 1)  # fill the cache entry
        _, latencies, statuses = await timed_requests(port, [batch] * arguments.repeats, auth, 1)
        result["batch_cached"] = {**summary(latencies), "statuses": statuses}
        for name, headers in (("single_uncached", fresh), ("single_cached", auth)):
            walls: list[float] = []
            for _ in range(3):
                wall, latencies, statuses = await timed_requests(
                    port, singles, headers, arguments.concurrency
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
        if gateway is not None:
            gateway.terminate()
            gateway.wait(15)
        for server in (redis, influx, postgres):
            server.stop()
        shutil.rmtree(postgres.workdir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=10)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
