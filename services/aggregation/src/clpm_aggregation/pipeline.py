"""Running work units: read raw samples, compute buckets, write them in one transaction each.

Reading, computing and writing overlap: up to ``read_ahead`` units are being read from the
time-series store while the oldest one is aggregated (in a worker thread) and written.
Units are committed in order. Each commit is atomic: watermarks compare-and-set from the
unit's start to its end, minute buckets upserted, and the hours that became final rolled up
into ``agg_1h`` (from the minutes in memory when the unit read the whole hour, otherwise from
``agg_1m`` inside the same transaction). A failure leaves the failed unit and everything after
it unwritten, with watermarks where they were, so the next attempt neither skips nor doubles.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_aggregation.planning import HOUR, WorkUnit, final_bound, final_hours
from clpm_shared.aggregation import (
    HOUR_NS,
    BucketTable,
    SkippedValues,
    concatenate,
    minute_buckets,
    rollup,
)
from clpm_shared.db.repositories.aggregates import AggregateRepository
from clpm_shared.db.repositories.watermarks import WatermarkRepository
from clpm_shared.timeseries.base import RawSeries, TimeSeriesStore, to_ns

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class WatermarkMode(Enum):
    """How a unit's commit moves watermarks."""

    COMPARE_AND_SET = "cas"
    """Normal run: from exactly ``unit.watermark`` to ``unit.end``; lose the race -> roll back."""
    RECOMPUTE = "recompute"
    """``backfill`` command: forward to ``unit.end`` only where within ``[read_start, end)``."""
    AHEAD = "ahead"
    """Head start of a loop far behind: its newest minutes only; watermarks and hours are left
    to the catch-up (see ``planning.head_start_units``)."""


@dataclass(frozen=True)
class ComputedUnit:
    """A unit's minute buckets and the final hours that can be rolled up from them."""

    unit: WorkUnit
    read_at: datetime
    samples: int
    minutes: BucketTable
    hours: BucketTable
    hours_from_table: tuple[datetime, ...]
    skipped: SkippedValues


@dataclass(frozen=True)
class UnitOutcome:
    """What happened to a unit. ``committed`` is False when another writer moved a watermark."""

    unit: WorkUnit
    read_at: datetime
    committed: bool
    samples: int
    minutes_written: int
    hours_written: int
    skipped: SkippedValues
    read_s: float
    write_s: float
    minutes: BucketTable
    """The minute buckets the unit computed (written to agg_1m when ``committed``): their
    ``pv_count``, ``sp_count`` and ``op_count`` are what agg_1m now holds."""


def compute_unit(
    unit: WorkUnit, read_at: datetime, raw: Mapping[str, RawSeries], lateness: timedelta
) -> ComputedUnit:
    """Minute buckets of the unit's raw samples, and the hour roll-ups it makes final (pure)."""
    result = minute_buckets(raw)
    minutes = result.buckets
    hours = final_hours(unit.read_start, final_bound(unit.end, read_at, lateness))
    in_memory = [hour for hour in hours if hour >= unit.read_start]
    from_table = tuple(hour for hour in hours if hour < unit.read_start)
    rolled = BucketTable.empty()
    if in_memory and len(minutes):
        hour_of = minutes.bucket_ns // HOUR_NS * HOUR_NS
        wanted = np.isin(hour_of, np.asarray([to_ns(hour) for hour in in_memory], dtype=np.int64))
        rolled = rollup(minutes.select(wanted))
    return ComputedUnit(unit, read_at, result.samples, minutes, rolled, from_table, result.skipped)


class LostRaceError(Exception):
    """Another writer advanced a watermark of the unit first; the transaction was rolled back."""


