"""Flux store (InfluxDB 2 native): query text, annotated-CSV parsing and the client round trip.

No InfluxDB 2 server is available here (the harness has influxd 1.x, which has no /api/v2 and
no Flux). So the answers below are recorded responses written by hand in the annotated CSV
format of the InfluxDB 2 documentation, and the round-trip tests run influxdb-client's real
async client against a small scripted HTTP server on loopback that replays them and records
what the client sent. Flux semantics themselves (pivot, group, aggregateWindow) are therefore
not verified here; the InfluxQL backend's tests against the real influxd cover the protocol.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from aiohttp import web

from clpm_shared.config import InfluxSettings
from clpm_shared.timeseries import flux_text
from clpm_shared.timeseries.base import (
    InvalidQueryError,
    Point,
    StoreUnavailableError,
    TimeSeriesError,
    to_ns,
)
from clpm_shared.timeseries.flux import FluxStore
from clpm_shared.timeseries.flux_csv import parse_annotated_csv
from tests.harness.servers import free_port

BASE = datetime(2025, 1, 10, 10, 0, 0, tzinfo=UTC)


def _seconds(n: float) -> datetime:
    return BASE + timedelta(seconds=n)


def _csv(text: str) -> str:
    """Recorded answers use CRLF line ends, as InfluxDB 2 sends them."""
    return "\r\n".join(line.strip() for line in text.strip().splitlines()) + "\r\n"


RAW_ANSWER = _csv(
    """
#group,false,false,false,false,false,false,false
#datatype,string,long,dateTime:RFC3339,double,double,double,string
#default,_result,,,,,,
,result,table,_time,OP,PV,SP,Mode
,,0,2025-01-10T10:00:00Z,3,1,2,AUT
,,0,2025-01-10T10:00:01Z,,1.5,2,MAN
,,0,2025-01-10T10:00:02.5Z,3.3,1.2,2,
"""
)

RAW_MANY_ANSWER = _csv(
    """
#group,false,false,false,false,false,false,true
#datatype,string,long,dateTime:RFC3339,double,double,double,string
#default,_result,,,,,,
,result,table,_time,OP,PV,SP,loop_id
,,0,2025-01-10T10:00:00Z,3,1,2,TIC1
,,0,2025-01-10T10:00:01.000000001Z,3,1.1,2,TIC1
,,1,2025-01-10T10:00:00Z,7,5,6,TIC2

#group,false,false,false,false,false,false,false,true
#datatype,string,long,dateTime:RFC3339,double,double,double,string,string
#default,_result,,,,,,,
,result,table,_time,OP,PV,SP,Mode,loop_id
,,2,2025-01-10T10:00:05Z,8,9,10,CAS,TIC3
"""
)

LATEST_ANSWER = _csv(
    """
#group,false,false,true,true,false,false,true,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string
#default,_result,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,Mode,loop_id
,,0,1970-01-01T00:00:00Z,2262-01-01T00:00:00Z,2025-01-10T10:00:10Z,8,OP,control_loops,MAN,TIC1
,,1,1970-01-01T00:00:00Z,2262-01-01T00:00:00Z,2025-01-10T10:00:10Z,2,PV,control_loops,MAN,TIC1
,,2,1970-01-01T00:00:00Z,2262-01-01T00:00:00Z,2025-01-10T10:00:00Z,5,SP,control_loops,AUT,TIC1
,,3,1970-01-01T00:00:00Z,2262-01-01T00:00:00Z,2025-01-10T10:00:00Z,7,OP,control_loops,AUT,TIC1
,,4,1970-01-01T00:00:00Z,2262-01-01T00:00:00Z,2025-01-10T10:00:00Z,1,PV,control_loops,AUT,TIC1

#group,false,false,true,true,false,false,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string
#default,_result,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,loop_id
,,5,1970-01-01T00:00:00Z,2262-01-01T00:00:00Z,2025-01-10T10:00:20Z,3,PV,control_loops,TIC1
"""
)

TIME_RANGE_ANSWER = _csv(
    """
