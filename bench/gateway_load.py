"""Load benchmark of the API gateway: /data/realtime and /data/aggregated, cached and computed.

Starts private servers as the test harness does (PostgreSQL, migrated; influxd 1.x; redis-server;
the harness's Keycloak-shaped OIDC provider), seeds ``--loops`` loops (10 minutes of 1 Hz raw
samples in influxd, one hour of ``agg_1m`` rows built from them with the aggregation's bucket
code), then runs the real gateway as its own process (``python -m clpm_api_gateway --workers N``,
``AUTH_MODE=oidc`` against the provider, ``CACHE_BACKEND=redis``) and loads it with ``wrk``
(Debian package ``wrk``; a generated Lua script sets the bearer token and cycles over the loops)
at ``--concurrency`` connections for ``--duration`` seconds per case, after a 2-s warm-up:

* ``health``: ``GET /health`` (no auth, no cache, no backend): the gateway's floor;
* ``realtime_cached`` / ``aggregated_cached``: the cache is on (Redis, plus the gateway's
  per-process near copy when it has one). Aggregated answers (a closed past hour) live an hour,
  so every answer is a hit; realtime answers live ``CACHE_TTL_REALTIME_S`` (2 s), so each loop's
  answer is recomputed about every 2 s during the case, as in production;
* ``realtime_uncached`` / ``aggregated_uncached``: the same requests with
  ``Cache-Control: no-cache``, the gateway's own switch that computes every answer from
  PostgreSQL / influxd (the answer is still written to the cache, one SET per request).

Besides req/s, p50, p99 and errors (socket errors + non-2xx answers), each case reports the CPU
time spent per request by the gateway, by the load client and by the backends (so the client's
own ceiling, 1 / its CPU time per request, is part of the result), how long the gateway's
processes waited for a core (``/proc/*/schedstat``: the machine is shared), how often the
gateway logged giving up on Redis and how many PostgreSQL connections it opened. The gateway
setups (worker count and settings, ``CONFIGS``) are measured one after the other in one run;
``uptime`` before and after. Prints one JSON object.

    PYTHONPATH=. .venv/bin/python bench/gateway_load.py --duration 30 --concurrency 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.process_cpu import process_tree, server_pid, tree_cpu_seconds
from clpm_shared.aggregation.buckets import minute_buckets
from clpm_shared.config import InfluxSettings, TimeSeriesBackend, load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.repositories import LoopRepository
from clpm_shared.db.repositories.aggregates import AggregateRepository
from clpm_shared.timeseries import Point
from clpm_shared.timeseries.base import RawSeries
from clpm_shared.timeseries.influxql import InfluxQLStore
from tests.harness.servers import (
    InfluxServer,
    OidcProvider,
    PostgresServer,
    RedisServer,
    free_port,
    migrate,
    start_postgres,
    wait_for,
)

BASE = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
RAW_SECONDS = 600
AGG_MINUTES = 60
TARGET_REQ_S = 1500
TARGET_P99_MS = 20.0
WARM_UP_S = 2


@dataclass(frozen=True)
class GatewayConfig:
    """One gateway process setup to measure, and which cases to run against it."""

    name: str
    workers: int
    environment: dict[str, str] = field(default_factory=dict)
    cases: tuple[str, ...] = (
        "health",
        "realtime_cached",
        "realtime_uncached",
        "aggregated_cached",
        "aggregated_uncached",
    )


CONFIGS: dict[str, GatewayConfig] = {
    "workers_1": GatewayConfig("workers_1", 1),
    # every request through FastAPI's routing: without the layer that answers fresh cache hits
    "workers_1_routed": GatewayConfig(
        "workers_1_routed",
        1,
        {"API_FAST_CACHED_HITS": "false"},
        ("realtime_cached", "aggregated_cached"),
    ),
    "workers_2": GatewayConfig("workers_2", 2),
    # the cached cases without the per-process near copy: every hit is a Redis round trip
    "workers_1_redis_only": GatewayConfig(
        "workers_1_redis_only",
        1,
        {"CACHE_NEAR_TTL_S": "0"},
        ("realtime_cached", "aggregated_cached"),
    ),
    # the default LOG_LEVEL=info writes one JSON access-log line per request; this is without
    "workers_1_log_warning": GatewayConfig(
        "workers_1_log_warning", 1, {"LOG_LEVEL": "warning"}, ("health", "realtime_cached")
    ),
    # realtime answers kept 60 s: near copies are renewed from Redis, nothing is recomputed
    "workers_1_realtime_ttl_60": GatewayConfig(
        "workers_1_realtime_ttl_60", 1, {"CACHE_TTL_REALTIME_S": "60"}, ("realtime_cached",)
    ),
    # realtime answers kept 60 s, and their near copies too: nothing expires or is recomputed
    # during the case, the floor of the cached path
    "workers_1_no_expiry": GatewayConfig(
        "workers_1_no_expiry",
        1,
        {"CACHE_TTL_REALTIME_S": "60", "CACHE_NEAR_TTL_S": "60"},
        ("realtime_cached",),
    ),
    # realtime answers kept 60 s instead of 2 s: no recomputation during the case, so the tail
    # of realtime_cached without the expiries (compare with workers_2)
    "workers_2_realtime_ttl_60": GatewayConfig(
        "workers_2_realtime_ttl_60", 2, {"CACHE_TTL_REALTIME_S": "60"}, ("realtime_cached",)
    ),
}


# --------------------------------------------------------------------------- servers and data


@dataclass
class Servers:
    postgres: PostgresServer
    influx: InfluxServer
    redis: RedisServer
    oidc: OidcProvider
    database_url: str

    def stop(self) -> None:
        for server in (self.oidc, self.redis, self.influx, self.postgres):
            server.stop()


def start_servers(root: Path) -> Servers:
    postgres = start_postgres("clpm-bench-gw-pg-")
    influx = InfluxServer("influxd", free_port(), root / "influx", rpc_port=free_port())
    redis = RedisServer("redis", free_port(), root / "redis")
    oidc = OidcProvider("oidc-provider", free_port(), root / "oidc")
    for directory in (influx.workdir, redis.workdir, oidc.workdir):
        directory.mkdir()
    servers = Servers(postgres, influx, redis, oidc, postgres.url("bench"))
    postgres.psql('CREATE DATABASE "bench"')
    migrate(servers.database_url)
    influx.write_config()
    influx.start()
    influx.create_database("bench")
    redis.start()
    oidc.start()
    return servers


def _raw_points(loop_id: str, index: int) -> list[Point]:
    return [
        Point(
            loop_id,
            BASE + timedelta(seconds=s),
            pv=50.0 + ((s + index) % 60) / 10,
            sp=50.0,
            op=30.0 + (s % 7),
            mode="AUT",
        )
        for s in range(RAW_SECONDS)
    ]


async def seed(servers: Servers, loops: list[str]) -> dict[str, int]:
    """Raw samples in influxd, the loops in PostgreSQL, agg_1m rows built from the samples."""
    store = InfluxQLStore(
        InfluxSettings(
            timeseries_backend=TimeSeriesBackend.INFLUXQL,
            influxdb_url=servers.influx.url,
            influxdb_bucket="bench",
        )
    )
    try:
        points = [p for i, loop_id in enumerate(loops) for p in _raw_points(loop_id, i)]
        await store.write(points)
        # one hour of minute buckets: the 10 minutes of samples, shifted 6 times
        stored = await store.query_raw_many(loops, BASE, BASE + timedelta(seconds=RAW_SECONDS))
    finally:
        await store.close()
    tables = []
    for block in range(AGG_MINUTES * 60 // RAW_SECONDS):
        offset_ns = block * RAW_SECONDS * 1_000_000_000
        series = [
            RawSeries(s.loop_id, s.t_ns + offset_ns, s.pv, s.sp, s.op, s.mode)
            for s in stored.values()
        ]
        tables.append(minute_buckets(series).buckets)
    engine = create_engine(servers.database_url)
    sessions = create_session_factory(engine)
    rows = 0
    async with sessions() as session, session.begin():
        await LoopRepository(session).register_discovered(loops)
        for table in tables:
            rows += await AggregateRepository(session).upsert("agg_1m", table)
    await engine.dispose()
    return {"raw_points": len(points), "agg_1m_rows": rows}


# --------------------------------------------------------------------------- the gateway


def start_gateway(
    root: Path, servers: Servers, config: GatewayConfig
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    settings = load_settings()  # the bench's own defaults only fill what is not set below
    environment = {
        "PATH": os.environ.get("PATH", ""),  # noqa: TID251 - the bench configures a child process
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: TID251
        "DATABASE_URL": servers.database_url,
        "TIMESERIES_BACKEND": "influxql",
        "INFLUXDB_URL": servers.influx.url,
        "INFLUXDB_BUCKET": "bench",
        "CACHE_BACKEND": "redis",
        "REDIS_URL": servers.redis.url,
        "AUTH_MODE": "oidc",
        "OIDC_ISSUER": servers.oidc.issuer,
        "OIDC_JWKS_URI": servers.oidc.jwks_uri,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "LOG_LEVEL": settings.runtime.log_level.value,
        **config.environment,
    }
    log = open(root / f"gateway-{config.name}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "clpm_api_gateway", "--workers", str(config.workers)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()

    def healthy() -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            assert response.status == 200

    wait_for(healthy, process, timeout=90)
    if config.workers > 1:  # every worker answers before the load starts
        wait_for(lambda: _check_children(process.pid, config.workers), process, timeout=30)
    return process, port


def _check_children(pid: int, workers: int) -> None:
    found = len(process_tree(pid)) - 1
    if found < workers:
        raise RuntimeError(f"{found} of {workers} workers")


def stop_gateway(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# --------------------------------------------------------------------------- CPU accounting


def _cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    return {name: tree_cpu_seconds(pid) for name, pid in roots.items()}


def _postgres_sessions(postgres: PostgresServer) -> int:
    """Connections opened to the bench database so far (``pg_stat_database.sessions``)."""
    return int(
        postgres.psql("SELECT sessions FROM pg_stat_database WHERE datname = 'bench'").strip()
    )


def _run_queue_wait_seconds(root: int) -> float:
    """Time the threads of ``root`` and its descendants spent runnable but not running.

    From ``/proc/<pid>/task/<tid>/schedstat`` (second field, ns): how long the machine's other
    work kept the process off a core.
    """
    waited = 0
    for pid in process_tree(root):
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                waited += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return waited / 1e9


# --------------------------------------------------------------------------- load client

LUA_TEMPLATE = """
local paths = {PATHS}
local counter = 0
wrk.headers["Authorization"] = "Bearer {TOKEN}"
{EXTRA_HEADERS}
function init(args)
  counter = math.random(1, #paths)
end
function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def write_script(path: Path, paths: list[str], token: str, headers: dict[str, str]) -> None:
    extra = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items())
    path.write_text(
        LUA_TEMPLATE.replace("{PATHS}", "{" + ", ".join(f'"{p}"' for p in paths) + "}")
        .replace("{TOKEN}", token)
        .replace("{EXTRA_HEADERS}", extra)
    )


