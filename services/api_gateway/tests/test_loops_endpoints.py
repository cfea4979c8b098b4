"""/loops: listing with filters, sort and pages; CRUD with soft delete; configuration; roles.

Seed (conftest): FIC-101 (U100, latest KPI health 50 poor, criticality 3), TIC-205 (U100,
health 40 poor, criticality 5), LIC-300 (U200, health 95 good, criticality 1), PIC-400 (U200,
no KPI: offline).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

API = "/api/v1"
H = dict[str, dict[str, str]]


async def ids(client: httpx.AsyncClient, headers: H, **params: Any) -> list[str]:
    params.setdefault("period", "window")
    response = await client.get(f"{API}/loops", params=params, headers=headers["viewer"])
    assert response.status_code == 200, response.text
    return [item["loop_id"] for item in response.json()["items"]]


async def test_list_is_ordered_by_id_with_latest_kpi_headline(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = (
        await client.get(f"{API}/loops", params={"period": "window"}, headers=headers["viewer"])
    ).json()
    assert body["total"] == 4
    assert [item["loop_id"] for item in body["items"]] == [
        "FIC-101",
        "LIC-300",
        "PIC-400",
        "TIC-205",
    ]
    fic = body["items"][0]
    assert fic["status"] == "poor"
    assert fic["health_score"] == 50.0
    assert fic["main_problem"] == "oscillation"
    assert fic["criticality"] == 3
    assert fic["bad_actor_score"] == 150.0
    assert fic["kpi_window_end"].startswith("2025-01-10T11:00:00")
    assert body["items"][2]["status"] == "offline"


async def test_list_filters_by_unit_area_and_status(client: httpx.AsyncClient, headers: H) -> None:
    assert await ids(client, headers, unit="U200") == ["LIC-300", "PIC-400"]
    assert await ids(client, headers, area="Reactors") == ["FIC-101", "TIC-205"]
    assert await ids(client, headers, status="poor") == ["FIC-101", "TIC-205"]
    assert await ids(client, headers, status="offline") == ["PIC-400"]
    assert await ids(client, headers, unit="U200", status="good") == ["LIC-300"]
    assert await ids(client, headers, unit="nowhere") == []


async def test_list_sorts_bad_actors_first_with_missing_scores_last(
    client: httpx.AsyncClient, headers: H
) -> None:
    ranked = await ids(client, headers, sort="bad_actor", order="desc")
    assert ranked == ["TIC-205", "FIC-101", "LIC-300", "PIC-400"]
    by_health = await ids(client, headers, sort="health_score")
    assert by_health == ["TIC-205", "FIC-101", "LIC-300", "PIC-400"]


async def test_list_pages(client: httpx.AsyncClient, headers: H) -> None:
    body = (
        await client.get(
            f"{API}/loops",
            params={"offset": 2, "limit": 2, "period": "window"},
            headers=headers["viewer"],
        )
    ).json()
    assert body["total"] == 4
    assert body["offset"] == 2
    assert [item["loop_id"] for item in body["items"]] == ["PIC-400", "TIC-205"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"sort": "colour"}, "sort"),
        ({"order": "up"}, "order"),
        ({"status": "great"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"unit": "U1\x00"}, "unit"),
        ({"period": "month"}, "period"),
    ],
)
async def test_list_parameters_are_validated(
    client: httpx.AsyncClient, headers: H, params: dict[str, Any], parameter: str
) -> None:
    response = await client.get(f"{API}/loops", params=params, headers=headers["viewer"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == parameter


async def test_one_loop_and_unknown_loop(client: httpx.AsyncClient, headers: H) -> None:
    found = await client.get(f"{API}/loops/TIC-205", headers=headers["viewer"])
    assert found.status_code == 200
    assert found.json()["criticality"] == 5
    missing = await client.get(f"{API}/loops/NOPE-9", headers=headers["viewer"])
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    malformed = await client.get(f"{API}/loops/bad%20id", headers=headers["viewer"])
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0] == {
        "parameter": "loop_id",
        "location": "path",
        "message": malformed.json()["errors"][0]["message"],
    }


async def test_loops_say_where_their_data_comes_from(client: httpx.AsyncClient, headers: H) -> None:
    one = (await client.get(f"{API}/loops/LIC-300", headers=headers["viewer"])).json()
    assert (one["data_source"], one["data_source_detail"]) == ("import", "utilities-2024.csv")
    listed = await client.get(f"{API}/loops", params={"unit": "U200"}, headers=headers["viewer"])
    sources = {item["loop_id"]: item["data_source"] for item in listed.json()["items"]}
    assert sources == {"LIC-300": "import", "PIC-400": None}


@pytest.mark.parametrize("role", ["viewer", "engineer"])
async def test_only_admin_creates_changes_and_deletes_loops(
    client: httpx.AsyncClient, headers: H, role: str
) -> None:
    created = await client.post(f"{API}/loops", json={"loop_id": "FIC-900"}, headers=headers[role])
    assert created.status_code == 403
    changed = await client.put(f"{API}/loops/FIC-101", json={"unit": "X"}, headers=headers[role])
    assert changed.status_code == 403
    deleted = await client.delete(f"{API}/loops/FIC-101", headers=headers[role])
    assert deleted.status_code == 403
    assert await ids(client, headers, unit="X") == []


async def test_loop_lifecycle_create_change_soft_delete_restore(
    client: httpx.AsyncClient, headers: H
) -> None:
    admin = headers["admin"]
    created = await client.post(
        f"{API}/loops",
        json={"loop_id": "FIC-900", "name": "New flow", "unit": "U900", "area": "Test"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/loops/FIC-900"
    assert created.json()["status"] == "offline"
    duplicate = await client.post(f"{API}/loops", json={"loop_id": "FIC-900"}, headers=admin)
    assert duplicate.status_code == 409

    changed = await client.put(
        f"{API}/loops/FIC-900", json={"unit": "U901", "description": "moved"}, headers=admin
    )
    assert changed.status_code == 200
    assert changed.json()["unit"] == "U901"
    assert changed.json()["name"] == "New flow"
    assert await ids(client, headers, unit="U901") == ["FIC-900"]

    assert (await client.delete(f"{API}/loops/FIC-900", headers=admin)).status_code == 204
    assert (await client.get(f"{API}/loops/FIC-900", headers=admin)).status_code == 404
    assert await ids(client, headers, unit="U901") == []
    assert (await client.delete(f"{API}/loops/FIC-900", headers=admin)).status_code == 404
    assert (await client.put(f"{API}/loops/FIC-900", json={}, headers=admin)).status_code == 404

    restored = await client.post(
        f"{API}/loops", json={"loop_id": "FIC-900", "unit": "U902"}, headers=admin
    )
    assert restored.status_code == 201
    assert await ids(client, headers, unit="U902") == ["FIC-900"]


async def test_deleted_loop_data_is_404(client: httpx.AsyncClient, headers: H) -> None:
    admin = headers["admin"]
    assert (
        await client.post(f"{API}/loops", json={"loop_id": "GONE-1"}, headers=admin)
    ).status_code == 201
    assert (await client.delete(f"{API}/loops/GONE-1", headers=admin)).status_code == 204
    response = await client.get(
        f"{API}/data/range", params={"loopId": "GONE-1"}, headers=headers["viewer"]
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"loop_id": "bad id"}, "loop_id"),
        ({}, "loop_id"),
        ({"loop_id": "OK-1", "name": "x" * 300}, "name"),
        ({"loop_id": "OK-1", "colour": "red"}, "colour"),
        ({"loop_id": "OK-1", "area": "A\x00"}, "area"),
    ],
)
async def test_create_validates_the_body(
    client: httpx.AsyncClient, headers: H, body: dict[str, Any], parameter: str
) -> None:
    response = await client.post(f"{API}/loops", json=body, headers=headers["admin"])
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["parameter"] == parameter
    assert error["location"] == "body"


async def test_config_defaults_and_stored_values(client: httpx.AsyncClient, headers: H) -> None:
    default = (await client.get(f"{API}/loops/PIC-400/config", headers=headers["viewer"])).json()
    assert default["is_default"] is True
    assert default["criticality"] == 3
    assert default["op_hi"] == 100.0
    stored = (await client.get(f"{API}/loops/TIC-205/config", headers=headers["viewer"])).json()
    assert stored["is_default"] is False
    assert stored["criticality"] == 5
    assert stored["loop_type"] == "temperature"
    missing = await client.get(f"{API}/loops/NOPE-9/config", headers=headers["viewer"])
    assert missing.status_code == 404


async def test_engineer_changes_config_and_viewer_cannot(
    client: httpx.AsyncClient, headers: H
) -> None:
    refused = await client.put(
        f"{API}/loops/PIC-400/config", json={"criticality": 4}, headers=headers["viewer"]
    )
    assert refused.status_code == 403
    changed = await client.put(
        f"{API}/loops/PIC-400/config",
        json={"criticality": 4, "deadband": 0.5, "normal_modes": ["AUT", "CAS"]},
        headers=headers["engineer"],
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["is_default"] is False
    assert body["criticality"] == 4
    assert body["deadband"] == 0.5
    assert body["normal_modes"] == ["AUT", "CAS"]
    assert body["updated_by"] == "engineer"
    again = await client.put(
        f"{API}/loops/PIC-400/config", json={"op_hi": 80.0}, headers=headers["engineer"]
    )
    assert again.json()["criticality"] == 4, "omitted fields keep their value"
    assert again.json()["op_hi"] == 80.0

    replaced = await client.post(
        f"{API}/loops/PIC-400/config", json={"loop_type": "pressure"}, headers=headers["admin"]
    )
    assert replaced.json()["criticality"] == 3, "replace: omitted fields take the default"
    assert replaced.json()["loop_type"] == "pressure"

    reset = await client.delete(f"{API}/loops/PIC-400/config", headers=headers["engineer"])
    assert reset.json()["is_default"] is True
    assert (await client.get(f"{API}/loops/PIC-400/config", headers=headers["viewer"])).json()[
        "is_default"
    ] is True


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"criticality": 9}, "criticality"),
        ({"loop_type": "banana"}, "loop_type"),
        ({"op_lo": 80.0, "op_hi": 50.0}, "op_hi"),
        ({"pv_lo": 10.0, "pv_hi": 10.0}, "pv_hi"),
        ({"deadband": -1.0}, "deadband"),
        ({"kpi_window_min": 0}, "kpi_window_min"),
        ({"normal_modes": ["AUT MODE"]}, "normal_modes.0"),
        ({"unknown_setting": 1}, "unknown_setting"),
    ],
)
async def test_config_validation_names_the_field(
    client: httpx.AsyncClient, headers: H, body: dict[str, Any], parameter: str
) -> None:
    response = await client.put(
        f"{API}/loops/FIC-101/config", json=body, headers=headers["engineer"]
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["parameter"] == parameter


async def test_config_change_drops_cached_fleet_answers(
    client: httpx.AsyncClient, headers: H
) -> None:
    async def fic_criticality() -> int:
        body = (
            await client.get(
                f"{API}/fleet/summary",
                params={"top": 50, "period": "window"},
                headers=headers["viewer"],
            )
        ).json()
        return next(a["criticality"] for a in body["bad_actors"] if a["loop_id"] == "FIC-101")

    assert await fic_criticality() == 3  # now cached for CACHE_TTL_RECENT_S
    changed = await client.put(
        f"{API}/loops/FIC-101/config", json={"criticality": 4}, headers=headers["engineer"]
    )
    assert changed.status_code == 200
    assert await fic_criticality() == 4
    await client.delete(f"{API}/loops/FIC-101/config", headers=headers["engineer"])
    assert await fic_criticality() == 3
