"""The TimeSeriesStore protocol, run against every backend that can run here (see conftest)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from clpm_shared.timeseries.base import (
    NOT_COUNTED,
    InvalidQueryError,
    LatestManyReader,
    LatestValue,
    MinuteCounter,
    Point,
    TimeSeriesStore,
    from_ns,
    to_ns,
)
from clpm_shared.timeseries.embedded import EmbeddedStore

BASE = datetime(2025, 1, 10, 10, 0, 0, tzinfo=UTC)
LoopFactory = Callable[[str], str]
PointFactory = Callable[..., list[Point]]


def _seconds(n: float) -> datetime:
    return BASE + timedelta(seconds=n)


async def test_batched_write_reads_back_every_value(
    store: TimeSeriesStore, unique_loop: LoopFactory, make_points: PointFactory
) -> None:
    loop = unique_loop("write")
    points = make_points(loop, 1000, modes=("AUT", "MAN", "CAS"))
    assert await store.write(points) == 1000
    page = await store.query_raw(loop, _seconds(0), _seconds(1000))
    series = page.series
    assert page.next_cursor is None
    assert len(series) == 1000
    assert series.t_ns.tolist() == [to_ns(p.time) for p in points]
    np.testing.assert_array_equal(series.pv, [p.pv for p in points])
    np.testing.assert_array_equal(series.sp, [p.sp for p in points])
    np.testing.assert_array_equal(series.op, [p.op for p in points])
    assert series.mode.tolist() == [p.mode for p in points]


async def test_raw_window_is_half_open(
    store: TimeSeriesStore, unique_loop: LoopFactory, make_points: PointFactory
) -> None:
    loop = unique_loop("window")
    await store.write(make_points(loop, 20))
    series = (await store.query_raw(loop, _seconds(5), _seconds(10))).series
    assert [from_ns(t) for t in series.t_ns] == [_seconds(s) for s in range(5, 10)]
    assert len((await store.query_raw(loop, _seconds(5), _seconds(5))).series) == 0
    assert len((await store.query_raw(loop, _seconds(100), _seconds(200))).series) == 0


async def test_limit_and_cursor_page_through_without_loss_or_duplicates(
    store: TimeSeriesStore, unique_loop: LoopFactory, make_points: PointFactory
) -> None:
    loop = unique_loop("pages")
    points = make_points(loop, 53)
    await store.write(points)
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await store.query_raw(loop, _seconds(0), _seconds(60), limit=10, cursor=cursor)
        assert len(page.series) <= 10
        seen.extend(page.series.t_ns.tolist())
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 6
    assert seen == [to_ns(p.time) for p in points]


async def test_limit_equal_to_the_row_count_needs_no_second_page(
    store: TimeSeriesStore, unique_loop: LoopFactory, make_points: PointFactory
) -> None:
    loop = unique_loop("exact")
    await store.write(make_points(loop, 10))
    page = await store.query_raw(loop, _seconds(0), _seconds(60), limit=10)
    assert len(page.series) == 10
    assert page.next_cursor is None


async def test_field_selection_returns_only_the_asked_fields(
    store: TimeSeriesStore, unique_loop: LoopFactory
) -> None:
    loop = unique_loop("fields")
    await store.write(
        [
            Point(loop, _seconds(0), pv=1.0, sp=2.0, op=3.0, mode="AUT"),
            Point(loop, _seconds(1), sp=2.5, mode="MAN"),  # no PV in this sample
            Point(loop, _seconds(2), pv=1.2, sp=2.0, op=3.3, mode="AUT"),
        ]
    )
    pv_only = (await store.query_raw(loop, _seconds(0), _seconds(3), fields=["pv"])).series
    assert pv_only.pv.tolist() == [1.0, 1.2]
    assert np.isnan(pv_only.sp).all()
    assert np.isnan(pv_only.op).all()
    assert pv_only.mode.tolist() == [None, None]

    with_mode = (
        await store.query_raw(loop, _seconds(0), _seconds(3), fields=["SP", "Mode"])
    ).series
    assert with_mode.sp.tolist() == [2.0, 2.5, 2.0]
    assert with_mode.mode.tolist() == ["AUT", "MAN", "AUT"]
    assert np.isnan(with_mode.pv).all()

    mode_only = (await store.query_raw(loop, _seconds(0), _seconds(3), fields=["Mode"])).series
    assert mode_only.mode.tolist() == ["AUT", "MAN", "AUT"]


async def test_query_raw_many_returns_each_loop_and_empty_for_unknown(
    store: TimeSeriesStore, unique_loop: LoopFactory, make_points: PointFactory
) -> None:
    loops = [unique_loop(f"many{i}") for i in range(5)]
    for i, loop in enumerate(loops):
        await store.write(make_points(loop, 30 + i))
    unknown = unique_loop("nodata")
    result = await store.query_raw_many([*loops, unknown], _seconds(10), _seconds(31))
    assert set(result) == {*loops, unknown}
    for i, loop in enumerate(loops):
        series = result[loop]
        assert series.loop_id == loop
        expected = list(range(10, min(31, 30 + i)))
        assert [from_ns(t) for t in series.t_ns] == [_seconds(s) for s in expected]
        assert series.op.tolist() == pytest.approx([20.0 + 0.1 * s for s in expected])
    assert len(result[unknown]) == 0


async def test_latest_gives_each_field_its_own_time(
    store: TimeSeriesStore, unique_loop: LoopFactory
) -> None:
    loop = unique_loop("latest")
    await store.write(
        [
            Point(loop, _seconds(0), pv=1.0, sp=5.0, op=7.0, mode="AUT"),
            Point(loop, _seconds(10), pv=2.0, op=8.0, mode="MAN"),
            Point(loop, _seconds(20), pv=3.0),
        ]
    )
    latest = await store.latest(loop)
    assert latest is not None
    assert set(latest.values) == {"PV", "SP", "OP", "Mode"}
    assert latest.values["Mode"].value == "MAN"
    assert latest.values["PV"].value == 3.0
    assert latest.values["PV"].time == _seconds(20)
    assert latest.values["SP"].value == 5.0
    assert latest.values["SP"].time == _seconds(0)
    assert latest.values["OP"].value == 8.0
    assert latest.values["OP"].time == _seconds(10)
    assert latest.time == _seconds(20)
    with_mode = await store.latest(loop, ["mode", "sp"])
    assert with_mode is not None
    assert set(with_mode.values) == {"Mode", "SP"}
    assert with_mode.values["Mode"].value == "MAN"
    assert with_mode.values["Mode"].time == _seconds(10)


async def test_latest_many_equals_latest_of_each_loop_in_one_query(
    store: TimeSeriesStore, unique_loop: LoopFactory
) -> None:
    first, second, empty = unique_loop("many-a"), unique_loop("many-b"), unique_loop("many-c")
    await store.write(
        [
            Point(first, _seconds(0), pv=1.0, sp=5.0, op=7.0, mode="AUT"),
            Point(first, _seconds(10), pv=2.0, op=8.0, mode="MAN"),
            Point(first, _seconds(20), pv=3.0),
            Point(second, _seconds(5), pv=9.0, sp=9.5, op=1.0, mode="CAS"),
            Point(second, _seconds(6), sp=9.7),
        ]
    )
    assert isinstance(store, LatestManyReader)
    many = await store.latest_many([second, empty, first])
    assert set(many) == {first, second}
    for loop in (first, second):
        one = await store.latest(loop)
        assert one is not None
        assert dict(many[loop].values) == dict(one.values), loop
    assert many[second].values["SP"] == LatestValue(9.7, _seconds(6))
    assert many[second].values["Mode"].value == "CAS"
    assert many[first].values["Mode"] == LatestValue("MAN", _seconds(10))
    assert await store.latest_many([]) == {}


async def test_latest_many_takes_what_the_newest_sample_lacks_from_older_ones(
    store: TimeSeriesStore, unique_loop: LoopFactory
) -> None:
    whole, modeless, old = unique_loop("whole"), unique_loop("modeless"), unique_loop("old")
    long_ago = BASE - timedelta(days=20)
    await store.write(
        [
            Point(whole, _seconds(0), pv=1.0, sp=2.0, op=3.0, mode="MAN"),
            Point(whole, _seconds(30), pv=4.0, sp=5.0, op=6.0, mode="AUT"),
            Point(modeless, _seconds(0), pv=1.0, sp=2.0, op=3.0, mode="CAS"),
            Point(modeless, _seconds(30), pv=7.0, sp=8.0, op=9.0),
            Point(old, long_ago, pv=0.5, op=0.25),
        ]
    )
    assert isinstance(store, LatestManyReader)
    many = await store.latest_many([old, modeless, whole])
    assert dict(many[whole].values) == {
        "PV": LatestValue(4.0, _seconds(30)),
        "SP": LatestValue(5.0, _seconds(30)),
        "OP": LatestValue(6.0, _seconds(30)),
        "Mode": LatestValue("AUT", _seconds(30)),
    }
    assert many[modeless].values["PV"] == LatestValue(7.0, _seconds(30))
    assert many[modeless].values["Mode"] == LatestValue("CAS", _seconds(0))
    assert dict(many[old].values) == {
        "PV": LatestValue(0.5, long_ago),
        "SP": LatestValue(None, None),
        "OP": LatestValue(0.25, long_ago),
        "Mode": LatestValue(None, None),
    }


async def test_minute_counts_count_each_field(
    store: TimeSeriesStore, unique_loop: LoopFactory
) -> None:
    loop = unique_loop("counts")
    await store.write(
        [Point(loop, _seconds(k), pv=1.0, sp=None if k % 3 else 2.0, op=3.0) for k in range(90)]
    )
    assert isinstance(store, MinuteCounter)
    counts = (await store.minute_counts([loop], _seconds(0), _seconds(120)))[loop]
    assert counts.bucket_ns.tolist() == [to_ns(_seconds(0)), to_ns(_seconds(60))]
    assert counts.pv.tolist() == [60, 30]
    if isinstance(store, EmbeddedStore):  # SQLite counts every field
        assert counts.sp.tolist() == [20, 10]
        assert counts.op.tolist() == [60, 30]
    else:  # influxd counts PV only (each counted field costs as much again)
        assert counts.sp.tolist() == [NOT_COUNTED, NOT_COUNTED]
        assert counts.op.tolist() == [NOT_COUNTED, NOT_COUNTED]


async def test_latest_of_a_loop_without_data_is_none(
    store: TimeSeriesStore, unique_loop: LoopFactory
) -> None:
    assert await store.latest(unique_loop("nothing")) is None


async def test_time_range_spans_first_to_last_sample(
    store: TimeSeriesStore, unique_loop: LoopFactory, make_points: PointFactory
) -> None:
    loop = unique_loop("range")
    await store.write(make_points(loop, 40, start=_seconds(100), step_s=2.5))
    span = await store.time_range(loop)
    assert span is not None
    assert span.start == _seconds(100)
    assert span.end == _seconds(100 + 39 * 2.5)
    assert await store.time_range(unique_loop("norange")) is None


async def test_discover_loops_lists_written_loops_sorted(
    store: TimeSeriesStore, unique_loop: LoopFactory, make_points: PointFactory
) -> None:
    mine = [unique_loop("disc_b"), unique_loop("disc_a"), unique_loop("disc/c:1")]
    for loop in mine:
        await store.write(make_points(loop, 2))
    found = await store.discover_loops()
    assert found == sorted(found)
    assert set(mine) <= set(found)
    assert unique_loop("disc_never") not in found


async def test_aggregate_equals_numpy_on_the_same_points(
    store: TimeSeriesStore, unique_loop: LoopFactory
) -> None:
    loop = unique_loop("agg")
    rng = np.random.default_rng(7)
    times = np.sort(rng.choice(600, size=200, replace=False)).astype(float)
    pv = rng.normal(50, 5, size=times.size)
    sp = np.where(rng.random(times.size) < 0.3, np.nan, 50.0 + rng.normal(0, 1, times.size))
    await store.write(
        [
            Point(loop, _seconds(t), pv=float(p), sp=None if np.isnan(s) else float(s), op=1.0)
            for t, p, s in zip(times, pv, sp, strict=True)
        ]
    )
    start, end = _seconds(30), _seconds(570)
    result = await store.aggregate(loop, start, end, 60)
    inside = (times >= 30) & (times < 570)
    t_in, pv_in, sp_in = times[inside], pv[inside], sp[inside]
    base_s = to_ns(BASE) // 1_000_000_000
    bucket_s = ((base_s + t_in) // 60) * 60
    expected_buckets = np.unique(bucket_s)
    assert result.interval_s == 60
    assert result.bucket_ns.tolist() == [int(b) * 1_000_000_000 for b in expected_buckets]
    for name, values in (("pv", pv_in), ("sp", sp_in)):
        for statistic in ("mean", "min", "max", "count", "first", "last", "std"):
            expected = []
            for bucket in expected_buckets:
                chosen = values[(bucket_s == bucket) & ~np.isnan(values)]
                expected.append(
                    {
                        "mean": lambda v: v.mean() if v.size else np.nan,
                        "min": lambda v: v.min() if v.size else np.nan,
                        "max": lambda v: v.max() if v.size else np.nan,
                        "count": lambda v: float(v.size),
                        "first": lambda v: v[0] if v.size else np.nan,
                        "last": lambda v: v[-1] if v.size else np.nan,
                        "std": lambda v: v.std(ddof=1) if v.size > 1 else np.nan,
                    }[statistic](chosen)
                )
            np.testing.assert_allclose(
                result.stats[f"{name}_{statistic}"], expected, rtol=1e-9, err_msg=statistic
            )
    np.testing.assert_allclose(result.stats["op_mean"], 1.0)


async def test_aggregate_of_an_empty_window_has_no_buckets(
    store: TimeSeriesStore, unique_loop: LoopFactory
) -> None:
    result = await store.aggregate(unique_loop("aggempty"), _seconds(0), _seconds(600), 60)
    assert result.bucket_ns.size == 0


async def test_ping_answers(store: TimeSeriesStore) -> None:
    assert await store.ping() is True


async def test_unknown_mode_is_stored_without_the_tag(
    store: TimeSeriesStore, unique_loop: LoopFactory
) -> None:
    loop = unique_loop("mode")
    written = await store.write(
        [
            Point(loop, _seconds(0), pv=1.0, mode="AUT"),
            Point(loop, _seconds(1), pv=2.0, mode=None),
            Point(loop, _seconds(2), pv=3.0, mode="not a mode!"),
            Point(loop, _seconds(3), pv=4.0, mode=""),
        ]
    )
    assert written == 4
    series = (await store.query_raw(loop, _seconds(0), _seconds(4))).series
    assert series.pv.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert series.mode.tolist() == ["AUT", None, None, None]


async def test_bad_points_are_dropped_and_the_rest_is_written(
    store: TimeSeriesStore, unique_loop: LoopFactory
) -> None:
    loop = unique_loop("bad")
    written = await store.write(
        [
            Point(loop, _seconds(0), pv=1.0),
            Point("bad id with spaces", _seconds(1), pv=2.0),
            Point(loop, datetime(2025, 1, 10, 10, 0, 2), pv=3.0),  # naive time
            Point(loop, _seconds(3), pv=float("nan"), sp=None, op=float("inf")),
            Point(loop, _seconds(4), pv=float("nan"), sp=5.0),
        ]
    )
    assert written == 2
    series = (await store.query_raw(loop, _seconds(0), _seconds(10))).series
    assert [from_ns(t) for t in series.t_ns] == [_seconds(0), _seconds(4)]
    assert series.sp.tolist()[1] == 5.0
    assert np.isnan(series.pv[1])


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda s, loop: s.query_raw(loop, _seconds(10), _seconds(0)), "end"),
        (lambda s, loop: s.query_raw(loop, datetime(2025, 1, 1), _seconds(1)), "start"),
        (lambda s, loop: s.query_raw(loop, _seconds(0), _seconds(1), limit=0), "limit"),
        (lambda s, loop: s.query_raw(loop, _seconds(0), _seconds(1), fields=["TEMP"]), "fields"),
        (lambda s, loop: s.query_raw(loop, _seconds(0), _seconds(1), cursor="%%%"), "cursor"),
        (lambda s, loop: s.query_raw(loop, _seconds(0), _seconds(1), cursor="MS4x"), "cursor"),
        (lambda s, loop: s.aggregate(loop, _seconds(0), _seconds(60), 0), "interval_s"),
        (lambda s, loop: s.aggregate(loop, _seconds(0), _seconds(10**7), 1), "interval_s"),
        (lambda s, loop: s.latest(loop, []), "fields"),
    ],
)
async def test_bad_arguments_raise_an_error_naming_the_parameter(
    store: TimeSeriesStore, unique_loop: LoopFactory, call: Callable[..., object], parameter: str
) -> None:
    with pytest.raises(InvalidQueryError) as raised:
        await call(store, unique_loop("args"))  # type: ignore[misc]
    assert raised.value.parameter == parameter


async def test_a_cursor_of_another_loop_is_refused(
    store: TimeSeriesStore, unique_loop: LoopFactory, make_points: PointFactory
) -> None:
    first, second = unique_loop("cur1"), unique_loop("cur2")
    await store.write(make_points(first, 5) + make_points(second, 5))
    page = await store.query_raw(first, _seconds(0), _seconds(5), limit=2)
    assert page.next_cursor is not None
    with pytest.raises(InvalidQueryError, match="another loop"):
        await store.query_raw(second, _seconds(0), _seconds(5), limit=2, cursor=page.next_cursor)


HOSTILE_LOOP_IDS = [
    "x' OR 1=1",
    "' OR ''='",
    'TIC"; DROP MEASUREMENT control_loops; --',
    "TIC\\' OR loop_id =~ /.*/ --",
    "TIC100\n DROP DATABASE x",
    "TIC100 value=1",
    "TIC,Mode=MAN",
    "/.*/",
    "TIC" + "9" * 5000,
    "TÏC-Ω-温度",
    "",
    " TIC100",
    "TIC100\x00",
]


@pytest.mark.parametrize("hostile", HOSTILE_LOOP_IDS, ids=lambda v: repr(v)[:24])
async def test_hostile_loop_ids_are_refused_and_leak_nothing(
    store: TimeSeriesStore, unique_loop: LoopFactory, make_points: PointFactory, hostile: str
) -> None:
    victim = unique_loop("victim")
    await store.write(make_points(victim, 5))
    before = await store.discover_loops()

    assert await store.write([Point(hostile, _seconds(0), pv=1.0, sp=1.0, op=1.0)]) == 0
    for call in (
        lambda: store.query_raw(hostile, _seconds(0), _seconds(10)),
        lambda: store.query_raw_many([victim, hostile], _seconds(0), _seconds(10)),
        lambda: store.latest(hostile),
        lambda: store.time_range(hostile),
        lambda: store.aggregate(hostile, _seconds(0), _seconds(10), 1),
    ):
        with pytest.raises(InvalidQueryError) as raised:
            await call()
        assert raised.value.parameter in {"loop_id", "loop_ids"}

    assert await store.discover_loops() == before
    still = (await store.query_raw(victim, _seconds(0), _seconds(10))).series
    assert len(still) == 5
