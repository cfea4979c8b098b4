"""Diagnoses: latest findings and history from PostgreSQL; run-now and oscillation clusters
through the diagnostics service, with its outages answered as 503/504 problems.

Seed (conftest): TIC-205 has one finding (saturation) for the window 09:00 and two
(stiction 0.8, oscillation 0.6) for the window 10:00. The gateway of this module points
DIAG_SERVICE_URL at a loopback port where nothing listens.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from clpm_api_gateway.app import create_app
from clpm_shared.config import Settings

API = "/api/v1"
H = dict[str, dict[str, str]]


async def test_latest_findings_are_those_of_the_newest_window(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = (await client.get(f"{API}/loops/TIC-205/diagnostics", headers=headers["viewer"])).json()
    assert body["count"] == 2
    assert [item["category"] for item in body["items"]] == ["stiction", "oscillation"]
    assert body["items"][0]["evidence"] == {"stiction_index": 0.78}
    assert body["items"][0]["window_start"].startswith("2025-01-10T10:00:00")
    assert body["items"][1]["explained"] == []


async def test_findings_a_root_cause_explains_are_returned_under_it(
    client: httpx.AsyncClient, headers: H
) -> None:
    for path in ("/loops/TIC-205/diagnostics", "/loops/TIC-205/diagnostics/history"):
        body = (await client.get(f"{API}{path}", headers=headers["viewer"])).json()
        stiction = body["items"][0]
        assert stiction["category"] == "stiction"
        # moved out of the evidence into its own list, each naming its root cause
        assert "explained" not in stiction["evidence"]
        assert stiction["explained"] == [
            {
                "category": "aggressive_tuning",
                "severity": 0.4,
                "confidence": 0.5,
                "evidence": {"op_reversals_per_hour": 300.0},
                "recommendation": "Reduce the controller gain.",
                "explained_by": "stiction",
            }
        ]
        # not counted as a problem of its own
        assert "aggressive_tuning" not in [item["category"] for item in body["items"]]


async def test_history_lists_all_findings_newest_first(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = (
        await client.get(f"{API}/loops/TIC-205/diagnostics/history", headers=headers["viewer"])
    ).json()
    assert [item["category"] for item in body["items"]] == [
        "stiction",
        "oscillation",
        "saturation",
    ]
    recent = (
        await client.get(
            f"{API}/loops/TIC-205/diagnostics/history",
            params={"start": "2025-01-10T09:30:00Z", "end": "2025-01-10T12:00:00Z"},
            headers=headers["viewer"],
        )
    ).json()
    assert recent["count"] == 2
    limited = (
        await client.get(
            f"{API}/loops/TIC-205/diagnostics/history",
            params={"limit": 1},
            headers=headers["viewer"],
        )
    ).json()
    assert [item["category"] for item in limited["items"]] == ["stiction"]


async def test_a_loop_without_findings_and_an_unknown_loop(
    client: httpx.AsyncClient, headers: H
) -> None:
    empty = await client.get(f"{API}/loops/FIC-101/diagnostics", headers=headers["viewer"])
    assert empty.json() == {"loop_id": "FIC-101", "count": 0, "items": []}
    for path in ("/loops/NOPE-9/diagnostics", "/loops/NOPE-9/diagnostics/history"):
        assert (await client.get(f"{API}{path}", headers=headers["viewer"])).status_code == 404
    run = await client.post(
        f"{API}/loops/NOPE-9/diagnostics/run", json={}, headers=headers["engineer"]
    )
    assert run.status_code == 404


async def test_running_a_diagnosis_needs_engineer(client: httpx.AsyncClient, headers: H) -> None:
    response = await client.post(
        f"{API}/loops/TIC-205/diagnostics/run", json={}, headers=headers["viewer"]
    )
    assert response.status_code == 403


async def test_unreachable_diagnostics_service_is_503_with_retry_after(
    client: httpx.AsyncClient, headers: H
) -> None:
    run = await client.post(
        f"{API}/loops/TIC-205/diagnostics/run",
        json={"start": "2025-01-10T10:00:00Z", "end": "2025-01-10T11:00:00Z"},
        headers=headers["engineer"],
    )
    assert run.status_code == 503
    assert int(run.headers["retry-after"]) >= 1
    assert run.headers["content-type"] == "application/problem+json"
    assert run.json()["backend"] == "diagnostics service"
    assert "Traceback" not in run.text
    clusters = await client.get(f"{API}/oscillation-clusters", headers=headers["viewer"])
    assert clusters.status_code == 503
    assert "retry-after" in clusters.headers


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"start": "2025-01-10T11:00:00Z", "end": "2025-01-10T10:00:00Z"}, "end"),
        ({"start": "2025-01-01T00:00:00Z", "end": "2025-01-10T10:00:00Z"}, "end"),
        ({"start": "2025-01-10T10:00:00"}, "start"),
        ({"start": "soon"}, "start"),
        ({"loop": "x"}, "loop"),
    ],
)
async def test_run_body_is_validated(
    client: httpx.AsyncClient, headers: H, body: dict[str, Any], parameter: str
) -> None:
    response = await client.post(
        f"{API}/loops/TIC-205/diagnostics/run", json=body, headers=headers["engineer"]
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == parameter


async def test_cluster_window_is_validated(client: httpx.AsyncClient, headers: H) -> None:
    response = await client.get(
        f"{API}/oscillation-clusters",
        params={"start": "2025-01-10T10:00:00Z", "end": "2025-01-09T10:00:00Z"},
        headers=headers["viewer"],
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "end"


@pytest.fixture
async def silent_service() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers (a hung diagnostics service)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_diagnostics_service_that_does_not_answer_is_504(
    settings: Settings, silent_service: str, headers: H
) -> None:
    parts = {name: getattr(settings, name) for name in Settings.__slots__}
    parts["api"] = settings.api.model_copy(
        update={"diag_service_url": silent_service, "diag_timeout_s": 0.5}
    )
    app = create_app(Settings(**parts))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        response = await http.post(
            f"{API}/loops/TIC-205/diagnostics/run", json={}, headers=headers["engineer"]
        )
    assert response.status_code == 504
    assert "retry-after" in response.headers
    assert response.json()["backend"] == "diagnostics service"
