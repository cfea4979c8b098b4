"""Gateway -> diagnostics service over HTTP: run a diagnosis now, read the stored findings back
through the gateway, and the plant-wide oscillation clusters; on PostgreSQL, influxd, Redis and
the OIDC provider, both services really serving."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from clpm_api_gateway.app import create_app as create_gateway
from clpm_diagnostics.app import create_app as create_diagnostics
from clpm_shared.config import Settings, load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import Loop
from clpm_shared.db.repositories.diagnostics import DiagnosticRepository
from clpm_shared.timeseries import Point
from clpm_shared.timeseries.factory import create_store
from tests.harness.asgi_server import serve_in_thread
from tests.harness.servers import InfluxServer, OidcProvider, RedisServer

BASE = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
WINDOW = {"start": "2025-01-10T10:00:00Z", "end": "2025-01-10T11:00:00Z"}
LOOPS = ("FIC-201", "FIC-202")
SERVICE_TOKEN = "gateway-and-workers-only"


@pytest.fixture(scope="module")
def settings(
    postgres_url: str,
    influx_server: InfluxServer,
    influx_database: str,
    redis_server: RedisServer,
    oidc_provider: OidcProvider,
) -> Settings:
    return load_settings(
        database={"database_url": postgres_url},
        influx={
            "timeseries_backend": "influxql",
            "influxdb_url": influx_server.url,
            "influxdb_database": influx_database,
            "influxdb_max_retries": 0,
        },
        cache={"cache_backend": "redis", "redis_url": redis_server.url},
        auth={"oidc_issuer": oidc_provider.issuer, "oidc_jwks_uri": oidc_provider.jwks_uri},
        diagnostics={"diag_service_token": SERVICE_TOKEN},
    )


SHARED_PHASE = np.cumsum(np.random.default_rng(3).normal(0.0, 0.05, 3600))
"""The wandering phase (rad, 0.05 rad/sqrt(s)) of the oscillation both loops share: a
perfectly periodic one would look the same in two independent loops of that period."""


def oscillating(loop_id: str) -> list[Point]:
    """One hour at 1 Hz of a loop cycling with the shared 90 s oscillation (PV and OP)."""
    return [
        Point(
            loop_id,
            BASE + timedelta(seconds=i),
            pv=50.0 + 5.0 * math.sin(2 * math.pi * i / 90.0 + SHARED_PHASE[i]),
            sp=50.0,
            op=40.0 + 8.0 * math.sin(2 * math.pi * (i - 20) / 90.0 + SHARED_PHASE[i]),
            mode="AUT",
        )
        for i in range(3600)
    ]


@pytest.fixture(scope="module")
async def seeded(settings: Settings) -> None:
    store = create_store(settings.influx)
    try:
        for loop_id in LOOPS:
            await store.write(oscillating(loop_id))
    finally:
        await store.close()
    engine = create_engine(settings.database)
    async with create_session_factory(engine)() as session:
        session.add_all(Loop(loop_id=loop_id, name=loop_id, unit="U2") for loop_id in LOOPS)
        await session.commit()
    await engine.dispose()


@pytest.fixture(scope="module")
def diagnostics_url(settings: Settings, seeded: None) -> Iterator[str]:
    with serve_in_thread(create_diagnostics(settings)) as url:
        yield url


@pytest.fixture(scope="module")
async def gateway(settings: Settings, diagnostics_url: str) -> AsyncIterator[httpx.AsyncClient]:
    parts = {name: getattr(settings, name) for name in Settings.__slots__}
    parts["api"] = settings.api.model_copy(
        update={"diag_service_url": diagnostics_url, "diag_timeout_s": 60.0}
    )
    app = create_gateway(Settings(**parts))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        yield http


@pytest.fixture(scope="module")
def engineer(oidc_provider: OidcProvider) -> dict[str, str]:
    return {"Authorization": f"Bearer {oidc_provider.password_token('engineer')}"}


async def test_run_now_answers_the_diagnosis_and_stores_it(
    gateway: httpx.AsyncClient, engineer: dict[str, str]
) -> None:
    run = await gateway.post("/api/v1/loops/FIC-201/diagnostics/run", json=WINDOW, headers=engineer)
    assert run.status_code == 200, run.text
    diagnosis = run.json()
    assert diagnosis["loop_id"] == "FIC-201"
    assert diagnosis["samples"] == 3600
    assert diagnosis["oscillation"]["period_s"] == pytest.approx(90.0, rel=0.1)
    assert diagnosis["findings"], "an oscillating loop has at least one finding"
    stored = (await gateway.get("/api/v1/loops/FIC-201/diagnostics", headers=engineer)).json()
    assert sorted(item["category"] for item in stored["items"]) == sorted(
        finding["category"] for finding in diagnosis["findings"]
    )
    assert stored["items"][0]["window_start"].startswith("2025-01-10T10:00:00")
    assert stored["items"][0]["trigger"] == "on_demand"


async def test_oscillation_clusters_through_the_gateway(
    gateway: httpx.AsyncClient, engineer: dict[str, str]
) -> None:
    response = await gateway.get("/api/v1/oscillation-clusters", params=WINDOW, headers=engineer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["loops_analysed"] == 2
    assert body["oscillating_loops"] == 2
    [cluster] = body["clusters"]
    assert sorted(member["loop_id"] for member in cluster["members"]) == list(LOOPS)
    assert {member["unit"] for member in cluster["members"]} == {"U2"}
    assert all(member["why"] for member in cluster["members"])


async def test_the_services_refusal_is_passed_on_with_the_parameter(
    gateway: httpx.AsyncClient, engineer: dict[str, str]
) -> None:
    eight_days = {"start": "2025-01-02T10:00:00Z", "end": "2025-01-10T10:00:00Z"}
    response = await gateway.get(
        "/api/v1/oscillation-clusters", params=eight_days, headers=engineer
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["backend"] == "diagnostics service"
    assert problem["errors"][0]["parameter"] == "end"
    assert "168 h" in problem["detail"]  # clusters: up to a week (on 1-minute means)


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-the-token", f"Basic {SERVICE_TOKEN}", "Bearer"]
)
async def test_the_diagnostics_service_refuses_callers_without_the_service_token(
    gateway: httpx.AsyncClient,
    diagnostics_url: str,
    engineer: dict[str, str],
    authorization: str | None,
) -> None:
    """A direct POST with a spoofed trigger no longer writes what viewers are shown."""
    before = (await gateway.get("/api/v1/loops/FIC-202/diagnostics", headers=engineer)).json()
    headers = {} if authorization is None else {"Authorization": authorization}
    async with httpx.AsyncClient(base_url=diagnostics_url, headers=headers) as direct:
        spoofed = await direct.post(
            "/diagnose", json={"loop_id": "FIC-202", **WINDOW, "trigger": "kpi_cycle"}
        )
        batch = await direct.post(
            "/diagnose/batch", json={"loop_ids": ["FIC-202"], **WINDOW, "trigger": "kpi_cycle"}
        )
        clusters = await direct.get("/oscillation-clusters", params=WINDOW)
        probes = [(await direct.get(path)).status_code for path in ("/health", "/ready")]
    for answer in (spoofed, batch, clusters):
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert probes == [200, 200]
    after = (await gateway.get("/api/v1/loops/FIC-202/diagnostics", headers=engineer)).json()
    assert after == before


async def test_a_caller_with_the_service_token_is_served(diagnostics_url: str) -> None:
    async with httpx.AsyncClient(
        base_url=diagnostics_url, headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
    ) as worker:
        answer = await worker.get("/oscillation-clusters", params=WINDOW, timeout=60)
    assert answer.status_code == 200


async def test_an_on_demand_run_is_read_back_although_the_kpi_cycle_diagnosed_newer_windows(
    gateway: httpx.AsyncClient, engineer: dict[str, str], settings: Settings
) -> None:
    noise = {
        "category": "sensor_noise",
        "severity": 0.4,
        "confidence": 0.7,
        "evidence": {"noise_pct": 2.0},
        "recommendation": "Filter the transmitter.",
    }
    engine = create_engine(settings.database)
    async with create_session_factory(engine)() as session, session.begin():
        for quarter in range(1, 4):  # the cycle's windows 10:15 ... 10:45, newer than 10:00
            start = BASE + timedelta(minutes=15 * quarter)
            await DiagnosticRepository(session).replace_cycle_findings(
                start, start + timedelta(minutes=15), {"FIC-202": [noise]}
            )
    await engine.dispose()
    run = await gateway.post("/api/v1/loops/FIC-202/diagnostics/run", json=WINDOW, headers=engineer)
    assert run.status_code == 200, run.text
    asked = sorted(finding["category"] for finding in run.json()["findings"])
    assert asked

    latest = (await gateway.get("/api/v1/loops/FIC-202/diagnostics", headers=engineer)).json()
    exact = (
        await gateway.get("/api/v1/loops/FIC-202/diagnostics", params=WINDOW, headers=engineer)
    ).json()
    for answer in (latest, exact):
        assert sorted(item["category"] for item in answer["items"]) == asked
        assert {item["trigger"] for item in answer["items"]} == {"on_demand"}
        assert {item["window_end"][:19] for item in answer["items"]} == {"2025-01-10T11:00:00"}
    cycle = (
        await gateway.get(
            "/api/v1/loops/FIC-202/diagnostics",
            params={"start": "2025-01-10T10:45:00Z", "end": "2025-01-10T11:00:00Z"},
            headers=engineer,
        )
    ).json()
    assert [(i["category"], i["trigger"]) for i in cycle["items"]] == [
        ("sensor_noise", "kpi_cycle")
    ]
    half = await gateway.get(
        "/api/v1/loops/FIC-202/diagnostics", params={"start": WINDOW["start"]}, headers=engineer
    )
    assert half.status_code == 422
    assert half.json()["errors"][0]["parameter"] == "end"
