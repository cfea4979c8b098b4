"""Diagnostics service on real PostgreSQL + influxd: diagnose, batch, clusters, errors, outages.

Three simulated loops are written to influxd for one hour (plus ten minutes of start-up):
PIC-301 has a sticky valve, FIC-302 is a healthy flow loop fed from PIC-301's header (its
process input follows PIC-301's pressure through 5 s of dead time and a 20-s lag), TIC-303
is healthy.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select

from clpm_diagnostics.app import create_app, scheduled_cluster_pass
from clpm_diagnostics.runs import ClusterRun, DiagnosisRunner
from clpm_shared.config import Settings, load_settings
from clpm_shared.db import DiagnosticResult, create_engine, create_session_factory
from clpm_shared.db.models import Agg1m
from clpm_shared.db.repositories import LoopConfigRepository, LoopRepository
from clpm_shared.db.repositories.heartbeats import HISTORY_RUN, HeartbeatRepository
from clpm_shared.db.repositories.oscillation_clusters import OscillationClusterRepository
from clpm_shared.simulation import SimulatedLoopSpec, SimulatedSeries, simulate_fleet
from clpm_shared.timeseries import Point
from clpm_shared.timeseries.influxql import InfluxQLStore
from tests.harness.servers import InfluxServer, PostgresServer

WARM_UP_S = 600
WINDOW_S = 3600
T0 = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
START, END = T0, T0 + timedelta(seconds=WINDOW_S)
SERVICE_TOKEN = "diagnostics-test-token"
FEED_GAIN = 20.0
"""% OP of load on FIC-302 per bar of PIC-301's pressure deviation."""


def _points(loop_id: str, series: SimulatedSeries) -> list[Point]:
    first = T0 - timedelta(seconds=WARM_UP_S)
    return [
        Point(loop_id, first + timedelta(seconds=float(t)), float(pv), float(sp), float(op), str(m))
        for t, pv, sp, op, m in zip(
            series.t, series.pv, series.sp, series.op, series.mode, strict=True
        )
    ]


@pytest.fixture(scope="module")
def plant() -> dict[str, tuple[SimulatedLoopSpec, SimulatedSeries]]:
    samples = WARM_UP_S + WINDOW_S
    sticky = SimulatedLoopSpec.for_profile("PIC-301", "sticky_valve", "pressure", seed=2)
    fed = SimulatedLoopSpec.for_profile("FIC-302", "healthy", "flow", seed=3)
    fed = replace(fed, sp_change_interval_s=0.0).coupled_to("PIC-301", FEED_GAIN, 5.0, 20.0)
    healthy = SimulatedLoopSpec.for_profile("TIC-303", "healthy", "temperature", seed=4)
    specs = [sticky, fed, healthy]
    return {
        spec.loop_id: (spec, series)
        for spec, series in zip(specs, simulate_fleet(specs, samples), strict=True)
    }


def _settings(
    postgres_url: str, influx_server: InfluxServer, influx_database: str, **diagnostics: Any
) -> Settings:
    return load_settings(
        database={"database_url": postgres_url},
        diagnostics={
            "diag_cluster_precompute_h": "1",
            "diag_cluster_interval_s": 900,
            "diag_service_token": SERVICE_TOKEN,
            **diagnostics,
        },
        influx={
            "timeseries_backend": "influxql",
            "influxdb_url": influx_server.url,
            "influxdb_bucket": influx_database,
            "influxdb_max_retries": 1,
            "influxdb_timeout_s": 3,
        },
    )


@pytest.fixture(scope="module")
def settings(postgres_url: str, influx_server: InfluxServer, influx_database: str) -> Settings:
    return _settings(postgres_url, influx_server, influx_database)


@pytest.fixture(scope="module")
async def seeded(
    settings: Settings, plant: dict[str, tuple[SimulatedLoopSpec, SimulatedSeries]]
) -> None:
    store = InfluxQLStore(settings.influx)
    for loop_id, (_, series) in plant.items():
        await store.write(_points(loop_id, series))
    await store.close()
    engine = create_engine(settings.database)
    async with create_session_factory(engine)() as session, session.begin():
        for loop_id, (spec, _) in plant.items():
            await LoopRepository(session).save(loop_id, {"name": loop_id, "unit": "U3"})
            await LoopConfigRepository(session).save(
                loop_id, {"loop_type": spec.loop_type.value, "dead_time_s": spec.dead_time_s}
            )
    await engine.dispose()


