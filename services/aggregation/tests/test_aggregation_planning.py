"""Work-unit planning: complete minutes only, lateness re-read, chunk grid, no gap, no overlap."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from clpm_aggregation.planning import (
    HEAD_START,
    MAX_SPREAD_SPAN,
    backlog_minutes,
    complete_end,
    final_bound,
    final_hours,
    floor_to,
    head_start_units,
    held_span,
    plan_units,
    read_start,
    span_if_spread,
    spread_offsets,
    spread_span,
)

T = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
L = timedelta(seconds=120)


def plan(marks: dict[str, datetime], now: datetime, **kw: object) -> list:  # type: ignore[type-arg]
    options: dict[str, object] = {
        "lateness": L,
        "chunk": timedelta(minutes=60),
        "max_samples_per_unit": 600_000,
        "loops_per_query": 100,
    }
    options.update(kw)
    settled = options.pop("settled", {})
    return plan_units(marks, settled, now=now, **options)  # type: ignore[arg-type]


def test_the_current_partial_minute_is_never_planned() -> None:
    units = plan({"A": T}, T + timedelta(minutes=3, seconds=59))
    assert [(u.watermark, u.end) for u in units] == [(T, T + 3 * MIN)]
    assert plan({"A": T + 3 * MIN}, T + timedelta(minutes=3, seconds=59)) == []


def test_an_unknown_previous_read_re_reads_the_lateness_allowance() -> None:
    [unit] = plan({"A": T}, T + 2 * MIN)
    assert unit.read_start == T - 2 * MIN
    assert read_start(T, None, timedelta(seconds=90)) == T - 2 * MIN  # floored to a minute


def test_a_known_settled_time_shortens_the_re_read() -> None:
    # previous read at T+40s up to T: samples older than T+40s-120s = T-80s were all seen
    assert read_start(T, T + timedelta(seconds=40) - L, L) == T - 2 * MIN
    # a read long after the watermark (backfill): nothing to re-read
    assert read_start(T, T + timedelta(hours=5), L) == T
    # never re-reads further back than the allowance
    assert read_start(T, T - timedelta(hours=1), L) == T - 2 * MIN


def test_a_backlog_is_cut_on_the_chunk_grid_without_gaps_or_overlap() -> None:
    start = T + timedelta(minutes=17)
    units = plan({"A": start}, T + timedelta(hours=3, minutes=5, seconds=3))
    windows = [(u.watermark, u.end) for u in units]
    assert windows == [
        (start, T + timedelta(hours=1)),
        (T + timedelta(hours=1), T + timedelta(hours=2)),
        (T + timedelta(hours=2), T + timedelta(hours=3)),
        (T + timedelta(hours=3), T + timedelta(hours=3, minutes=5)),
    ]
    # later chunks of a historical backlog start at the previous end (settled long ago)
    assert [u.read_start for u in units[1:3]] == [T + timedelta(hours=1), T + timedelta(hours=2)]
    # the newest chunk re-reads from now - L
    assert units[3].read_start == T + timedelta(hours=3)


def test_units_group_loops_by_window_and_respect_the_size_limit() -> None:
    marks = {f"L{i:04d}": T for i in range(1000)} | {"X": T + MIN}
    units = plan(marks, T + timedelta(minutes=10), max_samples_per_unit=100_000)
    # window 12 min (2 re-read + 10 new) at 1 sample/s: 100,000 / 720 = 138 -> 100 per unit
    assert [len(u.loop_ids) for u in units if u.watermark == T] == [100] * 10
    covered = sorted(loop for u in units if u.watermark == T for loop in u.loop_ids)
    assert covered == sorted(k for k in marks if k != "X")
    assert [u.loop_ids for u in units if u.watermark == T + MIN] == [("X",)]
    # a large budget still splits the window (at least 4 units: reads overlap writes)
    bigger = plan(marks, T + timedelta(minutes=10), max_samples_per_unit=1_000_000)
    assert [len(u.loop_ids) for u in bigger if u.watermark == T] == [200] * 5
    few = plan({"A": T, "B": T}, T + timedelta(minutes=10))
    assert [u.loop_ids for u in few] == [("A", "B")]


def test_units_are_ordered_by_end_so_each_loop_commits_in_order() -> None:
    units = plan({"A": T, "B": T + timedelta(minutes=90)}, T + timedelta(hours=3))
    ends = [u.end for u in units]
    assert ends == sorted(ends)
    for loop in ("A", "B"):
        mine = [u for u in units if loop in u.loop_ids]
        assert all(a.end == b.watermark for a, b in itertools.pairwise(mine))


def test_an_hour_is_final_once_no_later_unit_re_reads_it() -> None:
    assert final_bound(T + timedelta(hours=1), T + timedelta(hours=1, seconds=30), L) == (
        T + timedelta(minutes=58)
    )
    assert final_hours(T + timedelta(minutes=57), T + timedelta(minutes=58)) == []
    assert final_hours(T + timedelta(minutes=58), T + timedelta(hours=1, minutes=1)) == [T]
    assert final_hours(T, T + timedelta(hours=2)) == [T, T + timedelta(hours=1)]
    assert final_hours(T + timedelta(hours=1), T + timedelta(hours=1)) == []


def test_floor_to_uses_the_epoch_grid() -> None:
    assert floor_to(T + timedelta(seconds=59.9), MIN) == T
    assert floor_to(T + timedelta(minutes=59), timedelta(hours=1)) == T


def test_a_loop_far_behind_gets_its_newest_minutes_first_and_only_once() -> None:
    now = T + timedelta(hours=2, seconds=30)
    marks = {"NEW": T, "CURRENT": T + timedelta(hours=1, minutes=59), "OUTAGE": T + 25 * MIN}
    [unit] = head_start_units(marks, {}, now=now, max_samples_per_unit=600_000)
    newest = T + timedelta(hours=2)
    assert unit.loop_ids == ("NEW", "OUTAGE")  # the loop at the present needs none
    assert (unit.read_start, unit.end) == (newest - HEAD_START, newest)
    # the next head start reads only the minutes since (none within the same minute)
    done = dict.fromkeys(unit.loop_ids, newest)
    assert head_start_units(marks, done, now=now, max_samples_per_unit=600_000) == []
    [later] = head_start_units(marks, done, now=now + 2 * MIN, max_samples_per_unit=600_000)
    assert (later.read_start, later.end) == (newest, newest + 2 * MIN)
    # the catch-up still plans every minute from the watermark on: nothing skipped
    assert [u.watermark for u in plan({"NEW": T}, now)] == [T, T + timedelta(hours=1)]


def test_spread_offsets_are_stable_slots_of_the_polls_in_a_minute() -> None:
    loops = [f"TIC{i:04d}" for i in range(2000)]
    offsets = spread_offsets(loops, timedelta(seconds=30))
    assert set(offsets.values()) == {timedelta(0), timedelta(seconds=30)}
    assert offsets == spread_offsets(reversed(loops), timedelta(seconds=30))  # per id, stable
    late = sum(1 for offset in offsets.values() if offset)
    assert 900 <= late <= 1100  # about half the loops each poll
    quarter = spread_offsets(loops, timedelta(seconds=15))
    assert set(quarter.values()) == {timedelta(seconds=15 * k) for k in range(4)}
    # one poll per minute (or fewer): nothing to spread
    assert spread_offsets(loops, timedelta(seconds=60)) == {}
    assert spread_offsets(loops, timedelta(minutes=5)) == {}


def test_a_spread_loop_is_planned_up_to_the_minute_current_at_its_offset() -> None:
    marks = {"A": T, "B": T}
    offsets = {"B": timedelta(seconds=30)}
    # 10 s into minute 3: A's minutes 0-2 are complete; B waits for its poll 30 s later
    units = plan(marks, T + timedelta(minutes=3, seconds=10), offsets=offsets)
    assert {(u.loop_ids, u.end) for u in units} == {(("A",), T + 3 * MIN), (("B",), T + 2 * MIN)}
    units = plan(marks, T + timedelta(minutes=3, seconds=40), offsets=offsets)
    assert {(u.loop_ids, u.end) for u in units} == {(("A", "B"), T + 3 * MIN)}
    # the backlog follows the same ends
    assert backlog_minutes(marks, T + timedelta(minutes=3, seconds=10), offsets) == 3 + 2


@pytest.mark.parametrize("span_min", [1, 2])
def test_spread_polls_write_every_minute_once_and_share_the_loops(span_min: int) -> None:
    """30-s polls over 10 minutes: each loop's minutes are planned back to back, each once, a
    whole span per unit, before the next span has passed; each poll reads the span of its
    share of the loops (a half over 1 minute, a quarter over 2)."""
    loops = [f"FIC{i:03d}" for i in range(400)]
    poll = timedelta(seconds=30)
    span = span_min * MIN
    slots = span_min * 2
    offsets = spread_offsets(loops, poll, span)
    marks = dict.fromkeys(loops, T)
    written: dict[str, list[tuple[datetime, datetime]]] = {loop: [] for loop in loops}
    per_poll: list[int] = []
    for k in range(1, 21):
        now = T + timedelta(seconds=7) + k * poll
        units = plan(marks, now, offsets=offsets, span=span)
        per_poll.append(sum(len(u.loop_ids) for u in units))
        for unit in units:
            for loop in unit.loop_ids:
                assert unit.watermark == marks[loop]
                assert unit.end <= floor_to(now, MIN)  # complete minutes only
                assert unit.end - unit.watermark == span
                assert now - unit.end < span  # its oldest minute less than 2 spans late
                written[loop].append((unit.watermark, unit.end))
                marks[loop] = unit.end
    for windows in written.values():
        assert windows[0][0] == T
        assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))  # no gap, no overlap
    share = len(loops) / slots
    assert all(0.75 * share <= n <= 1.25 * share for n in per_poll[slots:]), per_poll


def test_the_spread_span_grows_until_a_poll_reads_at_most_its_share() -> None:
    poll = timedelta(seconds=30)
    assert spread_span(2_000, poll, 2_500) == MIN  # 1,000 loops per poll
    assert spread_span(5_000, poll, 2_500) == MIN
    assert spread_span(5_001, poll, 2_500) == 2 * MIN
    assert spread_span(10_000, poll, 2_500) == 2 * MIN  # 4 polls of 2,500 loops
    assert spread_span(20_000, poll, 2_500) == 4 * MIN
    assert spread_span(10**6, poll, 2_500) == MAX_SPREAD_SPAN  # bounded lateness
    # one poll a minute: 10,000 loops over the 4 polls of 4 minutes
    assert spread_span(10_000, timedelta(seconds=60), 2_500) == 4 * MIN
    offsets = spread_offsets([f"TIC{i:04d}" for i in range(4000)], poll, 2 * MIN)
    assert set(offsets.values()) == {timedelta(seconds=30 * k) for k in range(4)}
    # below AGG_SPREAD_MIN_LOOPS no spread at all; 0 spreads from the first loop
    assert span_if_spread(999, poll, 1_000, 2_500) is None
    assert span_if_spread(1_000, poll, 1_000, 2_500) == MIN
    assert span_if_spread(10_000, poll, 1_000, 2_500) == 2 * MIN
    assert span_if_spread(0, poll, 0, 2_500) is None
    assert span_if_spread(1, poll, 0, 2_500) == MIN


def test_a_span_grows_at_once_and_shrinks_only_with_a_margin() -> None:
    poll = timedelta(seconds=30)
    # more loops: the longer span at once
    assert held_span(MIN, spread_span(5_001, poll, 2_500), 5_001, poll, 2_500) == 2 * MIN
    # loops hovering just under the bound of the shorter span keep the longer one
    assert held_span(2 * MIN, spread_span(5_000, poll, 2_500), 5_000, poll, 2_500) == 2 * MIN
    assert held_span(2 * MIN, spread_span(4_501, poll, 2_500), 4_501, poll, 2_500) == 2 * MIN
    # at 90 % of it, the shorter span
    assert held_span(2 * MIN, spread_span(4_500, poll, 2_500), 4_500, poll, 2_500) == MIN
    # never longer than the span in use: from 5 minutes, 9,000 loops shrink to 2 minutes
    assert held_span(5 * MIN, spread_span(9_000, poll, 2_500), 9_000, poll, 2_500) == 2 * MIN
    assert held_span(5 * MIN, spread_span(9_500, poll, 2_500), 9_500, poll, 2_500) == 3 * MIN


def test_a_spread_loop_over_two_minutes_waits_for_the_span_and_its_slot() -> None:
    marks = {"A": T, "B": T, "C": T}
    offsets = {"B": timedelta(0), "C": timedelta(seconds=90)}  # A is not spread
    at = T + timedelta(minutes=3, seconds=20)  # span [T+2, T+4) under way, 80 s since T+2
    assert complete_end(at, offsets["B"], 2 * MIN) == T + 2 * MIN
    assert complete_end(at, offsets["C"], 2 * MIN) == T  # its slot in this span: from T+3:30
    assert complete_end(at + 10 * timedelta(seconds=1), offsets["C"], 2 * MIN) == T + 2 * MIN
    units = plan(marks, at, offsets=offsets, span=2 * MIN)
    assert {(u.loop_ids, u.end) for u in units} == {(("A",), T + 3 * MIN), (("B",), T + 2 * MIN)}
    assert backlog_minutes(marks, at, offsets, 2 * MIN) == 3 + 2 + 0