def run_wrk(
    script: Path, port: int, concurrency: int, duration_s: float, threads: int
) -> tuple[dict[str, Any], float]:
    """wrk's summary (from the script's ``done``) and the CPU seconds wrk itself used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [
            "wrk",
            f"--threads={threads}",
            f"--connections={concurrency}",
            f"--duration={max(1, round(duration_s))}s",
            "--timeout=10s",
            f"--script={script}",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    match = re.search(r"^RESULT (\{.*\})$", completed.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    return json.loads(match.group(1)), cpu


def check_answer(case: str, port: int, path: str, token: str, loop_id: str) -> None:
    """One request before the load: the case must answer 200 with the seeded data."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.load(response)
    if body["loop_id"] != loop_id:
        raise RuntimeError(f"{case}: answer about {body['loop_id']}, not {loop_id}")
    if case.startswith("realtime") and body["ts"] is None:
        raise RuntimeError(f"{case}: no latest value: {body}")
    if case.startswith("aggregated") and len(body["ts"]) != AGG_MINUTES:
        raise RuntimeError(f"{case}: {len(body['ts'])} buckets, not {AGG_MINUTES}: {body}")


def measure_case(
    case: str,
    port: int,
    paths: list[str],
    token: str,
    arguments: argparse.Namespace,
    root: Path,
    cpu_roots: dict[str, int],
) -> dict[str, Any]:
    headers = {"Cache-Control": "no-cache"} if case.endswith("_uncached") else {}
    script = root / f"{case}.lua"
    write_script(script, paths, token, headers)
    run_wrk(script, port, arguments.concurrency, WARM_UP_S, arguments.client_threads)
    cpu_before = _cpu_seconds(cpu_roots)
    wait_before = _run_queue_wait_seconds(cpu_roots["gateway"])
    result, client_cpu = run_wrk(
        script, port, arguments.concurrency, arguments.duration, arguments.client_threads
    )
    cpu_after = _cpu_seconds(cpu_roots)
    wait_after = _run_queue_wait_seconds(cpu_roots["gateway"])
    seconds = result["duration_us"] / 1e6
    count = result["requests"]
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    per_request_us = {
        name: round((cpu_after[name] - cpu_before[name]) * 1e6 / max(count, 1), 1)
        for name in cpu_roots
    }
    client_us = client_cpu * 1e6 / max(count, 1)
    return {
        "requests": count,
        "req_per_s": round(count / seconds, 1),
        "p50_ms": round(result["p50_us"] / 1000, 2),
        "p90_ms": round(result["p90_us"] / 1000, 2),
        "p99_ms": round(result["p99_us"] / 1000, 2),
        "max_ms": round(result["max_us"] / 1000, 1),
        "errors": errors,
        "errors_by_kind": {
            k: result[k] for k in ("connect", "read", "write", "status", "timeout") if result[k]
        },
        "cpu_us_per_request": {**per_request_us, "load_client": round(client_us, 1)},
        "cores_used": {
            **{
                name: round((cpu_after[name] - cpu_before[name]) / seconds, 2) for name in cpu_roots
            },
            "load_client": round(client_cpu / seconds, 2),
        },
        # seconds per second the gateway's processes were runnable but waited for a core
        "gateway_run_queue_wait_per_s": round((wait_after - wait_before) / seconds, 2),
        "load_client_ceiling_req_per_s_per_core": round(1e6 / client_us) if client_us else None,
    }


