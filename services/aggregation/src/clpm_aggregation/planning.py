"""Planning work units: which loops to read over which window, so no minute is skipped or doubled.

Rules (all times UTC, minute-aligned):

* A loop's **watermark** ``W`` is the end of the last minute written for it. Only *complete*
  minutes are aggregated: a unit ends at most at the start of the current minute, so a
  partial minute is never written and the watermark never passes a minute that can still
  receive on-time samples.
* **Spread** (:func:`spread_offsets`): over a span ``S`` of whole minutes (:func:`spread_span`)
  holding several polls (every ``P``), a loop may be given a stable offset ``k P`` (``k`` <
  ``S / P``, from a hash of its id); its units then end at the start of the span (epoch-aligned)
  current at ``now - k P``. Each poll of a span then reads the span just ended of its share of
  the loops, instead of the first poll reading every loop's and the next ones nothing: the same
  samples per minute, split over its polls. With ``S`` of 2 minutes or more a poll reads fewer
  loops over a longer window, which costs the store and the client less (they pay per series as
  well as per sample). A loop's minutes are written at most ``S - 1 min + k P`` later than
  without the spread; the rules above hold for each loop.
* A unit re-reads from ``floor_minute(min(W, T_prev - L))`` where ``L`` is the lateness
  allowance and ``T_prev`` the time of the previous read up to ``W``: every sample that arrives
  at most ``L`` after its timestamp is therefore read at least once after it arrived, and its
  minute is recomputed (an idempotent upsert of the same key). When ``T_prev`` is unknown (new
  process, lease taken over) the unit re-reads from ``W - L``.
* Windows end at the next multiple of the chunk length (``AGG_CHUNK_MINUTES``, epoch-aligned), so
  historical catch-up proceeds in bounded chunks and, with 60-minute chunks, hour by hour.
* Loops sharing the same ``(read start, W)`` are batched into units of bounded size.

Each unit's commit is a compare-and-set of the watermarks from ``W`` to the unit's end (see
``clpm_shared.db.repositories.watermarks``): the minutes ``[W, end)`` are committed exactly once.

**Head start** (:func:`head_start_units`): a loop far behind (new, with hours of history, or
after a long outage) first gets its newest :data:`HEAD_START` minutes written to ``agg_1m``,
ahead of its watermark, so that the dashboards show current data while the history is
aggregated. These writes never move a watermark and roll up no hour: the catch-up computes
the same minutes again in order when it reaches them (an upsert of the same keys, with any
sample that arrived since), so the rules above hold unchanged.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MINUTE = timedelta(minutes=1)
MIN_UNITS = 4
"""A window's loops are split into at least this many units (when there are enough loops)."""
HOUR = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """``moment`` rounded down to a multiple of ``step`` since the Unix epoch."""
    return _EPOCH + ((moment - _EPOCH) // step) * step


def ceil_to(moment: datetime, step: timedelta) -> datetime:
    floored = floor_to(moment, step)
    return floored if floored == moment else floored + step


@dataclass(frozen=True)
class WorkUnit:
    """Loops read over ``[read_start, end)``; watermarks move from ``watermark`` to ``end``."""

    loop_ids: tuple[str, ...]
    watermark: datetime
    read_start: datetime
    end: datetime

    @property
    def new_minutes(self) -> int:
        """Loop-minutes this unit adds beyond the watermark (its share of the progress)."""
        return len(self.loop_ids) * int((self.end - self.watermark) / MINUTE)

    @property
    def window_s(self) -> float:
        return (self.end - self.read_start).total_seconds()


MAX_SPREAD_SPAN = timedelta(minutes=5)
"""The longest span :func:`spread_span` chooses: a loop's minutes are written at most about
twice this late."""


def spread_span(loops: int, poll: timedelta, loops_per_poll: int) -> timedelta:
    """The shortest span of whole minutes ``S`` (at most :data:`MAX_SPREAD_SPAN`) whose
    ``floor(S / P)`` polls each read at most ``loops_per_poll`` of ``loops`` spread loops."""
    span = MINUTE
    while span < MAX_SPREAD_SPAN and loops > loops_per_poll * _slots(span, poll):
        span += MINUTE
    return span


def span_if_spread(
    loops: int, poll: timedelta, min_loops: int, loops_per_poll: int
) -> timedelta | None:
    """The spread's span for ``loops`` leased loops (:func:`spread_span`), or None when they
    are fewer than ``min_loops`` (``AGG_SPREAD_MIN_LOOPS``, at least 1): no spread."""
    if loops < max(1, min_loops):
        return None
    return spread_span(loops, poll, loops_per_poll)


SPAN_SHRINK_SHARE = 0.9
"""A span shrinks only once the loops fit the shorter one at this share of
``AGG_SPREAD_LOOPS_PER_POLL`` (:func:`held_span`)."""


def held_span(
    current: timedelta, wanted: timedelta, loops: int, poll: timedelta, loops_per_poll: int
) -> timedelta:
    """The span to use when the last cycle's was ``current`` and :func:`spread_span` now wants
    ``wanted`` (pure): a longer one at once; a shorter one only where the loops fit it at
    :data:`SPAN_SHRINK_SHARE` of the bound, so an instance whose loops hover at a bound
    (replicas rebalancing) keeps its span instead of changing it, and every slot, at each poll."""
    if wanted >= current:
        return wanted
    return min(
        current, max(wanted, spread_span(loops, poll, int(loops_per_poll * SPAN_SHRINK_SHARE)))
    )


def _slots(span: timedelta, poll: timedelta) -> int:
    return int(span / poll) if poll > timedelta(0) else 1


def spread_offsets(
    loop_ids: Iterable[str], poll: timedelta, span: timedelta = MINUTE
) -> dict[str, timedelta]:
    """Each loop's spread offset ``k P`` (module rules): ``k`` = CRC-32 of its id modulo the
    ``floor(S / P)`` polls of a span ``S``; empty when a span holds a single poll."""
    slots = _slots(span, poll)
    if slots <= 1:
        return {}
    return {loop_id: poll * (zlib.crc32(loop_id.encode()) % slots) for loop_id in loop_ids}


def complete_end(
    now: datetime, offset: timedelta | None = None, span: timedelta = MINUTE
) -> datetime:
    """End of the complete minutes a loop is aggregated up to: the start of the minute of
    ``now``, or for a spread loop (with an ``offset``) the start of the span of ``now - offset``."""
    if offset is None:
        return floor_to(now, MINUTE)
    return floor_to(now - offset, span)


def complete_ends(
    now: datetime, offsets: Mapping[str, timedelta] | None, span: timedelta = MINUTE
) -> Callable[[str], datetime]:
    """Per loop id, its :func:`complete_end` (with its offset in ``offsets`` and the spread's
    ``span``, if it has one)."""
    shifted = offsets or {}
    ends = {offset: complete_end(now, offset, span) for offset in set(shifted.values())}
    newest = complete_end(now)
    return lambda loop_id: ends[offset] if (offset := shifted.get(loop_id)) is not None else newest


def read_start(watermark: datetime, settled: datetime | None, lateness: timedelta) -> datetime:
    """Start of the re-read for a loop at ``watermark`` (see the module rules).

    ``settled`` is ``T_prev - L`` of the last read up to the watermark, None when unknown.
    """
    bound = watermark - lateness if settled is None else min(watermark, settled)
    return floor_to(max(bound, watermark - lateness), MINUTE)


def final_bound(end: datetime, read_at: datetime, lateness: timedelta) -> datetime:
    """After a read at ``read_at`` up to ``end``, minutes before this bound are final.

    No later unit re-reads them, so roll-ups of hours ending at or before it are final too.
    """
    return floor_to(min(end, read_at - lateness), MINUTE)


def final_hours(start: datetime, bound: datetime) -> list[datetime]:
    """Starts of the hours that end in ``(start, bound]``: they became final with this unit."""
    hours: list[datetime] = []
    hour_end = ceil_to(start + timedelta(microseconds=1), HOUR)
    while hour_end <= bound:
        hours.append(hour_end - HOUR)
        hour_end += HOUR
    return hours


def plan_units(
    watermarks: Mapping[str, datetime],
    settled: Mapping[str, datetime],
    *,
    now: datetime,
    lateness: timedelta,
    chunk: timedelta,
    max_samples_per_unit: int,
    samples_per_loop_s: float = 1.0,
    loops_per_query: int = 100,
    offsets: Mapping[str, timedelta] | None = None,
    span: timedelta = MINUTE,
) -> list[WorkUnit]:
    """Units that bring every loop's watermark up to the start of the current minute (or of
    the ``span`` current at ``now`` less the loop's spread offset in ``offsets``, when it has
    one).

    A loop's backlog is cut at the chunk grid; its successive units assume the previous one
    committed (each commit is a compare-and-set, so if one fails the later ones fail too and
    are retried next cycle). A later unit re-reads from ``min(previous end, now - L)``, which
    is never later than what the previous read settled. Units are ordered by window end, so
    committing them in order keeps every loop's chunks in order. Loops per unit are sized to
    read about ``max_samples_per_unit`` samples, in multiples of ``loops_per_query``, and a
    window is split into at least :data:`MIN_UNITS` units so that reads overlap writes.
    """
    end_of = complete_ends(now, offsets, span)
    groups: dict[tuple[datetime, datetime, datetime], list[str]] = defaultdict(list)
    for loop_id, watermark in watermarks.items():
        target = end_of(loop_id)
        if watermark >= target:
            continue
        start = read_start(watermark, settled.get(loop_id), lateness)
        groups[(start, watermark, target)].append(loop_id)
    units: list[WorkUnit] = []
    for (start, watermark, target), loop_ids in groups.items():
        ordered = sorted(loop_ids)
        mark, begin = watermark, start
        while mark < target:
            end = min(target, floor_to(mark, chunk) + chunk)
            window_s = (end - begin).total_seconds()
            size = loops_per_unit(
                window_s, samples_per_loop_s, max_samples_per_unit, loops_per_query
            )
            # at least MIN_UNITS units, so that reading the later ones overlaps writing the first
            size = min(size, math.ceil(len(ordered) / MIN_UNITS))
            size = max(loops_per_query, size // loops_per_query * loops_per_query)
            for offset in range(0, len(ordered), size):
                units.append(WorkUnit(tuple(ordered[offset : offset + size]), mark, begin, end))
            begin = floor_to(min(end, now - lateness), MINUTE)
            mark = end
    units.sort(key=lambda unit: (unit.end, unit.watermark, unit.loop_ids))
    return units


def loops_per_unit(window_s: float, samples_per_loop_s: float, max_samples: int, floor: int) -> int:
    """How many loops fit in one unit so that it reads about ``max_samples`` samples at most."""
    expected = max(window_s, 60.0) * max(samples_per_loop_s, 1e-3)
    return max(floor, math.floor(max_samples / expected))


def backlog_minutes(
    watermarks: Mapping[str, datetime],
    now: datetime,
    offsets: Mapping[str, timedelta] | None = None,
    span: timedelta = MINUTE,
) -> int:
    """Loop-minutes between each loop's watermark and the end of its complete minutes."""
    end_of = complete_ends(now, offsets, span)
    return sum(
        max(0, int((end_of(loop_id) - mark) / MINUTE)) for loop_id, mark in watermarks.items()
    )


def initial_watermark(oldest: datetime, chunk: timedelta) -> datetime:
    """Watermark of a loop seen for the first time: its oldest sample, floored to the chunk grid.

    Flooring to the grid lets loops whose data starts within the same chunk share units.
    """
    return floor_to(oldest, chunk)


HEAD_START = timedelta(minutes=10)
"""Newest minutes of a loop far behind written ahead of its watermark (see the module rules)."""
HEAD_START_BEHIND = timedelta(minutes=30)
"""A loop whose watermark is further behind the current minute gets a head start."""


def far_behind(watermark: datetime, now: datetime) -> bool:
    """The loop's watermark is more than :data:`HEAD_START_BEHIND` before the current minute."""
    return watermark < floor_to(now, MINUTE) - HEAD_START_BEHIND


def head_start_units(
    watermarks: Mapping[str, datetime],
    ahead_until: Mapping[str, datetime],
    *,
    now: datetime,
    max_samples_per_unit: int,
    samples_per_loop_s: float = 1.0,
    loops_per_query: int = 100,
) -> list[WorkUnit]:
    """Units of the newest complete minutes of loops more than :data:`HEAD_START_BEHIND`
    behind: ``[max(end - HEAD_START, ahead_until), end)`` with ``end`` the start of the
    current minute (``ahead_until``: where the loop's last head start ended). Each unit's
    ``watermark`` is its read start; they are written without touching the watermarks."""
    newest_end = floor_to(now, MINUTE)
    groups: dict[datetime, list[str]] = defaultdict(list)
    for loop_id, watermark in watermarks.items():
        if not far_behind(watermark, now):
            continue
        begin = max(newest_end - HEAD_START, ahead_until.get(loop_id, watermark))
        if begin < newest_end:
            groups[begin].append(loop_id)
    units: list[WorkUnit] = []
    for begin, loop_ids in sorted(groups.items()):
        ordered = sorted(loop_ids)
        size = loops_per_unit(
            (newest_end - begin).total_seconds(),
            samples_per_loop_s,
            max_samples_per_unit,
            loops_per_query,
        )
        for offset in range(0, len(ordered), size):
            units.append(WorkUnit(tuple(ordered[offset : offset + size]), begin, begin, newest_end))
    return units
