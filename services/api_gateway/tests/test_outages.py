"""Backends going down: influxd and PostgreSQL stopped -> 503 problems with Retry-After (never a
stack trace) and recovery once they are back; Redis stopped -> answers keep coming, uncached."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from clpm_api_gateway.app import create_app
from clpm_shared.config import Settings
from clpm_shared.db import create_engine
from tests.harness.servers import InfluxServer, PostgresServer, RedisServer

API = "/api/v1"
H = dict[str, dict[str, str]]


def assert_unavailable(response: httpx.Response, backend: str) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == 503
    assert problem["backend"] == backend
    assert "Traceback" not in response.text
    assert "Error" not in problem["detail"]


async def test_stopped_influxd_answers_503_then_recovers(
    client: httpx.AsyncClient, headers: H, influx_server: InfluxServer
) -> None:
    viewer = headers["viewer"]
    influx_server.stop()
    try:
        realtime = await client.get(
            f"{API}/data/realtime", params={"loopId": "FIC-101", "fields": "sp"}, headers=viewer
        )
        assert_unavailable(realtime, "timeseries")
        raw = await client.get(
            f"{API}/data/raw",
            params={
                "loopId": "FIC-101",
                "start": "2025-01-10T10:05:00Z",
                "end": "2025-01-10T10:06:00Z",
            },
            headers=viewer,
        )
        assert_unavailable(raw, "timeseries")
        view = await client.get(f"{API}/loops/FIC-101/kpis/latest/oscillation-view", headers=viewer)
        assert_unavailable(view, "timeseries")
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "timeseries": "down"}
        loops = await client.get(f"{API}/loops", headers=viewer)
        assert loops.status_code == 200, "endpoints that do not need raw data keep working"
    finally:
        influx_server.start()
    realtime = await client.get(
        f"{API}/data/realtime", params={"loopId": "FIC-101", "fields": "sp"}, headers=viewer
    )
    assert realtime.status_code == 200
    assert realtime.json()["sp"] == 50.0
    assert (await client.get("/ready")).status_code == 200


async def test_stopped_postgres_answers_503_then_recovers(
    client: httpx.AsyncClient, headers: H, postgres_server: PostgresServer
) -> None:
    viewer = headers["viewer"]
    postgres_server.stop()
    try:
        loops = await client.get(f"{API}/loops", headers=viewer)
        assert_unavailable(loops, "database")
        kpis = await client.get(f"{API}/loops/FIC-101/kpis/latest", headers=viewer)
        assert_unavailable(kpis, "database")
        work = await client.get(f"{API}/work-items/fleet", headers=viewer)
        assert_unavailable(work, "database")
        trend = await client.get(f"{API}/fleet/trends", headers=viewer)
        assert_unavailable(trend, "database")
        compare = await client.get(
            f"{API}/loops/FIC-101/compare", params={"at": "2025-01-10"}, headers=viewer
        )
        assert_unavailable(compare, "database")
        audit = await client.get(f"{API}/audit", headers=headers["admin"])
        assert_unavailable(audit, "database")
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "down"
    finally:
        postgres_server.start()
    loops = await client.get(f"{API}/loops", headers=viewer)
    assert loops.status_code == 200
    assert loops.json()["total"] == 4


async def test_stopped_redis_only_costs_the_cache(
    client: httpx.AsyncClient, headers: H, redis_server: RedisServer
) -> None:
    params = {"loopId": "TIC-205", "start": "2025-01-10T10:00:00Z", "end": "2025-01-10T11:00:00Z"}
    redis_server.stop()
    try:
        for _ in range(2):
            response = await client.get(
                f"{API}/data/aggregated", params=params, headers=headers["viewer"]
            )
            assert response.status_code == 200
            assert response.json()["count"] == 60
    finally:
        redis_server.start()
    again = await client.get(f"{API}/data/aggregated", params=params, headers=headers["viewer"])
    assert again.status_code == 200
    assert again.json()["source"] == "agg_1m"


async def test_health_needs_no_backend(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    prefixed = await client.get(f"{API}/health")  # every route is also under the prefix
    assert prefixed.status_code == 200
    assert prefixed.json() == response.json()
    ready = await client.get(f"{API}/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_postgres_shutting_down_answers_503_not_500(
    settings: Settings, seeded: dict[str, Any], headers: H, postgres_server: PostgresServer
) -> None:
    """A smart shutdown (SIGTERM) waits for open sessions and refuses new ones with SQLSTATE
    57P03 "the database system is shutting down", which asyncpg raises as a plain error."""
    holder = create_engine(settings.database)
    app = create_app(settings)  # a fresh pool: every request needs a new connection
    try:
        async with holder.connect() as held:
            await held.execute(text("SELECT 1"))
            assert postgres_server.process is not None
            postgres_server.process.send_signal(signal.SIGTERM)
            async with (
                LifespanManager(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as gw,
            ):
                loops = await gw.get(f"{API}/loops", headers=headers["viewer"])
                assert_unavailable(loops, "database")
                assert loops.json()["reason"] == "unreachable"
                assert (await gw.get(f"{API}/ready")).status_code == 503
    finally:
        await holder.dispose()
        postgres_server.stop()  # other clients' sessions keep it up: a fast shutdown ends them
        postgres_server.start()


async def test_while_influxd_is_down_requests_fail_without_backoff_and_recover_on_their_own(
    settings: Settings, seeded: dict[str, Any], headers: H, influx_server: InfluxServer
) -> None:
    """With the default 4 retries each request used to wait ~3 s of backoff (holding a query
    slot); the circuit breaker answers 503 at once once the server is known to be down."""
    parts = {name: getattr(settings, name) for name in Settings.__slots__}
    parts["influx"] = settings.influx.model_copy(
        update={"influxdb_max_retries": 4, "influxdb_breaker_open_s": 1.0}
    )
    app = create_app(Settings(**parts))
    viewer = headers["viewer"]

    async def raw(gw: httpx.AsyncClient, minute: int) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = await gw.get(
            f"{API}/data/raw",
            params={
                "loopId": "FIC-101",
                "start": f"2025-01-10T10:{minute:02d}:00Z",
                "end": f"2025-01-10T10:{minute:02d}:30Z",
            },
            headers=viewer,
        )
        return response, time.monotonic() - started

    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as gw,
    ):
        influx_server.stop()
        try:
            answers = await asyncio.gather(*(raw(gw, minute) for minute in range(40)))
            for response, _ in answers:
                assert_unavailable(response, "timeseries")
            slowest = max(seconds for _, seconds in answers)
            # ~3 s of backoff without the breaker; 2 s leaves room for a loaded machine (40
            # requests through one event loop took 1.65 s once under load)
            assert slowest < 2.0, f"slowest 503 after {slowest:.2f} s"
            later, seconds = await raw(gw, 45)  # the breaker is open: no attempt at all
            assert_unavailable(later, "timeseries")
            assert seconds < 0.2
        finally:
            influx_server.start()
        deadline = time.monotonic() + 10
        while True:  # no restart, no /ready call: the breaker probes by itself
            response, _ = await raw(gw, 50)
            if response.status_code == 200:
                break
            assert time.monotonic() < deadline, response.text
            await asyncio.sleep(0.2)
        assert len(response.json()["ts"]) == 30
