"""Cost of bearer-token checks and of the response cache, against baselines in the same run.

* Token validation (RS256, python-jose): a fresh check of every request versus a validator that
  remembers accepted tokens (what the gateway uses).
* Cache: ``get_or_compute`` hits on the in-process and the Redis backend (a private
  redis-server, as the test harness starts it), and a stampede of ``--concurrency`` callers on
  one missing key (single-flight: one computation) versus calling the computation directly.

    PYTHONPATH=. .venv/bin/python bench/auth_cache.py --requests 5000 --concurrency 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from clpm_api_gateway.local_issuer import LocalIssuer
from clpm_shared.auth import StaticKeySource, TokenValidator
from clpm_shared.cache import MemoryCache, RedisCache, cache_key
from clpm_shared.config import load_settings
from tests.harness.servers import REALM_FILE, RedisServer, free_port


async def _validation(requests: int, workdir: Path) -> dict[str, Any]:
    auth = load_settings(
        auth={
            "auth_mode": "local",
            "oidc_issuer": "http://127.0.0.1:8080/realms/clpm",
            "local_issuer_key_path": workdir / "issuer.pem",
            "local_realm_file": REALM_FILE,
        }
    ).auth
    issuer = LocalIssuer.from_settings(auth)
    token = issuer.password_grant(
        issuer.client("clpm-cli"), {"username": "engineer", "password": "engineer"}
    )["access_token"]
    results: dict[str, Any] = {}
    for name, remember_s in (("fresh_check_each_request", 0.0), ("remembered", 60.0)):
        validator = TokenValidator(auth, StaticKeySource(issuer.jwks), remember_s=remember_s)
        started = time.perf_counter()
        for _ in range(requests):
            await validator.validate(token)
        elapsed = time.perf_counter() - started
        results[name] = {
            "per_s": round(requests / elapsed),
            "us_each": round(elapsed / requests * 1e6, 1),
        }
    return results


async def _hits(cache: MemoryCache | RedisCache, requests: int, concurrency: int) -> dict[str, Any]:
    key = cache_key("bench:realtime", loop_id="FIC-101", fields=("PV", "SP", "OP"))
    body = json.dumps({"loopId": "FIC-101", "PV": 50.1, "SP": 50.0, "OP": 31.2}).encode()

    async def compute() -> bytes:
        return body

    await cache.get_or_compute_bytes(key, 60, compute)
    # warm-up: open the connections that `concurrency` callers need
    await asyncio.gather(
        *(cache.get_or_compute_bytes(key, 60, compute) for _ in range(concurrency))
    )
    latencies: list[float] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            started = time.perf_counter()
            await cache.get_or_compute_bytes(key, 60, compute)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "per_s": round(len(latencies) / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2] * 1e3, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1e3, 3),
    }


async def _stampede(cache: MemoryCache | RedisCache | None, concurrency: int) -> dict[str, Any]:
    """``concurrency`` callers at once on a missing key whose computation takes 50 ms."""
    computations = 0

    async def compute() -> bytes:
        nonlocal computations
        computations += 1
        await asyncio.sleep(0.05)
        return b"{}"

    key = cache_key("bench:stampede", run=time.time_ns())
    started = time.perf_counter()
    if cache is None:
        await asyncio.gather(*(compute() for _ in range(concurrency)))
    else:
        await asyncio.gather(
            *(cache.get_or_compute_bytes(key, 60, compute) for _ in range(concurrency))
        )
    return {
        "computations": computations,
        "wall_ms": round((time.perf_counter() - started) * 1e3, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clpm-bench-") as tmp:
        workdir = Path(tmp)
        report: dict[str, Any] = {"token_validation": await _validation(args.requests, workdir)}
        redis_server = RedisServer("redis", free_port(), workdir)
        redis_server.start()
        try:
            memory = MemoryCache()
            redis_cache = RedisCache.from_url(redis_server.url)
            report["cache_hits"] = {
                "memory": await _hits(memory, args.requests, args.concurrency),
                "redis": await _hits(redis_cache, args.requests, args.concurrency),
            }
            report["stampede"] = {
                "no_cache_baseline": await _stampede(None, args.concurrency),
                "memory": await _stampede(memory, args.concurrency),
                "redis": await _stampede(redis_cache, args.concurrency),
            }
            await redis_cache.aclose()
        finally:
            redis_server.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
