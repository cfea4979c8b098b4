"""InfluxQL store against the real influxd 1.x of the test harness: schema, escaping, chunked
answers, partial writes, outages; plus retry and auth behaviour that needs a scripted server."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from httpx_aiohttp import AiohttpTransport

from clpm_shared.config import InfluxSettings
from clpm_shared.timeseries import influxql_text as text
from clpm_shared.timeseries.base import Point, StoreUnavailableError, TimeSeriesError, to_ns
from clpm_shared.timeseries.influxql import (
    InfluxQLStore,
    QueryAnswer,
    SeriesBlock,
    _series_by_loop,
    go_duration,
    parse_chunked_answer,
)
from clpm_shared.timeseries.line_protocol import encode_line
from tests.harness.servers import InfluxServer, free_port

BASE = datetime(2025, 1, 10, 10, 0, 0, tzinfo=UTC)
SettingsFactory = Callable[..., InfluxSettings]


def _seconds(n: float) -> datetime:
    return BASE + timedelta(seconds=n)


@pytest.fixture
async def influxql(
    influx_server: InfluxServer, influx_database: str, make_influx_settings: SettingsFactory
) -> AsyncIterator[InfluxQLStore]:
    store = InfluxQLStore(make_influx_settings(influx_server.url, influx_database), backoff_s=0.05)
    yield store
    await store.close()


def _post_lines(server: InfluxServer, database: str, lines: list[str]) -> None:
    request = urllib.request.Request(
        f"{server.url}/write?db={database}&precision=ns", data="\n".join(lines).encode()
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


async def test_points_follow_the_seed_schema(
    influxql: InfluxQLStore, influx_server: InfluxServer, influx_database: str
) -> None:
    await influxql.write([Point("FIC100", BASE, pv=1.0, sp=2.0, op=3.0, mode="CAS")])
    fields = influx_server.query('SHOW FIELD KEYS FROM "control_loops"', influx_database)
    assert sorted(map(tuple, fields["results"][0]["series"][0]["values"])) == [
        ("OP", "float"),
        ("PV", "float"),
        ("SP", "float"),
    ]
    tags = influx_server.query('SHOW TAG KEYS FROM "control_loops"', influx_database)
    assert sorted(v[0] for v in tags["results"][0]["series"][0]["values"]) == ["Mode", "loop_id"]
    rows = influx_server.query(
        "SELECT * FROM control_loops WHERE loop_id = 'FIC100'", influx_database
    )["results"][0]["series"][0]
    assert dict(zip(rows["columns"], rows["values"][0], strict=True)) == {
        "time": to_ns(BASE),
        "Mode": "CAS",
        "OP": 3.0,
        "PV": 1.0,
        "SP": 2.0,
        "loop_id": "FIC100",
    }


HOSTILE_VALUES = [
    "x' OR 1=1",
    "' OR ''='",
    "a' OR loop_id =~ /.*/ OR loop_id='",
    'q"uote',
    "with space, comma=equals",
    "TÏC-Ω-温度",
    "x" * 3000,
]
BACKSLASH_VALUES = ["a\\' OR 1=1", "back\\slash", "x\\\\' OR ''='"]
"""Line protocol of InfluxDB 1.x keeps these backslashes literally; the encoder refuses them,
so they are written as raw lines to test the InfluxQL literal escaping."""


async def test_escaping_keeps_hostile_values_inside_tags_and_literals(
    influx_server: InfluxServer,
) -> None:
    """The escaping layers themselves (below validation) against the real parser."""
    database = influx_server.create_database("clpm_escaping")
    lines = [
        encode_line("control_loops", [("loop_id", value)], [("PV", float(i))], 1_000 + i)
        for i, value in enumerate(HOSTILE_VALUES)
    ]
    lines += [
        "control_loops,loop_id="
        + value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
        + f" PV={100.0 + i} {2_000 + i}"
        for i, value in enumerate(BACKSLASH_VALUES)
    ]
    lines.append(encode_line("control_loops", [("loop_id", "innocent")], [("PV", -1.0)], 5))
    _post_lines(influx_server, database, lines)

    shown = influx_server.query(text.show_loops("control_loops"), database)
    stored = {row[1] for row in shown["results"][0]["series"][0]["values"]}
    assert stored == {*HOSTILE_VALUES, *BACKSLASH_VALUES, "innocent"}

    expected = [(v, [1_000 + i, float(i)]) for i, v in enumerate(HOSTILE_VALUES)]
    expected += [(v, [2_000 + i, 100.0 + i]) for i, v in enumerate(BACKSLASH_VALUES)]
    for value, row in expected:
        statement = text.select_raw(text.source("control_loops"), value, 0, 10_000, ["PV"])
        answer = influx_server.query(statement, database)
        assert "error" not in answer["results"][0], (value, answer)
        assert answer["results"][0]["series"][0]["values"] == [row], value


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "end\\", "a\\b"])
async def test_line_protocol_refuses_what_it_cannot_escape(value: str) -> None:
    with pytest.raises(ValueError, match="must not contain"):
        encode_line("control_loops", [("loop_id", value)], [("PV", 1.0)], 1)
    with pytest.raises(ValueError, match="must not contain"):
        encode_line("control_loops", [(value, "ok")], [("PV", 1.0)], 1)


async def test_answers_larger_than_one_chunk_are_joined(influxql: InfluxQLStore) -> None:
    points = [Point("BIG1", _seconds(i * 0.01), pv=float(i)) for i in range(25_000)]
    assert await influxql.write(points) == 25_000
    page = await influxql.query_raw("BIG1", BASE, _seconds(1000))
    assert len(page.series) == 25_000
    assert page.series.pv[-1] == 24_999.0
    assert (page.series.t_ns[1:] > page.series.t_ns[:-1]).all()


async def test_query_raw_many_in_parallel_batches(
    influx_server: InfluxServer, influx_database: str, make_influx_settings: SettingsFactory
) -> None:
    store = InfluxQLStore(
        make_influx_settings(influx_server.url, influx_database), loops_per_query=3
    )
    try:
        loops = [f"BATCH{i:02d}" for i in range(10)]
        await store.write(
            [
                Point(loop, _seconds(s), pv=float(i))
                for i, loop in enumerate(loops)
                for s in range(i + 1)
            ]
        )
        result = await store.query_raw_many(loops, BASE, _seconds(60))
        assert {loop: len(series) for loop, series in result.items()} == {
            loop: i + 1 for i, loop in enumerate(loops)
        }
        assert all((result[loop].pv == float(i)).all() for i, loop in enumerate(loops))
    finally:
        await store.close()


async def test_messagepack_and_json_answers_read_the_same_samples(
    influx_server: InfluxServer, influx_database: str, make_influx_settings: SettingsFactory
) -> None:
    """influxd really answers MessagePack when asked (the default), and it reads as JSON does:
    times, NaN-free floats to the last bit, Modes, missing fields, counts, errors."""
    settings = make_influx_settings(influx_server.url, influx_database)
    stores = {
        kind: InfluxQLStore(settings.model_copy(update={"influxdb_answer_format": kind}))
        for kind in ("msgpack", "json")
    }
    try:
        loops = ["FMT1", "FMT.2", "FMT-3"]
        rng = np.random.default_rng(5)
        points = [
            Point(
                loop,
                _seconds(s + 0.123456789 * k),
                pv=float(rng.normal(50, 10)),
                sp=None if s % 7 == 0 else 1e-300 * s,
                op=float(rng.normal()) * 1e12,
                mode=("AUT", "MAN", "CAS")[(s // 20 + k) % 3],
            )
            for k, loop in enumerate(loops)
            for s in range(90)
        ]
        await stores["json"].write(points)
        answers = {
            kind: await store.query_raw_many(loops, BASE, _seconds(120))
            for kind, store in stores.items()
        }
        for loop in loops:
            a, b = answers["msgpack"][loop], answers["json"][loop]
            assert len(a) == 90
            assert a.t_ns.tolist() == b.t_ns.tolist()
            for column in ("pv", "sp", "op"):
                assert np.array_equal(getattr(a, column), getattr(b, column), equal_nan=True)
            assert a.mode.tolist() == b.mode.tolist()
        counts = {
            kind: await store.minute_counts(loops, BASE, _seconds(120))
            for kind, store in stores.items()
        }
        assert counts["msgpack"]["FMT1"].pv.tolist() == counts["json"]["FMT1"].pv.tolist()
        assert counts["msgpack"]["FMT1"].pv.tolist() == [60, 30]
        # the default really asks for MessagePack, and influxd 1.x really sends it
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{influx_server.url}/query",
                params={"db": influx_database},
                data={"q": "SELECT FROM WHERE"},
                headers=stores["msgpack"]._accept,
            )
        assert response.headers["content-type"].startswith("application/x-msgpack")
        with pytest.raises(TimeSeriesError, match="error parsing query"):
            await stores["msgpack"]._query(["SELECT FROM WHERE"])
    finally:
        for store in stores.values():
            await store.close()


async def test_both_http_clients_read_the_same_samples_in_many_http_chunks(
    influx_server: InfluxServer, influx_database: str, make_influx_settings: SettingsFactory
) -> None:
    """The default transport (aiohttp's parser) and httpx's own read the same answers, here
    MessagePack answers of about 90 KB that influxd sends in 2 KB HTTP chunks."""
    settings = make_influx_settings(influx_server.url, influx_database)
    stores = {
        kind: InfluxQLStore(settings.model_copy(update={"influxdb_http_client": kind}))
        for kind in ("aiohttp", "httpcore")
    }
    assert isinstance(stores["aiohttp"]._client._transport, AiohttpTransport)
    assert not isinstance(stores["httpcore"]._client._transport, AiohttpTransport)
    try:
        loops = [f"HTTP{k}" for k in range(20)]
        rng = np.random.default_rng(8)
        points = [
            Point(loop, _seconds(200 + s), pv=float(rng.normal(50, 10)), sp=50.0, op=1.0 * s)
            for loop in loops
            for s in range(100)
        ]
        await stores["httpcore"].write(points)
        answers = {
            kind: await store.query_raw_many(loops, _seconds(200), _seconds(300))
            for kind, store in stores.items()
        }
        for loop in loops:
            a, b = answers["aiohttp"][loop], answers["httpcore"][loop]
            assert len(a) == 100
            assert a.t_ns.tolist() == b.t_ns.tolist()
            assert a.pv.tolist() == b.pv.tolist()
        for store in stores.values():  # errors read the same way
            with pytest.raises(TimeSeriesError, match="error parsing query"):
                await store._query(["SELECT FROM WHERE"])
    finally:
        for store in stores.values():
            await store.close()


def test_an_answer_that_is_not_messagepack_is_an_error_not_a_crash() -> None:
    with pytest.raises(TimeSeriesError, match=r"not MessagePack|MessagePack int"):
        parse_chunked_answer(QueryAnswer(b"\x01\x02<html>", msgpack=True), 1)


async def test_samples_of_one_time_with_different_modes_page_without_loss(
    influxql: InfluxQLStore,
) -> None:
    """InfluxDB keeps one series per Mode, so one loop can hold two samples at the same time."""
    await influxql.write(
        [Point("DUP1", _seconds(s), pv=float(s), mode="AUT") for s in range(4)]
        + [Point("DUP1", _seconds(s), pv=float(10 + s), mode="MAN") for s in range(4)]
    )
    seen: list[tuple[int, float]] = []
    cursor = None
    while True:
        page = await influxql.query_raw("DUP1", BASE, _seconds(10), limit=3, cursor=cursor)
        seen.extend(zip(page.series.t_ns.tolist(), page.series.pv.tolist(), strict=True))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(
        [(to_ns(_seconds(s)), float(s)) for s in range(4)]
        + [(to_ns(_seconds(s)), float(10 + s)) for s in range(4)]
    )


async def test_a_partial_write_counts_only_accepted_points(
    influx_server: InfluxServer, make_influx_settings: SettingsFactory
) -> None:
    database = influx_server.create_database("clpm_conflict")
    # An integer PV in the same shard (field types are fixed per shard).
    _post_lines(influx_server, database, [f"control_loops,loop_id=C1 PV=1i {to_ns(BASE)}"])
    store = InfluxQLStore(make_influx_settings(influx_server.url, database))
    try:
        accepted = await store.write(
            [Point("C1", _seconds(1), pv=2.0), Point("C1", _seconds(2), sp=3.0)]
        )
        assert accepted == 1  # the float PV conflicts with the stored integer field
    finally:
        await store.close()


async def test_a_missing_database_is_reported_as_unavailable(
    influx_server: InfluxServer, make_influx_settings: SettingsFactory
) -> None:
    store = InfluxQLStore(make_influx_settings(influx_server.url, "clpm_does_not_exist"))
    try:
        with pytest.raises(StoreUnavailableError, match="database not found"):
            await store.latest("TIC1")
        with pytest.raises(StoreUnavailableError, match="database not found"):
            await store.write([Point("TIC1", BASE, pv=1.0)])
        await store.create_database()
        assert await store.write([Point("TIC1", BASE, pv=1.0)]) == 1
    finally:
        await store.close()


async def test_outage_raises_unavailable_then_recovers(
    influx_server: InfluxServer, influx_database: str, make_influx_settings: SettingsFactory
) -> None:
    store = InfluxQLStore(
        make_influx_settings(influx_server.url, influx_database, influxdb_max_retries=2),
        backoff_s=0.05,
    )
    try:
        await store.write([Point("OUT1", BASE, pv=1.0)])
        influx_server.stop()
        try:
            assert await store.ping() is False
            with pytest.raises(StoreUnavailableError) as raised:
                await store.query_raw("OUT1", BASE, _seconds(1))
            assert raised.value.retry_after_s >= 1.0
            assert "3 attempts" in str(raised.value)
            with pytest.raises(StoreUnavailableError):
                await store.write([Point("OUT1", _seconds(1), pv=2.0)])
        finally:
            influx_server.start()
        assert await store.ping() is True
        assert await store.write([Point("OUT1", _seconds(1), pv=2.0)]) == 1
        series = (await store.query_raw("OUT1", BASE, _seconds(2))).series
        assert series.pv.tolist() == [1.0, 2.0]
    finally:
        await store.close()


# -- Behaviour a real influxd 1.x cannot show: a 2.x/3.x server's token check and
# -- transient 503 answers. These use httpx.MockTransport to script the server's answers.


class ScriptedServer:
    def __init__(self, statuses: list[int], headers: dict[str, str] | None = None) -> None:
        self.statuses = statuses
        self.headers = headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if self.statuses else 204
        return httpx.Response(status, headers=self.headers, text="" if status == 204 else "busy")


def _scripted_store(server: ScriptedServer, **overrides: Any) -> InfluxQLStore:
    settings = InfluxSettings(
        influxdb_url="http://influx.example:8086",
        influxdb_bucket="plant",
        influxdb_token="tok-123",
        influxdb_max_retries=3,
        **overrides,
    )
    return InfluxQLStore(settings, backoff_s=0.01, transport=httpx.MockTransport(server))


async def test_v1_compatibility_requests_carry_the_token_and_bucket() -> None:
    server = ScriptedServer([204])
    store = _scripted_store(server, influxdb_retention_policy="autogen")
    try:
        assert await store.write([Point("TIC1", BASE, pv=1.0, mode="AUT")]) == 1
    finally:
        await store.close()
    [request] = server.requests
    assert request.headers["Authorization"] == "Token tok-123"
    assert request.headers["Accept-Encoding"] == "gzip"
    assert request.url.path == "/write"
    assert dict(request.url.params) == {"db": "plant", "rp": "autogen", "precision": "ns"}
    assert (
        request.content
        == b"control_loops,Mode=AUT,loop_id=TIC1 PV=1.0 " + str(to_ns(BASE)).encode()
    )


async def test_username_means_basic_auth_of_influxdb_1x() -> None:
    server = ScriptedServer([204])
    store = _scripted_store(server, influxdb_username="clpm", influxdb_password="pw")
    try:
        await store.write([Point("TIC1", BASE, pv=1.0)])
    finally:
        await store.close()
    assert server.requests[0].headers["Authorization"].startswith("Basic ")


async def test_transient_errors_are_retried_with_backoff() -> None:
    server = ScriptedServer([503, 502])
    store = _scripted_store(server)
    try:
        assert await store.write([Point("TIC1", BASE, pv=1.0)]) == 1
    finally:
        await store.close()
    assert len(server.requests) == 3


async def test_exhausted_retries_raise_unavailable_with_retry_after() -> None:
    server = ScriptedServer([503] * 10, headers={"Retry-After": "0"})
    store = _scripted_store(server)
    try:
        with pytest.raises(StoreUnavailableError) as raised:
            await store.write([Point("TIC1", BASE, pv=1.0)])
    finally:
        await store.close()
    assert len(server.requests) == 4
    assert raised.value.retry_after_s >= 1.0
    assert "HTTP 503" in str(raised.value)


async def test_refused_credentials_are_unavailable_not_retried() -> None:
    server = ScriptedServer([401])
    store = _scripted_store(server)
    try:
        with pytest.raises(StoreUnavailableError, match="credentials"):
            await store.write([Point("TIC1", BASE, pv=1.0)])
    finally:
        await store.close()
    assert len(server.requests) == 1


async def test_a_rejected_statement_is_an_error_not_an_empty_answer(
    influx_server: InfluxServer, influx_database: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{influx_server.url}/query",
            params={"db": influx_database, "chunked": "true"},
            data={"q": "SELECT FROM WHERE"},
        )
    with pytest.raises(TimeSeriesError, match="error parsing query"):
        parse_chunked_answer(response.content, 1)


async def test_an_answer_that_is_not_json_is_an_error_not_a_crash() -> None:
    # Mock transport: a real influxd never answers a query with HTML; a proxy in front can.
    def proxy_page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html><body>Gateway login</body></html>")

    settings = InfluxSettings(influxdb_url="http://influx.example:8086", influxdb_bucket="plant")
    store = InfluxQLStore(settings, backoff_s=0.01, transport=httpx.MockTransport(proxy_page))
    try:
        with pytest.raises(TimeSeriesError, match="not JSON"):
            await store.query_raw_many(["TIC1"], BASE, BASE + timedelta(minutes=1))
    finally:
        await store.close()


class RowLimitedInfluxServer(InfluxServer):
    """influxd whose ``max-row-limit`` cuts answers that are not chunked at 40 rows."""

    def write_config(self) -> None:
        super().write_config()
        config = self.workdir / "influxdb.conf"
        config.write_text(config.read_text().replace("max-row-limit = 0", "max-row-limit = 40"))


@pytest.mark.parametrize("answer_format", ["msgpack", "json"])
async def test_query_raw_many_reads_everything_past_the_servers_row_limit(
    tmp_path: Path, answer_format: str
) -> None:
    server = RowLimitedInfluxServer("influxd", free_port(), tmp_path, rpc_port=free_port())
    server.write_config()
    server.start()
    try:
        server.create_database("limited")
        settings = InfluxSettings(
            influxdb_url=server.url,
            influxdb_bucket="limited",
            influxdb_answer_format=answer_format,
        )
        store = InfluxQLStore(settings)
        try:
            loops = ["FIC1", "FIC2", "FIC3"]
            await store.write(
                [
                    Point(loop, _seconds(i), pv=float(i), sp=1.0, op=2.0)
                    for loop in loops
                    for i in range(90)
                ]
            )
            start, end = _seconds(0), _seconds(90)
            # the server really truncates the cheaper answer that is not chunked
            unchunked = server.query(
                text.select_raw_many('"control_loops"', loops, to_ns(start), to_ns(end)),
                "limited",
            )
            assert unchunked["results"][0]["series"][0].get("partial") is True
            assert sum(len(s["values"]) for s in unchunked["results"][0]["series"]) < 270

            raw = await store.query_raw_many(loops, start, end)
        finally:
            await store.close()
    finally:
        server.stop()
    for loop in loops:
        assert raw[loop].pv.tolist() == [float(i) for i in range(90)]


def test_answer_conversion_keeps_each_loop_and_isolates_a_value_of_the_wrong_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    columns = ["time", "PV", "SP", "OP", "Mode"]
    blocks = [
        SeriesBlock(columns, {"loop_id": "A"}, [[3, 1.0, 2.0, 3.0, "MAN"]]),
        SeriesBlock(
            columns, {"loop_id": "B"}, [[1, 5.0, None, 7.0, "AUT"], [2, 6.0, 6.5, 8.0, None]]
        ),
        SeriesBlock(columns, {"loop_id": "A"}, [[1, 0.5, 2.0, 3.0, "AUT"]]),
    ]
    converted = _series_by_loop(blocks)
    assert converted["A"].t_ns.tolist() == [1, 3]  # two Mode series of a loop merged by time
    assert converted["A"].mode.tolist() == ["AUT", "MAN"]
    assert np.isnan(converted["B"].sp[0])
    assert converted["B"].sp[1] == 6.5
    assert converted["B"].mode.tolist() == ["AUT", None]

    blocks.append(SeriesBlock(columns, {"loop_id": "C"}, [[1, "n/a", 1.0, 2.0, "AUT"]]))
    with caplog.at_level(logging.WARNING):
        converted = _series_by_loop(blocks)
    assert np.isnan(converted["C"].pv[0])
    assert converted["C"].op[0] == 2.0
    assert converted["B"].pv.tolist() == [5.0, 6.0]
    [warning] = [r for r in caplog.records if "wrong type" in r.getMessage()]
    assert warning.loop_id == "C"  # type: ignore[attr-defined]


async def test_batched_reads_match_loop_ids_with_punctuation_literally(
    influx_server: InfluxServer, make_influx_settings: SettingsFactory
) -> None:
    database = influx_server.create_database("clpm_punctuation")
    store = InfluxQLStore(make_influx_settings(influx_server.url, database))
    wanted = ["FIC-1.2", "U1/TIC:7", "A_b"]
    # near misses: each would match if ``.``, ``/`` or ``:`` were regex syntax or unanchored
    others = ["FIC-1x2", "U1xTIC:7", "FIC-1.20", "xA_b"]
    try:
        await store.write(
            [
                Point(loop, _seconds(i), pv=float(n))
                for n, loop in enumerate(wanted + others)
                for i in range(3)
            ]
        )
        raw = await store.query_raw_many(wanted, _seconds(0), _seconds(10))
    finally:
        await store.close()
    assert set(raw) == set(wanted)
    for n, loop in enumerate(wanted):
        assert raw[loop].pv.tolist() == [float(n)] * 3
    statement = text.select_raw_many(
        '"control_loops"', wanted, to_ns(_seconds(0)), to_ns(_seconds(10))
    )
    answer = influx_server.query(statement, database)
    assert sorted(s["tags"]["loop_id"] for s in answer["results"][0]["series"]) == sorted(wanted)


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        ("0s", timedelta(0)),
        ("72h0m0s", timedelta(hours=72)),
        ("1h30m0s", timedelta(minutes=90)),
        ("2m30.5s", timedelta(seconds=150.5)),
        ("500ms", timedelta(milliseconds=500)),
    ],
)
def test_durations_are_read_as_influxd_prints_them(printed: str, expected: timedelta) -> None:
    assert go_duration(printed) == expected


@pytest.mark.parametrize("printed", ["", "72", "3d", "1h 0m", "h"])
def test_a_duration_influxd_would_not_print_is_an_error(printed: str) -> None:
    with pytest.raises(TimeSeriesError, match="not a duration"):
        go_duration(printed)


async def test_the_retention_period_is_the_one_of_the_policy_the_store_reads(
    influx_server: InfluxServer, make_influx_settings: SettingsFactory
) -> None:
    # a database of its own: the test changes its default policy
    database = influx_server.create_database("clpm_retention_periods")
    influx_server.query(
        f'CREATE RETENTION POLICY "six_hours" ON "{database}" DURATION 6h REPLICATION 1'
    )
    stores = {
        name: InfluxQLStore(
            make_influx_settings(influx_server.url, database, influxdb_retention_policy=policy)
        )
        for name, policy in (("default", None), ("six_hours", "six_hours"), ("gone", "gone"))
    }
    try:
        assert await stores["default"].retention_period() is None  # autogen keeps everything
        assert await stores["six_hours"].retention_period() == timedelta(hours=6)
        with pytest.raises(TimeSeriesError, match="no retention policy gone"):
            await stores["gone"].retention_period()
        # the default policy changes: the answer is kept for a while, not asked at every call
        influx_server.query(f'ALTER RETENTION POLICY "six_hours" ON "{database}" DEFAULT')
        assert await stores["default"].retention_period() is None
        fresh = InfluxQLStore(make_influx_settings(influx_server.url, database))
        try:
            assert await fresh.retention_period() == timedelta(hours=6)
        finally:
            await fresh.close()
    finally:
        for store in stores.values():
            await store.close()
        influx_server.drop_database(database)
