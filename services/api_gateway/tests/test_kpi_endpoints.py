"""KPI history/latest/summary, original column aliases, fleet summary and APC attainment.

Seed (conftest): FIC-101 has four windows from 10:00 (health 90, 85, 70, 50; status good, good,
fair, poor; service_factor 1 - 0.1 i; saturation 0.01 i; harris 0.5; osc_regularity 0.8 + i);
TIC-205 one window (health 40, poor, criticality 5); LIC-300 one (health 95, good,
criticality 1, APC: attainment 1.0 and 0.5 over 900 samples each); PIC-400 none.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest

from clpm_shared.analytics import LoopConfig, LoopWindow, compute_kpis
from clpm_shared.config import Settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import KpiResult
from clpm_shared.db.repositories import LoopRepository
from clpm_shared.db.repositories.kpis_write import KpiWriteRepository
from clpm_shared.simulation import LoopProfile, SimulatedLoopSpec, simulate_fleet
from clpm_shared.timeseries import Point
from clpm_shared.timeseries.factory import create_store

API = "/api/v1"
H = dict[str, dict[str, str]]
HOUR = {"start": "2025-01-10T10:00:00Z", "end": "2025-01-10T11:00:00Z"}


async def get(client: httpx.AsyncClient, headers: H, path: str, **params: Any) -> httpx.Response:
    return await client.get(f"{API}{path}", params=params, headers=headers["viewer"])


async def test_history_rows_oldest_first(client: httpx.AsyncClient, headers: H) -> None:
    body = (await get(client, headers, "/loops/FIC-101/kpis", **HOUR)).json()
    assert body["count"] == 4
    assert [row["health_score"] for row in body["items"]] == [90.0, 85.0, 70.0, 50.0]
    assert [row["status"] for row in body["items"]] == ["good", "good", "fair", "poor"]
    first = body["items"][0]
    assert first["window_start"] == "2025-01-10T10:00:00.000Z"
    assert first["window_end"] == "2025-01-10T10:15:00.000Z"
    assert first["mode_shares"] == {"AUT": 1.0}
    assert body["columns"][0] == "loop_id"


async def test_history_limit_and_default_window(client: httpx.AsyncClient, headers: H) -> None:
    limited = (await get(client, headers, "/loops/FIC-101/kpis", **HOUR, limit=2)).json()
    assert limited["count"] == 2
    recent = (await get(client, headers, "/loops/FIC-101/kpis")).json()
    assert recent["count"] == 0, "the default window is the last 24 h; the seed is older"


async def test_original_column_names_are_answered(client: httpx.AsyncClient, headers: H) -> None:
    columns = "window_start,timestamp,pi,osc_index,sat_percent,effective_sf,setpoint_changes,rpi"
    body = (await get(client, headers, "/loops/FIC-101/kpis", **HOUR, columns=columns)).json()
    assert body["columns"] == columns.split(",")
    rows = body["items"]
    assert list(rows[0]) == columns.split(",")
    assert rows[0]["timestamp"] == "2025-01-10T10:15:00.000Z"
    assert [row["pi"] for row in rows] == [0.5] * 4
    assert [row["osc_index"] for row in rows] == pytest.approx([0.8, 1.8, 2.8, 3.8])
    assert [row["sat_percent"] for row in rows] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert [row["effective_sf"] for row in rows] == pytest.approx([1.0, 0.9, 0.8, 0.7])
    assert [row["setpoint_changes"] for row in rows] == [0, 1, 2, 3]
    assert [row["rpi"] for row in rows] == [None] * 4


async def test_alias_table_documents_every_original_name(
    client: httpx.AsyncClient, headers: H
) -> None:
    table = {
        entry["original"]: entry for entry in (await get(client, headers, "/kpis/aliases")).json()
    }
    original = [
        "timestamp",
        "service_factor",
        "effective_sf",
        "sat_percent",
        "output_travel",
        "pi",
        "rpi",
        "osc_index",
        "stiction",
        "deadband",
        "saturation",
        "valve_travel",
        "settling_time",
        "overshoot",
        "rise_time",
        "peak_error",
        "integral_error",
        "control_error",
        "valve_reversals",
        "noise_level",
        "process_gain",
        "time_constant",
        "dead_time",
        "setpoint_changes",
        "mode_changes",
    ]
    ours = {"service_factor", "saturation"}  # same name, same meaning: answered directly
    assert set(original) - ours == set(table)
    assert table["pi"]["column"] == "harris_index"
    assert table["sat_percent"]["scale"] == 100.0
    assert table["process_gain"]["column"] is None
    assert table["process_gain"]["note"]


async def test_history_as_csv(client: httpx.AsyncClient, headers: H) -> None:
    response = await get(
        client,
        headers,
        "/loops/FIC-101/kpis",
        **HOUR,
        columns="window_start,health_score,mode_shares",
        format="csv",
    )
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "window_start,health_score,mode_shares"
    assert lines[1] == '2025-01-10T10:00:00.000Z,90.0,"{""AUT"":1.0}"'
    assert len(lines) == 5


async def test_every_percent_of_span_comes_with_its_span_source(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = (await get(client, headers, "/loops/FIC-101/kpis", **HOUR)).json()
    columns = body["columns"]
    assert columns.index("span_source") == columns.index("error_std_pct") + 1
    assert [row["span_source"] for row in body["items"]] == ["estimated"] * 4
    configured = (await get(client, headers, "/loops/LIC-300/kpis/latest")).json()
    assert (configured["error_std_pct"], configured["span_source"]) == (0.5, "configured")
    offline = (await get(client, headers, "/loops/PIC-400/kpis/latest")).json()
    assert offline["span_source"] is None
    csv = await get(client, headers, "/loops/FIC-101/kpis", **HOUR, format="csv")
    header = csv.text.splitlines()[0].split(",")
    assert header[header.index("error_std_pct") + 1] == "span_source"
    assert csv.text.splitlines()[1].split(",")[header.index("span_source")] == "estimated"


async def test_latest_window(client: httpx.AsyncClient, headers: H) -> None:
    latest = (await get(client, headers, "/loops/FIC-101/kpis/latest")).json()
    assert latest["window_start"] == "2025-01-10T10:45:00.000Z"
    assert latest["health_score"] == 50.0
    assert latest["status"] == "poor"
    assert latest["main_problem"] == "oscillation"
    offline = (await get(client, headers, "/loops/PIC-400/kpis/latest")).json()
    assert offline["status"] == "offline"
    assert offline["health_score"] is None
    assert offline["window_start"] is None


async def test_summary_over_a_period(client: httpx.AsyncClient, headers: H) -> None:
    body = (await get(client, headers, "/loops/FIC-101/kpis/summary", **HOUR)).json()
    assert body["windows"] == 4
    assert body["status_counts"] == {"good": 2, "fair": 1, "poor": 1}
    assert body["latest_status"] == "poor"
    assert body["kpis"]["health_score"] == {"mean": 73.75, "min": 50.0, "max": 90.0, "last": 50.0}
    assert body["kpis"]["service_factor"]["mean"] == pytest.approx(0.85)
    assert body["kpis"]["iae_per_hour"] == {"mean": None, "min": None, "max": None, "last": None}


@pytest.mark.parametrize(
    "path", ["/loops/NOPE-9/kpis", "/loops/NOPE-9/kpis/latest", "/loops/NOPE-9/kpis/summary"]
)
async def test_kpis_of_unknown_loop_are_404(
    client: httpx.AsyncClient, headers: H, path: str
) -> None:
    assert (await get(client, headers, path)).status_code == 404


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/loops/FIC-101/kpis", {"columns": "health,pi"}, "columns"),
        ("/loops/FIC-101/kpis", {"start": "2025-01-10T10:00:00"}, "start"),
        ("/loops/FIC-101/kpis", {**HOUR, "limit": 10_001}, "limit"),
        ("/loops/FIC-101/kpis/summary", {"start": HOUR["end"], "end": HOUR["start"]}, "end"),
        ("/fleet/summary", {"top": 0}, "top"),
        ("/fleet/summary", {"period": "month"}, "period"),
        ("/apc/attainment", {"end": "tomorrow"}, "end"),
    ],
)
async def test_kpi_parameters_are_validated(
    client: httpx.AsyncClient, headers: H, path: str, params: dict[str, Any], parameter: str
) -> None:
    response = await get(client, headers, path, **params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == parameter


async def test_fleet_summary_distribution_ranking_and_units(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = (await get(client, headers, "/fleet/summary", period="window")).json()
    assert body["period"] == "window"
    assert body["loops"] == 4
    assert body["status_counts"] == {
        "good": 1,
        "fair": 0,
        "poor": 2,
        "offline": 1,
        "not_assessed": 0,
    }
    # (50 x 3 + 40 x 5 + 95 x 1) / (3 + 5 + 1)
    assert body["health_score"] == pytest.approx(445 / 9, abs=0.01)
    assert [(a["loop_id"], a["bad_actor_score"]) for a in body["bad_actors"]] == [
        ("TIC-205", 300.0),
        ("FIC-101", 150.0),
        ("LIC-300", 5.0),
    ]
    assert body["bad_actors"][0]["rank"] == 1
    assert body["bad_actors"][0]["main_problem"] == "stiction"
    units = {unit["unit"]: unit for unit in body["units"]}
    assert units["U100"]["loops"] == 2
    assert units["U100"]["health_score"] == pytest.approx(350 / 8, abs=0.01)
    assert units["U200"]["health_score"] == 95.0
    assert units["U200"]["status_counts"] == {
        "good": 1,
        "fair": 0,
        "poor": 0,
        "offline": 1,
        "not_assessed": 0,
    }
    bands = {band["from"]: band["loops"] for band in body["health_histogram"]}
    assert bands[40] == 1
    assert bands[50] == 1
    assert bands[90] == 1
    assert sum(bands.values()) == 3


async def test_fleet_summary_filters_and_top(client: httpx.AsyncClient, headers: H) -> None:
    body = (
        await get(client, headers, "/fleet/summary", unit="U200", top=1, period="window")
    ).json()
    assert body["loops"] == 2
    assert [a["loop_id"] for a in body["bad_actors"]] == ["LIC-300"]
    assert [unit["unit"] for unit in body["units"]] == ["U200"]


async def test_apc_attainment_is_sample_weighted(client: httpx.AsyncClient, headers: H) -> None:
    body = (await get(client, headers, "/apc/attainment", **HOUR)).json()
    assert body["loops"] == 1
    assert body["attainment"] == pytest.approx(0.75)
    item = body["items"][0]
    assert item["loop_id"] == "LIC-300"
    assert item["windows"] == 2
    assert item["samples"] == 1800
    assert item["attainment"] == pytest.approx(0.75)
    assert item["wrong_mode_share"] == pytest.approx(0.25)
    none = (await get(client, headers, "/apc/attainment", **HOUR, unit="U100")).json()
    assert none["loops"] == 0
    assert none["attainment"] is None


async def test_apc_history_of_a_loop(client: httpx.AsyncClient, headers: H) -> None:
    body = (await get(client, headers, "/loops/LIC-300/apc", **HOUR)).json()
    assert body["count"] == 2
    assert [row["attainment"] for row in body["items"]] == [1.0, 0.5]
    assert body["items"][1]["window_start"] == "2025-01-10T10:15:00.000Z"
    csv = await get(client, headers, "/loops/LIC-300/apc", **HOUR, format="csv")
    assert csv.text.splitlines()[0].startswith("window_start,window_end,samples,attainment")
    assert len(csv.text.splitlines()) == 3
    assert (await get(client, headers, "/loops/NOPE-9/apc")).status_code == 404


async def test_apc_attainment_as_csv(client: httpx.AsyncClient, headers: H) -> None:
    response = await client.get(
        f"{API}/apc/attainment",
        params=HOUR,
        headers={**headers["viewer"], "Accept": "text/csv"},
    )
    lines = response.text.splitlines()
    assert lines[0].startswith("loop_id,name,unit,area,windows,samples,attainment")
    assert lines[1].startswith("LIC-300,Drum level,U200,Utilities,2,1800,0.75")
    assert len(lines) == 2


async def test_comprehensive_answer_of_a_loop(client: httpx.AsyncClient, headers: H) -> None:
    body = (await get(client, headers, "/loops/TIC-205/kpis/comprehensive", **HOUR)).json()
    assert body["loop"]["loop_id"] == "TIC-205"
    assert body["loop"]["bad_actor_score"] == 300.0
    assert body["config"]["criticality"] == 5
    assert body["latest"]["health_score"] == 40.0
    assert body["latest"]["main_problem"] == "stiction"
    assert body["summary"]["windows"] == 1
    assert [item["category"] for item in body["diagnostics"]["items"]] == [
        "stiction",
        "oscillation",
    ]
    missing = await get(client, headers, "/loops/NOPE-9/kpis/comprehensive")
    assert missing.status_code == 404


async def test_answers_are_cached_until_a_client_asks_for_a_fresh_one(
    client: httpx.AsyncClient, headers: H, settings: Settings
) -> None:
    path = "/loops/PIC-400/kpis/latest"
    assert (await get(client, headers, path)).json()["status"] == "offline"
    engine = create_engine(settings.database)
    async with create_session_factory(engine)() as session:
        session.add(
            KpiResult(
                loop_id="PIC-400",
                window_start=datetime(2025, 1, 10, 11, 0, tzinfo=UTC),
                window_end=datetime(2025, 1, 10, 11, 15, tzinfo=UTC),
                health_score=88.0,
                status="good",
            )
        )
        await session.commit()
    await engine.dispose()
    assert (await get(client, headers, path)).json()["status"] == "offline", "served from cache"
    ignored = await client.get(  # only engineers may bypass the cache
        f"{API}{path}", headers={**headers["viewer"], "Cache-Control": "no-cache"}
    )
    assert ignored.json()["status"] == "offline"
    fresh = await client.get(
        f"{API}{path}", headers={**headers["engineer"], "Cache-Control": "no-cache"}
    )
    assert fresh.json()["status"] == "good"
    assert (await get(client, headers, path)).json()["health_score"] == 88.0


async def test_kpi_routes_carry_the_oscillation_components_of_each_window(
    client: httpx.AsyncClient, headers: H, settings: Settings
) -> None:
    # a sticky valve (limit cycle near 50 s) plus a 17 s disturbance, two windows of it,
    # computed as the KPI worker does and stored in the real database
    spec = replace(
        SimulatedLoopSpec.for_profile("SIM-OSC-7", LoopProfile.STICKY_VALVE, seed=3),
        time_constant_s=20.0,
        ti_s=20.0,
        dead_time_s=3.0,
        osc_amplitude=2.0,
        osc_period_s=17.0,
    )
    [series] = simulate_fleet([spec], 2 * 900)
    start = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
    rows = []
    for k in range(2):
        part = slice(k * 900, (k + 1) * 900)
        window = LoopWindow.from_raw(
            series.t[part].astype(float),
            series.pv[part],
            series.sp[part],
            series.op[part],
            np.asarray(series.mode[part], dtype=object),
            start=900.0 * k,
            end=900.0 * (k + 1),
            ts=1.0,
        )
        rows.append(
            {
                "loop_id": spec.loop_id,
                "window_start": start + timedelta(minutes=15 * k),
                "window_end": start + timedelta(minutes=15 * (k + 1)),
                **compute_kpis(window, LoopConfig()).to_row(),
            }
        )
    engine = create_engine(settings.database)
    async with create_session_factory(engine)() as session, session.begin():
        await LoopRepository(session).register_discovered([spec.loop_id])
        await KpiWriteRepository(session).upsert_kpis(rows)
    await engine.dispose()

    history = (await get(client, headers, f"/loops/{spec.loop_id}/kpis", **HOUR)).json()
    assert history["count"] == 2
    assert "osc_components" in history["columns"]
    latest = (await get(client, headers, f"/loops/{spec.loop_id}/kpis/latest")).json()
    assert latest["window_start"] == "2025-01-10T10:15:00.000Z"
    assert latest["osc_components"] == history["items"][1]["osc_components"]
    for row in history["items"]:
        components = row["osc_components"]
        assert len(components) == 2, components
        periods = sorted(c["period_s"] for c in components)
        assert periods[0] == pytest.approx(17.0, rel=0.1)
        assert 35.0 < periods[1] < 80.0
        assert set(components[0]) == {
            "period_s",
            "strength",
            "regularity",
            "share",
            "amplitude",
            "amplitude_pct",
            "peak_ratio",
        }
    chosen = await get(
        client, headers, f"/loops/{spec.loop_id}/kpis", **HOUR, columns="osc_components"
    )
    assert chosen.json()["items"][0] == {"osc_components": history["items"][0]["osc_components"]}
    quiet = (await get(client, headers, "/loops/FIC-101/kpis/latest")).json()
    assert quiet["osc_components"] is None, "rows stored without components answer null"

    # the ACF and spectrum of the latest window, computed from its raw samples in the store
    path = f"/loops/{spec.loop_id}/kpis/latest/oscillation-view"
    assert (await get(client, headers, path)).json()["reason"] == "no raw samples in the window"
    store = create_store(settings.influx)
    try:
        await store.write(
            [
                Point(
                    spec.loop_id,
                    start + timedelta(seconds=float(series.t[k])),
                    float(series.pv[k]),
                    float(series.sp[k]),
                    float(series.op[k]),
                    str(series.mode[k]),
                )
                for k in range(2 * 900)
            ]
        )
    finally:
        await store.close()
    view = (await get(client, headers, path)).json()
    assert view["reason"] is None
    assert view["window_start"] == "2025-01-10T10:15:00.000Z"
    assert view["acf"][0] == pytest.approx(1.0)
    assert view["lag_s"][-1] == pytest.approx(450.0, abs=2.0)
    power = np.asarray(view["power"])
    periods = np.asarray(view["period_s"])
    assert periods[int(np.argmax(power))] == pytest.approx(17.0, rel=0.1)
    limit_cycle = (periods > 35.0) & (periods < 80.0)
    assert power[limit_cycle].max() > 10 * np.median(power), "the limit cycle stands out too"
    missing = await get(client, headers, "/loops/NOPE-9/kpis/latest/oscillation-view")
    assert missing.status_code == 404