async def write_unit(
    sessions: async_sessionmaker[AsyncSession],
    computed: ComputedUnit,
    mode: WatermarkMode = WatermarkMode.COMPARE_AND_SET,
) -> tuple[int, int]:
    """Commit one unit (watermarks, minutes, final hours) atomically; returns rows written.

    Raises :class:`LostRaceError` (after rolling back) when a compare-and-set failed.
    """
    unit = computed.unit
    if mode is WatermarkMode.AHEAD:
        async with sessions() as session, session.begin():
            return await AggregateRepository(session).upsert("agg_1m", computed.minutes), 0
    async with sessions() as session, session.begin():
        marks = WatermarkRepository(session)
        if mode is WatermarkMode.COMPARE_AND_SET:
            moved = await marks.advance(dict.fromkeys(unit.loop_ids, unit.watermark), unit.end)
            if moved != len(unit.loop_ids):
                raise LostRaceError(
                    f"{len(unit.loop_ids) - moved} of {len(unit.loop_ids)} watermarks moved "
                    "by another writer"
                )
        else:
            await marks.initialize(dict.fromkeys(unit.loop_ids, unit.read_start))
            await marks.advance_within(unit.loop_ids, unit.read_start, unit.end)
        aggregates = AggregateRepository(session)
        minutes = await aggregates.upsert("agg_1m", computed.minutes)
        hour_tables = [computed.hours]
        for hour in computed.hours_from_table:
            stored = await aggregates.read("agg_1m", unit.loop_ids, hour, hour + HOUR)
            hour_tables.append(rollup(stored))
        hours = await aggregates.upsert("agg_1h", concatenate(hour_tables))
    return minutes, hours


async def run_units(
    units: Sequence[WorkUnit],
    *,
    store: TimeSeriesStore,
    sessions: async_sessionmaker[AsyncSession],
    lateness: timedelta,
    clock: Clock,
    read_ahead: int = 3,
    mode: WatermarkMode = WatermarkMode.COMPARE_AND_SET,
    on_outcome: Callable[[UnitOutcome], Awaitable[None] | None] | None = None,
) -> list[UnitOutcome]:
    """Read, compute and commit ``units`` in order with reads overlapping the writes.

    The first failure (store unavailable, database error) cancels the reads still in flight and
    is raised after the units before it were committed. A lost compare-and-set is not a failure:
    its outcome has ``committed=False`` and the other units go on.
    """
    loop = asyncio.get_running_loop()

    async def read(unit: WorkUnit) -> tuple[datetime, float, Mapping[str, RawSeries]]:
        read_at = clock()
        started = loop.time()
        raw = await store.query_raw_many(unit.loop_ids, unit.read_start, unit.end)
        return read_at, loop.time() - started, raw

    outcomes: list[UnitOutcome] = []
    pending: deque[tuple[WorkUnit, asyncio.Task[tuple[datetime, float, Mapping[str, RawSeries]]]]]
    pending = deque()
    remaining = iter(units)

    def refill() -> None:
        while len(pending) < max(1, read_ahead):
            unit = next(remaining, None)
            if unit is None:
                return
            pending.append((unit, asyncio.create_task(read(unit))))

    try:
        refill()
        while pending:
            unit, task = pending.popleft()
            read_at, read_s, raw = await task
            refill()
            computed = await asyncio.to_thread(compute_unit, unit, read_at, raw, lateness)
            del raw
            started = loop.time()
            try:
                minutes, hours = await write_unit(sessions, computed, mode)
                committed = True
            except LostRaceError as exc:
                logger.warning(
                    "unit skipped: another instance committed these loops first",
                    extra={"loops": len(unit.loop_ids), "reason": str(exc)},
                )
                minutes = hours = 0
                committed = False
            outcome = UnitOutcome(
                unit,
                read_at,
                committed,
                computed.samples,
                minutes,
                hours,
                computed.skipped,
                read_s,
                loop.time() - started,
                computed.minutes,
            )
            outcomes.append(outcome)
            if on_outcome is not None:
                maybe = on_outcome(outcome)
                if maybe is not None:
                    await maybe
    finally:
        for _, task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*(task for _, task in pending), return_exceptions=True)
    return outcomes
