"""Ratings over a period through the gateway: whole-fleet ranking (pages, one-request CSV),
roll-ups, a loop's assessment, the period parameter of the listing and the fleet summary.

Seed (conftest) plus day ratings: FIC-101 poor 45 (stiction; previous day fair 62),
TIC-205 fair 65 (criticality 5), LIC-300 not assessed, PIC-400 not rated; 1,200 loops
BULK-0000.. in unit U9 / area Bulk, good, health 80 + (i mod 20).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from clpm_shared.config import Settings
from clpm_shared.db import LoopAssessment, create_engine, create_session_factory
from clpm_shared.db.models import Loop
from clpm_shared.db.repositories import upsert_rows

API = "/api/v1"
H = dict[str, dict[str, str]]
END = datetime(2025, 1, 11, 10, 0, tzinfo=UTC)
BULK = 1200


def _rating(loop_id: str, status: str, health: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "loop_id": loop_id,
        "period": "day",
        "period_start": END - timedelta(days=1),
        "period_end": END,
        "status": status,
        "health_score": health,
        "main_problem": extra.get("main_problem"),
        "reason": extra.get("reason"),
        "status_shares": extra.get("status_shares", {status: 1.0}),
        "findings": extra.get("findings", []),
        "worst_window": extra.get("worst_window"),
        "windows_assessed": 96 if health is not None else 30,
        "windows_total": 96,
        "previous_health_score": extra.get("previous_health_score"),
        "previous_status": extra.get("previous_status"),
    }


@pytest.fixture(scope="module")
async def rated(settings: Settings, seeded: dict[str, Any]) -> None:
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    bulk = [f"BULK-{i:04d}" for i in range(BULK)]
    async with sessions() as session, session.begin():
        session.add_all(
            Loop(loop_id=loop_id, name=loop_id, unit="U9", area="Bulk") for loop_id in bulk
        )
        await session.flush()
        rows = [
            _rating(
                "FIC-101",
                "poor",
                45.0,
                main_problem="stiction",
                findings=[{"category": "stiction", "persistence": 0.9, "mean_severity": 0.7}],
                worst_window={
                    "start": "2025-01-11T03:00:00+00:00",
                    "end": "2025-01-11T03:15:00+00:00",
                    "health_score": 20.0,
                    "status": "poor",
                },
                previous_health_score=62.0,
                previous_status="fair",
            ),
            _rating("TIC-205", "fair", 65.0, main_problem="saturation"),
            _rating("LIC-300", "not_assessed", None, reason="30 of 96 windows assessed"),
            *(_rating(loop_id, "good", 80.0 + i % 20) for i, loop_id in enumerate(bulk)),
        ]
        await upsert_rows(session, LoopAssessment.__table__, rows, ["loop_id", "period"])  # type: ignore[arg-type]
    await engine.dispose()


async def get(client: httpx.AsyncClient, headers: H, path: str, **params: Any) -> httpx.Response:
    return await client.get(f"{API}{path}", params=params, headers=headers["viewer"])


async def test_the_ranking_covers_the_whole_fleet_worst_first_page_by_page(
    rated: None, client: httpx.AsyncClient, headers: H
) -> None:
    first = (await get(client, headers, "/fleet/ranking", limit=3)).json()
    assert first["period"] == "day"
    assert first["total"] == BULK + 2
    # (100 - 65) x 5 = 175, (100 - 45) x 3 = 165, then the bulk loops at health 80
    assert [(a["rank"], a["loop_id"], a["bad_actor_score"]) for a in first["items"]] == [
        (1, "TIC-205", 175.0),
        (2, "FIC-101", 165.0),
        (3, "BULK-0000", 60.0),
    ]
    assert first["items"][1]["main_problem"] == "stiction"
    assert first["not_ranked"] == [
        {
            "loop_id": "LIC-300",
            "name": "Drum level",
            "unit": "U200",
            "area": "Utilities",
            "status": "not_assessed",
            "reason": "30 of 96 windows assessed",
        },
        {
            "loop_id": "PIC-400",
            "name": "Header pressure",
            "unit": "U200",
            "area": "Utilities",
            "status": "offline",
            "reason": "no rating yet",
        },
    ]
    last = (await get(client, headers, "/fleet/ranking", offset=1000, limit=500)).json()
    assert [a["rank"] for a in last["items"]] == list(range(1001, BULK + 3))
    assert last["items"][-1]["health_score"] == 99.0
    ranks = [a["bad_actor_score"] for a in last["items"]]
    assert ranks == sorted(ranks, reverse=True)


async def test_the_fleet_csv_is_one_request_with_every_loop(
    rated: None, client: httpx.AsyncClient, headers: H
) -> None:
    response = await get(client, headers, "/fleet/ranking", format="csv", limit=1)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == BULK + 4  # every ranked loop, then the two without a health
    assert rows[0]["loop_id"] == "TIC-205"
    assert rows[0]["rank"] == "1"
    assert [(r["loop_id"], r["rank"], r["reason"]) for r in rows[-2:]] == [
        ("LIC-300", "", "30 of 96 windows assessed"),
        ("PIC-400", "", "no rating yet"),
    ]


async def test_period_window_ranks_the_latest_kpi_windows_as_before(
    rated: None, client: httpx.AsyncClient, headers: H
) -> None:
    body = (await get(client, headers, "/fleet/ranking", period="window")).json()
    assert [(a["loop_id"], a["bad_actor_score"]) for a in body["items"]] == [
        ("TIC-205", 300.0),
        ("FIC-101", 150.0),
        ("LIC-300", 5.0),
    ]
    assert body["not_ranked_total"] == BULK + 1  # no KPI window yet: offline


async def test_the_listing_and_the_summary_default_to_the_day(
    rated: None, client: httpx.AsyncClient, headers: H
) -> None:
    listed = (
        await get(client, headers, "/loops", unit="U200", sort="bad_actor", order="desc")
    ).json()
    assert [(i["loop_id"], i["status"], i["reason"]) for i in listed["items"]] == [
        ("LIC-300", "not_assessed", "30 of 96 windows assessed"),
        ("PIC-400", "offline", None),
    ]
    summary = (await get(client, headers, "/fleet/summary", area="Reactors")).json()
    assert summary["period"] == "day"
    assert summary["status_counts"]["fair"] == 1
    assert [a["loop_id"] for a in summary["bad_actors"]] == ["TIC-205", "FIC-101"]
    assert summary["health_score"] == pytest.approx((45 * 3 + 65 * 5) / 8, abs=0.01)


async def test_roll_ups_per_area_leave_loops_without_health_out(
    rated: None, client: httpx.AsyncClient, headers: H
) -> None:
    body = (await get(client, headers, "/fleet/rollups", by="area")).json()
    groups = {g["name"]: g for g in body["groups"]}
    assert list(groups) == ["Bulk", "Reactors", "Utilities"]
    assert groups["Bulk"]["loops"] == BULK  # more than the 1,000 of a listing page
    assert groups["Bulk"]["health_score"] == pytest.approx(89.5, abs=0.01)
    assert groups["Reactors"]["health_score"] == pytest.approx((45 * 3 + 65 * 5) / 8, abs=0.01)
    utilities = groups["Utilities"]
    assert utilities["health_score"] is None
    assert utilities["status_counts"]["not_assessed"] == 1
    assert utilities["status_counts"]["offline"] == 1
    [plant] = (await get(client, headers, "/fleet/rollups", by="plant")).json()["groups"]
    assert plant["loops"] == BULK + 4


async def test_a_loops_assessment_over_the_day(
    rated: None, client: httpx.AsyncClient, headers: H
) -> None:
    body = (await get(client, headers, "/loops/FIC-101/assessment")).json()
    assert body["period"] == "day"
    assert (body["status"], body["health_score"], body["main_problem"]) == (
        "poor",
        45.0,
        "stiction",
    )
    assert body["start"].startswith("2025-01-10T10:00:00")
    assert body["findings"] == [{"category": "stiction", "persistence": 0.9, "mean_severity": 0.7}]
    assert body["worst_window"]["health_score"] == 20.0
    assert body["previous"] == {"health_score": 62.0, "status": "fair"}
    assert body["change"] == {"health_score": -17.0}
    unrated = (await get(client, headers, "/loops/PIC-400/assessment", period="week")).json()
    assert (unrated["status"], unrated["reason"], unrated["previous"]) == (
        "offline",
        "no rating yet",
        None,
    )


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/fleet/ranking", {"period": "month"}),
        ("/fleet/rollups", {"period": "fortnight"}),
        ("/loops/FIC-101/assessment", {"period": "window"}),
        ("/fleet/ranking", {"limit": 10_001}),
        ("/fleet/rollups", {"by": "colour"}),
    ],
)
async def test_bad_parameters_are_422_naming_them(
    rated: None, client: httpx.AsyncClient, headers: H, path: str, params: dict[str, Any]
) -> None:
    response = await get(client, headers, path, **params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == next(iter(params))


async def test_an_unknown_loop_has_no_assessment(
    rated: None, client: httpx.AsyncClient, headers: H
) -> None:
    response = await get(client, headers, "/loops/NOPE-1/assessment")
    assert response.status_code == 404