#group,false,false,false
#datatype,string,long,dateTime:RFC3339
#default,first,,
,result,table,_time
,,0,2025-01-10T10:01:40Z

#group,false,false,false
#datatype,string,long,dateTime:RFC3339
#default,last,,
,result,table,_time
,,0,2025-01-10T10:03:17.5Z
"""
)

DISCOVER_ANSWER = _csv(
    """
#group,false,false,false
#datatype,string,long,string
#default,_result,,
,result,table,_value
,,0,TIC1
,,0,FIC100
,,0,bad id with spaces
"""
)

AGGREGATE_ANSWER = _csv(
    """
#group,false,false,false,false,false,false,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string
#default,mean,,,,,,
,result,table,_start,_stop,_time,_value,_field
,,0,2025-01-10T10:00:30Z,2025-01-10T10:02:30Z,2025-01-10T10:00:30Z,50.5,PV
,,0,2025-01-10T10:00:30Z,2025-01-10T10:02:30Z,2025-01-10T10:01:00Z,51.5,PV
,,0,2025-01-10T10:00:30Z,2025-01-10T10:02:30Z,2025-01-10T10:02:00Z,52.5,PV
,,1,2025-01-10T10:00:30Z,2025-01-10T10:02:30Z,2025-01-10T10:01:00Z,49,SP

#group,false,false,false,false,false,false,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,long,string
#default,count,,,,,,
,result,table,_start,_stop,_time,_value,_field
,,0,2025-01-10T10:00:30Z,2025-01-10T10:02:30Z,2025-01-10T10:00:30Z,30,PV
,,0,2025-01-10T10:00:30Z,2025-01-10T10:02:30Z,2025-01-10T10:01:00Z,60,PV
,,0,2025-01-10T10:00:30Z,2025-01-10T10:02:30Z,2025-01-10T10:02:00Z,30,PV

#group,false,false,false,false,false,false,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string
#default,std,,,,,,
,result,table,_start,_stop,_time,_value,_field
,,0,2025-01-10T10:00:30Z,2025-01-10T10:02:30Z,2025-01-10T10:01:00Z,0.25,PV
"""
)

ERROR_ANSWER = _csv(
    """
#datatype,string,string
#group,true,true
#default,,
,error,reference
,"type error 3:10-3:30: undefined identifier loop",897
"""
)


# ---------------------------------------------------------------- query text


HOSTILE = ['a" or r._value > 0 or "', "${token}", "back\\slash", "new\nline", "TÏC-Ω", "x" * 3000]


def _unescape_flux_string(literal: str) -> str:
    """Flux string literal to its value (spec: \\\\ \\" \\$ \\n \\r \\t escapes)."""
    assert literal.startswith('"')
    assert literal.endswith('"')
    body, out, i = literal[1:-1], [], 0
    escapes = {"\\": "\\", '"': '"', "$": "$", "n": "\n", "r": "\r", "t": "\t"}
    while i < len(body):
        char = body[i]
        if char == "\\":
            out.append(escapes[body[i + 1]])
            i += 2
            continue
        assert char != '"', "unescaped quote ends the literal early"
        assert char != "$", "unescaped $ could start an interpolation"
        out.append(char)
        i += 1
    return "".join(out)


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[:20])
def test_flux_strings_keep_hostile_values_inside_the_literal(value: str) -> None:
    assert _unescape_flux_string(flux_text.flux_string(value)) == value


def test_flux_times_are_rfc3339_with_nanoseconds() -> None:
    assert flux_text.flux_time(to_ns(BASE) + 5) == "2025-01-10T10:00:00.000000005Z"
    assert flux_text.flux_time(0) == "1970-01-01T00:00:00.000000000Z"