def case_paths(case: str, loops: list[str]) -> list[str]:
    if case == "health":
        return ["/health"]
    if case.startswith("realtime"):
        return [f"/api/v1/data/realtime?loopId={loop_id}" for loop_id in loops]
    window = urllib.parse.urlencode(
        {
            "start": BASE.isoformat().replace("+00:00", "Z"),
            "end": (BASE + timedelta(minutes=AGG_MINUTES)).isoformat().replace("+00:00", "Z"),
            "interval": "1m",
        }
    )
    return [f"/api/v1/data/aggregated?loopId={loop_id}&{window}" for loop_id in loops]


def measure_config(
    config: GatewayConfig,
    servers: Servers,
    loops: list[str],
    arguments: argparse.Namespace,
    root: Path,
) -> dict[str, Any]:
    process, port = start_gateway(root, servers, config)
    try:
        cpu_roots = {
            "gateway": process.pid,
            "redis": server_pid(servers.redis),
            "postgres": server_pid(servers.postgres),
            "influxd": server_pid(servers.influx),
        }
        results: dict[str, Any] = {}
        log = root / f"gateway-{config.name}.log"
        for case in config.cases:
            if arguments.cases and case not in arguments.cases.split(","):
                continue
            given_up = _redis_given_up(log)
            sessions = _postgres_sessions(servers.postgres)
            token = servers.oidc.password_token("viewer")  # fresh: tokens live 15 minutes
            paths = case_paths(case, loops)
            if case != "health":
                check_answer(case, port, paths[0], token, loops[0])
            results[case] = measure_case(case, port, paths, token, arguments, root, cpu_roots)
            # the gateway logs each time it gives up on Redis (timeout 0.5 s) and serves uncached
            # for the next second; counted from the case's warm-up on
            results[case]["gateway_log_redis_unavailable"] = _redis_given_up(log) - given_up
            # new database connections during the case (warm-up included): pool churn
            results[case]["postgres_connections_opened"] = (
                _postgres_sessions(servers.postgres) - sessions
            )
        return results
    finally:
        stop_gateway(process)


