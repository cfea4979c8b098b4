"""Throughput and latency of the API gateway: /data/realtime and /data/aggregated, cached and not.

Starts private servers as the test harness does (PostgreSQL, influxd 1.x, Redis), seeds
``--loops`` loops (10 minutes of 1 Hz raw samples in influxd, one hour of 1-minute aggregates in
PostgreSQL), runs the gateway as its own process (``python -m clpm_api_gateway``: uvicorn, one
worker, local token issuer, Redis cache) and drives it over HTTP/1.1 keep-alive connections with
a small asyncio load client, ``--concurrency`` connections for ``--duration`` seconds per case:

* ``realtime_cached`` / ``aggregated_cached``: the answers come from the Redis response cache;
* ``realtime_uncached`` / ``aggregated_uncached``: the same requests with
  ``Cache-Control: no-cache``, so every answer is computed (influxd / PostgreSQL): the baseline.

Requests cycle over the loops. Each ``--workers`` count (default 1 and 2 processes) is measured
in turn. Prints one JSON object (req/s, p50, p99 per case).

    PYTHONPATH=. .venv/bin/python bench/gateway.py --duration 30 --concurrency 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clpm_shared.config import load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import Agg1m, Loop
from clpm_shared.timeseries import Point
from clpm_shared.timeseries.factory import create_store
from tests.harness.servers import (
    REALM_FILE,
    InfluxServer,
    PostgresServer,
    RedisServer,
    free_port,
    migrate,
    start_postgres,
    wait_for,
)

BASE = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
RAW_SECONDS = 600
TARGET_REQ_S = 1500
TARGET_P99_MS = 20.0


def start_servers(root: Path) -> tuple[PostgresServer, InfluxServer, RedisServer, str]:
    postgres = start_postgres("clpm-bench-pg-")
    postgres.psql('CREATE DATABASE "bench"')
    database_url = postgres.url("bench")
    migrate(database_url)
    (root / "influx").mkdir()
    influx = InfluxServer("influxd", free_port(), root / "influx", rpc_port=free_port())
    influx.write_config()
    influx.start()
    influx.create_database("bench")
    (root / "redis").mkdir()
    redis = RedisServer("redis", free_port(), root / "redis")
    redis.start()
    return postgres, influx, redis, database_url


async def seed(database_url: str, influx_url: str, loops: list[str]) -> None:
    settings = load_settings(
        database={"database_url": database_url},
        influx={
            "timeseries_backend": "influxql",
            "influxdb_url": influx_url,
            "influxdb_database": "bench",
        },
    )
    store = create_store(settings.influx)
    try:
        for loop_id in loops:
            await store.write(
                [
                    Point(
                        loop_id,
                        BASE + timedelta(seconds=i),
                        pv=50.0 + (i % 60) / 10,
                        sp=50.0,
                        op=30.0 + (i % 7),
                        mode="AUT",
                    )
                    for i in range(RAW_SECONDS)
                ]
            )
    finally:
        await store.close()
    engine = create_engine(settings.database)
    async with create_session_factory(engine)() as session:
        session.add_all(Loop(loop_id=loop_id, name=loop_id, unit="U1") for loop_id in loops)
        await session.flush()
        session.add_all(
            Agg1m(
                loop_id=loop_id,
                bucket_start=BASE + timedelta(minutes=m),
                pv_count=60,
                pv_mean=50.0 + m / 10,
                pv_min=49.0,
                pv_max=56.0,
                sp_count=60,
                sp_mean=50.0,
                op_count=60,
                op_mean=33.0,
            )
            for loop_id in loops
            for m in range(60)
        )
        await session.commit()
    await engine.dispose()


def start_gateway(
    root: Path,
    database_url: str,
    influx: InfluxServer,
    redis: RedisServer,
    workers: int,
    extra_environment: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,  # noqa: TID251 - the bench configures the service it launches
        "DATABASE_URL": database_url,
        "TIMESERIES_BACKEND": "influxql",
        "INFLUXDB_URL": influx.url,
        "INFLUXDB_DATABASE": "bench",
        "CACHE_BACKEND": "redis",
        "REDIS_URL": redis.url,
        "AUTH_MODE": "local",
        "OIDC_ISSUER": f"{base}/realms/clpm",
        "LOCAL_ISSUER_KEY_PATH": str(root / "issuer.pem"),
        "LOCAL_REALM_FILE": str(REALM_FILE),
        "LOG_LEVEL": "warning",
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        **(extra_environment or {}),
    }
    log = open(root / "gateway.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "clpm_api_gateway", "--workers", str(workers)],
        env=environment,
        stdout=log,
        stderr=log,
    )

    def healthy() -> None:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
            assert response.status == 200

    wait_for(healthy, process, timeout=60)
    return process, base


def password_token(base: str) -> str:
    form = urllib.parse.urlencode(
        {
            "grant_type": "password",
            "client_id": "clpm-cli",
            "client_secret": "clpm-cli-secret",
            "username": "viewer",
            "password": "viewer",
        }
    ).encode()
    with urllib.request.urlopen(
        f"{base}/realms/clpm/protocol/openid-connect/token", data=form, timeout=10
    ) as response:
        return str(json.load(response)["access_token"])


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def drive(
    port: int, paths: list[str], headers: dict[str, str], concurrency: int, duration_s: float
) -> dict[str, Any]:
    """``concurrency`` keep-alive connections sending GETs back to back for ``duration_s``."""
    header_text = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header_text}\r\n".encode() for path in paths
    ]
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection(offset: int, stop_at: float, record: bool) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        index = offset
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                status = await _exchange(reader, writer, requests[index % len(requests)])
                if record:
                    latencies.append(time.perf_counter() - started)
                    statuses[status] = statuses.get(status, 0) + 1
                index += 1
        finally:
            writer.close()

    warm_until = time.perf_counter() + 2.0
    await asyncio.gather(*(connection(i, warm_until, False) for i in range(concurrency)))
    started = time.perf_counter()
    stop_at = started + duration_s
    await asyncio.gather(*(connection(i * 7, stop_at, True) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    count = len(latencies)
    return {
        "requests": count,
        "req_per_s": round(count / elapsed, 1),
        "p50_ms": round(latencies[count // 2] * 1000, 2) if count else None,
        "p99_ms": round(latencies[min(count - 1, int(count * 0.99))] * 1000, 2) if count else None,
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
    }


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    loops = [f"FIC-{i:04d}" for i in range(arguments.loops)]
    root = Path(tempfile.mkdtemp(prefix="clpm-bench-gw-"))
    postgres, influx, redis, database_url = start_servers(root)
    gateway: subprocess.Popen[bytes] | None = None
    try:
        await seed(database_url, influx.url, loops)
        window = urllib.parse.urlencode(
            {"start": "2025-01-10T10:00:00Z", "end": "2025-01-10T11:00:00Z", "interval": "1m"}
        )
        realtime = [f"/api/v1/data/realtime?loopId={loop_id}" for loop_id in loops]
        aggregated = [f"/api/v1/data/aggregated?loopId={loop_id}&{window}" for loop_id in loops]
        by_workers: dict[str, Any] = {}
        for workers in arguments.workers:
            gateway, base = start_gateway(root, database_url, influx, redis, workers)
            port = int(base.rsplit(":", 1)[1])
            auth = {"Authorization": f"Bearer {password_token(base)}"}
            fresh = {**auth, "Cache-Control": "no-cache"}
            cases = {
                "realtime_cached": (realtime, auth),
                "realtime_uncached": (realtime, fresh),
                "aggregated_cached": (aggregated, auth),
                "aggregated_uncached": (aggregated, fresh),
            }
            results: dict[str, Any] = {}
            for name, (paths, headers) in cases.items():
                results[name] = await drive(
                    port, paths, headers, arguments.concurrency, arguments.duration
                )
            gateway.terminate()
            gateway.wait(15)
            gateway = None
            cached = results["realtime_cached"]
            by_workers[f"workers_{workers}"] = {
                "cases": results,
                "speedup_realtime": round(
                    cached["req_per_s"] / max(results["realtime_uncached"]["req_per_s"], 1e-9), 2
                ),
                "speedup_aggregated": round(
                    results["aggregated_cached"]["req_per_s"]
                    / max(results["aggregated_uncached"]["req_per_s"], 1e-9),
                    2,
                ),
                "target_cached_realtime_met": cached["req_per_s"] >= TARGET_REQ_S
                and cached["p99_ms"] < TARGET_P99_MS,
            }
        return {
            "benchmark": "api-gateway",
            "loops": arguments.loops,
            "concurrency": arguments.concurrency,
            "duration_s": arguments.duration,
            "target_cached_realtime": {"req_per_s": TARGET_REQ_S, "p99_ms": TARGET_P99_MS},
            "results": by_workers,
            "load_average": os.getloadavg(),
        }
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
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per case")
    parser.add_argument("--concurrency", type=int, default=50, help="open connections")
    parser.add_argument("--loops", type=int, default=100, help="loops the requests cycle over")
    parser.add_argument(
        "--workers",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 2],
        help="gateway worker processes to measure, comma-separated (default 1,2)",
    )
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
