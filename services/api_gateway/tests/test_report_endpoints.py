"""/reports/fleet downloads (PDF read back with pdftotext, XLSX with openpyxl) and the
caller's /reports/subscriptions, against the real gateway, PostgreSQL and OIDC provider.

Seed: :mod:`tests.harness.report_fleet` rated over the day and week ending at END; REP-1 is
the worst actor.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openpyxl
import pytest

from clpm_shared.config import Settings
from clpm_shared.db import create_engine, create_session_factory
from tests.harness.report_fleet import WORST_LOOP, seed_report_fleet
from tests.harness.servers import PostgresServer

API = "/api/v1"
H = dict[str, dict[str, str]]
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
async def fleet(settings: Settings) -> None:
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    async with sessions() as session, session.begin():
        await seed_report_fleet(session, END)
    await engine.dispose()


def _parameters(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {error["parameter"] for error in response.json()["errors"]}


async def test_a_viewer_downloads_the_daily_pdf(
    client: httpx.AsyncClient, headers: H, fleet: None, tmp_path: Path
) -> None:
    response = await client.get(
        f"{API}/reports/fleet", params={"period": "day", "format": "pdf"}, headers=headers["viewer"]
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    stamp = END.strftime("%Y%m%dT%H%MZ")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="clpm-fleet-day-{stamp}.pdf"'
    )
    path = tmp_path / "report.pdf"
    path.write_bytes(response.content)
    done = await asyncio.to_thread(
        subprocess.run,
        ["pdftotext", "-layout", str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    )
    text = done.stdout
    assert "Daily fleet report" in text
    label = f"{(END - timedelta(hours=24)):%Y-%m-%d %H:%M} – {END:%Y-%m-%d %H:%M} UTC"
    assert label in text
    actors = text[text.index("Bad actors") : text.index("Status changes")]
    assert actors.index(WORST_LOOP) < actors.index("REP-2") < actors.index("REP-3")


async def test_a_viewer_downloads_the_weekly_workbook(
    client: httpx.AsyncClient, headers: H, fleet: None
) -> None:
    response = await client.get(
        f"{API}/reports/fleet",
        params={"period": "week", "format": "xlsx"},
        headers=headers["viewer"],
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].endswith('.xlsx"')
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    rows = list(book["Bad actors"].iter_rows(values_only=True))
    worst = dict(zip(rows[0], rows[1], strict=True))
    assert (worst["rank"], worst["loop_id"], worst["health_score"]) == (1, WORST_LOOP, 40.0)
    summary = {row[0]: row[1:] for row in book["Summary"].iter_rows(values_only=True) if row}
    # both items were opened in the week (3 h and 3 days before END), one closed in it
    assert summary["work items opened"][0] == 2
    assert summary["work items closed"][0] == 1
    assert summary["work items open"][0] == 1


async def test_bad_parameters_answer_422_naming_them(client: httpx.AsyncClient, headers: H) -> None:
    viewer = headers["viewer"]
    period = await client.get(f"{API}/reports/fleet", params={"period": "month"}, headers=viewer)
    assert _parameters(period) == {"period"}
    fmt = await client.get(f"{API}/reports/fleet", params={"format": "docx"}, headers=viewer)
    assert _parameters(fmt) == {"format"}
    unauthenticated = await client.get(f"{API}/reports/fleet")
    assert unauthenticated.status_code == 401


async def test_subscriptions_are_the_callers_own(client: httpx.AsyncClient, headers: H) -> None:
    body = {"email": "engineer@plant.example", "period": "week", "format": "both", "unit": "U1"}
    refused = await client.post(
        f"{API}/reports/subscriptions", json=body, headers=headers["viewer"]
    )
    assert refused.status_code == 403
    created = await client.post(
        f"{API}/reports/subscriptions", json=body, headers=headers["engineer"]
    )
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["username"] == "engineer"
    assert (subscription["period"], subscription["format"]) == ("week", "both")
    assert subscription["last_sent_at"] is None
    mine = await client.get(f"{API}/reports/subscriptions", headers=headers["engineer"])
    assert [s["id"] for s in mine.json()] == [subscription["id"]]
    theirs = await client.get(f"{API}/reports/subscriptions", headers=headers["admin"])
    assert theirs.json() == []
    not_admins = await client.delete(
        f"{API}/reports/subscriptions/{subscription['id']}", headers=headers["admin"]
    )
    assert not_admins.status_code == 404
    deleted = await client.delete(
        f"{API}/reports/subscriptions/{subscription['id']}", headers=headers["engineer"]
    )
    assert deleted.status_code == 204
    assert (
        await client.get(f"{API}/reports/subscriptions", headers=headers["engineer"])
    ).json() == []


async def test_an_invalid_subscription_answers_422_naming_the_field(
    client: httpx.AsyncClient, headers: H
) -> None:
    bad = await client.post(
        f"{API}/reports/subscriptions",
        json={"email": "not-an-address", "period": "hourly"},
        headers=headers["engineer"],
    )
    assert _parameters(bad) == {"email", "period"}


async def test_a_stopped_database_answers_503_with_a_retry_hint_then_recovers(
    client: httpx.AsyncClient, headers: H, fleet: None, postgres_server: PostgresServer
) -> None:
    engineer = headers["engineer"]
    body = {"email": "engineer@plant.example"}
    postgres_server.stop()
    try:
        answers = {
            "fleet report": await client.get(
                f"{API}/reports/fleet", params={"period": "day"}, headers=headers["viewer"]
            ),
            "list": await client.get(f"{API}/reports/subscriptions", headers=engineer),
            "create": await client.post(
                f"{API}/reports/subscriptions", json=body, headers=engineer
            ),
            "delete": await client.delete(f"{API}/reports/subscriptions/1", headers=engineer),
        }
    finally:
        postgres_server.start()
    for route, response in answers.items():
        assert response.status_code == 503, (route, response.text)
        assert int(response.headers["retry-after"]) >= 1, route
        assert response.headers["content-type"] == "application/problem+json", route
        assert response.json()["backend"] == "database", route
        assert "Traceback" not in response.text, route
    recovered = await client.get(f"{API}/reports/subscriptions", headers=engineer)
    assert recovered.status_code == 200
