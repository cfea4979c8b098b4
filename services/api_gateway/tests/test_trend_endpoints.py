"""Long-term trends and the before/after comparison through the gateway, on real PostgreSQL.

Seed (besides conftest's): loops TRD-1 (criticality 5) and TRD-2 (criticality 1) in unit U7 /
area Trend, 60 days of windows at 00:00, 06:00, 12:00 and 18:00 UTC from Monday 2025-01-06.
TRD-1: health 80, 81, 82, 83 (day mean 81.5, good) and service factor 0.90 before Monday
2025-02-03; health 60..63 (mean 61.5, fair) and service factor 0.95 from then on; plus one
offline window without KPIs at 02:00 on 2025-01-07. TRD-2: health 50, good, throughout.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from clpm_shared.config import Settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import KpiResult, Loop, LoopConfig

API = "/api/v1"
H = dict[str, dict[str, str]]
FIRST = datetime(2025, 1, 6, tzinfo=UTC)
STEP = datetime(2025, 2, 3, tzinfo=UTC)
DAYS = 60
RANGE = {"start": "2025-01-06T00:00:00Z", "end": "2025-03-07T00:00:00Z"}


def _window(loop_id: str, start: datetime, health: float | None, **kpis: Any) -> KpiResult:
    return KpiResult(
        loop_id=loop_id,
        window_start=start,
        window_end=start + timedelta(minutes=15),
        health_score=health,
        **kpis,
    )


@pytest.fixture(scope="module")
async def trend_seed(settings: Settings, seeded: dict[str, Any]) -> None:
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    async with sessions() as session, session.begin():
        session.add_all(
            [
                Loop(loop_id="TRD-1", name="Trend one", unit="U7", area="Trend"),
                Loop(loop_id="TRD-2", name="Trend two", unit="U7", area="Trend"),
            ]
        )
        await session.flush()
        session.add_all(
            [
                LoopConfig(loop_id="TRD-1", criticality=5),
                LoopConfig(loop_id="TRD-2", criticality=1),
            ]
        )
        rows = []
        for day in range(DAYS):
            for k in range(4):
                start = FIRST + timedelta(days=day, hours=6 * k)
                after = start >= STEP
                rows.append(
                    _window(
                        "TRD-1",
                        start,
                        (60.0 if after else 80.0) + k,
                        service_factor=0.95 if after else 0.90,
                        status="fair" if after else "good",
                    )
                )
                rows.append(_window("TRD-2", start, 50.0, status="good"))
        rows.append(_window("TRD-1", FIRST + timedelta(days=1, hours=2), None, status="offline"))
        session.add_all(rows)
    await engine.dispose()


async def test_loop_trend_day_buckets_equal_hand_computed_means(
    client: httpx.AsyncClient, headers: H, trend_seed: None
) -> None:
    response = await client.get(
        f"{API}/loops/TRD-1/trends",
        params={**RANGE, "resolution": "day"},
        headers=headers["viewer"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == DAYS
    items = {item["bucket_start"]: item for item in body["items"]}
    first = items["2025-01-06T00:00:00.000Z"]
    assert first["windows"] == 4
    assert first["means"]["health_score"] == pytest.approx(81.5)
    assert first["means"]["service_factor"] == pytest.approx(0.90)
    assert first["status_shares"]["good"] == pytest.approx(1.0)
    # the offline window counts in the shares, not in the health mean
    second = items["2025-01-07T00:00:00.000Z"]
    assert second["windows"] == 5
    assert second["means"]["health_score"] == pytest.approx(81.5)
    assert second["status_shares"]["offline"] == pytest.approx(0.2)
    assert second["status_shares"]["good"] == pytest.approx(0.8)
    after = items["2025-02-03T00:00:00.000Z"]
    assert after["means"]["health_score"] == pytest.approx(61.5)
    assert after["status_shares"]["fair"] == pytest.approx(1.0)
    assert items["2025-02-02T00:00:00.000Z"]["means"]["health_score"] == pytest.approx(81.5)


async def test_loop_trend_week_buckets_start_on_monday(
    client: httpx.AsyncClient, headers: H, trend_seed: None
) -> None:
    response = await client.get(
        f"{API}/loops/TRD-1/trends",
        params={**RANGE, "resolution": "week"},
        headers=headers["viewer"],
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    # 60 days from a Monday: 8 full weeks and 4 days
    assert [item["bucket_start"][:10] for item in items][:5] == [
        "2025-01-06",
        "2025-01-13",
        "2025-01-20",
        "2025-01-27",
        "2025-02-03",
    ]
    assert len(items) == 9
    assert items[0]["windows"] == 29
    assert items[3]["means"]["health_score"] == pytest.approx(81.5)
    assert items[4]["means"]["health_score"] == pytest.approx(61.5)
    assert items[8]["windows"] == 16


async def test_loop_trend_hour_buckets_and_csv(
    client: httpx.AsyncClient, headers: H, trend_seed: None
) -> None:
    response = await client.get(
        f"{API}/loops/TRD-1/trends",
        params={
            "start": "2025-01-07T00:00:00Z",
            "end": "2025-01-08T00:00:00Z",
            "resolution": "hour",
            "format": "csv",
        },
        headers=headers["viewer"],
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["bucket_start"][11:16] for row in rows] == [
        "00:00",
        "02:00",
        "06:00",
        "12:00",
        "18:00",
    ]
    assert float(rows[1]["share_offline"]) == 1.0
    assert rows[1]["health_score"] == ""
    assert float(rows[2]["health_score"]) == 81.0


async def test_compare_shows_the_step_change(
    client: httpx.AsyncClient, headers: H, trend_seed: None
) -> None:
    response = await client.get(
        f"{API}/loops/TRD-1/compare",
        params={"at": "2025-02-03", "days": 14},
        headers=headers["viewer"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["windows_before"] == 56
    assert body["windows_after"] == 56
    kpis = {item["kpi"]: item for item in body["items"]}
    health = kpis["health_score"]
    assert health["before"] == pytest.approx(81.5)
    assert health["after"] == pytest.approx(61.5)
    assert health["change"] == pytest.approx(-20.0)
    assert health["change_pct"] == pytest.approx(-20.0 / 81.5 * 100)
    assert kpis["service_factor"]["change"] == pytest.approx(0.05)
    assert kpis["harris_index"]["before"] is None
    assert kpis["harris_index"]["windows_before"] == 0


async def test_compare_without_a_step_shows_no_change(
    client: httpx.AsyncClient, headers: H, trend_seed: None
) -> None:
    response = await client.get(
        f"{API}/loops/TRD-1/compare",
        params={"at": "2025-01-20T00:00:00Z", "days": 7},
        headers=headers["viewer"],
    )
    assert response.status_code == 200, response.text
    health = {item["kpi"]: item for item in response.json()["items"]}["health_score"]
    assert health["change"] == pytest.approx(0.0)
    assert health["change_pct"] == pytest.approx(0.0)


async def test_fleet_trend_is_criticality_weighted(
    client: httpx.AsyncClient, headers: H, trend_seed: None
) -> None:
    response = await client.get(
        f"{API}/fleet/trends",
        params={**RANGE, "resolution": "day", "by": "area", "unit": "U7"},
        headers=headers["viewer"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["weighting"] == "criticality"
    items = {item["bucket_start"]: item for item in body["items"]}
    assert {item["group"] for item in body["items"]} == {"Trend"}
    first = items["2025-01-06T00:00:00.000Z"]
    # (5 x (80 + 81 + 82 + 83) + 1 x 4 x 50) / (5 x 4 + 1 x 4)
    assert first["means"]["health_score"] == pytest.approx(76.25)
    assert first["loops"] == 2
    assert first["windows"] == 8
    after = items["2025-02-03T00:00:00.000Z"]
    assert after["means"]["health_score"] == pytest.approx((5 * 246 + 200) / 24)
    assert after["status_shares"]["fair"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        (
            "/loops/TRD-1/trends",
            {"start": "2024-01-01T00:00:00Z", "end": "2025-03-01T00:00:00Z"},
            "end",
        ),
        (  # 100 days of hours: 2,400 buckets
            "/loops/TRD-1/trends",
            {"start": "2025-01-01T00:00:00Z", "end": "2025-04-11T00:00:00Z", "resolution": "hour"},
            "resolution",
        ),
        ("/loops/TRD-1/trends", {**RANGE, "resolution": "month"}, "resolution"),
        ("/fleet/trends", {**RANGE, "by": "site"}, "by"),
        ("/loops/TRD-1/compare", {"at": "yesterday"}, "at"),
        ("/loops/TRD-1/compare", {"at": "2025-02-03", "days": 0}, "days"),
        ("/loops/TRD-1/compare", {"days": 7}, "at"),
    ],
)
async def test_invalid_parameters_are_named(
    client: httpx.AsyncClient,
    headers: H,
    trend_seed: None,
    path: str,
    params: dict[str, Any],
    parameter: str,
) -> None:
    response = await client.get(f"{API}{path}", params=params, headers=headers["viewer"])
    assert response.status_code == 422, response.text[:300]
    assert parameter in response.json()["detail"]


async def test_unknown_loop_is_404(client: httpx.AsyncClient, headers: H, trend_seed: None) -> None:
    for path, params in (("trends", RANGE), ("compare", {"at": "2025-02-03"})):
        response = await client.get(
            f"{API}/loops/NOPE-1/{path}", params=params, headers=headers["viewer"]
        )
        assert response.status_code == 404, response.text


async def test_trends_need_a_token(client: httpx.AsyncClient, trend_seed: None) -> None:
    response = await client.get(f"{API}/fleet/trends")
    assert response.status_code == 401
