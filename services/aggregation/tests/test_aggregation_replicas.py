"""Two instances on one database share the loops; each (loop, minute) is written exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text

from clpm_aggregation.pipeline import run_units
from clpm_aggregation.planning import WorkUnit
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


async def test_two_instances_split_the_loops_and_write_each_minute_once_then_one_takes_over(
    influx: InfluxQLStore, database: Database, clock: TestClock
) -> None:
    database.install_write_counter()
    loops = [f"TIC{k:02d}" for k in range(12)]
    points = plant_points(loops, BASE, 30 * 60, seed=5, step_s=5.0)
    await influx.write(points)
    a = make_service(influx, database, clock, instance_id="node-a:1", agg_lease_s=300.0)
    b = make_service(influx, database, clock, instance_id="node-b:1", agg_lease_s=300.0)

    reports = {}
    for minute in range(2, 12):  # both alive: cycles run concurrently every "minute"
        clock.set(BASE + minute * MINUTE + timedelta(seconds=7))
        reports[minute] = await asyncio.gather(a.run_cycle(), b.run_cycle())
    final_split = [report.loops for report in reports[11]]
    assert sorted(final_split) == [6, 6]
    async with database.sessions() as session:
        owners = await WorkLeaseRepository(session, "aggregation").owners(clock())
    assert owners == {"node-a:1": 6, "node-b:1": 6}

    # node-a dies (no shutdown). Its loops wait until its leases expire (AGG_LEASE_S = 300 s),
    # then node-b takes them over from their watermarks.
    clock.set(BASE + 12 * MINUTE + timedelta(seconds=7))
    alone = await b.run_cycle()
    assert alone.loops == 6
    clock.set(BASE + 20 * MINUTE + timedelta(seconds=7))
    takeover = await b.run_cycle()
    assert takeover.loops == 12
    clock.set(BASE + 30 * MINUTE + timedelta(seconds=7))
    await b.run_cycle()

    counts = database.write_counts()
    minutes = [int((BASE + m * MINUTE).timestamp()) for m in range(30)]
    assert counts == {(loop, m): 1 for loop in loops for m in minutes}
    async with database.sessions() as session:
        marks = await WatermarkRepository(session).get(loops)
    assert set(marks.values()) == {BASE + 30 * MINUTE}
    rows = await stored_rows(database, "agg_1m", loops, BASE, BASE + 30 * MINUTE)
    expected = reference_buckets(points)
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert_matches(rows[key], want)


async def test_a_due_lease_renewal_runs_after_the_first_unit_and_a_late_one_before_reading(
    influx: InfluxQLStore, database: Database, clock: TestClock
) -> None:
    """The renewal due every other poll (30-s polls, 90-s leases) is committed after the poll's
    first unit, so the next units are read meanwhile instead of waiting for it. A poll that
    comes late (a quarter of the lease or less left) renews before it reads anything."""
    loops = [f"LRN{k:02d}" for k in range(4)]
    await influx.write(plant_points(loops, BASE, 10 * 60, seed=9, step_s=5.0))
    service = make_service(influx, database, clock, instance_id="node-r:1", agg_lease_s=90.0)

    async def transactions() -> tuple[int, int]:
        """The transaction that last wrote the leases, and the one that moved the watermarks."""
        async with database.sessions() as session:
            lease = await session.scalar(
                text("SELECT max(xmin::text::bigint) FROM work_leases WHERE owner = 'node-r:1'")
            )
            mark = await session.scalar(
                text(
                    "SELECT min(xmin::text::bigint) FROM loop_watermarks WHERE loop_id LIKE 'LRN%'"
                )
            )
        return int(lease), int(mark)

    first = BASE + 2 * MINUTE + timedelta(seconds=1)
    for seconds in (0, 30):
        clock.set(first + timedelta(seconds=seconds))
        await service.run_cycle()
    due = first + timedelta(seconds=60)  # 60 s after the renewal: due, 30 s of lease left
    clock.set(due)
    report = await service.run_cycle()
    assert report.units == 1
    assert report.buckets_written == len(loops)
    lease, mark = await transactions()
    assert lease > mark  # renewed after the unit's commit
    async with database.sessions() as session:
        expiry = await WorkLeaseRepository(session, "aggregation").owners(due)
    assert expiry == {"node-r:1": len(loops)}

    late = due + timedelta(seconds=70)  # 70 s after the renewal: 20 s (< a quarter) left
    clock.set(late)
    report = await service.run_cycle()
    assert report.units == 1
    assert report.buckets_written == len(loops)
    lease, mark = await transactions()
    assert lease < mark  # renewed in the coordination, before the unit was read


async def test_two_writers_racing_on_the_same_units_commit_each_once(
    influx: InfluxQLStore, database: Database, clock: TestClock
) -> None:
    """A replica whose lease expired while it was still working cannot double-write."""
    database.install_write_counter()
    loops = [f"PIC{k:02d}" for k in range(6)]
    points = plant_points(loops, BASE, 10 * 60, seed=6)
    await influx.write(points)
    async with database.sessions() as session, session.begin():
        await WatermarkRepository(session).initialize(dict.fromkeys(loops, BASE))
    units = [
        WorkUnit(tuple(loops[:3]), BASE, BASE, BASE + 5 * MINUTE),
        WorkUnit(tuple(loops[3:]), BASE, BASE, BASE + 5 * MINUTE),
        WorkUnit(tuple(loops[:3]), BASE + 5 * MINUTE, BASE + 5 * MINUTE, BASE + 10 * MINUTE),
        WorkUnit(tuple(loops[3:]), BASE + 5 * MINUTE, BASE + 5 * MINUTE, BASE + 10 * MINUTE),
    ]
    clock.set(BASE + timedelta(hours=1))

    async def writer() -> list[bool]:
        outcomes = await run_units(
            units,
            store=influx,
            sessions=database.sessions,
            lateness=timedelta(0),
            clock=clock,
        )
        return [outcome.committed for outcome in outcomes]

    first, second = await asyncio.gather(writer(), writer())
    assert [x or y for x, y in zip(first, second, strict=True)] == [True] * 4
    assert [x and y for x, y in zip(first, second, strict=True)] == [False] * 4
    counts = database.write_counts()
    assert sorted(set(counts.values())) == [1]
    assert len(counts) == len(loops) * 10


async def test_a_watermark_moved_behind_the_services_back_is_reread_not_overwritten(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    """The service keeps the watermarks it committed in memory; if another writer moved one,
    the unit loses its compare-and-set, and the next cycle continues from the stored value."""
    database.install_write_counter()
    points = plant_points(loop_ids, BASE, 8 * 60, seed=9)
    await influx.write(points)
    service = make_service(influx, database, clock)
    clock.set(BASE + 3 * MINUTE + timedelta(seconds=5))
    await service.run_cycle()
    async with database.sessions() as session, session.begin():
        moved = await WatermarkRepository(session).advance(
            {loop_ids[0]: BASE + 3 * MINUTE}, BASE + 5 * MINUTE
        )
    assert moved == 1
    clock.set(BASE + 8 * MINUTE + timedelta(seconds=5))
    first = await service.run_cycle()
    assert first.lost_units == 1  # the unit holding loops_ids[0] was rolled back
    second = await service.run_cycle()
    assert second.lost_units == 0
    counts = database.write_counts()
    assert set(counts.values()) == {1}
    written = {minute for loop, minute in counts if loop == loop_ids[0]}
    skipped = {int((BASE + m * MINUTE).timestamp()) for m in (3, 4)}
    assert not written & skipped  # the other writer's minutes were not redone
    async with database.sessions() as session:
        marks = await WatermarkRepository(session).get(loop_ids)
    assert set(marks.values()) == {BASE + 8 * MINUTE}


async def test_replicas_started_together_share_the_loops_from_their_first_cycle(
    influx: InfluxQLStore, database: Database, clock: TestClock
) -> None:
    loops = [f"LIC{k:02d}" for k in range(12)]
    await influx.write(plant_points(loops, BASE, 10 * 60, seed=8, step_s=5.0))
    clock.set(BASE + 10 * MINUTE + timedelta(seconds=7))
    replicas = [
        make_service(influx, database, clock, instance_id=f"node-{name}:1", agg_lease_s=300.0)
        for name in "abc"
    ]
    first = await asyncio.gather(*(replica.run_cycle() for replica in replicas))
    assert [report.loops for report in first] == [4, 4, 4]


async def test_leases_are_renewed_once_half_a_lease_has_passed_not_at_every_poll(
    influx: InfluxQLStore, database: Database, clock: TestClock
) -> None:
    """At the defaults (30-s polls, 90-s leases) every other poll renews: the others keep the
    leases they hold (at least half a lease left) and write nothing to work_leases."""
    loops = [f"LSE{k:02d}" for k in range(5)]
    await influx.write(plant_points(loops, BASE, 10 * 60, seed=3, step_s=5.0))
    service = make_service(influx, database, clock, instance_id="node-l:1", agg_lease_s=90.0)

    async def expiry() -> set[object]:
        async with database.sessions() as session:
            rows = await session.execute(
                text("SELECT DISTINCT expires_at FROM work_leases WHERE owner = 'node-l:1'")
            )
        return {row[0] for row in rows}

    start = BASE + 2 * MINUTE + timedelta(seconds=1)
    expiries = []
    for poll in range(6):
        clock.set(start + timedelta(seconds=30 * poll))
        report = await service.run_cycle()
        assert report.loops == len(loops)
        [until] = await expiry()
        expiries.append(until)
    renewed_at = [until - timedelta(seconds=90) for until in expiries]
    polls = [start + timedelta(seconds=30 * poll) for poll in range(6)]
    # renewals at polls 0, 2, 4 (60 s apart); polls 1, 3, 5 keep the lease of the poll before
    assert renewed_at == [polls[0], polls[0], polls[2], polls[2], polls[4], polls[4]]
    for poll, until in zip(polls, expiries, strict=True):
        assert (until - poll).total_seconds() >= 45  # never less than half a lease left

    # a new loop renews at once
    await influx.write(plant_points(["LSE99"], BASE, 10 * 60, seed=4, step_s=5.0))
    clock.set(polls[5] + timedelta(seconds=30))
    assert (await service.run_cycle()).loops == len(loops) + 1
    assert await expiry() == {clock() + timedelta(seconds=90)}
