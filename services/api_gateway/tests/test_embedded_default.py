"""The gateway on the embedded default of the one-command run: SQLite, the embedded time-series
store, the in-process cache and the local token issuer; the same answers as on the servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from clpm_api_gateway.app import create_app
from clpm_shared.config import Settings, load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import Agg1m, KpiResult, Loop
from clpm_shared.timeseries import Point
from clpm_shared.timeseries.embedded import EmbeddedStore
from tests.harness.servers import REALM_FILE, migrate

BASE = datetime(2025, 1, 10, 10, 0, 0, tzinfo=UTC)
ISSUER = "http://127.0.0.1:8080/realms/clpm"
API = "/api/v1"


@pytest.fixture(scope="module")
async def embedded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    root: Path = tmp_path_factory.mktemp("embedded")
    database_url = f"sqlite+aiosqlite:///{root / 'clpm.db'}"
    migrate(database_url)
    settings: Settings = load_settings(
        database={"database_url": database_url},
        influx={"timeseries_backend": "embedded", "embedded_tsdb_path": root / "ts.db"},
        cache={"cache_backend": "memory"},
        auth={
            "auth_mode": "local",
            "oidc_issuer": ISSUER,
            "local_issuer_key_path": root / "issuer.pem",
            "local_realm_file": REALM_FILE,
        },
    )
    store = EmbeddedStore(settings.influx.embedded_tsdb_path)
    await store.write(
        [
            Point("FIC-101", BASE + timedelta(seconds=i), pv=float(i % 60), sp=50.0)
            for i in range(600)
        ]
    )
    await store.close()
    engine = create_engine(settings.database)
    async with create_session_factory(engine)() as session:
        session.add_all([Loop(loop_id="FIC-101", unit="U1"), Loop(loop_id="TIC-205", unit="U1")])
        await session.flush()
        session.add_all(
            Agg1m(
                loop_id="TIC-205", bucket_start=BASE + timedelta(minutes=m), pv_count=60, pv_mean=m
            )
            for m in range(30)
        )
        session.add(
            KpiResult(
                loop_id="TIC-205",
                window_start=BASE,
                window_end=BASE + timedelta(minutes=15),
                health_score=40.0,
                status="poor",
            )
        )
        await session.commit()
    await engine.dispose()
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://127.0.0.1:8080"
        ) as http,
    ):
        token = await http.post(
            "/realms/clpm/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "clpm-cli",
                "client_secret": "clpm-cli-secret",
                "username": "admin",
                "password": "admin",
            },
        )
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield http


async def test_raw_and_realtime_from_the_embedded_store(embedded: httpx.AsyncClient) -> None:
    raw = (
        await embedded.get(
            f"{API}/data/raw",
            params={
                "loopId": "FIC-101",
                "start": "2025-01-10T10:00:00Z",
                "end": "2025-01-10T10:01:00Z",
                "fields": "pv",
            },
        )
    ).json()
    assert raw["pv"] == [float(i) for i in range(60)]
    realtime = (await embedded.get("/data/realtime", params={"loopId": "FIC-101"})).json()
    assert realtime["ts"] == "2025-01-10T10:09:59.000Z"
    assert realtime["pv"] == 59.0


async def test_aggregates_from_sqlite_and_raw_fallback(embedded: httpx.AsyncClient) -> None:
    window = {"start": "2025-01-10T10:00:00Z", "end": "2025-01-10T10:30:00Z", "interval": "15m"}
    stored = (
        await embedded.get(f"{API}/data/aggregated", params={"loopId": "TIC-205", **window})
    ).json()
    assert stored["source"] == "agg_1m"
    assert stored["pv"] == [7.0, 22.0]
    computed = (
        await embedded.get(f"{API}/data/aggregated", params={"loopId": "FIC-101", **window})
    ).json()
    assert computed["source"] == "raw"
    assert computed["pv_count"] == [600]


async def test_loops_fleet_and_writes_on_sqlite(embedded: httpx.AsyncClient) -> None:
    ranked = (
        await embedded.get(
            f"{API}/loops", params={"sort": "bad_actor", "order": "desc", "period": "window"}
        )
    ).json()
    assert [item["loop_id"] for item in ranked["items"]] == ["TIC-205", "FIC-101"]
    fleet = (await embedded.get(f"{API}/fleet/summary", params={"period": "window"})).json()
    assert fleet["status_counts"] == {
        "good": 0,
        "fair": 0,
        "poor": 1,
        "offline": 1,
        "not_assessed": 0,
    }
    changed = await embedded.put(f"{API}/loops/TIC-205/config", json={"criticality": 5})
    assert changed.json()["criticality"] == 5
    fleet = (await embedded.get(f"{API}/fleet/summary", params={"period": "window"})).json()
    assert fleet["bad_actors"][0]["bad_actor_score"] == 300.0
    range_ = (await embedded.get(f"{API}/data/range", params={"loopId": "TIC-205"})).json()
    assert range_["agg_1m"] == {
        "start": "2025-01-10T10:00:00.000Z",
        "end": "2025-01-10T10:30:00.000Z",
    }


async def test_cached_hits_of_the_memory_cache_are_answered_before_the_routing(
    embedded: httpx.AsyncClient,
) -> None:
    transport = embedded._transport  # the gateway app behind the test client
    assert isinstance(transport, httpx.ASGITransport)
    layer = transport.app.state.cached_hits
    params = {"loopId": "TIC-205", "fields": "pv"}  # no raw data: an answer without an age
    first = await embedded.get(f"{API}/data/realtime", params=params)
    assert first.status_code == 200
    before = layer.answered
    second = await embedded.get(f"{API}/data/realtime", params=params)
    assert layer.answered == before + 1
    assert second.content == first.content
    assert second.headers.raw == first.headers.raw
