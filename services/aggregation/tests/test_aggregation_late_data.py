"""Late samples at the default settings (AGG_LATE_DATA=counts), on real influxd + PostgreSQL.

Units read only the new minutes; a count check of the lateness allowance finds the minutes that
gained samples and recomputes them; a periodic reconciliation finds samples later than the
allowance (10 minutes, 2 hours) and recomputes their minutes and hours, with a log line each.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clpm_aggregation.late_data import (
    RETENTION_MARGIN,
    aggregated_counts,
    reconcile_phase_cursor,
    stale_ranges,
    suspects,
    totals_are_safe,
    window_totals,
)
from clpm_aggregation.planning import floor_to
from clpm_aggregation.service import AggregationService
from clpm_shared.aggregation import BucketTable
from clpm_shared.timeseries.base import (
    NOT_COUNTED,
    MinuteCounts,
    Point,
    SampleTotaller,
    SampleTotals,
)
from clpm_shared.timeseries.embedded import EmbeddedStore
from clpm_shared.timeseries.influxql import InfluxQLStore
from services.aggregation.tests.conftest import (
    BASE,
    Database,
    TestClock,
    assert_matches,
    influx_settings,
    make_service,
    plant_points,
    reference_buckets,
    stored_rows,
)
from tests.harness.servers import InfluxServer

MINUTE = timedelta(minutes=1)
NS = 1_000_000_000


def spiked(points: list[Point], pv: float) -> list[Point]:
    return [Point(p.loop_id, p.time, pv=pv, sp=p.sp, op=p.op, mode=p.mode) for p in points]


async def test_a_late_sample_within_the_allowance_changes_its_minute_without_a_re_read(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    loop, other = loop_ids[0], loop_ids[1]
    points = plant_points([loop, other], BASE, 5 * 60)
    await influx.write(points)
    clock.set(BASE + timedelta(minutes=5, seconds=10))
    service = make_service(
        influx, database, clock, agg_lateness_s=120.0, agg_late_check_interval_s=60.0
    )
    database.install_write_counter()
    first = await service.run_cycle()
    assert first.samples == len(points)
    minute4 = (loop, BASE + 4 * MINUTE)
    before = (await stored_rows(database, "agg_1m", [loop], BASE, BASE + 5 * MINUTE))[minute4]

    late = spiked(plant_points([loop], BASE + 4 * MINUTE + timedelta(seconds=30.5), 1), 1000.0)
    await influx.write(late)  # ~100 s after its time stamp: within the 120-s allowance
    newer = plant_points([loop, other], BASE + 5 * MINUTE, 60, seed=9)
    await influx.write(newer)
    clock.set(BASE + timedelta(minutes=6, seconds=10))
    report = await service.run_cycle()

    after = await stored_rows(database, "agg_1m", [loop], BASE, BASE + 6 * MINUTE)
    assert after[minute4]["pv_count"] == before["pv_count"] + 1
    assert after[minute4]["pv_max"] == 1000.0
    assert_matches(after[minute4], reference_buckets(points + late)[minute4])
    assert len(after) == 6
    # the forward unit read only minute 5; the check re-read only the changed minute
    sum(1 for p in points + late if p.loop_id == loop and p.time >= BASE + 4 * MINUTE)
    assert report.samples == len(newer)
    assert report.late_minutes == 1
    assert report.late_ranges == 1
    writes = database.write_counts()
    epoch4 = int((BASE + 4 * MINUTE).timestamp())
    assert writes[(loop, epoch4)] == 2
    assert writes[(other, epoch4)] == 1  # nothing late there: written once
    assert all(count == 1 for key, count in writes.items() if key[1] != epoch4)


async def test_counts_of_a_poll_that_fails_before_its_corrections_leave_the_loops_due(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    """The counts run beside the units and the corrections come after them. A cycle that
    fails in between (store or database down) must not mark its loops checked: the next poll
    counts them again and recomputes the late minute."""
    loop = loop_ids[0]
    points = plant_points([loop], BASE, 5 * 60)
    await influx.write(points)
    clock.set(BASE + timedelta(minutes=5, seconds=10))
    service = make_service(
        influx, database, clock, agg_lateness_s=120.0, agg_late_check_interval_s=60.0
    )
    await service.run_cycle()
    late = spiked(plant_points([loop], BASE + 4 * MINUTE + timedelta(seconds=30.5), 1), 1000.0)
    await influx.write(late)
    clock.set(BASE + timedelta(minutes=6, seconds=10))

    # the counts of a poll that then failed: found, never corrected
    marks = await service.watermarks([loop], clock())
    found = await service.late_data.find(clock(), dict(marks))
    assert found.allowance is not None
    assert [stale.loop_id for stale in found.allowance.ranges] == [loop]

    report = await service.run_cycle()  # the next poll, at the same time
    assert report.late_minutes == 1
    assert report.late_ranges == 1
    rows = await stored_rows(database, "agg_1m", [loop], BASE, BASE + 6 * MINUTE)
    minute4 = (loop, BASE + 4 * MINUTE)
    assert_matches(rows[minute4], reference_buckets(points + late)[minute4])


async def three_hours_aggregated(
    store: InfluxQLStore, database: Database, clock: TestClock, loops: list[str], seed: int
) -> tuple[AggregationService, list[Point]]:
    """3 h of samples of ``loops`` from BASE, aggregated by a service that reconciles 3 h
    every 600 s with the default allowance; the clock 5 s after them."""
    points = plant_points(loops, BASE, 3 * 3600, seed=seed)
    await store.write(points)
    clock.set(BASE + timedelta(hours=3, seconds=5))
    service = make_service(
        store,
        database,
        clock,
        agg_lateness_s=120.0,
        agg_reconcile_hours=3.0,
        agg_reconcile_interval_s=600.0,
    )
    await service.run_cycle()
    return service, points


async def test_reconciliation_corrects_samples_ten_minutes_and_two_hours_late(
    influx: InfluxQLStore,
    database: Database,
    clock: TestClock,
    loop_ids: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    loops = loop_ids[:2]
    service, points = await three_hours_aggregated(influx, database, clock, loops, seed=5)
    hour1 = BASE + timedelta(hours=1)
    ten_late = spiked(
        plant_points([loops[0]], BASE + timedelta(hours=2, minutes=50, seconds=20.5), 1), 900.0
    )
    two_h_late = spiked(
        plant_points([loops[1]], hour1 + timedelta(minutes=2, seconds=40.5), 1), -900.0
    )
    await influx.write(ten_late + two_h_late)

    # the allowance check does not see them; the next reconciliation (due once per 600 s) does
    clock.set(BASE + timedelta(hours=3, minutes=1, seconds=5))
    quiet = await service.run_cycle()
    assert quiet.late_minutes == 0
    rows = await stored_rows(database, "agg_1m", loops, BASE, BASE + timedelta(hours=3))
    assert rows[(loops[0], BASE + timedelta(hours=2, minutes=50))]["pv_max"] < 900.0

    caplog.set_level(logging.WARNING, logger="clpm_aggregation.late_data")
    clock.set(BASE + timedelta(hours=3, minutes=11, seconds=5))
    report = await service.run_cycle()
    assert report.late_minutes == 2
    assert report.late_ranges == 2
    everything = points + ten_late + two_h_late
    minutes = reference_buckets(everything)
    rows = await stored_rows(database, "agg_1m", loops, BASE, BASE + timedelta(hours=3))
    for key in [
        (loops[0], BASE + timedelta(hours=2, minutes=50)),
        (loops[1], hour1 + timedelta(minutes=2)),
    ]:
        assert_matches(rows[key], minutes[key])
    assert rows[(loops[0], BASE + timedelta(hours=2, minutes=50))]["pv_max"] == 900.0
    hours = await stored_rows(database, "agg_1h", loops, BASE, BASE + timedelta(hours=3))
    expected_hours = reference_buckets(everything, timedelta(hours=1))
    assert set(hours) == set(expected_hours)
    for key, want in expected_hours.items():
        assert_matches(hours[key], want, rtol=1e-11)
    assert hours[(loops[1], hour1)]["pv_min"] == -900.0
    logged = [r for r in caplog.records if r.getMessage() == "late samples: minutes recomputed"]
    assert sorted((r.loop_id, r.start, r.minutes, r.reason) for r in logged) == [  # type: ignore[attr-defined]
        (loops[0], (BASE + timedelta(hours=2, minutes=50)).isoformat(), 1, "reconciliation"),
        (loops[1], (hour1 + timedelta(minutes=2)).isoformat(), 1, "reconciliation"),
    ]

    # corrected once: the next reconciliation finds nothing
    clock.set(BASE + timedelta(hours=3, minutes=21, seconds=5))
    again = await service.run_cycle()
    assert again.late_minutes == 0


def test_a_fresh_process_starts_the_reconciliation_where_the_clock_phase_points() -> None:
    interval = 600.0
    assert reconcile_phase_cursor(BASE, interval, 4) == 0  # 10:00, a multiple of 600 s
    assert reconcile_phase_cursor(BASE + timedelta(minutes=45, seconds=5), interval, 4) == 2
    assert reconcile_phase_cursor(BASE + timedelta(seconds=599.9), interval, 4) == 3
    assert reconcile_phase_cursor(BASE + timedelta(seconds=299), interval, 10_000) == 4983
    assert reconcile_phase_cursor(BASE, interval, 0) == 0


async def forty_minutes_then_late(
    influx: InfluxQLStore,
    database: Database,
    clock: TestClock,
    loop_ids: list[str],
    settings: dict[str, float],
    *,
    seed: int,
    late_at: datetime,
    pv: float,
) -> list[Point]:
    """40 min of samples from BASE aggregated by one process (``settings``), then one sample
    of PV ``pv`` per loop in the minute ``late_at``; returns every sample written."""
    points = plant_points(loop_ids, BASE, 40 * 60, seed=seed)
    await influx.write(points)
    clock.set(BASE + timedelta(minutes=40, seconds=5))
    await make_service(influx, database, clock, **settings).run_cycle()
    late = spiked(plant_points(loop_ids, late_at + timedelta(seconds=20.5), 1), pv)
    await influx.write(late)
    return points + late


async def assert_minute_recomputed(
    database: Database, loop_ids: list[str], everything: list[Point], minute: datetime, pv: float
) -> None:
    """Every loop's ``minute`` in agg_1m equals the reference of all its samples, late one
    (PV ``pv``) included."""
    rows = await stored_rows(database, "agg_1m", loop_ids, BASE, BASE + 40 * MINUTE)
    expected = reference_buckets(everything)
    for loop_id in loop_ids:
        assert_matches(rows[(loop_id, minute)], expected[(loop_id, minute)])
        assert pv in (rows[(loop_id, minute)]["pv_min"], rows[(loop_id, minute)]["pv_max"])


async def test_a_restarted_process_reconciles_a_slice_per_poll_from_the_clock_phase_not_all_at_once(
    influx: InfluxQLStore,
    database: Database,
    clock: TestClock,
    loop_ids: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fresh process used to reconcile every loop in its first cycle (at 10,000 loops with
    3 h of history about 30 s of influxd CPU right after each start) and to start its slices
    with the first loops again. Now its first cycle reconciles one poll's share (none here: the
    tests poll every 0.2 s), and the slices go on from where the clock's phase of the interval
    points: here the third of four loops."""
    settings = {
        "agg_lateness_s": 0.0,
        "agg_reconcile_hours": 1.0,
        "agg_reconcile_interval_s": 600.0,
    }
    late_minute = BASE + timedelta(minutes=10)
    everything = await forty_minutes_then_late(
        influx, database, clock, loop_ids, settings, seed=9, late_at=late_minute, pv=700.0
    )

    caplog.set_level(logging.WARNING, logger="clpm_aggregation.late_data")
    clock.set(BASE + timedelta(minutes=45, seconds=5))  # phase 305 s of 600: position 2 of 4
    restarted = make_service(influx, database, clock, **settings)
    first = await restarted.run_cycle()
    assert first.late_minutes == 0  # the former first cycle corrected all four loops here
    for _ in range(4):  # a quarter of the interval each: one loop per cycle
        clock.set(clock.now + timedelta(seconds=150))
        report = await restarted.run_cycle()
        assert report.late_minutes == 1
    corrected = [
        r.loop_id  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "late samples: minutes recomputed"
    ]
    ordered = sorted(loop_ids)
    assert corrected == ordered[2:] + ordered[:2]
    await assert_minute_recomputed(database, loop_ids, everything, late_minute, 700.0)


