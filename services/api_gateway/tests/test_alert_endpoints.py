"""/alerts/rules CRUD (engineer and admin write, viewer reads), /alerts/events and the
caller's /inbox, against the real gateway, PostgreSQL and OIDC provider."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from clpm_shared.alerts import FleetState, evaluate
from clpm_shared.config import Settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.repositories.alerts import AlertEventRepository, AlertRuleRepository, rule_of

H = dict[str, dict[str, str]]
RULE = {
    "name": "Unit 100 health",
    "scope": "unit",
    "scope_value": "U100",
    "condition": "health_below",
    "threshold": 60,
    "renotify_s": 3600,
    "channels": ["inbox", "webhook"],
    "recipients": ["viewer"],
    "webhook_url": "https://hooks.example/clpm",
    "quiet_start": "22:00",
    "quiet_end": "06:00",
    "quiet_timezone": "Europe/Berlin",
}


def parameters(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {error["parameter"] for error in response.json()["errors"]}


async def test_an_engineer_creates_reads_changes_and_deletes_a_rule(
    client: httpx.AsyncClient, headers: H
) -> None:
    created = await client.post("/api/v1/alerts/rules", json=RULE, headers=headers["engineer"])
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["created_by"] == "engineer"
    assert (rule["scope"], rule["scope_value"], rule["threshold"]) == ("unit", "U100", 60)
    got = await client.get(f"/api/v1/alerts/rules/{rule['id']}", headers=headers["viewer"])
    assert got.json()["quiet_timezone"] == "Europe/Berlin"
    changed = await client.put(
        f"/api/v1/alerts/rules/{rule['id']}",
        json={**RULE, "threshold": 50, "enabled": False},
        headers=headers["admin"],
    )
    assert changed.status_code == 200
    assert (changed.json()["threshold"], changed.json()["enabled"]) == (50, False)
    assert changed.json()["updated_by"] == "admin"
    listed = await client.get("/api/v1/alerts/rules", headers=headers["viewer"])
    assert rule["id"] in [r["id"] for r in listed.json()]
    deleted = await client.delete(f"/api/v1/alerts/rules/{rule['id']}", headers=headers["engineer"])
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/alerts/rules/{rule['id']}", headers=headers["viewer"])
    assert gone.status_code == 404
    # every change is in the audit trail: who, what, before and after
    trail = await client.get(
        "/api/v1/audit",
        params={"entity": "alert_rule", "entity_id": str(rule["id"])},
        headers=headers["admin"],
    )
    assert trail.status_code == 200, trail.text
    entries = sorted(trail.json()["items"], key=lambda e: e["id"])
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("create", "engineer"),
        ("update", "admin"),
        ("delete", "engineer"),
    ]
    assert entries[1]["before"]["threshold"] == 60
    assert entries[1]["after"]["threshold"] == 50
    assert entries[2]["after"] is None


async def test_viewers_only_read_rules(client: httpx.AsyncClient, headers: H) -> None:
    assert (await client.get("/api/v1/alerts/rules", headers=headers["viewer"])).status_code == 200
    post = await client.post("/api/v1/alerts/rules", json=RULE, headers=headers["viewer"])
    assert post.status_code == 403
    assert (await client.get("/api/v1/alerts/rules")).status_code == 401
    assert (await client.get("/api/v1/inbox", headers=headers["norole"])).status_code == 403


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"scope_value": None}, {"scope_value"}),
        ({"threshold": None}, {"threshold"}),
        ({"threshold": 150}, {"threshold"}),
        ({"channels": ["sms"]}, {"channels.0"}),
        ({"channels": ["email"]}, {"emails"}),
        ({"webhook_url": "ftp://hooks.example"}, {"webhook_url"}),
        ({"quiet_timezone": "Mars/Olympus"}, {"quiet_timezone"}),
        ({"quiet_end": None}, {"quiet_end"}),
        ({"quiet_start": "25:00"}, {"quiet_start"}),
        ({"condition": "heartbeat_missing", "threshold": 300}, {"scope"}),
        ({"scope": "galaxy"}, {"scope"}),
        ({"colour": "red"}, {"colour"}),
    ],
)
async def test_an_invalid_rule_is_422_naming_the_field(
    client: httpx.AsyncClient, headers: H, change: dict[str, Any], named: set[str]
) -> None:
    response = await client.post(
        "/api/v1/alerts/rules", json={**RULE, **change}, headers=headers["engineer"]
    )
    assert parameters(response) == named


async def test_unknown_rule_ids_are_404_and_bad_ids_422(
    client: httpx.AsyncClient, headers: H
) -> None:
    for method, body in (("GET", None), ("PUT", RULE), ("DELETE", None)):
        response = await client.request(
            method, "/api/v1/alerts/rules/999999", json=body, headers=headers["engineer"]
        )
        assert response.status_code == 404, method
    bad = await client.get("/api/v1/alerts/rules/zero", headers=headers["viewer"])
    assert parameters(bad) == {"rule_id"}
    events = await client.get("/api/v1/alerts/events?state=burning", headers=headers["viewer"])
    assert parameters(events) == {"state"}


async def _notify(settings: Settings, recipients: list[str]) -> int:
    """Open one alert of a rule for FIC-101 through the real evaluation and writes; returns
    the rule id."""
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await AlertRuleRepository(session).create(
            {
                "name": "inbox test",
                "scope": "loop",
                "scope_value": "FIC-101",
                "condition": "health_below",
                "threshold": 60.0,
                "channels": ["inbox"],
                "recipients": recipients,
            },
            "engineer",
        )
        rule = rule_of(row)
        fleet = FleetState.from_rows([{"loop_id": "FIC-101", "health": 12.5, "status": "poor"}])
        await AlertEventRepository(session).apply(
            evaluate([rule], fleet, [], now), {rule.rule_id: rule}, now
        )
    await engine.dispose()
    return rule.rule_id


async def test_the_inbox_lists_the_callers_notifications_and_marks_them_read(
    client: httpx.AsyncClient, headers: H, settings: Settings
) -> None:
    await client.post("/api/v1/inbox/read-all", headers=headers["viewer"])
    rule_id = await _notify(settings, ["viewer", "engineer"])
    page = (await client.get("/api/v1/inbox?unread=true", headers=headers["viewer"])).json()
    assert page["unread"] == 1
    [entry] = page["items"]
    assert (entry["rule_id"], entry["loop_id"], entry["kind"]) == (rule_id, "FIC-101", "opened")
    assert "health 12.5 below 60" in entry["title"]
    count = await client.get("/api/v1/inbox/unread-count", headers=headers["viewer"])
    assert count.json() == {"unread": 1}
    # the engineer's copy is not the viewer's to read
    theirs = (await client.get("/api/v1/inbox", headers=headers["engineer"])).json()["items"]
    other = next(e for e in theirs if e["rule_id"] == rule_id)
    stolen = await client.post(f"/api/v1/inbox/{other['id']}/read", headers=headers["viewer"])
    assert stolen.status_code == 404
    read = await client.post(f"/api/v1/inbox/{entry['id']}/read", headers=headers["viewer"])
    assert read.json() == {"marked": 1, "unread": 0}
    after = (await client.get("/api/v1/inbox?unread=true", headers=headers["viewer"])).json()
    assert after == {"items": [], "unread": 0}
    engineer = await client.get("/api/v1/inbox/unread-count", headers=headers["engineer"])
    assert engineer.json()["unread"] >= 1
    events = await client.get(
        "/api/v1/alerts/events?state=open&loop_id=FIC-101", headers=headers["viewer"]
    )
    assert [(e["rule_id"], e["value"]) for e in events.json()] == [(rule_id, 12.5)]
    unknown = await client.post("/api/v1/inbox/999999/read", headers=headers["viewer"])
    assert unknown.status_code == 404
    assert parameters(await client.get("/api/v1/inbox?limit=0", headers=headers["viewer"])) == {
        "limit"
    }
    await client.delete(f"/api/v1/alerts/rules/{rule_id}", headers=headers["engineer"])
