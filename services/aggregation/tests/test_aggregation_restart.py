"""Restarts resume from the stored watermarks: no minute skipped, none written twice."""

from __future__ import annotations

from datetime import timedelta

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
