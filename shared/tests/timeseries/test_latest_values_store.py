"""The latest-values table in Redis: kept at every write, read with one MGET, influxd for the rest.

Real influxd and Redis of the test harness (a private Redis where a test stops it). Samples are
a minute old: a key is only created by a sample newer than LATEST_VALUES_TTL_S.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from clpm_shared.config import CacheBackend, CacheSettings, InfluxSettings
from clpm_shared.timeseries import create_store
from clpm_shared.timeseries.base import LatestValue, Point, RawSeries, to_ns
from clpm_shared.timeseries.influxql import InfluxQLStore
from clpm_shared.timeseries.latest_values import LatestValuesStore
from tests.harness.servers import InfluxServer, RedisServer, free_port

from .conftest import influx_settings

LoopFactory = Callable[[str], str]
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
TTL_S = 3600.0
"""Long enough that NOW (taken when the module is collected) is still within it when a test of
a long suite runs; the old samples below are hours older."""


def _at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def settings(influx_server: InfluxServer, influx_database: str) -> InfluxSettings:
    return influx_settings(influx_server.url, influx_database)


def cache_settings(redis_url: str) -> CacheSettings:
    return CacheSettings(redis_url=redis_url, latest_values_ttl_s=TTL_S)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def cached(
    settings: InfluxSettings, redis_server: RedisServer
) -> AsyncIterator[LatestValuesStore]:
    store = LatestValuesStore(settings, cache_settings(redis_server.url))
    yield store
    await store.close()


@pytest.fixture(scope="module")
async def plain(settings: InfluxSettings) -> AsyncIterator[InfluxQLStore]:
    """The same database without the table: writes that bypass it, reads straight from influxd."""
    store = InfluxQLStore(settings)
    yield store
    await store.close()


async def stored(store: LatestValuesStore, loop_id: str) -> list[str] | None:
    return (await store.cached([loop_id]) or {}).get(loop_id)


async def test_latest_many_answers_from_redis_what_influxd_answers(
    cached: LatestValuesStore, plain: InfluxQLStore, unique_loop: LoopFactory
) -> None:
    points, columns = unique_loop("points"), unique_loop("columns")
    await cached.write(
        [
            Point(points, _at(0), pv=1.5, sp=2.0, op=3.0, mode="AUT"),
            Point(points, _at(1), pv=1.25, op=3.5, mode="MAN"),
            Point(points, _at(2), sp=2.5),
        ]
    )
    t_ns = np.array([to_ns(_at(k)) for k in range(4)], dtype=np.int64)
    await cached.write_series(
        [
            RawSeries(
                columns,
                t_ns,
                np.array([0.1, 0.2, 0.3, np.nan]),
                np.array([5.0, np.nan, np.nan, 6.0]),
                np.array([7.0, 8.0, 9.0, np.nan]),
                np.array(["AUT", "CAS", "bad mode!", None], dtype=object),
            )
        ]
    )
    for loop_id in (points, columns):
        assert await stored(cached, loop_id) is not None, loop_id
    from_redis = await cached.latest_many([points, columns])
    from_influxd = await plain.latest_many([points, columns])
    assert from_redis == from_influxd
    assert dict(from_redis[columns].values) == {
        "PV": LatestValue(0.3, _at(2)),
        "SP": LatestValue(6.0, _at(3)),
        "OP": LatestValue(9.0, _at(2)),
        "Mode": LatestValue("CAS", _at(1)),
    }
    # Redis is read, not influxd: a sample that bypasses the table is not seen
    await plain.write([Point(points, _at(5), pv=99.0)])
    assert (await cached.latest_many([points]))[points].values["PV"] == LatestValue(1.25, _at(1))


async def test_a_newer_sample_wins_and_a_late_older_one_never_overwrites_it(
    cached: LatestValuesStore, unique_loop: LoopFactory
) -> None:
    loop = unique_loop("late")
    await cached.write([Point(loop, _at(10), pv=2.0, sp=20.0, op=30.0, mode="AUT")])
    await cached.write([Point(loop, _at(5), pv=1.0, sp=10.0, op=15.0, mode="MAN")])
    point = (await cached.latest_many([loop]))[loop]
    assert dict(point.values) == {
        "PV": LatestValue(2.0, _at(10)),
        "SP": LatestValue(20.0, _at(10)),
        "OP": LatestValue(30.0, _at(10)),
        "Mode": LatestValue("AUT", _at(10)),
    }
    await cached.write([Point(loop, _at(11), pv=3.0, sp=21.0, op=31.0, mode="CAS")])
    newer = await cached.latest(loop)
    assert newer is not None
    assert newer.values["PV"] == LatestValue(3.0, _at(11))
    assert newer.values["Mode"] == LatestValue("CAS", _at(11))


async def test_a_field_missing_from_a_sample_keeps_its_value_and_time(
    cached: LatestValuesStore, plain: InfluxQLStore, unique_loop: LoopFactory
) -> None:
    loop = unique_loop("partial")
    await cached.write([Point(loop, _at(0), pv=1.0, sp=2.0, op=3.0, mode="MAN")])
    await cached.write([Point(loop, _at(4), pv=4.0)])
    await cached.write([Point(loop, _at(2), pv=0.5, op=3.5)])  # late, but newer OP than the key's
    point = (await cached.latest_many([loop]))[loop]
    assert dict(point.values) == {
        "PV": LatestValue(4.0, _at(4)),
        "SP": LatestValue(2.0, _at(0)),
        "OP": LatestValue(3.5, _at(2)),
        "Mode": LatestValue("MAN", _at(0)),
    }
    assert point == (await plain.latest_many([loop]))[loop]
    assert await cached.latest(loop, ["SP", "Mode"]) == await plain.latest(loop, ["SP", "Mode"])


async def test_loops_not_in_redis_are_read_from_influxd(
    cached: LatestValuesStore, plain: InfluxQLStore, unique_loop: LoopFactory
) -> None:
    kept, elsewhere, old, empty = (unique_loop(x) for x in ("kept", "elsewhere", "old", "empty"))
    await cached.write([Point(kept, _at(0), pv=1.0, sp=1.0, op=1.0, mode="AUT")])
    await plain.write([Point(elsewhere, _at(0), pv=2.0, sp=2.0, op=2.0, mode="MAN")])
    # history older than the TTL (an import) creates no key: a live writer may not keep the table
    await cached.write([Point(old, NOW - timedelta(days=3), pv=3.0, op=3.0)])
    assert await stored(cached, elsewhere) is None
    assert await stored(cached, old) is None
    answer = await cached.latest_many([empty, old, kept, elsewhere])
    assert list(answer) == [old, kept, elsewhere]
    assert answer == await plain.latest_many([empty, old, kept, elsewhere])
    assert answer[old].values["SP"] == LatestValue(None, None)
    assert await cached.latest(elsewhere) == await plain.latest(elsewhere)
    assert await cached.latest(empty) is None


async def test_a_field_a_key_does_not_know_is_read_from_influxd_once(
    cached: LatestValuesStore, plain: InfluxQLStore, unique_loop: LoopFactory
) -> None:
    loop = unique_loop("unknown-field")
    await plain.write([Point(loop, _at(0), pv=1.0, sp=7.0, mode="CAS")])  # before the key
    await cached.write([Point(loop, _at(3), pv=2.0)])
    assert (await stored(cached, loop) or [])[2:] == ["", "", "", "", "", ""]
    expected = {
        "PV": LatestValue(2.0, _at(3)),
        "SP": LatestValue(7.0, _at(0)),
        "OP": LatestValue(None, None),
        "Mode": LatestValue("CAS", _at(0)),
    }
    assert dict((await cached.latest_many([loop]))[loop].values) == expected
    # influxd's answer is kept: its values, and that the loop has no OP
    parts = await stored(cached, loop)
    assert parts is not None
    assert parts[2:] == [f"{to_ns(_at(0)):019d}", "7.0", "-", "", f"{to_ns(_at(0)):019d}", "CAS"]
    assert dict((await cached.latest_many([loop]))[loop].values) == expected
    assert await cached.latest(loop) == await plain.latest(loop)


async def test_every_write_sets_the_keys_lifetime(
    cached: LatestValuesStore, unique_loop: LoopFactory
) -> None:
    loop = unique_loop("ttl")
    await cached.write([Point(loop, _at(0), pv=1.0)])
    await cached.redis.pexpire(cached.key(loop), 5000)
    await cached.write([Point(loop, _at(1), pv=2.0)])
    remaining_ms = await cached.redis.pttl(cached.key(loop))
    assert TTL_S * 1000 - 5000 < remaining_ms <= TTL_S * 1000


async def test_a_partly_refused_write_forgets_its_loops(
    influx_server: InfluxServer, redis_server: RedisServer, unique_loop: LoopFactory
) -> None:
    database = "clpm_latest_one_hour"
    influx_server.query(f'CREATE DATABASE "{database}" WITH DURATION 1h')
    settings = influx_settings(influx_server.url, database)
    store = LatestValuesStore(settings, cache_settings(redis_server.url))
    plain = InfluxQLStore(settings)
    loop = unique_loop("partly")
    try:
        await store.write([Point(loop, _at(0), pv=1.0, sp=1.0, op=1.0)])
        assert await stored(store, loop) is not None
        # influxd drops the sample beyond its retention and keeps the other: which one is
        # unknown to the writer, so the loop is read from influxd again
        beyond = Point(loop, NOW - timedelta(hours=3), pv=0.0)
        assert await store.write([Point(loop, _at(1), pv=2.0), beyond]) == 1
        assert await stored(store, loop) is None
        assert (await store.latest_many([loop]))[loop] == (await plain.latest_many([loop]))[loop]
        await store.write([Point(loop, _at(2), pv=3.0)])
        assert await stored(store, loop) is not None
    finally:
        await store.close()
        await plain.close()
        influx_server.drop_database(database)


async def test_with_redis_stopped_reads_and_writes_go_on_through_influxd(
    settings: InfluxSettings,
    plain: InfluxQLStore,
    unique_loop: LoopFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = RedisServer("redis-latest", free_port(), tmp_path)
    redis.start()
    store = LatestValuesStore(settings, cache_settings(redis.url), retry_interval_s=0.0)
    loop = unique_loop("outage")
    try:
        await store.write([Point(loop, _at(0), pv=1.0, sp=1.0, op=1.0, mode="AUT")])
        assert await stored(store, loop) is not None
        redis.stop()
        caplog.set_level(logging.WARNING, "clpm_shared.timeseries.latest_values")
        assert await store.write([Point(loop, _at(1), pv=2.0, mode="MAN")]) == 1
        for _ in range(2):
            answer = await store.latest_many([loop])
            assert answer == await plain.latest_many([loop])
            assert answer[loop].values["PV"] == LatestValue(2.0, _at(1))
        assert (await store.latest(loop, ["PV"])) == await plain.latest(loop, ["PV"])
        warnings = [r for r in caplog.records if "redis unavailable" in r.getMessage()]
        assert len(warnings) == 1
        redis.start()  # empty again: everything from influxd until written
        assert await store.latest_many([loop]) == await plain.latest_many([loop])
        await store.write([Point(loop, _at(2), pv=3.0)])
        parts = await stored(store, loop)
        assert parts is not None
        assert parts[:2] == [f"{to_ns(_at(2)):019d}", "3.0"]
        assert (await store.latest_many([loop]))[loop] == (await plain.latest_many([loop]))[loop]
    finally:
        await store.close()
        redis.stop()


async def test_a_loop_whose_merge_failed_is_read_from_influxd_then_forgotten(
    cached: LatestValuesStore, plain: InfluxQLStore, unique_loop: LoopFactory
) -> None:
    loop, other = unique_loop("unmerged"), unique_loop("other")
    await cached.write([Point(loop, _at(0), pv=1.0, sp=1.0, op=1.0, mode="AUT")])
    await cached.redis.execute_command("CLIENT", "PAUSE", 1500, "WRITE")  # the merge times out
    try:
        await cached.write([Point(loop, _at(1), pv=2.0)])
    finally:
        await cached.redis.execute_command("CLIENT", "UNPAUSE")
    assert loop in cached._unmerged
    cached._down_until = 0.0  # Redis answers again (no need to wait for the retry interval)
    # its key may hold the old sample (or the new one, if Redis ran the script after all)
    assert (await cached.latest_many([loop]))[loop].values["PV"] == LatestValue(2.0, _at(1))
    await cached.write([Point(other, _at(0), pv=5.0)])  # the next merge deletes the stale key
    assert await stored(cached, loop) is None
    assert not cached._unmerged
    assert (await cached.latest_many([loop]))[loop] == (await plain.latest_many([loop]))[loop]


@pytest.mark.parametrize(
    ("backend", "latest_values_cache", "kind"),
    [
        (CacheBackend.REDIS, True, LatestValuesStore),
        (CacheBackend.REDIS, False, InfluxQLStore),
        (CacheBackend.MEMORY, True, InfluxQLStore),
    ],
)
async def test_the_factory_keeps_latest_values_with_redis_and_influxql_only(
    settings: InfluxSettings,
    redis_server: RedisServer,
    backend: CacheBackend,
    latest_values_cache: bool,
    kind: type,
) -> None:
    cache = CacheSettings(
        cache_backend=backend,
        redis_url=redis_server.url,  # type: ignore[arg-type]
        latest_values_cache=latest_values_cache,
    )
    store = create_store(settings, cache)
    try:
        assert type(store) is kind
    finally:
        await store.close()
    embedded = create_store(
        InfluxSettings(timeseries_backend="embedded", embedded_tsdb_path=Path("/nonexistent/x.db")),  # type: ignore[arg-type]
        cache,
    )
    assert not isinstance(embedded, InfluxQLStore)
    await embedded.close()
