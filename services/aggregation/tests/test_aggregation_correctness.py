"""agg_1m / agg_1h written by the service against real influxd + PostgreSQL: the numbers are right.

agg_1m must equal (1) statistics computed directly from the points written and (2) InfluxDB's
own ``GROUP BY time(1m)`` over the same samples; agg_1h must equal statistics over all raw
points of each hour (pooled, not averaged).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest

from clpm_aggregation.planning import complete_end, spread_offsets
from clpm_shared.timeseries.influxql import InfluxQLStore
from services.aggregation.tests.conftest import (
    BASE,
    FIELDS,
    STATS,
    Database,
    TestClock,
    assert_matches,
    make_service,
    plant_points,
    reference_buckets,
    stored_rows,
)
from tests.harness.servers import InfluxServer

MINUTE = timedelta(minutes=1)


async def test_minutes_equal_numpy_and_influxdb_group_by(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    points = plant_points(loop_ids, BASE, 7 * 60 + 25)
    await influx.write(points)
    clock.set(BASE + timedelta(minutes=9, seconds=5))
    service = make_service(influx, database, clock)
    report = await service.run_cycle()

    assert report.loops == len(loop_ids)
    assert report.samples == len(points)
    expected = reference_buckets(points)
    rows = await stored_rows(database, "agg_1m", loop_ids, BASE - MINUTE, BASE + timedelta(hours=1))
    assert set(rows) == set(expected)  # 8 minutes per loop, none missing, none extra
    for key, want in expected.items():
        assert_matches(rows[key], want)
        assert rows[key]["modes"] == pytest.approx(want["modes"])

    many = await influx.aggregate_many(loop_ids, BASE, BASE + timedelta(minutes=9), 60)
    for loop_id in loop_ids:
        server_side = await influx.aggregate(loop_id, BASE, BASE + timedelta(minutes=9), 60)
        assert server_side.bucket_ns.size == 8
        assert many[loop_id].bucket_ns.tolist() == server_side.bucket_ns.tolist()
        for key, column in server_side.stats.items():
            np.testing.assert_array_equal(many[loop_id].stats[key], column, err_msg=key)
        for i, bucket_ns in enumerate(server_side.bucket_ns.tolist()):
            start = datetime.fromtimestamp(bucket_ns / 1e9, UTC)
            got = rows[(loop_id, start)]
            for name in FIELDS:
                for stat in STATS:
                    key = f"{name}_{stat}"
                    theirs = float(server_side.stats[key][i])
                    if stat == "std":
                        np.testing.assert_allclose(got[key], theirs, rtol=1e-9, err_msg=key)
                    elif stat == "mean":
                        np.testing.assert_allclose(got[key], theirs, rtol=1e-12, err_msg=key)
                    else:
                        assert got[key] == theirs, (loop_id, start, key)


async def test_spread_polls_write_each_minute_once_with_half_the_loops_per_poll(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    """AGG_SPREAD_MIN_LOOPS reached: at 30-s polls each loop's minutes are written at the
    poll of its slot (half the loops per poll), each minute once and equal to the reference."""
    loops = [f"{loop_ids[0]}.s{k}" for k in range(24)]
    points = plant_points(loops, BASE, 7 * 60)
    await influx.write(points)
    service = make_service(
        influx,
        database,
        clock,
        polling_interval=30_000,
        agg_lateness_s=120.0,
        agg_spread_min_loops=10,
    )
    offsets = spread_offsets(loops, timedelta(seconds=30))
    assert 0 < sum(1 for offset in offsets.values() if offset) < len(loops)
    advanced_per_poll: list[set[str]] = []
    marks: dict[str, datetime] = {}
    for k in range(10):
        now = BASE + timedelta(minutes=1, seconds=5 + 30 * k)
        clock.set(now)
        await service.run_cycle()
        current = dict(service.known_marks)
        assert current == {loop: complete_end(now, offsets[loop]) for loop in loops}
        advanced_per_poll.append({loop for loop in loops if current[loop] != marks.get(loop)})
        marks = current
    # after the first poll, every poll wrote the minute of one slot's loops, alternating
    late_slot = {loop for loop, offset in offsets.items() if offset}
    assert advanced_per_poll[1:] == [
        late_slot if k % 2 else set(loops) - late_slot for k in range(1, 10)
    ]
    rows = await stored_rows(database, "agg_1m", loops, BASE - MINUTE, BASE + timedelta(hours=1))
    expected = {
        key: want for key, want in reference_buckets(points).items() if key[1] < marks[key[0]]
    }
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert_matches(rows[key], want)


async def test_a_poll_over_its_share_of_loops_reads_two_minute_spans_when_a_minute_is_not_enough(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    """AGG_SPREAD_LOOPS_PER_POLL below half the loops: the span grows to 2 minutes, so the 4
    polls of a span each write 2 minutes of a quarter of the loops (fewer series per read),
    every minute once and equal to the reference."""
    loops = [f"{loop_ids[0]}.q{k}" for k in range(24)]
    points = plant_points(loops, BASE, 9 * 60, seed=11)
    await influx.write(points)
    service = make_service(
        influx,
        database,
        clock,
        polling_interval=30_000,
        agg_lateness_s=120.0,
        agg_spread_min_loops=10,
        agg_spread_loops_per_poll=6,
    )
    span = 2 * MINUTE
    offsets = spread_offsets(loops, timedelta(seconds=30), span)
    assert len(set(offsets.values())) == 4
    advanced_per_poll: list[set[str]] = []
    marks: dict[str, datetime] = {}
    for k in range(14):
        now = BASE + timedelta(minutes=2, seconds=5 + 30 * k)
        clock.set(now)
        await service.run_cycle()
        assert service.span == span
        current = dict(service.known_marks)
        assert current == {loop: complete_end(now, offsets[loop], span) for loop in loops}
        advanced = {loop for loop in loops if current[loop] != marks.get(loop)}
        assert all(current[loop] - marks[loop] == span for loop in advanced if loop in marks)
        advanced_per_poll.append(advanced)
        marks = current
    # after the first poll, every poll wrote the span of one slot's loops, the slots in turn
    for k, advanced in enumerate(advanced_per_poll[1:], start=1):
        slot = timedelta(seconds=30 * (k % 4))
        assert advanced == {loop for loop, offset in offsets.items() if offset == slot}, k
    rows = await stored_rows(database, "agg_1m", loops, BASE - MINUTE, BASE + timedelta(hours=1))
    expected = {
        key: want for key, want in reference_buckets(points).items() if key[1] < marks[key[0]]
    }
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert_matches(rows[key], want)


async def test_loops_that_arrive_and_lengthen_the_spread_span_leave_no_minute_unwritten(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    """12 loops fit one-minute spans (6 per poll); 12 more arrive, the span becomes 2 minutes
    and every loop's slot changes: each minute is still written, equal to the reference."""
    first = [f"{loop_ids[0]}.a{k}" for k in range(12)]
    later = [f"{loop_ids[0]}.b{k}" for k in range(12)]
    points = plant_points(first, BASE, 10 * 60, seed=12)
    await influx.write(points)
    service = make_service(
        influx,
        database,
        clock,
        polling_interval=30_000,
        agg_lateness_s=120.0,
        agg_spread_min_loops=10,
        agg_spread_loops_per_poll=6,
    )
    polls = [BASE + timedelta(minutes=2, seconds=5 + 30 * k) for k in range(16)]
    for now in polls[:5]:
        clock.set(now)
        await service.run_cycle()
        assert service.span == MINUTE
    later_points = plant_points(later, BASE, 10 * 60, seed=13)
    await influx.write(later_points)
    for now in polls[5:]:
        clock.set(now)
        await service.run_cycle()
        assert service.span == 2 * MINUTE
    offsets = spread_offsets([*first, *later], timedelta(seconds=30), 2 * MINUTE)
    loops = [*first, *later]
    marks = dict(service.known_marks)
    assert marks == {loop: complete_end(polls[-1], offsets[loop], 2 * MINUTE) for loop in loops}
    rows = await stored_rows(database, "agg_1m", loops, BASE - MINUTE, BASE + timedelta(hours=1))
    expected = {
        key: want
        for key, want in reference_buckets([*points, *later_points]).items()
        if key[1] < marks[key[0]]
    }
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert_matches(rows[key], want)


