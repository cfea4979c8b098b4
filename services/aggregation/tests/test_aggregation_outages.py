"""Outages of the real influxd and PostgreSQL servers: retried, nothing skipped or doubled.

The servers are stopped and started again in the test. PostgreSQL is shared with other test
modules, so it is always started again in a ``finally``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import pytest

from clpm_aggregation.planning import HEAD_START
from clpm_shared.db.repositories.watermarks import WatermarkRepository
from clpm_shared.timeseries.influxql import InfluxQLStore
from services.aggregation.tests.conftest import (
    BASE,
    Database,
    TestClock,
    assert_matches,
    make_service,
    plant_points,
    reference_buckets,
    stored_rows,
)
from tests.harness.servers import InfluxServer, PostgresServer

MINUTE = timedelta(minutes=1)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0) -> None:
    """Poll ``check`` until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except Exception:  # the server being probed may be down for a while
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout_s} s")


async def watermarks(database: Database, loops: list[str]) -> set[datetime]:
    async with database.sessions() as session:
        return set((await WatermarkRepository(session).get(loops)).values())


def logged(caplog: pytest.LogCaptureFixture, text: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return any(text in record.getMessage() for record in caplog.records)

    return check


async def assert_every_minute_once(
    database: Database, loops: list[str], points: list, minutes: int, head_start: int = 0
) -> None:  # type: ignore[type-arg]
    """Every minute committed once by the catch-up; the newest ``head_start`` minutes were
    also written once before, ahead of the watermark (planning.HEAD_START)."""
    counts = database.write_counts()
    expected_keys = [int((BASE + m * MINUTE).timestamp()) for m in range(minutes)]
    assert counts == {
        (loop, key): 2 if index >= minutes - head_start else 1
        for loop in loops
        for index, key in enumerate(expected_keys)
    }
    rows = await stored_rows(database, "agg_1m", loops, BASE, BASE + minutes * MINUTE)
    expected = reference_buckets(points)
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert_matches(rows[key], want)


async def test_influxdb_outage_is_retried_and_leaves_no_gap(
    influx_server: InfluxServer,
    influx: InfluxQLStore,
    database: Database,
    clock: TestClock,
    loop_ids: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    database.install_write_counter()
    points = plant_points(loop_ids, BASE, 20 * 60, seed=7, step_s=2.0)
    await influx.write(points)
    clock.set(BASE + 10 * MINUTE + timedelta(seconds=3))
    service = make_service(influx, database, clock)
    await service.run_cycle()
    assert await watermarks(database, loop_ids) == {BASE + 10 * MINUTE}

    clock.set(BASE + 20 * MINUTE + timedelta(seconds=3))
    influx_server.stop()
    running = asyncio.create_task(service.run())
    try:
        with caplog.at_level(logging.WARNING):
            await eventually(logged(caplog, "time-series store unavailable"))
        assert await watermarks(database, loop_ids) == {BASE + 10 * MINUTE}  # did not move
    finally:
        influx_server.start()

    async def caught_up() -> bool:
        return await watermarks(database, loop_ids) == {BASE + 20 * MINUTE}

    await eventually(caught_up)
    service.stop()
    await asyncio.wait_for(running, 30)
    await assert_every_minute_once(database, loop_ids, points, 20)


async def test_postgresql_outage_mid_catch_up_rolls_back_and_resumes_without_gap_or_double(
    postgres_server: PostgresServer,
    influx: InfluxQLStore,
    database: Database,
    clock: TestClock,
    loop_ids: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    database.install_write_counter()
    loops = loop_ids[:3]
    points = plant_points(loops, BASE, 4 * 3600, seed=8, step_s=2.0)
    await influx.write(points)
    clock.set(BASE + timedelta(hours=4, seconds=3))
    # 15-minute chunks: the catch-up is 16 commits long; PostgreSQL goes down when about the 8th
    # chunk is being read, so some chunks are committed, some in flight and some not started.
    service = make_service(influx, database, clock, agg_chunk_minutes=15)
    reads_before_outage = clock.calls + 10
    written_before_outage: list[int] = []

    def outage(calls: int) -> None:
        if calls == reads_before_outage:
            written_before_outage.append(database.row_count())
            postgres_server.stop()

    running = None
    try:
        async with database.sessions() as session:
            assert await WatermarkRepository(session).get(loops) == {}
        clock.on_call = outage
        running = asyncio.create_task(service.run())
        with caplog.at_level(logging.WARNING):
            await eventually(logged(caplog, "database unavailable"))
    finally:
        clock.on_call = None
        postgres_server.start()
    assert running is not None
    assert 0 < written_before_outage[0] < 240 * len(loops)  # the outage came mid catch-up

    async def caught_up() -> bool:
        return await watermarks(database, loops) == {BASE + timedelta(hours=4)}

    await eventually(caught_up)
    service.stop()
    await asyncio.wait_for(running, 30)
    # four hours behind at start: the newest minutes got a head start
    head_start = int(HEAD_START / MINUTE)
    await assert_every_minute_once(database, loops, points, 240, head_start)
    hours = await stored_rows(database, "agg_1h", loops, BASE, BASE + timedelta(hours=4))
    assert len(hours) == 4 * len(loops)  # with no lateness allowance hour 3 is final at 4 h
