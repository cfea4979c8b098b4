"""/data/raw, /data/aggregated, /data/realtime, /data/range on real influxd and PostgreSQL.

Seed (conftest): FIC-101 has raw samples i = 0..3599 at 10:00:00 + i s with PV = i mod 60,
SP = 50, OP = i / 100, mode AUT before 10:30 and MAN after; TIC-205 has 1-minute aggregates
(minute m: PV mean m, min m - 1, max m + 1, 60 samples) from 10:00 to 11:00 and one hourly
bucket at 15:00 (PV mean 7.5).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

API = "/api/v1"
RAW = "FIC-101"
AGG = "TIC-205"
H = dict[str, dict[str, str]]


async def get(client: httpx.AsyncClient, headers: H, path: str, **params: Any) -> httpx.Response:
    return await client.get(path, params=params, headers=headers["viewer"])


async def test_raw_returns_the_requested_field_columnar(
    client: httpx.AsyncClient, headers: H
) -> None:
    response = await get(
        client,
        headers,
        f"{API}/data/raw",
        loopId=RAW,
        start="2025-01-10T10:00:00Z",
        end="2025-01-10T10:01:00Z",
        fields="pv",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"loop_id", "ts", "pv", "count", "next_cursor"}
    assert body["count"] == 60
    assert body["ts"][0] == "2025-01-10T10:00:00.000Z"
    assert body["ts"][-1] == "2025-01-10T10:00:59.000Z"
    assert body["pv"] == [float(i) for i in range(60)]
    assert body["next_cursor"] is None


async def test_raw_default_fields_are_pv_op_sp_and_names_accept_any_case(
    client: httpx.AsyncClient, headers: H
) -> None:
    window = {"loopId": RAW, "start": "2025-01-10T10:00:10Z", "end": "2025-01-10T10:00:20Z"}
    default = (await get(client, headers, f"{API}/data/raw", **window)).json()
    assert {"pv", "op", "sp"} <= set(default)
    assert "mode" not in default
    assert default["sp"] == [50.0] * 10
    assert default["op"] == pytest.approx([i / 100 for i in range(10, 20)])
    mixed = (await get(client, headers, f"{API}/data/raw", **window, fields="PV,Op")).json()
    assert "sp" not in mixed
    assert mixed["pv"] == default["pv"]
    assert mixed["op"] == default["op"]


async def test_raw_mode_field_changes_at_half_past(client: httpx.AsyncClient, headers: H) -> None:
    body = (
        await get(
            client,
            headers,
            f"{API}/data/raw",
            loopId=RAW,
            start="2025-01-10T10:29:58Z",
            end="2025-01-10T10:30:02Z",
            fields="mode",
        )
    ).json()
    assert body["mode"] == ["AUT", "AUT", "MAN", "MAN"]


async def test_raw_zone_offsets_are_converted_to_utc(client: httpx.AsyncClient, headers: H) -> None:
    body = (
        await get(
            client,
            headers,
            f"{API}/data/raw",
            loopId=RAW,
            start="2025-01-10T11:00:00+01:00",
            end="2025-01-10T11:00:05+01:00",
            fields="pv",
        )
    ).json()
    assert body["ts"][0] == "2025-01-10T10:00:00.000Z"
    assert body["count"] == 5


async def test_raw_pages_with_cursor_cover_the_range_once(
    client: httpx.AsyncClient, headers: H
) -> None:
    params: dict[str, Any] = {
        "loopId": RAW,
        "start": "2025-01-10T10:00:00Z",
        "end": "2025-01-10T10:50:00Z",
        "fields": "pv",
        "limit": 1000,
    }
    times: list[str] = []
    pages = 0
    while True:
        body = (await get(client, headers, f"{API}/data/raw", **params)).json()
        pages += 1
        times += body["ts"]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert pages == 3
    assert len(times) == 3000 == len(set(times))
    assert times == sorted(times)


async def test_unprefixed_routes_answer_like_the_prefixed_ones(
    client: httpx.AsyncClient, headers: H
) -> None:
    params = {"loopId": RAW, "start": "2025-01-10T10:00:00Z", "end": "2025-01-10T10:00:30Z"}
    prefixed = await get(client, headers, f"{API}/data/raw", **params)
    plain = await get(client, headers, "/data/raw", **params)
    assert plain.status_code == 200
    assert plain.json() == prefixed.json()
    assert (await get(client, headers, "/data/range", loopId=RAW)).status_code == 200


async def test_raw_as_csv_by_format_or_accept(client: httpx.AsyncClient, headers: H) -> None:
    params = {
        "loopId": RAW,
        "start": "2025-01-10T10:00:00Z",
        "end": "2025-01-10T10:01:00Z",
        "fields": "pv,sp",
    }
    by_format = await get(client, headers, f"{API}/data/raw", **params, format="csv")
    assert by_format.status_code == 200
    assert by_format.headers["content-type"].startswith("text/csv")
    assert "attachment" in by_format.headers["content-disposition"]
    lines = by_format.text.splitlines()
    assert lines[0] == "ts,pv,sp"
    assert lines[1] == "2025-01-10T10:00:00.000Z,0.0,50.0"
    assert len(lines) == 61
    by_accept = await client.get(
        f"{API}/data/raw", params=params, headers={**headers["viewer"], "Accept": "text/csv"}
    )
    assert by_accept.text == by_format.text


async def test_aggregated_falls_back_to_raw_when_the_database_has_no_buckets(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = (
        await get(
            client,
            headers,
            f"{API}/data/aggregated",
            loopId=RAW,
            start="2025-01-10T10:00:00Z",
            end="2025-01-10T10:10:00Z",
            interval="1m",
        )
    ).json()
    assert body["source"] == "raw"
    assert body["count"] == 10
    assert body["ts"][0] == "2025-01-10T10:00:00.000Z"
    assert body["pv_count"] == [60] * 10
    assert body["pv"] == pytest.approx([29.5] * 10)
    assert body["pv_min"] == [0.0] * 10
    assert body["pv_max"] == [59.0] * 10
    assert body["sp"] == pytest.approx([50.0] * 10)


async def test_aggregated_reads_agg_1m_first(client: httpx.AsyncClient, headers: H) -> None:
    body = (
        await get(
            client,
            headers,
            f"{API}/data/aggregated",
            loopId=AGG,
            start="2025-01-10T10:00:00Z",
            end="2025-01-10T11:00:00Z",
        )
    ).json()
    assert body["source"] == "agg_1m"
    assert body["interval"] == "1m"
    assert body["count"] == 60
    assert body["pv"] == [float(m) for m in range(60)]
    assert body["op"] == [10.0 + m for m in range(60)]
    assert body["pv_count"] == [60] * 60


async def test_aggregated_combines_minutes_into_coarser_buckets(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = (
        await get(
            client,
            headers,
            f"{API}/data/aggregated",
            loopId=AGG,
            start="2025-01-10T10:00:00Z",
            end="2025-01-10T11:00:00Z",
            interval="15m",
        )
    ).json()
    assert body["source"] == "agg_1m"
    assert body["ts"] == [f"2025-01-10T10:{m:02d}:00.000Z" for m in (0, 15, 30, 45)]
    assert body["pv"] == pytest.approx([7.0, 22.0, 37.0, 52.0])
    assert body["pv_count"] == [900] * 4
    assert body["pv_min"] == [-1.0, 14.0, 29.0, 44.0]
    assert body["pv_max"] == [15.0, 30.0, 45.0, 60.0]


async def test_aggregated_hourly_prefers_agg_1h_then_agg_1m(
    client: httpx.AsyncClient, headers: H
) -> None:
    hourly = (
        await get(
            client,
            headers,
            f"{API}/data/aggregated",
            loopId=AGG,
            start="2025-01-10T14:00:00Z",
            end="2025-01-10T16:00:00Z",
            interval="1h",
        )
    ).json()
    assert hourly["source"] == "agg_1h"
    assert hourly["ts"] == ["2025-01-10T15:00:00.000Z"]
    assert hourly["pv"] == [7.5]
    from_minutes = (
        await get(
            client,
            headers,
            f"{API}/data/aggregated",
            loopId=AGG,
            start="2025-01-10T10:00:00Z",
            end="2025-01-10T11:00:00Z",
            interval="1h",
        )
    ).json()
    assert from_minutes["source"] == "agg_1m"
    assert from_minutes["pv"] == pytest.approx([29.5])
    assert from_minutes["pv_count"] == [3600]


async def test_aggregated_csv_has_one_row_per_bucket(client: httpx.AsyncClient, headers: H) -> None:
    response = await get(
        client,
        headers,
        f"{API}/data/aggregated",
        loopId=AGG,
        start="2025-01-10T10:00:00Z",
        end="2025-01-10T11:00:00Z",
        interval="15m",
        format="csv",
    )
    lines = response.text.splitlines()
    assert lines[0] == "ts,pv,op,sp,pv_count,pv_min,pv_max,op_min,op_max,sp_min,sp_max"
    assert len(lines) == 5
    assert lines[1].startswith("2025-01-10T10:00:00.000Z,7.0,17.0,30.0,900,-1.0,15.0")


async def test_realtime_gives_the_latest_values_and_their_age(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = (await get(client, headers, f"{API}/data/realtime", loopId=RAW)).json()
    assert body["ts"] == "2025-01-10T10:59:59.000Z"
    assert body["pv"] == 59.0
    assert body["sp"] == 50.0
    assert body["op"] == pytest.approx(35.99)
    expected_age = (
        datetime.now(UTC) - datetime(2025, 1, 10, 10, 59, 59, tzinfo=UTC)
    ).total_seconds()
    assert body["age_s"] == pytest.approx(expected_age, abs=60)
    assert body["times"]["pv"] == "2025-01-10T10:59:59.000Z"


async def test_realtime_mode_and_nulls_for_a_loop_without_raw_data(
    client: httpx.AsyncClient, headers: H
) -> None:
    with_mode = (await get(client, headers, "/data/realtime", loopId=RAW, fields="pv,Mode")).json()
    assert with_mode["mode"] == "MAN"
    assert with_mode["pv"] == 59.0
    empty = (await get(client, headers, "/data/realtime", loopId=AGG)).json()
    assert empty["ts"] is None
    assert empty["age_s"] is None
    assert empty["pv"] is None
    assert empty["op"] is None
    assert empty["sp"] is None


async def test_range_of_raw_data(client: httpx.AsyncClient, headers: H) -> None:
    body = (await get(client, headers, f"{API}/data/range", loopId=RAW)).json()
    assert body["start"] == "2025-01-10T10:00:00.000Z"
    assert body["end"] == "2025-01-10T10:59:59.000Z"
    assert body["raw"] == {"start": body["start"], "end": body["end"]}
    assert body["agg_1m"] is None
    assert body["agg_1h"] is None


async def test_range_spans_the_broadest_of_the_aggregates(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = (await get(client, headers, f"{API}/loops/{AGG}/data/range")).json()
    assert body["raw"] is None
    assert body["agg_1m"] == {
        "start": "2025-01-10T10:00:00.000Z",
        "end": "2025-01-10T11:00:00.000Z",
    }
    assert body["agg_1h"] == {
        "start": "2025-01-10T15:00:00.000Z",
        "end": "2025-01-10T16:00:00.000Z",
    }
    assert body["start"] == "2025-01-10T10:00:00.000Z"
    assert body["end"] == "2025-01-10T16:00:00.000Z"


async def test_loop_data_route_answers_like_data_raw(client: httpx.AsyncClient, headers: H) -> None:
    window = {"start": "2025-01-10T10:00:00Z", "end": "2025-01-10T10:00:30Z", "fields": "pv"}
    by_loop = await get(client, headers, f"{API}/loops/{RAW}/data", **window)
    by_query = await get(client, headers, f"{API}/data/raw", loopId=RAW, **window)
    assert by_loop.status_code == 200
    assert by_loop.json() == by_query.json()


GOOD = {"loopId": RAW, "start": "2025-01-10T10:00:00Z", "end": "2025-01-10T10:01:00Z"}


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/data/raw", {"start": GOOD["start"], "end": GOOD["end"]}, "loopId"),
        ("/data/raw", {**GOOD, "loopId": "bad id!"}, "loopId"),
        ("/data/raw", {**GOOD, "loopId": "-starts-with-dash"}, "loopId"),
        ("/data/raw", {"loopId": RAW, "end": GOOD["end"]}, "start"),
        ("/data/raw", {**GOOD, "start": "yesterday"}, "start"),
        ("/data/raw", {**GOOD, "start": "2025-01-10T10:00:00"}, "start"),
        ("/data/raw", {**GOOD, "end": "2025-01-10"}, "end"),
        ("/data/raw", {**GOOD, "end": "2025-01-10T09:00:00Z"}, "end"),
        ("/data/raw", {**GOOD, "end": "2025-01-10T10:00:00Z"}, "end"),
        ("/data/raw", {**GOOD, "end": "2025-01-10T12:00:01Z"}, "end"),
        ("/data/raw", {**GOOD, "start": "1677-09-21T00:00:00Z"}, "start"),
        ("/data/raw", {**GOOD, "end": "9999-12-31T23:00:00Z"}, "end"),
        ("/data/raw", {**GOOD, "start": "0001-01-01T00:00:00+05:00"}, "start"),
        ("/data/raw", {**GOOD, "fields": "pv,temperature"}, "fields"),
        ("/data/raw", {**GOOD, "fields": ","}, "fields"),
        ("/data/raw", {**GOOD, "limit": 0}, "limit"),
        ("/data/raw", {**GOOD, "limit": 5001}, "limit"),
        ("/data/raw", {**GOOD, "limit": "many"}, "limit"),
        ("/data/raw", {**GOOD, "cursor": "not-a-cursor"}, "cursor"),
        ("/data/raw", {**GOOD, "format": "xml"}, "format"),
        ("/data/aggregated", {**GOOD, "interval": "fortnight"}, "interval"),
        ("/data/aggregated", {**GOOD, "interval": "0m"}, "interval"),
        (
            "/data/aggregated",
            {**GOOD, "end": "2025-03-10T10:00:00Z", "interval": "1s"},
            "interval",
        ),
        ("/data/realtime", {"loopId": "x" * 129}, "loopId"),
        ("/data/realtime", {"loopId": RAW, "fields": "OPX"}, "fields"),
        ("/data/range", {}, "loopId"),
    ],
)
async def test_invalid_parameters_answer_422_naming_the_parameter(
    client: httpx.AsyncClient, headers: H, path: str, params: dict[str, Any], parameter: str
) -> None:
    response = await get(client, headers, f"{API}{path}", **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["errors"][0]["parameter"] == parameter
    assert problem["detail"].startswith(f"{parameter}: ")


async def test_a_cursor_of_another_loop_is_refused(client: httpx.AsyncClient, headers: H) -> None:
    first = (await get(client, headers, f"{API}/data/raw", **GOOD, fields="pv", limit=10)).json()
    assert first["next_cursor"]
    response = await get(
        client,
        headers,
        f"{API}/data/raw",
        **{**GOOD, "loopId": AGG},
        fields="pv",
        limit=10,
        cursor=first["next_cursor"],
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "cursor"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/data/raw", {**GOOD, "loopId": "NOPE-1"}),
        ("/data/aggregated", {**GOOD, "loopId": "NOPE-1"}),
        ("/data/realtime", {"loopId": "NOPE-1"}),
        ("/data/range", {"loopId": "NOPE-1"}),
        ("/loops/NOPE-1/data", {"start": GOOD["start"], "end": GOOD["end"]}),
        ("/loops/NOPE-1/data/range", {}),
    ],
)
async def test_unknown_loop_is_404(
    client: httpx.AsyncClient, headers: H, path: str, params: dict[str, Any]
) -> None:
    response = await get(client, headers, f"{API}{path}", **params)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["loop_id"] == "NOPE-1"


async def test_data_needs_a_token_with_a_role(client: httpx.AsyncClient, headers: H) -> None:
    anonymous = await client.get(f"{API}/data/realtime", params={"loopId": RAW})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.headers["content-type"] == "application/problem+json"
    no_role = await client.get(
        f"{API}/data/realtime", params={"loopId": RAW}, headers=headers["norole"]
    )
    assert no_role.status_code == 403
    forged = await client.get(
        f"{API}/data/realtime",
        params={"loopId": RAW},
        headers={"Authorization": headers["viewer"]["Authorization"][:-4] + "AAAA"},
    )
    assert forged.status_code == 401