async def test_a_span_is_kept_while_the_loops_hover_just_under_its_bound(
    influx: InfluxQLStore, database: Database, clock: TestClock
) -> None:
    """The service's spread: 13 loops need 2-minute spans (6 per poll); at 12, one under the
    bound, the span stays (replicas rebalancing would otherwise change every slot at each
    poll); at 10, within 90 % of it, one minute again."""
    service = make_service(
        influx,
        database,
        clock,
        polling_interval=30_000,
        agg_spread_min_loops=10,
        agg_spread_loops_per_poll=6,
    )
    spans = []
    for count in (13, 12, 11, 12, 10, 12):
        service.spread({f"FIC900.{k}": BASE for k in range(count)})
        spans.append(service.span)
    assert spans == [2 * MINUTE, 2 * MINUTE, 2 * MINUTE, 2 * MINUTE, MINUTE, MINUTE]


async def test_hours_equal_direct_statistics_over_the_raw_points(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    loops = loop_ids[:2]
    points = plant_points(loops, BASE, 2 * 3600 + 1500, seed=4)
    await influx.write(points)
    clock.set(BASE + timedelta(hours=2, minutes=50))
    service = make_service(influx, database, clock, agg_lateness_s=120.0)
    await service.run_cycle()
    hours = await stored_rows(database, "agg_1h", loops, BASE, BASE + timedelta(hours=3))
    assert sorted({start for _, start in hours}) == [BASE, BASE + timedelta(hours=1)]

    clock.set(BASE + timedelta(hours=3, minutes=5))  # hour 3 becomes final (lateness passed)
    await service.run_cycle()
    hours = await stored_rows(database, "agg_1h", loops, BASE, BASE + timedelta(hours=3))
    expected = reference_buckets(points, timedelta(hours=1))
    assert set(hours) == set(expected)
    for key, want in expected.items():
        assert_matches(hours[key], want, rtol=1e-11)
        assert hours[key]["modes"] == pytest.approx(want["modes"], rel=1e-12)


async def test_a_late_point_recomputes_its_minute(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    loop = loop_ids[0]
    points = plant_points([loop], BASE, 5 * 60)
    await influx.write(points)
    clock.set(BASE + timedelta(minutes=5, seconds=10))
    service = make_service(influx, database, clock, agg_lateness_s=120.0)
    await service.run_cycle()
    minute4 = (loop, BASE + 4 * MINUTE)
    before = (await stored_rows(database, "agg_1m", [loop], BASE, BASE + 5 * MINUTE))[minute4]

    late = [p for p in plant_points([loop], BASE + 4 * MINUTE + timedelta(seconds=30.5), 1)]
    late = [type(p)(p.loop_id, p.time, pv=1000.0, sp=p.sp, op=p.op, mode=p.mode) for p in late]
    await influx.write(late)  # arrives ~100 s after its timestamp: within the 120 s allowance
    # 30-s polls: the loop's count check comes once per AGG_LATE_CHECK_INTERVAL_S (default)
    check_interval = timedelta(seconds=service.settings.agg_late_check_interval_s)
    corrected_at = None
    poll = BASE + timedelta(minutes=5, seconds=40)
    while poll <= BASE + timedelta(minutes=5, seconds=10) + check_interval + timedelta(seconds=30):
        clock.set(poll)
        await service.run_cycle()
        rows = await stored_rows(database, "agg_1m", [loop], BASE, BASE + 5 * MINUTE)
        if rows[minute4]["pv_count"] != before["pv_count"]:
            corrected_at = poll
            break
        poll += timedelta(seconds=30)
    assert corrected_at is not None, "the late sample was never counted"
    # within the documented bound: AGG_LATENESS_S + AGG_LATE_CHECK_INTERVAL_S after its time
    assert corrected_at - late[0].time <= timedelta(seconds=120) + check_interval
    after = await stored_rows(database, "agg_1m", [loop], BASE, BASE + 5 * MINUTE)
    assert after[minute4]["pv_count"] == before["pv_count"] + 1
    assert after[minute4]["pv_max"] == 1000.0
    assert_matches(after[minute4], reference_buckets(points + late)[minute4])
    assert len(after) == 5  # the minute was replaced, not added


async def test_a_point_later_than_the_allowance_waits_for_backfill(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    loop = loop_ids[0]
    points = plant_points([loop], BASE, 5 * 60)
    await influx.write(points)
    clock.set(BASE + timedelta(minutes=5, seconds=10))
    service = make_service(influx, database, clock, agg_lateness_s=60.0)
    await service.run_cycle()
    very_late = plant_points([loop], BASE + timedelta(seconds=30.5), 1)
    await influx.write(very_late)
    clock.set(BASE + timedelta(minutes=8, seconds=10))
    await service.run_cycle()
    minute0 = (loop, BASE)
    rows = await stored_rows(database, "agg_1m", [loop], BASE, BASE + MINUTE)
    assert rows[minute0]["pv_count"] == reference_buckets(points)[minute0]["pv_count"]

    report = await service.backfill(hours=1.0)
    rows = await stored_rows(database, "agg_1m", [loop], BASE, BASE + MINUTE)
    assert_matches(rows[minute0], reference_buckets(points + very_late)[minute0])
    assert report.buckets_written == 5


async def test_a_value_of_the_wrong_type_is_skipped_and_the_cycle_goes_on(
    influx_server: InfluxServer,
    influx: InfluxQLStore,
    database: Database,
    clock: TestClock,
    loop_ids: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 2025-01-13 00:00 is a shard boundary: in the older shard PV was first written as a string
    # (a misconfigured writer); InfluxDB answers such a value as absent.
    boundary = datetime(2025, 1, 13, tzinfo=UTC)
    bad, good = loop_ids[0], loop_ids[1]
    line = f'control_loops,loop_id={bad},Mode=AUT PV="n/a",SP=10,OP=20 '
    line += str(int((boundary - timedelta(seconds=30)).timestamp()) * 10**9)
    async with httpx.AsyncClient(base_url=influx_server.url) as client:
        response = await client.post(
            "/write", params={"db": influx.database, "precision": "ns"}, content=line.encode()
        )
    assert response.status_code == 204
    points = plant_points([bad, good], boundary, 120)
    await influx.write(points)
    clock.set(boundary + timedelta(minutes=3))
    service = make_service(influx, database, clock)
    with caplog.at_level(logging.INFO):
        report = await service.run_cycle()
    assert report.missing_values["pv"] >= 1
    cycle_logs = [r for r in caplog.records if r.getMessage() == "cycle"]
    assert cycle_logs[-1].missing_values["pv"] == report.missing_values["pv"]  # type: ignore[attr-defined]
    rows = await stored_rows(database, "agg_1m", [bad, good], boundary - MINUTE, boundary + MINUTE)
    odd = rows[(bad, boundary - MINUTE)]
    assert odd["pv_count"] == 0
    assert np.isnan(odd["pv_mean"])
    assert odd["sp_count"] == 1
    assert odd["op_mean"] == 20.0
    expected = reference_buckets(points)
    assert_matches(rows[(good, boundary)], expected[(good, boundary)])
    assert_matches(rows[(bad, boundary)], expected[(bad, boundary)])