REDIS_GIVEN_UP = '"event": "redis unavailable: serving uncached"'


def _redis_given_up(log: Path) -> int:
    """How often the gateway's log says it gave up on Redis and serves uncached."""
    with log.open(errors="replace") as lines:
        return sum(REDIS_GIVEN_UP in line for line in lines)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per case")
    parser.add_argument("--concurrency", type=int, default=50, help="open connections")
    parser.add_argument("--loops", type=int, default=100, help="loops the requests cycle over")
    parser.add_argument("--client-threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--cases",
        default="",
        help="only these cases of each setup, comma-separated (default: all of the setup's)",
    )
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"gateway setups to measure, comma-separated, from: {', '.join(CONFIGS)}",
    )
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk not found: install the Debian package 'wrk'")
    unknown = set(arguments.configs.split(",")) - CONFIGS.keys()
    if unknown:
        parser.error(f"unknown --configs {', '.join(sorted(unknown))}")
    configs = [CONFIGS[name] for name in arguments.configs.split(",")]
    loops = [f"FIC-{i:04d}" for i in range(arguments.loops)]
    report: dict[str, Any] = {
        "benchmark": "api-gateway",
        "concurrency": arguments.concurrency,
        "duration_s": arguments.duration,
        "loops": arguments.loops,
        "cpu_count": os.cpu_count(),
        "target_realtime_cached": {"req_per_s": TARGET_REQ_S, "p99_ms": TARGET_P99_MS},
        "uptime_before": uptime(),
    }
    root = Path(tempfile.mkdtemp(prefix="clpm-bench-gw-"))
    servers = start_servers(root)
    try:
        report["seeded"] = asyncio.run(seed(servers, loops))
        results = {
            config.name: measure_config(config, servers, loops, arguments, root)
            for config in configs
        }
        report["results"] = results
        report["target_met"] = {
            name: cases["realtime_cached"]["req_per_s"] >= TARGET_REQ_S
            and cases["realtime_cached"]["p99_ms"] < TARGET_P99_MS
            for name, cases in results.items()
            if "realtime_cached" in cases
        }
    finally:
        servers.stop()
        shutil.rmtree(servers.postgres.workdir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    report["uptime_after"] = uptime()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
