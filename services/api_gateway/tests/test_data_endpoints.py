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


def window(loop: str, start: str, end: str) -> dict[str, str]:
    """Query parameters for ``loop`` from ``start`` to ``end`` (HH:MM:SS on the seed day, UTC)."""
    return {"loopId": loop, "start": f"2025-01-10T{start}Z", "end": f"2025-01-10T{end}Z"}


GOOD = window(RAW, "10:00:00", "10:01:00")


async def get(client: httpx.AsyncClient, headers: H, path: str, **params: Any) -> httpx.Response:
    return await client.get(path, params=params, headers=headers["viewer"])


async def read(client: httpx.AsyncClient, headers: H, path: str, **params: Any) -> Any:
    """The JSON body of the viewer's GET of ``path``, which must answer 200."""
    response = await get(client, headers, path, **params)
    assert response.status_code == 200, response.text
    return response.json()


def assert_fields(body: dict[str, Any], **expected: Any) -> None:
    """Each named field of ``body`` equals its expected value (``pytest.approx`` allowed)."""
    for field, value in expected.items():
        assert body[field] == value, field


def assert_problem_naming(response: httpx.Response, parameter: str) -> None:
    """``response`` is a 422 problem document whose first error names ``parameter``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["errors"][0]["parameter"] == parameter
    assert problem["detail"].startswith(f"{parameter}: ")


async def test_raw_returns_the_requested_field_columnar(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = await read(client, headers, f"{API}/data/raw", **GOOD, fields="pv")
    assert set(body) == {"loop_id", "ts", "pv", "count", "next_cursor"}
    assert body["ts"][0] == "2025-01-10T10:00:00.000Z"
    assert body["ts"][-1] == "2025-01-10T10:00:59.000Z"
    assert_fields(body, count=60, pv=[float(i) for i in range(60)], next_cursor=None)


async def test_raw_default_fields_are_pv_op_sp_and_names_accept_any_case(
    client: httpx.AsyncClient, headers: H
) -> None:
    seconds = window(RAW, "10:00:10", "10:00:20")
    default = await read(client, headers, f"{API}/data/raw", **seconds)
    assert {"pv", "op", "sp"} <= set(default)
    assert "mode" not in default
    assert_fields(default, sp=[50.0] * 10, op=pytest.approx([i / 100 for i in range(10, 20)]))
    mixed = await read(client, headers, f"{API}/data/raw", **seconds, fields="PV,Op")
    assert "sp" not in mixed
    assert_fields(mixed, pv=default["pv"], op=default["op"])


async def test_raw_mode_field_changes_at_half_past(client: httpx.AsyncClient, headers: H) -> None:
    seconds = window(RAW, "10:29:58", "10:30:02")
    body = await read(client, headers, f"{API}/data/raw", **seconds, fields="mode")
    assert body["mode"] == ["AUT", "AUT", "MAN", "MAN"]


async def test_raw_zone_offsets_are_converted_to_utc(client: httpx.AsyncClient, headers: H) -> None:
    body = await read(
        client,
        headers,
        f"{API}/data/raw",
        loopId=RAW,
        start="2025-01-10T11:00:00+01:00",
        end="2025-01-10T11:00:05+01:00",
        fields="pv",
    )
    assert body["ts"][0] == "2025-01-10T10:00:00.000Z"
    assert body["count"] == 5


async def test_raw_pages_with_cursor_cover_the_range_once(
    client: httpx.AsyncClient, headers: H
) -> None:
    params: dict[str, Any] = {**window(RAW, "10:00:00", "10:50:00"), "fields": "pv", "limit": 1000}
    times: list[str] = []
    pages = 0
    while True:
        body = await read(client, headers, f"{API}/data/raw", **params)
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
    params = window(RAW, "10:00:00", "10:00:30")
    prefixed = await read(client, headers, f"{API}/data/raw", **params)
    assert await read(client, headers, "/data/raw", **params) == prefixed
    prefixed_range = await read(client, headers, f"{API}/data/range", loopId=RAW)
    assert await read(client, headers, "/data/range", loopId=RAW) == prefixed_range


async def test_raw_as_csv_by_format_or_accept(client: httpx.AsyncClient, headers: H) -> None:
    params = {**GOOD, "fields": "pv,sp"}
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
    ten_minutes = window(RAW, "10:00:00", "10:10:00")
    body = await read(client, headers, f"{API}/data/aggregated", **ten_minutes, interval="1m")
    assert body["ts"][0] == "2025-01-10T10:00:00.000Z"
    assert_fields(
        body,
        source="raw",
        count=10,
        pv_count=[60] * 10,
        pv=pytest.approx([29.5] * 10),
        pv_min=[0.0] * 10,
        pv_max=[59.0] * 10,
        sp=pytest.approx([50.0] * 10),
    )


async def test_aggregated_reads_agg_1m_first(client: httpx.AsyncClient, headers: H) -> None:
    body = await read(
        client, headers, f"{API}/data/aggregated", **window(AGG, "10:00:00", "11:00:00")
    )
    assert_fields(
        body,
        source="agg_1m",
        interval="1m",
        count=60,
        pv=[float(m) for m in range(60)],
        op=[10.0 + m for m in range(60)],
        pv_count=[60] * 60,
    )


async def test_aggregated_combines_minutes_into_coarser_buckets(
    client: httpx.AsyncClient, headers: H
) -> None:
    hour = window(AGG, "10:00:00", "11:00:00")
    body = await read(client, headers, f"{API}/data/aggregated", **hour, interval="15m")
    assert_fields(
        body,
        source="agg_1m",
        ts=[f"2025-01-10T10:{m:02d}:00.000Z" for m in (0, 15, 30, 45)],
        pv=pytest.approx([7.0, 22.0, 37.0, 52.0]),
        pv_count=[900] * 4,
        pv_min=[-1.0, 14.0, 29.0, 44.0],
        pv_max=[15.0, 30.0, 45.0, 60.0],
    )


async def test_aggregated_hourly_prefers_agg_1h_then_agg_1m(
    client: httpx.AsyncClient, headers: H
) -> None:
    around_the_hourly_bucket = window(AGG, "14:00:00", "16:00:00")
    hourly = await read(
        client, headers, f"{API}/data/aggregated", **around_the_hourly_bucket, interval="1h"
    )
    assert_fields(hourly, source="agg_1h", ts=["2025-01-10T15:00:00.000Z"], pv=[7.5])
    minutes_only = window(AGG, "10:00:00", "11:00:00")
    from_minutes = await read(
        client, headers, f"{API}/data/aggregated", **minutes_only, interval="1h"
    )
    assert_fields(from_minutes, source="agg_1m", pv=pytest.approx([29.5]), pv_count=[3600])


async def test_aggregated_csv_has_one_row_per_bucket(client: httpx.AsyncClient, headers: H) -> None:
    hour = window(AGG, "10:00:00", "11:00:00")
    response = await get(
        client, headers, f"{API}/data/aggregated", **hour, interval="15m", format="csv"
    )
    lines = response.text.splitlines()
    assert lines[0] == "ts,pv,op,sp,pv_count,pv_min,pv_max,op_min,op_max,sp_min,sp_max"
    assert len(lines) == 5
    assert lines[1].startswith("2025-01-10T10:00:00.000Z,7.0,17.0,30.0,900,-1.0,15.0")


async def test_realtime_gives_the_latest_values_and_their_age(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = await read(client, headers, f"{API}/data/realtime", loopId=RAW)
    assert_fields(body, ts="2025-01-10T10:59:59.000Z", pv=59.0, sp=50.0, op=pytest.approx(35.99))
    expected_age = (
        datetime.now(UTC) - datetime(2025, 1, 10, 10, 59, 59, tzinfo=UTC)
    ).total_seconds()
    assert body["age_s"] == pytest.approx(expected_age, abs=60)
    assert body["times"]["pv"] == "2025-01-10T10:59:59.000Z"


async def test_realtime_mode_and_nulls_for_a_loop_without_raw_data(
    client: httpx.AsyncClient, headers: H
) -> None:
    with_mode = await read(client, headers, "/data/realtime", loopId=RAW, fields="pv,Mode")
    assert_fields(with_mode, mode="MAN", pv=59.0)
    empty = await read(client, headers, "/data/realtime", loopId=AGG)
    for field in ("ts", "age_s", "pv", "op", "sp"):
        assert empty[field] is None, field


async def test_realtime_of_many_loops_in_one_request(client: httpx.AsyncClient, headers: H) -> None:
    single = await read(client, headers, f"{API}/data/realtime", loopId=RAW, fields="pv,sp,op,mode")
    body = await read(
        client,
        headers,
        f"{API}/data/realtime",
        loopIds=f"{RAW},{AGG},NOPE-404",
        fields="pv,sp,op,mode",
    )
    assert body["count"] == 2
    assert body["unknown"] == ["NOPE-404"]
    first, second = body["loops"]
    for name in ("loop_id", "ts", "pv", "sp", "op", "mode", "times"):
        assert first[name] == single[name], name
    assert first["mode"] == "MAN"
    assert second["loop_id"] == AGG
    assert second["pv"] is None
    assert second["ts"] is None
    response = await client.get(
        "/data/realtime", params=[("loopId", AGG), ("loopId", RAW)], headers=headers["viewer"]
    )
    assert response.status_code == 200, response.text
    repeated = response.json()
    assert [entry["loop_id"] for entry in repeated["loops"]] == [AGG, RAW]
    assert repeated["loops"][1]["pv"] == 59.0


async def test_realtime_refuses_more_than_a_thousand_loops(
    client: httpx.AsyncClient, headers: H
) -> None:
    many = ",".join(f"L-{k}" for k in range(1001))
    assert_problem_naming(
        await get(client, headers, f"{API}/data/realtime", loopIds=many), "loopIds"
    )
    assert_problem_naming(await get(client, headers, f"{API}/data/realtime"), "loopId")
    assert_problem_naming(
        await get(client, headers, f"{API}/data/realtime", loopIds=f"{RAW},bad id"), "loopIds"
    )
    fine = ",".join(f"L-{k}" for k in range(1000))
    body = await read(client, headers, f"{API}/data/realtime", loopIds=fine)
    assert body["count"] == 0
    assert len(body["unknown"]) == 1000


async def test_range_of_raw_data(client: httpx.AsyncClient, headers: H) -> None:
    body = await read(client, headers, f"{API}/data/range", loopId=RAW)
    assert_fields(
        body,
        start="2025-01-10T10:00:00.000Z",
        end="2025-01-10T10:59:59.000Z",
        raw={"start": body["start"], "end": body["end"]},
        agg_1m=None,
        agg_1h=None,
    )


async def test_range_spans_the_broadest_of_the_aggregates(
    client: httpx.AsyncClient, headers: H
) -> None:
    body = await read(client, headers, f"{API}/loops/{AGG}/data/range")
    assert_fields(
        body,
        raw=None,
        agg_1m={"start": "2025-01-10T10:00:00.000Z", "end": "2025-01-10T11:00:00.000Z"},
        agg_1h={"start": "2025-01-10T15:00:00.000Z", "end": "2025-01-10T16:00:00.000Z"},
        start="2025-01-10T10:00:00.000Z",
        end="2025-01-10T16:00:00.000Z",
    )


async def test_loop_data_route_answers_like_data_raw(client: httpx.AsyncClient, headers: H) -> None:
    seconds = window(RAW, "10:00:00", "10:00:30")
    by_loop = await read(
        client,
        headers,
        f"{API}/loops/{RAW}/data",
        start=seconds["start"],
        end=seconds["end"],
        fields="pv",
    )
    assert await read(client, headers, f"{API}/data/raw", **seconds, fields="pv") == by_loop


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
    assert_problem_naming(await get(client, headers, f"{API}{path}", **params), parameter)


async def test_a_cursor_of_another_loop_is_refused(client: httpx.AsyncClient, headers: H) -> None:
    first = await read(client, headers, f"{API}/data/raw", **GOOD, fields="pv", limit=10)
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
    assert_problem_naming(response, "cursor")


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
    async def realtime_with(request_headers: dict[str, str]) -> httpx.Response:
        return await client.get(
            f"{API}/data/realtime", params={"loopId": RAW}, headers=request_headers
        )

    anonymous = await realtime_with({})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert (await realtime_with(headers["norole"])).status_code == 403
    forged = {"Authorization": headers["viewer"]["Authorization"][:-4] + "AAAA"}
    assert (await realtime_with(forged)).status_code == 401
