"""The audit trail through the gateway: loop, configuration, catalogue and work item changes
recorded with who, before and after; filters, pages and CSV; admins only; nothing changeable.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

API = "/api/v1"
H = dict[str, dict[str, str]]


async def trail(client: httpx.AsyncClient, headers: H, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{API}/audit", params=params, headers=headers["admin"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_creating_changing_and_deleting_a_loop_is_recorded_with_before_and_after(
    client: httpx.AsyncClient, headers: H
) -> None:
    admin = headers["admin"]
    created = await client.post(
        f"{API}/loops", json={"loop_id": "AUD-1", "name": "Audited", "unit": "U9"}, headers=admin
    )
    assert created.status_code == 201, created.text
    await client.put(f"{API}/loops/AUD-1", json={"name": "Renamed"}, headers=admin)
    assert (await client.delete(f"{API}/loops/AUD-1", headers=admin)).status_code == 204
    entries = (await trail(client, headers, entity="loop", entity_id="AUD-1"))["items"]
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("delete", "admin"),
        ("update", "admin"),
        ("create", "admin"),
    ]
    delete, update, create = entries
    assert create["before"] is None
    assert (create["after"]["name"], create["after"]["unit"]) == ("Audited", "U9")
    assert (update["before"]["name"], update["after"]["name"]) == ("Audited", "Renamed")
    assert delete["before"]["deleted_at"] is None
    assert delete["after"]["deleted_at"] is not None


async def test_configuration_changes_are_recorded_with_the_engineer(
    client: httpx.AsyncClient, headers: H
) -> None:
    url = f"{API}/loops/PIC-400/config"
    changed = await client.put(url, json={"criticality": 4}, headers=headers["engineer"])
    assert changed.status_code == 200, changed.text
    assert (await client.delete(url, headers=headers["engineer"])).status_code == 200
    entries = (await trail(client, headers, entity="loop_config", entity_id="PIC-400"))["items"]
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("reset", "engineer"),
        ("update", "engineer"),
    ]
    reset, update = entries
    assert update["before"] is None  # the defaults: no row stored
    assert update["after"]["criticality"] == 4
    assert (reset["before"]["criticality"], reset["after"]) == (4, None)


async def test_a_catalogue_import_records_each_loop_it_changes(
    client: httpx.AsyncClient, headers: H
) -> None:
    rows = [
        {"loop_id": "CAT-1", "name": "New", "criticality": 2},
        {"loop_id": "LIC-300", "name": "Drum level", "unit": "U200", "area": "Utilities"},
    ]
    response = await client.post(f"{API}/loops/catalogue", json=rows, headers=headers["admin"])
    assert response.status_code == 200, response.text
    entries = (await trail(client, headers, action="import"))["items"]
    by_loop = {e["entity_id"]: e for e in entries}
    assert set(by_loop) == {"CAT-1"}  # LIC-300 kept every value: nothing changed
    assert by_loop["CAT-1"]["before"] is None
    assert by_loop["CAT-1"]["after"]["config"]["criticality"] == 2
    renamed = [{"loop_id": "LIC-300", "name": "Steam drum level"}]
    await client.post(f"{API}/loops/catalogue", json=renamed, headers=headers["admin"])
    lic = (await trail(client, headers, action="import", entity_id="LIC-300"))["items"]
    assert [(e["before"]["name"], e["after"]["name"]) for e in lic] == [
        ("Drum level", "Steam drum level")
    ]
    dry = [{"loop_id": "CAT-2"}]
    await client.post(
        f"{API}/loops/catalogue", json=dry, params={"dry_run": "true"}, headers=headers["admin"]
    )
    assert (await trail(client, headers, entity_id="CAT-2"))["total"] == 0


async def test_work_item_changes_are_in_the_trail(client: httpx.AsyncClient, headers: H) -> None:
    item = (
        await client.post(
            f"{API}/loops/FIC-101/work-items", json={"text": "audited"}, headers=headers["engineer"]
        )
    ).json()
    entries = await trail(client, headers, entity="work_item", entity_id=str(item["id"]))
    assert [(e["action"], e["after"]["text"]) for e in entries["items"]] == [("create", "audited")]


async def test_filters_by_actor_and_time_and_pages(client: httpx.AsyncClient, headers: H) -> None:
    for index in range(3):
        await client.put(
            f"{API}/loops/FIC-101", json={"name": f"Feed flow {index}"}, headers=headers["admin"]
        )
    everything = await trail(client, headers, entity_id="FIC-101", entity="loop")
    assert everything["total"] == 3
    page = await trail(client, headers, entity_id="FIC-101", entity="loop", offset=1, limit=1)
    assert [e["after"]["name"] for e in page["items"]] == ["Feed flow 1"]
    assert (page["total"], page["offset"], page["limit"]) == (3, 1, 1)
    assert (await trail(client, headers, actor="engineer", entity="loop"))["total"] == 0
    newest = datetime.fromisoformat(everything["items"][0]["at"])
    later = await trail(client, headers, entity_id="FIC-101", start=newest.isoformat())
    assert later["total"] >= 1
    before = await trail(
        client, headers, entity_id="FIC-101", end=(newest - timedelta(days=1)).isoformat()
    )
    assert before["total"] == 0
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (await trail(client, headers, start=future))["total"] == 0


async def test_csv_export_holds_every_matching_entry(client: httpx.AsyncClient, headers: H) -> None:
    await client.put(f"{API}/loops/TIC-205", json={"name": "=cmd|x"}, headers=headers["admin"])
    response = await client.get(
        f"{API}/audit",
        params={"format": "csv", "entity_id": "TIC-205", "limit": 1},
        headers=headers["admin"],
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    assert rows[0]["actor"] == "admin"
    assert rows[0]["action"] == "update"
    assert json.loads(rows[0]["after"])["name"] == "=cmd|x"


async def test_invalid_filters_are_422_naming_the_parameter(
    client: httpx.AsyncClient, headers: H
) -> None:
    for params, name in (
        ({"start": "yesterday"}, "start"),
        ({"end": "2025-01-01T00:00:00"}, "end"),
        ({"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"}, "end"),
        ({"limit": 0}, "limit"),
        ({"entity": "Loop!"}, "entity"),
        ({"format": "xml"}, "format"),
    ):
        response = await client.get(f"{API}/audit", params=params, headers=headers["admin"])
        assert response.status_code == 422, (params, response.text)
        assert name in response.json()["errors"][0]["parameter"]


async def test_only_admins_read_the_trail_and_nobody_changes_it(
    client: httpx.AsyncClient, headers: H
) -> None:
    for role in ("viewer", "engineer", "norole"):
        response = await client.get(f"{API}/audit", headers=headers[role])
        assert response.status_code == 403
    first = (await trail(client, headers, limit=1))["items"][0]
    for method in ("PUT", "PATCH", "DELETE"):
        for url in (f"{API}/audit", f"{API}/audit/{first['id']}"):
            response = await client.request(method, url, json={}, headers=headers["admin"])
            assert response.status_code in (404, 405), (method, url, response.status_code)
    assert (await trail(client, headers, limit=1))["items"][0] == first