async def test_a_process_that_restarts_before_every_second_poll_still_reconciles_every_loop(
    influx: InfluxQLStore,
    database: Database,
    clock: TestClock,
    loop_ids: list[str],
) -> None:
    """Each start's first cycle reconciles one poll's share from the clock's phase, so a crash
    loop does not stop the reconciliation (with a first cycle that reconciled nothing, these
    four processes would have corrected nothing)."""
    settings = {
        "polling_interval": 150_000,  # a quarter of the interval: one of four loops per poll
        "agg_lateness_s": 0.0,
        "agg_reconcile_hours": 1.0,
        "agg_reconcile_interval_s": 600.0,
    }
    late_minute = BASE + timedelta(minutes=20)
    everything = await forty_minutes_then_late(
        influx, database, clock, loop_ids, settings, seed=10, late_at=late_minute, pv=-700.0
    )
    corrected = 0
    for k in range(4):  # four processes, each killed after its first cycle, 150 s apart
        clock.set(BASE + timedelta(minutes=41, seconds=5 + 150 * k))
        report = await make_service(influx, database, clock, **settings).run_cycle()
        corrected += report.late_minutes
    assert corrected == 4
    await assert_minute_recomputed(database, loop_ids, everything, late_minute, -700.0)


async def test_reconciliation_on_the_embedded_store(
    tmp_path: Path, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    store = EmbeddedStore(tmp_path / "ts.db")
    try:
        loop = loop_ids[0]
        points = plant_points([loop], BASE, 20 * 60, seed=3)
        await store.write(points)
        clock.set(BASE + timedelta(minutes=20, seconds=5))
        service = make_service(
            store, database, clock, agg_reconcile_hours=1.0, agg_reconcile_interval_s=60.0
        )
        await service.run_cycle()
        late = spiked(plant_points([loop], BASE + timedelta(minutes=3, seconds=10.5), 2), 500.0)
        await store.write(late)
        clock.set(BASE + timedelta(minutes=21, seconds=5))
        report = await service.run_cycle()
        assert report.late_minutes == 1
        key = (loop, BASE + 3 * MINUTE)
        rows = await stored_rows(database, "agg_1m", [loop], BASE, BASE + timedelta(minutes=21))
        assert_matches(rows[key], reference_buckets(points + late)[key])
        counts = await store.minute_counts([loop], BASE, BASE + 5 * MINUTE)
        assert counts[loop].bucket_ns.tolist() == [
            int((BASE + k * MINUTE).timestamp()) * NS for k in range(5)
        ]
        assert int(counts[loop].op[3]) == int(rows[key]["op_count"])
    finally:
        await store.close()


async def test_the_store_counts_equal_counts_of_the_raw_samples(
    influx: InfluxQLStore, loop_ids: list[str]
) -> None:
    points = plant_points(loop_ids, BASE, 4 * 60 + 17)
    await influx.write(points)
    counted = await influx.minute_counts(loop_ids, BASE, BASE + timedelta(minutes=5))
    raw = await influx.query_raw_many(loop_ids, BASE, BASE + timedelta(minutes=5))
    for loop_id in loop_ids:
        mine = MinuteCounts.of_series(raw[loop_id])
        assert counted[loop_id].bucket_ns.tolist() == mine.bucket_ns.tolist()
        assert counted[loop_id].pv.tolist() == mine.pv.tolist()
        # influxd counts PV only: SP and OP would cost as much again
        assert counted[loop_id].sp.tolist() == [NOT_COUNTED] * 5
        assert counted[loop_id].op.tolist() == [NOT_COUNTED] * 5
        assert mine.pv.tolist() != mine.op.tolist()  # the seed leaves some PV out
        assert len(mine.bucket_ns) == 5
        assert sum(mine.op.tolist()) == sum(1 for p in points if p.loop_id == loop_id)


async def test_the_store_totals_equal_the_sums_of_its_minute_counts(
    influx: InfluxQLStore, loop_ids: list[str]
) -> None:
    points = plant_points(loop_ids, BASE, 4 * 60 + 17)
    start, end = BASE + MINUTE, BASE + timedelta(minutes=5)
    await influx.write(points)
    # influxd answers the totals itself: one row per loop
    assert isinstance(influx, SampleTotaller)
    totals = await influx.sample_totals([*loop_ids, "NODATA1"], start, end)
    minutes = await influx.minute_counts(loop_ids, start, end)
    assert set(totals) == set(loop_ids)  # a loop without samples is absent
    for loop_id in loop_ids:
        counts = minutes[loop_id]
        expected = [
            NOT_COUNTED if column[0] == NOT_COUNTED else int(column.sum())
            for column in (counts.pv, counts.sp, counts.op)
        ]
        assert list(totals[loop_id]) == expected
        inside = [p for p in points if p.loop_id == loop_id and start <= p.time < end]
        assert expected[0] == sum(1 for p in inside if p.pv is not None)


def test_only_loops_whose_total_differs_from_agg_1m_are_counted_minute_by_minute() -> None:
    aggregated = aggregated_counts(
        _table(
            [
                ("A", BASE, 60, 60, 60),
                ("A", BASE + MINUTE, 60, 60, 60),
                ("A", BASE + 5 * MINUTE, 60, 60, 60),  # outside the window: not summed
                ("B", BASE, 60, 60, 60),
                ("C", BASE, 60, 59, 60),
                ("F", BASE, 60, 60, 60),
                ("G", BASE, 60, 60, 60),  # no sample left in the store: absent from its totals
            ]
        )
    )
    written = window_totals(aggregated, BASE, BASE + 2 * MINUTE)
    assert written["A"] == (120, 120, 120)
    totals = {
        "A": (120, NOT_COUNTED, NOT_COUNTED),  # equal
        "B": (61, NOT_COUNTED, NOT_COUNTED),  # one more PV
        "C": (60, 60, 60),  # one more SP, counted by this store
        "D": (5, NOT_COUNTED, NOT_COUNTED),  # no agg_1m row at all
        "E": (0, NOT_COUNTED, NOT_COUNTED),
        "F": (58, NOT_COUNTED, NOT_COUNTED),  # samples removed: equal totals prove nothing
    }
    assert suspects(totals, written) == ["B", "C", "D", "F"]


def test_totals_are_trusted_only_over_windows_the_retention_does_not_reach() -> None:
    now = BASE + timedelta(hours=10)
    start = now - timedelta(hours=3)
    assert totals_are_safe(start, now, None)  # kept for ever
    assert totals_are_safe(start, now, timedelta(days=7))
    assert totals_are_safe(start, now, timedelta(hours=3) + RETENTION_MARGIN)
    assert not totals_are_safe(start, now, timedelta(hours=3))  # the margin is missing
    assert not totals_are_safe(start, now, timedelta(hours=1))


def _table(rows: list[tuple[str, datetime, int, int, int]]) -> BucketTable:
    return BucketTable(
        np.asarray([r[0] for r in rows], dtype=object),
        np.asarray([int(r[1].timestamp()) * NS for r in rows], dtype=np.int64),
        {
            "pv_count": np.asarray([r[2] for r in rows], dtype=np.float64),
            "sp_count": np.asarray([r[3] for r in rows], dtype=np.float64),
            "op_count": np.asarray([r[4] for r in rows], dtype=np.float64),
        },
        (),
        np.zeros((len(rows), 0)),
    )


def _counts(loop: str, rows: list[tuple[int, int, int, int]]) -> MinuteCounts:
    return MinuteCounts(
        loop,
        np.asarray([int((BASE + r[0] * MINUTE).timestamp()) * NS for r in rows], dtype=np.int64),
        np.asarray([r[1] for r in rows], dtype=np.int64),
        np.asarray([r[2] for r in rows], dtype=np.int64),
        np.asarray([r[3] for r in rows], dtype=np.int64),
    )


def test_stale_ranges_joins_consecutive_minutes_and_ignores_equal_fewer_or_unwritten_ones() -> None:
    stored = _table(
        [
            ("A", BASE, 60, 60, 60),
            ("A", BASE + MINUTE, 60, 60, 60),
            ("A", BASE + 2 * MINUTE, 60, 60, 60),
            ("A", BASE + 3 * MINUTE, 60, 60, 60),
            ("A", BASE + 5 * MINUTE, 60, 60, 60),
        ]
    )
    counts = {
        "A": _counts(
            "A",
            [
                (0, 60, 60, 60),  # equal
                (1, 61, 60, 60),  # more PV
                (2, 60, 61, 60),  # more SP: joins the range
                (3, 30, 30, 30),  # fewer (pruned): not stale
                (4, 10, 10, 10),  # no agg_1m row: stale
                (6, 60, 60, 61),  # beyond the watermark: not judged
            ],
        )
    }
    found = stale_ranges(counts, aggregated_counts(stored), {"A": BASE + 6 * MINUTE})
    assert [(r.start, r.end, r.store_samples, r.aggregated_samples) for r in found] == [
        (BASE + MINUTE, BASE + 3 * MINUTE, 121, 120),
        (BASE + 4 * MINUTE, BASE + 5 * MINUTE, 10, 0),
    ]
    # a minute recomputed at these counts (a value the aggregation rejects) is not stale again
    remembered = {("A", int((BASE + 4 * MINUTE).timestamp()) * NS): (10, 10, 10)}
    again = stale_ranges(counts, aggregated_counts(stored), {"A": BASE + 6 * MINUTE}, remembered)
    assert [(r.start, r.end) for r in again] == [(BASE + MINUTE, BASE + 3 * MINUTE)]
    assert stale_ranges(counts, aggregated_counts(_table([])), {}) == []


async def test_the_allowance_check_compares_with_what_it_wrote_and_after_a_restart_with_agg_1m(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    loop = loop_ids[0]
    points = plant_points([loop], BASE, 6 * 60)
    await influx.write(points)
    clock.set(BASE + timedelta(minutes=5, seconds=10))
    service = make_service(
        influx, database, clock, agg_lateness_s=120.0, agg_late_check_interval_s=60.0
    )
    await service.run_cycle()
    # agg_1m's row of minute 4 claims more samples than it has: a check that read agg_1m would
    # take the late sample below for one of them; the check compares with what it wrote
    minute4 = BASE + 4 * MINUTE
    database.sql(
        f"UPDATE agg_1m SET pv_count = pv_count + 100 WHERE loop_id = '{loop}' "
        f"AND bucket_start = '{minute4.isoformat()}'"
    )
    late = spiked(plant_points([loop], minute4 + timedelta(seconds=40.5), 1), 700.0)
    await influx.write(late)
    clock.set(BASE + timedelta(minutes=6, seconds=10))
    report = await service.run_cycle()
    assert report.late_minutes == 1
    rows = await stored_rows(database, "agg_1m", [loop], BASE, BASE + 6 * MINUTE)
    assert_matches(rows[(loop, minute4)], reference_buckets(points + late)[(loop, minute4)])

    # a restarted process has nothing in memory: it compares with agg_1m's rows (were it to
    # take a minute it did not write for an empty one, minute 4 would be recomputed too)
    restarted = make_service(
        influx, database, clock, agg_lateness_s=120.0, agg_late_check_interval_s=60.0
    )
    minute5 = BASE + 5 * MINUTE
    later = spiked(plant_points([loop], minute5 + timedelta(seconds=20.5), 1), -700.0)
    await influx.write(later)
    clock.set(BASE + timedelta(minutes=7, seconds=10))
    report = await restarted.run_cycle()
    assert report.late_minutes == 1
    assert report.late_ranges == 1
    rows = await stored_rows(database, "agg_1m", [loop], BASE, BASE + 7 * MINUTE)
    everything = points + late + later
    assert rows[(loop, minute5)]["pv_min"] == -700.0
    assert_matches(rows[(loop, minute5)], reference_buckets(everything)[(loop, minute5)])


async def test_each_poll_checks_a_share_of_the_loops_and_every_loop_within_the_interval(
    influx: InfluxQLStore, database: Database, clock: TestClock
) -> None:
    loops = [f"SPREAD{k:02d}.PV" for k in range(16)]
    points = plant_points(loops, BASE, 5 * 60)
    await influx.write(points)
    clock.set(BASE + timedelta(minutes=5, seconds=1))
    service = make_service(
        influx,
        database,
        clock,
        agg_lateness_s=120.0,
        polling_interval=30_000,
        agg_late_check_interval_s=60.0,
    )
    first = await service.run_cycle()  # a new process checks every loop once
    assert first.loops == 16
    checked: list[set[str]] = []
    late: list[Point] = []
    for poll in range(1, 5):  # 30-s polls, no new minute yet: checks only
        clock.set(BASE + timedelta(minutes=5, seconds=1 + 30 * poll))
        before = dict(service.late_data.checked_at)
        if poll == 1:  # one late sample per loop, within the allowance
            late = [
                spiked(plant_points([loop], BASE + 4 * MINUTE + timedelta(seconds=50.5), 1), 99.0)[
                    0
                ]
                for loop in loops
            ]
            await influx.write(late)
        await service.run_cycle()
        checked.append({i for i, at in service.late_data.checked_at.items() if at != before[i]})
        if poll == 2:  # within one check interval of its arrival every loop was checked
            rows = await stored_rows(database, "agg_1m", loops, BASE, BASE + 5 * MINUTE)
            assert all(rows[(loop, BASE + 4 * MINUTE)]["pv_max"] == 99.0 for loop in loops)
    for share in checked:
        assert 0 < len(share) < len(loops)  # no poll carries the whole check
    for one, other in itertools.pairwise(checked):
        assert one | other == set(loops)  # any two consecutive polls (60 s) check every loop
        assert not one & other


async def test_late_samples_of_the_minute_a_poll_just_read_are_found_by_the_next_check(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    loop = loop_ids[0]
    points = plant_points([loop], BASE, 5 * 60)
    await influx.write(points)
    clock.set(BASE + timedelta(minutes=5, seconds=1))
    service = make_service(
        influx, database, clock, agg_lateness_s=30.0, agg_late_check_interval_s=60.0
    )
    await service.run_cycle()
    newer = plant_points([loop], BASE + 5 * MINUTE, 60, seed=2)
    await influx.write(newer)
    clock.set(BASE + timedelta(minutes=6, seconds=1))
    read = await service.run_cycle()  # reads minute 5; its check does not count it again
    assert read.samples == len(newer)
    minute5 = BASE + 5 * MINUTE
    late = spiked(plant_points([loop], minute5 + timedelta(seconds=59.5), 1), 555.0)
    await influx.write(late)  # 2 s after its minute was read, 30 s within the allowance
    found = 0
    for poll in range(1, 3):
        clock.set(BASE + timedelta(minutes=6, seconds=1 + 30 * poll))
        found += (await service.run_cycle()).late_minutes
    assert found == 1
    rows = await stored_rows(database, "agg_1m", [loop], BASE, BASE + 6 * MINUTE)
    assert_matches(rows[(loop, minute5)], reference_buckets(points + newer + late)[(loop, minute5)])


async def test_a_late_sample_found_by_the_poll_that_completes_its_hour_reaches_the_hour(
    influx: InfluxQLStore, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    """The poll that aggregates an hour's last minute rolls the hour up from agg_1m while its
    allowance check finds a late sample in an earlier minute of that hour: the correction must
    roll the hour up again, or agg_1h keeps the minute's old statistics for good."""
    loop = loop_ids[0]
    points = plant_points([loop], BASE + 55 * MINUTE, 4 * 60)
    await influx.write(points)
    clock.set(BASE + timedelta(minutes=59, seconds=10))
    service = make_service(
        influx, database, clock, agg_lateness_s=120.0, agg_late_check_interval_s=0.0
    )
    assert (await service.run_cycle()).samples == len(points)
    last_minute = plant_points([loop], BASE + 59 * MINUTE, 60, seed=4)
    late = spiked(plant_points([loop], BASE + 58 * MINUTE + timedelta(seconds=20.5), 1), 777.0)
    await influx.write(last_minute + late)
    clock.set(BASE + timedelta(minutes=60, seconds=10))
    report = await service.run_cycle()  # reads minute 59, completes the hour, finds minute 58
    assert report.samples == len(last_minute)
    assert report.late_minutes == 1
    everything = points + last_minute + late
    minutes = await stored_rows(database, "agg_1m", [loop], BASE, BASE + timedelta(hours=1))
    minute58 = (loop, BASE + 58 * MINUTE)
    assert_matches(minutes[minute58], reference_buckets(everything)[minute58])
    hours = await stored_rows(database, "agg_1h", [loop], BASE, BASE + timedelta(hours=1))
    assert hours[(loop, BASE)]["pv_max"] == 777.0
    hour = reference_buckets(everything, timedelta(hours=1))[(loop, BASE)]
    assert hours[(loop, BASE)]["pv_count"] == hour["pv_count"]


class CountingEmbeddedStore(EmbeddedStore):
    """The real embedded store, counting its minute-count queries (a spy, not a mock)."""

    minute_count_calls = 0

    async def minute_counts(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, MinuteCounts]:
        self.minute_count_calls += 1
        return await super().minute_counts(loop_ids, start, end)


async def test_the_allowance_on_a_store_without_totals_counts_each_window_once(
    tmp_path: Path, database: Database, clock: TestClock, loop_ids: list[str]
) -> None:
    store = CountingEmbeddedStore(tmp_path / "ts.db")
    try:
        loop = loop_ids[0]
        points = plant_points([loop], BASE, 5 * 60)
        await store.write(points)
        clock.set(BASE + timedelta(minutes=5, seconds=10))
        service = make_service(
            store,
            database,
            clock,
            agg_lateness_s=120.0,
            agg_reconcile_hours=0.0,
            agg_late_check_interval_s=60.0,  # the loop is checked at the next poll
        )
        await service.run_cycle()
        late = spiked(plant_points([loop], BASE + 4 * MINUTE + timedelta(seconds=30.5), 1), 900.0)
        await store.write(late + plant_points([loop], BASE + 5 * MINUTE, 60, seed=9))
        clock.set(BASE + timedelta(minutes=6, seconds=10))
        store.minute_count_calls = 0
        report = await service.run_cycle()
        assert report.late_minutes == 1
        assert store.minute_count_calls == 1  # no totals pass that sums the same counts
        rows = await stored_rows(database, "agg_1m", [loop], BASE, BASE + 5 * MINUTE)
        assert rows[(loop, BASE + 4 * MINUTE)]["pv_max"] == 900.0
    finally:
        await store.close()


class CountingInfluxQLStore(InfluxQLStore):
    """The real InfluxQL store, recording the loops it counts minute by minute and in totals
    (a spy)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.minute_counted: list[list[str]] = []
        self.totaled: list[tuple[list[str], datetime]] = []

    async def sample_totals(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, SampleTotals]:
        self.totaled.append((sorted(loop_ids), start))
        return await super().sample_totals(loop_ids, start, end)

    async def minute_counts(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, MinuteCounts]:
        self.minute_counted.append(sorted(loop_ids))
        return await super().minute_counts(loop_ids, start, end)


@pytest.fixture
async def counting_influx(influx_server: InfluxServer) -> AsyncIterator[CountingInfluxQLStore]:
    name = influx_server.create_database("agg_counting")
    store = CountingInfluxQLStore(influx_settings(influx_server, name), backoff_s=0.05)
    yield store
    await store.close()
    influx_server.drop_database(name)


async def test_the_reconciliation_counts_minute_by_minute_only_the_loops_whose_totals_differ(
    counting_influx: CountingInfluxQLStore,
    database: Database,
    clock: TestClock,
    loop_ids: list[str],
) -> None:
    store = counting_influx
    loops = loop_ids[:3]
    service, points = await three_hours_aggregated(store, database, clock, loops, seed=6)
    late = spiked(
        plant_points([loops[1]], BASE + timedelta(hours=1, minutes=7, seconds=12.5), 1), -900.0
    )
    await store.write(late)
    store.minute_counted.clear()
    clock.set(BASE + timedelta(hours=3, minutes=11, seconds=5))  # every loop's slice is due
    report = await service.run_cycle()
    assert service.late_data.reconcile_cursor == 0  # all three reconciled, back at the first
    assert report.late_minutes == 1
    # the autogen policy keeps everything: totals first, one loop counted minute by minute
    assert store.minute_counted == [[loops[1]]]
    minute = (loops[1], BASE + timedelta(hours=1, minutes=7))
    rows = await stored_rows(database, "agg_1m", loops, BASE, BASE + timedelta(hours=3))
    assert_matches(rows[minute], reference_buckets(points + late)[minute])
    assert rows[minute]["pv_min"] == -900.0


async def test_a_retention_shorter_than_the_horizon_counts_every_reconciled_loop_by_minute(
    influx_server: InfluxServer, database: Database, loop_ids: list[str]
) -> None:
    # influxd refuses samples older than a policy's duration: this test's samples are recent
    name = influx_server.create_database("agg_short_retention")
    influx_server.query(
        f'CREATE RETENTION POLICY "one_hour" ON "{name}" DURATION 1h REPLICATION 1 DEFAULT'
    )
    store = CountingInfluxQLStore(influx_settings(influx_server, name), backoff_s=0.05)
    try:
        loops = loop_ids[:3]
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        await store.write(plant_points(loops, now - timedelta(minutes=40), 39 * 60, seed=8))
        counted: dict[float, list[list[str]]] = {}
        totaled: dict[float, list[tuple[list[str], datetime]]] = {}
        for hours in (3.0, 0.5):  # a horizon beyond the policy's hour, and one inside it
            clock = TestClock(now + timedelta(seconds=5))
            service = make_service(
                store,
                database,
                clock,  # the same instance as the first: it takes over its leases at once
                agg_lateness_s=120.0,
                agg_reconcile_hours=hours,
                agg_reconcile_interval_s=600.0,
            )
            await service.run_cycle()
            store.minute_counted.clear()
            store.totaled.clear()
            clock.set(now + timedelta(minutes=11, seconds=5))
            report = await service.run_cycle()
            assert report.late_minutes == 0
            counted[hours] = store.minute_counted[:]
            totaled[hours] = store.totaled[:]
        assert counted[3.0] == [loops]  # totals could hide a removal: every loop by minute
        assert counted[0.5] == []  # totals equal, nothing counted by minute
        # the 30-minute horizon's slice compared the three loops' totals from its start
        assert (loops, floor_to(now + timedelta(minutes=11, seconds=5) - 30 * MINUTE, MINUTE)) in (
            totaled[0.5]
        )
    finally:
        await store.close()
        influx_server.drop_database(name)
