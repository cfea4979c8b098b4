"""POST /loops/import: historian exports and a tag map uploaded by an admin, imported into
influxd and the catalogue (data_source "import"), or refused whole naming file, line and column;
dry runs write nothing; the upload has its own body limit; admins only; audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from clpm_api_gateway.app import create_app
from clpm_shared.config import Settings
from clpm_shared.timeseries import TimeSeriesStore
from clpm_shared.timeseries.factory import create_store

API = "/api/v1"
URL = f"{API}/loops/import"
H = dict[str, dict[str, str]]
WINDOW = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))

TAG_MAP = (
    "loop_id,pv_tag,sp_tag,op_tag,mode_tag,pv_scale,pv_offset,mode_map,units,loop_type,unit,area\n"
    "UPL-1,UPL1.PV,UPL1.SP,UPL1.OP,UPL1.MODE,10,1,0=MAN;1=AUT,m3/h,flow,U7,Upload\n"
    "UPL-2,UPL2.PV,,,,,,,degC,temperature,U7,Upload\n"
)
WIDE = (
    "timestamp,UPL1.PV,UPL1.SP,UPL1.OP,UPL1.MODE,UPL2.PV,OTHER\n"
    "2024-03-01 10:00:00,1.5,2,30,1,100,9\n"
    "2024-03-01 10:00:01,Bad Input,2,31,1,101,9\n"
    "2024-03-01 10:00:02,1.7,2,32,0,102,9\n"
)


def form(
    exports: list[tuple[str, str | bytes]], tag_map: str = TAG_MAP, **fields: str
) -> dict[str, Any]:
    files = [("exports", (name, text, "text/csv")) for name, text in exports]
    files.append(("tag_map", ("tags.csv", tag_map, "text/csv")))
    return {"files": files, "data": {"timezone": "UTC", **fields}}


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[TimeSeriesStore]:
    opened = create_store(settings.influx)
    try:
        yield opened
    finally:
        await opened.close()


async def stored_pv(store: TimeSeriesStore, loop_id: str) -> list[float]:
    page = await store.query_raw(loop_id, *WINDOW, fields=["PV"])
    return [float(v) for v in page.series.pv]


async def test_admin_imports_a_wide_csv_and_the_loops_appear_as_imported(
    client: httpx.AsyncClient, headers: H, store: TimeSeriesStore
) -> None:
    answer = await client.post(URL, headers=headers["admin"], **form([("plant.csv", WIDE)]))
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["dry_run"] is False
    assert [(lp["loop_id"], lp["samples"]) for lp in report["loops"]] == [
        ("UPL-1", 3),
        ("UPL-2", 3),
    ]
    assert report["samples_stored"] == 6
    assert report["bad_quality"] == 1  # "Bad Input" is counted, not stored
    assert (report["start"], report["end"]) == ("2024-03-01T10:00:00Z", "2024-03-01T10:00:02Z")
    assert report["files"][0]["unmapped_tags"] == ["OTHER"]
    assert report["catalogue_loops"] == 2
    assert report["skipped"] == []
    # PV stored as 10 * raw + 1; the bad-quality value is not stored
    assert await stored_pv(store, "UPL-1") == [16.0, 18.0]
    assert await stored_pv(store, "UPL-2") == [100.0, 101.0, 102.0]
    loops = (await client.get(f"{API}/loops", headers=headers["viewer"])).json()
    items = loops["items"] if isinstance(loops, dict) else loops
    imported = {item["loop_id"]: item for item in items if item["loop_id"].startswith("UPL-")}
    assert {k: (v["data_source"], v["data_source_detail"]) for k, v in imported.items()} == {
        "UPL-1": ("import", "plant.csv"),
        "UPL-2": ("import", "plant.csv"),
    }
    trail = await client.get(
        f"{API}/audit", params={"entity": "loop_import"}, headers=headers["admin"]
    )
    entry = trail.json()["items"][0]
    assert (entry["action"], entry["actor"], entry["entity_id"]) == ("import", "admin", "plant.csv")
    assert entry["before"] is None
    assert entry["after"]["loop_ids"] == ["UPL-1", "UPL-2"]
    assert entry["after"]["samples_stored"] == 6


async def test_a_bad_row_is_refused_naming_line_and_column_and_nothing_is_stored(
    client: httpx.AsyncClient, headers: H, store: TimeSeriesStore
) -> None:
    tag_map = "loop_id,pv_tag\nUPL-3,UPL3.PV\n"
    good = "timestamp,UPL3.PV\n2024-03-02T10:00:00Z,1\n"
    bad = "timestamp,UPL3.PV\n2024-03-02T10:00:01Z,1\n2024-03-02T10:00:02Z,one\n"
    answer = await client.post(
        URL, headers=headers["admin"], **form([("a.csv", good), ("b.csv", bad)], tag_map)
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["problems"] == [
        {"file": "b.csv", "line": 3, "column": "UPL3.PV", "reason": "not a number: 'one'"}
    ]
    assert problem["problem_count"] == 1
    assert await stored_pv(store, "UPL-3") == []  # not even the good file
    missing = await client.get(f"{API}/loops/UPL-3", headers=headers["viewer"])
    assert missing.status_code == 404
    # with skip_bad_rows the valid rows are imported and the bad one is reported
    skipped = await client.post(
        URL,
        headers=headers["admin"],
        **form([("a.csv", good), ("b.csv", bad)], tag_map, skip_bad_rows="true"),
    )
    assert skipped.status_code == 200, skipped.text
    assert skipped.json()["bad_rows"] == 1
    assert skipped.json()["skipped"][0]["line"] == 3
    assert await stored_pv(store, "UPL-3") == [1.0, 1.0]


async def test_dry_run_reports_and_stores_nothing(
    client: httpx.AsyncClient, headers: H, store: TimeSeriesStore
) -> None:
    tag_map = "loop_id,pv_tag\nUPL-4,UPL4.PV\n"
    export = "timestamp,UPL4.PV\n2024-03-03T10:00:00Z,1\n2024-03-03T10:00:01Z,2\n"
    answer = await client.post(
        URL, headers=headers["admin"], **form([("dry.csv", export)], tag_map, dry_run="true")
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["dry_run"], report["values"], report["samples_stored"]) == (True, 2, 0)
    assert report["loops"][0]["loop_id"] == "UPL-4"
    assert await stored_pv(store, "UPL-4") == []
    missing = await client.get(f"{API}/loops/UPL-4", headers=headers["viewer"])
    assert missing.status_code == 404


async def test_an_invalid_tag_map_or_timezone_is_named(
    client: httpx.AsyncClient, headers: H
) -> None:
    broken_map = "loop_id,pv_tag,pv_scale\nUPL-5,UPL5.PV,ten\n"
    answer = await client.post(URL, headers=headers["admin"], **form([("x.csv", WIDE)], broken_map))
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert (problem["file"], problem["line"], problem["column"]) == ("tags.csv", 2, "pv_scale")
    zone = await client.post(
        URL, headers=headers["admin"], **form([("x.csv", WIDE)], timezone="Mars/Olympus")
    )
    assert zone.status_code == 422
    assert zone.json()["errors"][0]["parameter"] == "timezone"
    no_exports = await client.post(
        URL,
        headers=headers["admin"],
        files=[("tag_map", ("tags.csv", TAG_MAP, "text/csv"))],
    )
    assert no_exports.status_code == 422
    assert no_exports.json()["errors"][0]["parameter"] == "exports"
    not_a_form = await client.post(URL, headers=headers["admin"], json={"exports": []})
    assert not_a_form.status_code == 422
    assert not_a_form.json()["errors"][0]["parameter"] == "Content-Type"


@pytest.mark.parametrize("role", ["viewer", "engineer"])
async def test_only_admins_may_upload(client: httpx.AsyncClient, headers: H, role: str) -> None:
    answer = await client.post(URL, headers=headers[role], **form([("plant.csv", WIDE)]))
    assert answer.status_code == 403


async def test_the_upload_has_its_own_body_limit(
    client: httpx.AsyncClient, headers: H, settings: Settings, store: TimeSeriesStore
) -> None:
    # larger than API_MAX_BODY_BYTES (1 MiB), within API_MAX_UPLOAD_BYTES: accepted
    rows = "".join(f"2024-03-04T{h:02d}:{m:02d}:{s:02d}Z,{s}.25\n"
                   for h in range(10, 22) for m in range(60) for s in range(60))  # fmt: skip
    export = "timestamp,UPL6.PV\n" + rows
    assert len(export) > settings.api.api_max_body_bytes
    answer = await client.post(
        URL,
        headers=headers["admin"],
        **form([("big.csv", export)], "loop_id,pv_tag\nUPL-6,UPL6.PV\n"),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["samples_stored"] == 12 * 3600
    # the same upload over a smaller API_MAX_UPLOAD_BYTES: 413, nothing read
    parts = {name: getattr(settings, name) for name in Settings.__slots__}
    parts["api"] = settings.api.model_copy(update={"api_max_upload_bytes": 64 * 1024})
    app = create_app(Settings(**parts))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as small:
            refused = await small.post(
                URL, headers=headers["admin"], **form([("big.csv", export)], TAG_MAP)
            )
    assert refused.status_code == 413
    assert "65536" in refused.json()["detail"]


async def test_the_larger_limit_is_only_the_upload_routes(
    client: httpx.AsyncClient, headers: H, settings: Settings
) -> None:
    # a loop whose id starts like the route keeps API_MAX_BODY_BYTES (refused before reading)
    body = b'{"name": "' + b"x" * settings.api.api_max_body_bytes + b'"}'
    answer = await client.put(
        f"{API}/loops/import-7",
        content=body,
        headers={**headers["admin"], "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert str(settings.api.api_max_body_bytes) in answer.json()["detail"]