def test_raw_query_text_of_a_page() -> None:
    query = flux_text.raw_query(
        "plant", "control_loops", "TIC1", to_ns(BASE), to_ns(_seconds(60)), ["PV"], 11, 2
    )
    assert query == (
        'from(bucket: "plant")\n'
        "  |> range(start: 2025-01-10T10:00:00.000000000Z, stop: 2025-01-10T10:01:00.000000000Z)\n"
        '  |> filter(fn: (r) => r._measurement == "control_loops" and (r.loop_id == "TIC1"))\n'
        '  |> filter(fn: (r) => r._field == "PV")\n'
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        '  |> keep(columns: ["_time", "PV", "SP", "OP", "Mode"])\n'
        "  |> group()\n"
        '  |> sort(columns: ["_time"])\n'
        "  |> limit(n: 11, offset: 2)"
    )


# ---------------------------------------------------------------- parsing


def test_annotated_csv_blocks_and_tables_are_told_apart() -> None:
    tables = parse_annotated_csv(RAW_MANY_ANSWER)
    assert [(t.table, len(t), t.value("loop_id")) for t in tables] == [
        ("0", 2, "TIC1"),
        ("1", 1, "TIC2"),
        ("2", 1, "TIC3"),
    ]
    assert tables[0].times_ns().tolist() == [to_ns(BASE), to_ns(_seconds(1)) + 1]
    assert tables[2].raw("Mode") == ["CAS"]
    assert tables[0].raw("Mode") == [None, None]


def test_empty_cells_are_null_or_the_column_default() -> None:
    [table] = parse_annotated_csv(RAW_ANSWER)
    assert table.result == "_result"
    assert np.isnan(table.floats("OP")[1])
    assert table.raw("Mode") == ["AUT", "MAN", None]


def test_an_in_band_error_raises() -> None:
    with pytest.raises(TimeSeriesError, match="undefined identifier loop"):
        parse_annotated_csv(ERROR_ANSWER)


def test_an_empty_answer_has_no_tables() -> None:
    assert parse_annotated_csv("\r\n") == []


# ---------------------------------------------------------------- client round trip