@pytest.fixture(scope="module")
async def app(settings: Settings, seeded: None) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://diag",
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    ) as client:
        yield client


async def _stored(settings: Settings, loop_id: str) -> list[DiagnosticResult]:
    engine = create_engine(settings.database)
    async with create_session_factory(engine)() as session:
        rows = (
            await session.execute(
                select(DiagnosticResult).where(DiagnosticResult.loop_id == loop_id)
            )
        ).scalars()
        found = list(rows)
    await engine.dispose()
    return found


def _window(loop_id: str) -> dict[str, str]:
    return {"loop_id": loop_id, "start": START.isoformat(), "end": END.isoformat()}


async def test_sticky_loop_is_diagnosed_as_stiction_and_stored(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.post("/diagnose", json=_window("PIC-301"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["primary"] == "stiction"
    assert body["samples"] == WINDOW_S
    assert body["sample_period_s"] == pytest.approx(1.0)
    assert body["stiction"]["verdict"] == "stiction"
    # each stiction test's score and vote; the shape test must vote for a stiction verdict
    assert set(body["stiction"]["method_votes"]) == {"curve_fit", "non_gaussianity", "ellipse"}
    assert body["stiction"]["method_votes"]["curve_fit"] == 1
    assert 0.0 <= body["stiction"]["method_scores"]["ellipse"] <= 1.0
    stiction = next(f for f in body["findings"] if f["category"] == "stiction")
    assert 0 < stiction["severity"] <= 1
    assert stiction["evidence"]["apparent_stiction_pct"] > 0
    assert "valve maintenance" in stiction["recommendation"]
    assert all(item["category"] != "stiction" for item in stiction["explained"])
    rows = await _stored(settings, "PIC-301")
    stored = next(row for row in rows if row.category == "stiction")
    assert stored.evidence.get("explained", []) == stiction["explained"]
    assert {row.category for row in rows} == {f["category"] for f in body["findings"]}
    assert all(row.trigger == "on_demand" and row.window_start == START for row in rows)


async def test_a_healthy_loop_has_no_findings_and_a_repeat_replaces_the_window(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    first = (await client.post("/diagnose", json=_window("TIC-303"))).json()
    assert first["primary"] is None
    assert first["findings"] == []
    assert await _stored(settings, "TIC-303") == []
    assert (await client.post("/diagnose", json=_window("PIC-301"))).status_code == 200
    before = len(await _stored(settings, "PIC-301"))
    assert before > 0  # a loop with findings, so that a duplicate would show
    assert (await client.post("/diagnose", json=_window("PIC-301"))).status_code == 200
    assert len(await _stored(settings, "PIC-301")) == before


async def test_diagnose_answer_lists_each_oscillation_component(
    client: httpx.AsyncClient,
) -> None:
    sticky = (await client.post("/diagnose", json=_window("PIC-301"))).json()
    components = sticky["oscillation_components"]
    assert components, sticky
    main = components[0]
    assert set(main) == {"period_s", "regularity", "strength", "peak_ratio", "amplitude", "share"}
    assert main["period_s"] == pytest.approx(sticky["oscillation"]["period_s"], rel=0.1)
    assert main["regularity"] > 1.0
    assert main["share"] > 0.8
    assert main["amplitude"] > 0.0
    healthy = (await client.post("/diagnose", json=_window("TIC-303"))).json()
    assert healthy["oscillation_components"] == []


async def test_unknown_loop_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/diagnose", json=_window("NOPE-1"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 404
    assert problem["loop_ids"] == ["NOPE-1"]
    assert "NOPE-1" in problem["detail"]


@pytest.mark.parametrize(
    ("change", "parameter"),
    [
        ({"start": "2025-01-10T10:00:00"}, "start"),
        ({"end": "2025-01-10T09:00:00Z"}, "end"),
        ({"end": "2025-01-12T10:00:00Z"}, "end"),
        ({"loop_id": "bad id with spaces"}, "loop_id"),
        ({"start": "yesterday"}, "start"),
    ],
)
async def test_invalid_input_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient, change: dict[str, str], parameter: str
) -> None:
    response = await client.post("/diagnose", json={**_window("PIC-301"), **change})
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["parameter"] == parameter
    assert problem["detail"].startswith(f"{parameter}:")


async def test_batch_of_the_kpi_worker_diagnoses_clusters_and_reports_unknown_ids(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    body = {
        "loop_ids": ["PIC-301", "FIC-302", "TIC-303", "GONE-9"],
        "start": START.isoformat(),
        "end": END.isoformat(),
        "trigger": "kpi_cycle",
    }
    response = await client.post("/diagnose/batch", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["count"] == 3
    assert answer["unknown_loop_ids"] == ["GONE-9"]
    primary = {result["loop_id"]: result["primary"] for result in answer["results"]}
    assert primary == {
        "PIC-301": "stiction",
        "FIC-302": "external_disturbance",
        "TIC-303": None,
    }
    [cluster] = answer["clusters"]
    assert {member["loop_id"] for member in cluster["members"]} == {"PIC-301", "FIC-302"}
    assert cluster["likely_source"] == "PIC-301"
    rows = await _stored(settings, "FIC-302")
    assert {row.trigger for row in rows} == {"kpi_cycle"}


async def test_oscillation_clusters_name_the_sticky_valve_as_source(
    client: httpx.AsyncClient,
) -> None:
    params = {"start": START.isoformat(), "end": END.isoformat()}
    response = await client.get("/oscillation-clusters", params=params)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["loops_analysed"] == 3
    assert answer["oscillating_loops"] == 2
    assert answer["basis"] == "raw"  # one hour: raw samples
    assert answer["precomputed"] is False  # no run stored for this window yet
    [cluster] = answer["clusters"]
    assert cluster["likely_source"] == "PIC-301"
    assert cluster["source_evidence"]["stiction_verdict"] == "stiction"
    assert 60.0 < cluster["period_s"] < 130.0  # the sticky pressure loop cycles in ~1.5 min
    source, member = cluster["members"]
    assert source["loop_id"] == "PIC-301"
    assert source["role"] == "source"
    assert member["loop_id"] == "FIC-302"
    assert member["coherence_with_source"] > 0.9
    assert 0 < member["lag_behind_source_s"] < 30  # 5 s dead time, 20 s lag, its own loop
    assert member["unit"] == "U3"
    assert member["period_s"] == pytest.approx(cluster["period_s"], rel=0.1)
    assert member["amplitude_pct_of_span"] > 0
    assert "PIC-301" in member["why"]
    assert "same unit (U3)" in member["why"]
    missing = await client.get("/oscillation-clusters", params={"end": END.isoformat()})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["parameter"] == "start"


async def test_scheduled_windows_are_answered_from_the_stored_run(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    runner = app.state.runner
    [run] = await runner.precompute_clusters(END + timedelta(minutes=5))  # the 1-h window
    assert await runner.precompute_clusters(END + timedelta(minutes=5)) == []  # stored once
    # the page asks for the last hour a few minutes later: the stored run answers
    later = {
        "start": (START + timedelta(minutes=7)).isoformat(),
        "end": (END + timedelta(minutes=7)).isoformat(),
    }
    response = await client.get("/oscillation-clusters", params=later)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["precomputed"] is True
    assert answer["start"] == START.isoformat().replace("+00:00", "Z")
    assert answer["end"] == END.isoformat().replace("+00:00", "Z")
    assert [c["likely_source"] for c in answer["clusters"]] == ["PIC-301"]
    assert answer["oscillating_loops"] == run.oscillating_loops == 2
    assert answer["clusters"][0]["members"][1]["why"].startswith("coherence")
    # a window that is not scheduled, or one that ends before the stored run, is computed
    for params in (
        {"start": START.isoformat(), "end": (END - timedelta(minutes=10)).isoformat()},
        {
            "start": (START - timedelta(minutes=10)).isoformat(),
            "end": (END - timedelta(minutes=10)).isoformat(),
        },
    ):
        response = await client.get("/oscillation-clusters", params=params)
        assert response.status_code == 200, response.text
        assert response.json()["precomputed"] is False


def _half_hour_runner(app: FastAPI) -> DiagnosisRunner:
    """A runner scheduling 30-min windows every 15 min (windows no other test stores)."""
    return DiagnosisRunner(
        app.state.runner.sessions,
        app.state.store,
        cluster_spans=(timedelta(minutes=30),),
        cluster_interval=timedelta(minutes=15),
    )


async def test_scheduled_cluster_runs_wait_while_the_kpi_worker_works_through_history(
    app: FastAPI,
) -> None:
    runner = _half_hour_runner(app)
    window_end = START + timedelta(minutes=45)  # [START + 15 min, START + 45 min): full of data
    now = window_end + timedelta(minutes=1)
    async with runner.sessions() as session, session.begin():
        await HeartbeatRepository(session, "kpi-worker").beat(
            "kw-history", now - timedelta(seconds=30), {HISTORY_RUN: True}
        )
    assert await scheduled_cluster_pass(runner, now) is None  # deferred
    async with runner.sessions() as session:
        assert not await OscillationClusterRepository(session).exists(
            window_end - timedelta(minutes=30), window_end
        )
    # a history run that stopped beating (e.g. killed) no longer holds the runs back
    assert await runner.kpi_history_running(now + timedelta(minutes=3)) is False
    # once the history run is over (its beat removed) the deferred pass runs
    async with runner.sessions() as session, session.begin():
        await HeartbeatRepository(session, "kpi-worker").remove("kw-history")
    [run] = await scheduled_cluster_pass(runner, now) or []
    assert run.data_complete
    async with runner.sessions() as session:
        assert await OscillationClusterRepository(session).exists(
            window_end - timedelta(minutes=30), window_end
        )


async def test_a_scheduled_window_whose_data_has_not_arrived_is_not_stored(
    app: FastAPI,
) -> None:
    """At start-up the first scheduled run sees a store still being filled: its near-empty
    result is not stored (a later pass computes the window again)."""
    runner = _half_hour_runner(app)
    window_end = END + timedelta(minutes=15)  # its last 15 minutes hold no samples
    assert await runner.precompute_clusters(window_end + timedelta(minutes=1)) == []
    async with runner.sessions() as session:
        assert not await OscillationClusterRepository(session).exists(
            window_end - timedelta(minutes=30), window_end
        )
    # nor a run before the first loops are registered
    assert not ClusterRun([], 0, 0, "raw", 0).data_complete


MEANS_DAY = T0 + timedelta(days=1)
MEANS_PERIOD_S = 1200.0


async def _minute_means(settings: Settings) -> None:
    """Six hours of agg_1m: PIC-301 and FIC-302 swing with one 20-minute oscillation
    (amplitudes 3 and 1) whose phase wanders as a disturbance's does (a perfectly periodic
    one would look the same in two independent loops), TIC-303 only has noise; in
    automatic, SP constant."""
    rng = np.random.default_rng(5)
    amplitudes = {"PIC-301": 3.0, "FIC-302": 1.0, "TIC-303": 0.0}
    minutes = np.arange(6 * 60)
    phase = np.cumsum(rng.normal(0.0, 0.15, minutes.size))  # rad per minute
    engine = create_engine(settings.database)
    async with create_session_factory(engine)() as session:
        for loop_id, amplitude in amplitudes.items():
            pv = 50.0 + amplitude * np.sin(2 * np.pi * minutes * 60.0 / MEANS_PERIOD_S + phase)
            pv += rng.normal(0.0, 0.1, minutes.size)
            session.add_all(
                Agg1m(
                    loop_id=loop_id,
                    bucket_start=MEANS_DAY + timedelta(minutes=int(m)),
                    pv_count=60,
                    pv_mean=float(value),
                    sp_mean=50.0,
                    mode_shares={"AUT": 1.0},
                )
                for m, value in zip(minutes, pv, strict=True)
            )
        await session.commit()
    await engine.dispose()


async def test_clusters_of_long_windows_come_from_the_minute_means(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await _minute_means(settings)
    params = {
        "start": MEANS_DAY.isoformat(),
        "end": (MEANS_DAY + timedelta(hours=6)).isoformat(),
    }
    response = await client.get("/oscillation-clusters", params=params)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["basis"] == "minute_means"  # longer than DIAG_CLUSTER_RAW_MAX_H (2 h)
    assert answer["loops_analysed"] == 3
    assert answer["oscillating_loops"] == 2  # the noisy loop is not oscillating
    [cluster] = answer["clusters"]
    assert sorted(member["loop_id"] for member in cluster["members"]) == ["FIC-302", "PIC-301"]
    assert cluster["period_s"] == pytest.approx(MEANS_PERIOD_S, rel=0.05)
    assert cluster["likely_source"] == "PIC-301"  # the purest swing: no stiction test on means
    assert cluster["source_evidence"]["stiction_verdict"] == "undetermined"
    # a week is allowed for clusters (minute means), more is not
    week = {
        "start": (MEANS_DAY - timedelta(days=6)).isoformat(),
        "end": (MEANS_DAY + timedelta(days=1)).isoformat(),
    }
    assert (await client.get("/oscillation-clusters", params=week)).status_code == 200
    week["start"] = (MEANS_DAY - timedelta(days=7)).isoformat()
    too_long = await client.get("/oscillation-clusters", params=week)
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["parameter"] == "end"


async def test_clusters_of_a_plant_beyond_the_raw_budget_come_from_the_minute_means(
    postgres_url: str, influx_server: InfluxServer, influx_database: str, seeded: None
) -> None:
    """DIAG_CLUSTER_RAW_MAX_LOOP_HOURS bounds the raw samples of one run: with a budget of
    2 loop-hours, 3 loops x 50 min go to the minute means, 3 loops x 30 min stay raw (spans
    that no scheduled run covers, so both are computed on demand)."""
    budget = _settings(
        postgres_url, influx_server, influx_database, diag_cluster_raw_max_loop_hours=2.0
    )
    application = create_app(budget)
    async with (
        LifespanManager(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(application),
            base_url="http://diag",
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        ) as client,
    ):
        over = {"start": START.isoformat(), "end": (START + timedelta(minutes=50)).isoformat()}
        answer = (await client.get("/oscillation-clusters", params=over)).json()
        assert (answer["basis"], answer["precomputed"]) == ("minute_means", False)
        assert answer["loops_analysed"] == 3
        within = {**over, "end": (START + timedelta(minutes=30)).isoformat()}
        answer = (await client.get("/oscillation-clusters", params=within)).json()
        assert (answer["basis"], answer["precomputed"]) == ("raw", False)
        assert answer["loops_analysed"] == 3


async def test_health_ready_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json()["service"] == "diagnostics"
    assert (await client.get("/ready")).json() == {"status": "ready"}
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/diagnose", "/diagnose/batch", "/oscillation-clusters", "/health", "/ready"} <= set(
        paths
    )


async def test_api_docs_load_nothing_from_elsewhere_and_no_slash_redirect(
    client: httpx.AsyncClient,
) -> None:
    for page in ("/docs", "/redoc"):
        answer = await client.get(page)
        assert answer.status_code == 200, page
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        references = re.findall(r'(?:src|href|spec-url)="([^"]*)"', answer.text)
        references += re.findall(r"url: '([^']*)'", answer.text)  # Swagger UI's document
        assert len(references) >= 2, answer.text
        for reference in references:
            assert reference.startswith("/"), reference
            assert not reference.startswith("//"), reference  # not another host
            assert (await client.get(reference)).status_code == 200, reference
    # no redirect whose Location would be built from the Host header
    slashed = await client.get("/health/", headers={"Host": "attacker.example"})
    assert slashed.status_code == 404
    assert "location" not in slashed.headers


async def test_time_series_store_down_is_a_503_with_retry_after(
    client: httpx.AsyncClient, influx_server: InfluxServer
) -> None:
    influx_server.stop()
    try:
        response = await client.post("/diagnose", json=_window("PIC-301"))
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["backend"] == "timeseries"
        assert (await client.get("/ready")).status_code == 503
    finally:
        influx_server.start()
    assert (await client.post("/diagnose", json=_window("PIC-301"))).status_code == 200


async def test_database_down_is_a_503_with_retry_after(
    client: httpx.AsyncClient, postgres_server: PostgresServer
) -> None:
    postgres_server.stop()
    try:
        response = await client.post("/diagnose", json=_window("PIC-301"))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["backend"] == "database"
    finally:
        postgres_server.start()
    assert (await client.post("/diagnose", json=_window("PIC-301"))).status_code == 200


async def test_a_body_over_the_limit_is_a_413_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    """DIAG_MAX_BODY_BYTES (1 MiB): announced or streamed, a larger body is refused."""
    big = b"[" + b"0," * (1024 * 1024) + b"0]"
    announced = await client.post(
        "/diagnose", content=big, headers={"Content-Type": "application/json"}
    )
    assert announced.status_code == 413
    assert announced.headers["content-type"] == "application/problem+json"

    async def streamed() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    cut = await client.post(
        "/diagnose/batch", content=streamed(), headers={"Content-Type": "application/json"}
    )
    assert cut.status_code == 413
