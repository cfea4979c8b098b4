"""Restarts resume from the stored watermarks: no minute skipped, none written twice."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import timedelta

import pytest

from clpm_shared.db.repositories.leases import WorkLeaseRepository
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

MINUTE = timedelta(minutes=1)


async def test_a_clean_restart_resumes_where_it_stopped_writing_each_minute_once(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    database.install_write_counter()
    first = plant_points(loop_ids, BASE, 3 * 60, seed=1)
    await influx.write(first)
    clock.set(BASE + 3 * MINUTE + timedelta(seconds=5))
    before = make_service(influx, database, clock, instance_id="host-a:1")
    await before.run_cycle()
    await before.shutdown()
    async with database.sessions() as session:
        marks = await WatermarkRepository(session).get(loop_ids)
    assert set(marks.values()) == {BASE + 3 * MINUTE}

    second = plant_points(loop_ids, BASE + 3 * MINUTE, 4 * 60, seed=2)
    await influx.write(second)
    clock.set(BASE + 7 * MINUTE + timedelta(seconds=5))
    after = make_service(influx, database, clock, instance_id="host-a:2")
    report = await after.run_cycle()
    assert report.loops == len(loop_ids)
    assert report.buckets_written == 4 * len(loop_ids)

    counts = database.write_counts()
    minutes = [int((BASE + m * MINUTE).timestamp()) for m in range(7)]
    assert counts == {(loop, m): 1 for loop in loop_ids for m in minutes}
    rows = await stored_rows(database, "agg_1m", loop_ids, BASE, BASE + 7 * MINUTE)
    expected = reference_buckets(first + second)
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert_matches(rows[key], want)


async def test_after_a_crash_the_new_process_takes_over_once_the_lease_expires(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    points = plant_points(loop_ids, BASE, 3 * 60, seed=3)
    await influx.write(points)
    clock.set(BASE + 3 * MINUTE + timedelta(seconds=5))
    crashed = make_service(influx, database, clock, instance_id="host-b:1", agg_lateness_s=120.0)
    await crashed.run_cycle()  # ...and then the process dies: no shutdown, leases stay

    more = plant_points(loop_ids, BASE + 3 * MINUTE, 3 * 60, seed=4)
    await influx.write(more)
    clock.set(BASE + 3 * MINUTE + timedelta(seconds=20))
    restarted = make_service(influx, database, clock, instance_id="host-b:2", agg_lateness_s=120.0)
    waiting = await restarted.run_cycle()
    assert waiting.loops == 0  # the dead instance's leases are still valid (AGG_LEASE_S = 30 s)
    assert database.row_count() == 3 * len(loop_ids)

    clock.set(BASE + 6 * MINUTE + timedelta(seconds=5))  # the dead instance's leases expired
    resumed = await restarted.run_cycle()
    assert resumed.loops == len(loop_ids)
    rows = await stored_rows(database, "agg_1m", loop_ids, BASE - MINUTE, BASE + 7 * MINUTE)
    expected = reference_buckets(points + more)
    assert set(rows) == set(expected)  # primary key: one row per (loop, minute), no gap
    for key, want in expected.items():
        assert_matches(rows[key], want)


@pytest.mark.parametrize("predecessor", ["same pid (container restart)", "pid gone"])
async def test_a_process_restarted_in_place_takes_over_its_predecessors_leases_at_once(
    influx: InfluxQLStore,
    database: Database,
    clock: TestClock,
    loop_ids: list[str],
    predecessor: str,
) -> None:
    """Same host, the old process gone: no waiting ~AGG_LEASE_S for its own dead leases."""
    host = socket.gethostname()
    if predecessor.startswith("same pid"):
        dead_pid = os.getpid()
    else:
        child = await asyncio.create_subprocess_exec("true")  # a pid that no longer runs
        await child.wait()
        dead_pid = child.pid
    points = plant_points(loop_ids, BASE, 3 * 60, seed=5)
    await influx.write(points)
    clock.set(BASE + 3 * MINUTE + timedelta(seconds=5))
    crashed = make_service(
        influx, database, clock, instance_id=f"{host}:{dead_pid}:0ld0ld", agg_lease_s=300.0
    )
    await crashed.run_cycle()  # then killed: no shutdown, leases valid for 300 s
    more = plant_points(loop_ids, BASE + 3 * MINUTE, 3 * 60, seed=6)
    await influx.write(more)
    clock.set(BASE + 6 * MINUTE + timedelta(seconds=5))
    restarted = make_service(
        influx, database, clock, instance_id=f"{host}:{os.getpid()}:n3wn3w", agg_lease_s=300.0
    )
    report = await restarted.run_cycle()
    assert report.loops == len(loop_ids)
    async with database.sessions() as session:
        owners = await WorkLeaseRepository(session, "aggregation").owners(clock())
    assert owners == {f"{host}:{os.getpid()}:n3wn3w": len(loop_ids)}
    rows = await stored_rows(database, "agg_1m", loop_ids, BASE - MINUTE, BASE + 7 * MINUTE)
    expected = reference_buckets(points + more)
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert_matches(rows[key], want)


async def test_a_live_process_of_this_host_is_not_taken_for_dead(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    host = socket.gethostname()
    await influx.write(plant_points(loop_ids, BASE, 60, seed=7))
    clock.set(BASE + MINUTE + timedelta(seconds=5))
    alive = await asyncio.create_subprocess_exec("sleep", "30")
    try:
        other = make_service(influx, database, clock, instance_id=f"{host}:{alive.pid}:a11ve0")
        await other.run_cycle()
        me = make_service(influx, database, clock, instance_id=f"{host}:{os.getpid()}:me0000")
        assert (await me.run_cycle()).loops == 0  # the other one's leases are respected
    finally:
        alive.kill()
        await alive.wait()