@dataclass
class RecordedInflux2:
    """Replays recorded answers for /api/v2/query and accepts /api/v2/write."""

    url: str = ""
    answers: list[tuple[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    writes: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def answer(self, marker: str, csv_text: str) -> None:
        """Answer queries containing ``marker`` with ``csv_text``."""
        self.answers.append((marker, csv_text))

    async def query(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        if self.statuses:
            return web.json_response({"message": "scripted"}, status=self.statuses.pop(0))
        body = json.loads(await request.read())
        self.queries.append(body["query"])
        for marker, csv_text in self.answers:
            if marker in body["query"]:
                return web.Response(text=csv_text, content_type="text/csv")
        return web.Response(text="\r\n", content_type="text/csv")

    async def write(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        if self.statuses:
            return web.json_response({"message": "scripted"}, status=self.statuses.pop(0))
        body = await request.read()
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        self.writes.append((dict(request.query), body))
        return web.Response(status=204)

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(status=204)


@pytest.fixture
async def influx2() -> AsyncIterator[RecordedInflux2]:
    recorded = RecordedInflux2()
    app = web.Application()
    app.router.add_post("/api/v2/query", recorded.query)
    app.router.add_post("/api/v2/write", recorded.write)
    app.router.add_get("/ping", recorded.ping)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    recorded.url = f"http://127.0.0.1:{port}"
    yield recorded
    await runner.cleanup()


@pytest.fixture
async def flux(influx2: RecordedInflux2) -> AsyncIterator[FluxStore]:
    settings = InfluxSettings(
        timeseries_backend="flux",  # type: ignore[arg-type]
        influxdb_url=influx2.url,
        influxdb_token="tok-123",  # type: ignore[arg-type]
        influxdb_org="clpm",
        influxdb_bucket="plant",
        influxdb_max_retries=2,
    )
    store = FluxStore(settings, backoff_s=0.01)
    yield store
    await store.close()


async def test_write_sends_line_protocol_with_token_bucket_and_ns_precision(
    flux: FluxStore, influx2: RecordedInflux2
) -> None:
    written = await flux.write(
        [Point("TIC1", BASE, pv=1.5, sp=2.0, mode="AUT"), Point("TIC1", _seconds(1), op=3.0)]
    )
    assert written == 2
    [(params, body)] = influx2.writes
    assert params == {"org": "clpm", "bucket": "plant", "precision": "ns"}
    assert body.decode().splitlines() == [
        f"control_loops,Mode=AUT,loop_id=TIC1 PV=1.5,SP=2.0 {to_ns(BASE)}",
        f"control_loops,loop_id=TIC1 OP=3.0 {to_ns(_seconds(1))}",
    ]
    assert influx2.headers[0]["Authorization"] == "Token tok-123"


async def test_query_raw_parses_pivoted_rows(flux: FluxStore, influx2: RecordedInflux2) -> None:
    influx2.answer("pivot", RAW_ANSWER)
    page = await flux.query_raw("TIC1", BASE, _seconds(60), limit=5)
    series = page.series
    assert page.next_cursor is None
    assert series.t_ns.tolist() == [to_ns(BASE), to_ns(_seconds(1)), to_ns(_seconds(2.5))]
    assert series.pv.tolist() == [1.0, 1.5, 1.2]
    assert np.isnan(series.op[1])
    assert series.mode.tolist() == ["AUT", "MAN", None]
    [query] = influx2.queries
    assert 'r.loop_id == "TIC1"' in query
    assert "limit(n: 6, offset: 0)" in query


async def test_query_raw_pages_with_a_cursor(flux: FluxStore, influx2: RecordedInflux2) -> None:
    influx2.answer("pivot", RAW_ANSWER)
    page = await flux.query_raw("TIC1", BASE, _seconds(60), limit=2)
    assert len(page.series) == 2
    assert page.next_cursor is not None
    await flux.query_raw("TIC1", BASE, _seconds(60), limit=2, cursor=page.next_cursor)
    assert "range(start: 2025-01-10T10:00:01.000000000Z" in influx2.queries[1]
    assert "limit(n: 3, offset: 1)" in influx2.queries[1]


async def test_query_raw_many_splits_tables_by_loop(
    flux: FluxStore, influx2: RecordedInflux2
) -> None:
    influx2.answer('group(columns: ["loop_id"])', RAW_MANY_ANSWER)
    result = await flux.query_raw_many(["TIC1", "TIC2", "TIC3", "TIC4"], BASE, _seconds(60))
    assert {loop: len(series) for loop, series in result.items()} == {
        "TIC1": 2,
        "TIC2": 1,
        "TIC3": 1,
        "TIC4": 0,
    }
    assert result["TIC2"].op.tolist() == [7.0]
    assert result["TIC3"].mode.tolist() == ["CAS"]
    assert (
        'r.loop_id == "TIC1" or r.loop_id == "TIC2" or r.loop_id == "TIC3" or '
        'r.loop_id == "TIC4"' in influx2.queries[0]
    )


async def test_latest_takes_each_field_from_its_newest_series(
    flux: FluxStore, influx2: RecordedInflux2
) -> None:
    influx2.answer("last()", LATEST_ANSWER)
    latest = await flux.latest("TIC1")
    assert latest is not None
    got = {name: (v.value, v.time) for name, v in latest.values.items()}
    assert got == {
        "PV": (3.0, _seconds(20)),
        "SP": (5.0, BASE),
        "OP": (8.0, _seconds(10)),
        "Mode": ("MAN", _seconds(10)),
    }


async def test_latest_without_data_is_none(flux: FluxStore) -> None:
    assert await flux.latest("TIC9") is None


async def test_time_range_discovery_and_aggregate(
    flux: FluxStore, influx2: RecordedInflux2
) -> None:
    influx2.answer('min(column: "_time")', TIME_RANGE_ANSWER)
    influx2.answer("schema.tagValues", DISCOVER_ANSWER)
    influx2.answer("aggregateWindow", AGGREGATE_ANSWER)
    span = await flux.time_range("TIC1")
    assert span is not None
    assert (span.start, span.end) == (_seconds(100), _seconds(197.5))
    assert await flux.discover_loops() == ["FIC100", "TIC1"]

    result = await flux.aggregate("TIC1", _seconds(30), _seconds(150), 60)
    minute = 60_000_000_000
    assert result.bucket_ns.tolist() == [
        to_ns(BASE),
        to_ns(BASE) + minute,
        to_ns(BASE) + 2 * minute,
    ]
    assert result.stats["pv_mean"].tolist() == [50.5, 51.5, 52.5]
    assert result.stats["pv_count"].tolist() == [30.0, 60.0, 30.0]
    np.testing.assert_array_equal(result.stats["sp_mean"], [np.nan, 49.0, np.nan])
    np.testing.assert_array_equal(result.stats["pv_std"], [np.nan, 0.25, np.nan])
    assert result.stats["op_count"].tolist() == [0.0, 0.0, 0.0]
    aggregate_query = influx2.queries[-1]
    for function in ("mean", "min", "max", "count", "first", "last", "stddev"):
        assert f"fn: {function}," in aggregate_query


@pytest.mark.parametrize("hostile", ['TIC1" or true or "', "${x}", "a\nb", ""])
async def test_hostile_loop_ids_never_reach_the_server(
    flux: FluxStore, influx2: RecordedInflux2, hostile: str
) -> None:
    for call in (
        lambda: flux.query_raw(hostile, BASE, _seconds(1)),
        lambda: flux.query_raw_many([hostile], BASE, _seconds(1)),
        lambda: flux.latest(hostile),
        lambda: flux.time_range(hostile),
        lambda: flux.aggregate(hostile, BASE, _seconds(60), 10),
    ):
        with pytest.raises(InvalidQueryError):
            await call()
    assert await flux.write([Point(hostile, BASE, pv=1.0)]) == 0
    assert influx2.queries == []
    assert influx2.writes == []


async def test_transient_errors_are_retried(flux: FluxStore, influx2: RecordedInflux2) -> None:
    influx2.statuses = [503, 502]
    influx2.answer("pivot", RAW_ANSWER)
    page = await flux.query_raw("TIC1", BASE, _seconds(60))
    assert len(page.series) == 3


async def test_persistent_errors_make_the_store_unavailable(
    flux: FluxStore, influx2: RecordedInflux2
) -> None:
    influx2.statuses = [503] * 5
    with pytest.raises(StoreUnavailableError, match="3 attempts") as raised:
        await flux.query_raw("TIC1", BASE, _seconds(60))
    assert raised.value.retry_after_s >= 1.0


async def test_refused_credentials_are_reported_at_once(
    flux: FluxStore, influx2: RecordedInflux2
) -> None:
    influx2.statuses = [401, 401, 401]
    with pytest.raises(StoreUnavailableError, match="credentials"):
        await flux.write([Point("TIC1", BASE, pv=1.0)])
    assert len(influx2.statuses) == 2


async def test_an_unreachable_server_is_unavailable(influx2: RecordedInflux2) -> None:
    settings = InfluxSettings(
        timeseries_backend="flux",  # type: ignore[arg-type]
        influxdb_url=f"http://127.0.0.1:{free_port()}",
        influxdb_max_retries=1,
    )
    store = FluxStore(settings, backoff_s=0.01)
    try:
        assert await store.ping() is False
        with pytest.raises(StoreUnavailableError):
            await store.latest("TIC1")
    finally:
        await store.close()
