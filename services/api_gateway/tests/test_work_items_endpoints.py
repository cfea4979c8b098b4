"""Work items through the gateway: annotate, assign, change, acknowledge a loop or a finding,
"my items", the fleet's view, the item's history; roles, 422 and 404.

Seed (conftest): TIC-205 is poor with main problem stiction; its latest findings are stiction
(severity 0.8) and oscillation (0.6). Realm users are named after their role.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

API = "/api/v1"
H = dict[str, dict[str, str]]


async def create(
    client: httpx.AsyncClient, headers: H, loop_id: str, role: str = "engineer", **body: Any
) -> httpx.Response:
    return await client.post(f"{API}/loops/{loop_id}/work-items", json=body, headers=headers[role])


async def fleet(client: httpx.AsyncClient, headers: H) -> dict[str, dict[str, Any]]:
    response = await client.get(f"{API}/work-items/fleet", headers=headers["viewer"])
    assert response.status_code == 200, response.text
    return {entry["loop_id"]: entry for entry in response.json()["loops"]}


async def test_an_engineer_assigns_work_and_the_assignee_finds_it_in_my_items(
    client: httpx.AsyncClient, headers: H
) -> None:
    response = await create(
        client,
        headers,
        "FIC-101",
        kind="assignment",
        text="check the positioner",
        assignee="viewer",
        due_date="2025-02-01",
        work_order="WO-4711",
    )
    assert response.status_code == 201, response.text
    item = response.json()
    assert response.headers["Location"] == f"{API}/work-items/{item['id']}"
    assert (item["state"], item["created_by"], item["assignee"]) == ("open", "engineer", "viewer")
    assert (item["due_date"], item["work_order"]) == ("2025-02-01", "WO-4711")
    mine = (await client.get(f"{API}/work-items/mine", headers=headers["viewer"])).json()
    assert item["id"] in [i["id"] for i in mine["items"]]
    others = (await client.get(f"{API}/work-items/mine", headers=headers["engineer"])).json()
    assert item["id"] not in [i["id"] for i in others["items"]]


async def test_changing_state_assignee_and_work_order_is_kept_in_the_items_history(
    client: httpx.AsyncClient, headers: H
) -> None:
    item = (await create(client, headers, "LIC-300", kind="assignment", assignee="engineer")).json()
    url = f"{API}/work-items/{item['id']}"
    changed = await client.patch(
        url, json={"state": "in_progress", "work_order": "WO-9"}, headers=headers["engineer"]
    )
    assert changed.status_code == 200, changed.text
    done = await client.patch(url, json={"state": "done"}, headers=headers["admin"])
    assert (done.json()["state"], done.json()["updated_by"]) == ("done", "admin")
    history = (await client.get(f"{url}/history", headers=headers["viewer"])).json()
    assert [(e["action"], e["actor"]) for e in history] == [
        ("create", "engineer"),
        ("update", "engineer"),
        ("update", "admin"),
    ]
    assert history[0]["before"] is None
    assert (history[1]["before"]["state"], history[1]["after"]["state"]) == ("open", "in_progress")
    assert history[1]["after"]["work_order"] == "WO-9"
    assert (history[2]["before"]["state"], history[2]["after"]["state"]) == ("in_progress", "done")
    mine = (await client.get(f"{API}/work-items/mine", headers=headers["engineer"])).json()
    assert item["id"] not in [i["id"] for i in mine["items"]]
    every = await client.get(
        f"{API}/work-items/mine", params={"open": "false"}, headers=headers["engineer"]
    )
    assert item["id"] in [i["id"] for i in every.json()["items"]]


async def test_a_loops_items_are_its_history_newest_first_with_filters(
    client: httpx.AsyncClient, headers: H
) -> None:
    first = (await create(client, headers, "PIC-400", text="transmitter replaced")).json()
    second = (
        await create(client, headers, "PIC-400", text="retuned", category="oscillation")
    ).json()
    await client.patch(
        f"{API}/work-items/{first['id']}", json={"state": "done"}, headers=headers["engineer"]
    )
    body = (await client.get(f"{API}/loops/PIC-400/work-items", headers=headers["viewer"])).json()
    assert [i["id"] for i in body["items"]] == [second["id"], first["id"]]
    assert body["items"][0]["category"] == "oscillation"
    done = await client.get(
        f"{API}/loops/PIC-400/work-items", params={"state": "done"}, headers=headers["viewer"]
    )
    assert [i["id"] for i in done.json()["items"]] == [first["id"]]
    assert (await fleet(client, headers))["PIC-400"]["open_items"] == 1


async def test_acknowledging_a_loop_until_a_date_shows_in_the_fleet(
    client: httpx.AsyncClient, headers: H
) -> None:
    until = datetime.now(UTC) + timedelta(days=3)
    response = await client.post(
        f"{API}/loops/FIC-101/acknowledge",
        json={"until": until.isoformat(), "text": "known, valve on order"},
        headers=headers["engineer"],
    )
    assert response.status_code == 201, response.text
    item = response.json()
    assert (item["kind"], item["active"], item["acknowledged_state"]) == (
        "acknowledgement",
        True,
        None,
    )
    entry = (await fleet(client, headers))["FIC-101"]
    assert entry["acknowledged"] is True
    assert datetime.fromisoformat(entry["acknowledged_until"]) == until.replace(
        microsecond=until.microsecond
    )
    await client.patch(
        f"{API}/work-items/{item['id']}", json={"state": "done"}, headers=headers["engineer"]
    )
    entry = (await fleet(client, headers)).get("FIC-101", {"acknowledged": False})
    assert entry["acknowledged"] is False


async def test_acknowledging_a_finding_until_it_changes_keeps_its_severity(
    client: httpx.AsyncClient, headers: H
) -> None:
    response = await client.post(
        f"{API}/loops/TIC-205/acknowledge",
        json={"category": "stiction"},
        headers=headers["engineer"],
    )
    assert response.status_code == 201, response.text
    item = response.json()
    assert item["acknowledged_state"] == {"category": "stiction", "severity": 0.8}
    assert item["active"] is True
    assert "stiction" in (await fleet(client, headers))["TIC-205"]["acknowledged_categories"]
    loop_ack = await client.post(
        f"{API}/loops/TIC-205/acknowledge", json={}, headers=headers["engineer"]
    )
    assert loop_ack.json()["acknowledged_state"] == {
        "status": "poor",
        "main_problem": "stiction",
        "categories": ["oscillation", "stiction"],
    }
    assert (await fleet(client, headers))["TIC-205"]["acknowledged"] is True


async def test_invalid_work_items_are_422_naming_the_parameter(
    client: httpx.AsyncClient, headers: H
) -> None:
    async def parameter(response: httpx.Response) -> str:
        assert response.status_code == 422, response.text
        return str(response.json()["errors"][0]["parameter"])

    assert (
        await parameter(await create(client, headers, "FIC-101", kind="assignment")) == "assignee"
    )
    assert await parameter(await create(client, headers, "FIC-101", text=" ")) == "text"
    assert (
        await parameter(await create(client, headers, "FIC-101", kind="acknowledgement")) == "kind"
    )
    assert "state" in await parameter(await create(client, headers, "FIC-101", state="closed"))
    assert "due_date" in await parameter(
        await create(client, headers, "FIC-101", kind="assignment", assignee="x", due_date="soon")
    )
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    ack = f"{API}/loops/FIC-101/acknowledge"
    assert (
        await parameter(await client.post(ack, json={"until": past}, headers=headers["engineer"]))
        == "until"
    )
    assert (
        await parameter(
            await client.post(ack, json={"category": "saturation"}, headers=headers["engineer"])
        )
        == "category"
    )
    item = (await create(client, headers, "FIC-101", text="note")).json()
    assert (
        await parameter(
            await client.patch(
                f"{API}/work-items/{item['id']}", json={"state": None}, headers=headers["engineer"]
            )
        )
        == "state"
    )
    assert "item_id" in await parameter(
        await client.get(f"{API}/work-items/abc", headers=headers["viewer"])
    )


async def test_unknown_loops_and_items_are_404(client: httpx.AsyncClient, headers: H) -> None:
    for response in (
        await client.get(f"{API}/loops/XX-999/work-items", headers=headers["viewer"]),
        await create(client, headers, "XX-999", text="note"),
        await client.post(f"{API}/loops/XX-999/acknowledge", json={}, headers=headers["engineer"]),
        await client.get(f"{API}/work-items/999999", headers=headers["viewer"]),
        await client.patch(f"{API}/work-items/999999", json={}, headers=headers["engineer"]),
        await client.get(f"{API}/work-items/999999/history", headers=headers["viewer"]),
    ):
        assert response.status_code == 404, response.text


async def test_viewers_read_and_engineers_write(client: httpx.AsyncClient, headers: H) -> None:
    assert (await create(client, headers, "FIC-101", role="viewer", text="x")).status_code == 403
    ack = await client.post(f"{API}/loops/FIC-101/acknowledge", json={}, headers=headers["viewer"])
    assert ack.status_code == 403
    item = (await create(client, headers, "FIC-101", text="mine")).json()
    patch = await client.patch(
        f"{API}/work-items/{item['id']}", json={"state": "done"}, headers=headers["viewer"]
    )
    assert patch.status_code == 403
    assert (
        await client.get(f"{API}/work-items/fleet", headers=headers["norole"])
    ).status_code == 403
    assert (await client.get(f"{API}/work-items/mine")).status_code == 401
