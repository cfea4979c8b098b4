"""Late samples: find the aggregated minutes whose samples changed, by counting, and recompute them.

Two checks compare the store's per-minute sample counts (``count()`` of PV, SP and OP per loop
and minute, computed by the store) with the counts in ``agg_1m``:

* **Lateness allowance** (``AGG_LATE_DATA=counts``): each loop is checked once per
  ``AGG_LATE_CHECK_INTERVAL_S`` ``I``, at the first poll after its slot ``k I + h I`` (``h`` in
  ``[0, 1)`` a stable hash of the loop id), so each poll checks about ``P / I`` of the loops
  (``P`` the polling interval) instead of every loop every other poll. A check in the poll that
  started at ``S`` counts the minutes from ``min(W_S, S_prev - L)`` to ``W_S``, where ``W_S`` is
  the loop's watermark when the poll started, ``S_prev`` the start of the poll of its previous
  check (``S_prev - L`` is ``W_S - L`` when unknown) and ``L`` is ``AGG_LATENESS_S``. The
  minutes this poll has just read (``[W_S, W)``) are not counted again: their counts are known.
  Guarantee: a sample of time ``t`` that arrives at ``t_a <= t + L``, after its minute was
  read, is counted by the loop's first check whose count runs after ``t_a``. That check's
  window starts at ``S_prev - L``, and ``S_prev`` precedes the previous check's count, so
  ``S_prev < t_a``, ``S_prev - L < t``; and its minute is below ``W_S`` unless this very poll
  read it, in which case it arrived after ``S`` and the next check (window from
  ``S - L < t``) counts it. The count reads only minutes below ``W_S``, so it runs while the
  poll aggregates its new minutes; the stale minutes it finds are recomputed after them, with
  the hours the loop's watermark has completed by then (one the poll has just completed holds
  the stale minute too, and was rolled up from the minute before its correction).
* **Reconciliation** (``AGG_RECONCILE_HOURS``): the same comparison over the last hours, for a
  slice of the loops each cycle, so that every loop is reconciled once per
  ``AGG_RECONCILE_INTERVAL_S``. A fresh process starts from the position the clock's phase of
  the interval gives (:func:`reconcile_phase_cursor`) with one poll's share: a restart neither
  reconciles every loop at once (at 10,000 loops with 3 h of history, about 30 s of influxd
  CPU) nor always starts with the same loops, and a process that restarts more often than it
  polls still reconciles every loop.
  It finds samples later than the allowance (a historian that delivers in batches, a restarted
  collector) that would otherwise stay missing until a manual backfill. Its counts too run
  while the poll aggregates: they stop at the loop's watermark when the poll started, or where
  the allowance's count of the same poll starts (so no minute is found twice), and what they
  find is recomputed after the units.

On a store that counts totals itself (InfluxQL), both checks first compare one number per loop
and window, the store's total against the sum of agg_1m's counts, and count minute by minute
only the loops where the two differ (:func:`suspects`; at 10,000 loops the reconciliation's
slice of 84 loops x 3 h costs influxd about a third less, and one row per loop travels instead
of 180). Equal totals mean equal minutes only where no sample was removed from the window, so
the reconciliation compares totals only over windows the store's retention policy does not
reach (:func:`totals_are_safe`); otherwise, or when the retention cannot be read, it counts
every loop minute by minute.

The agg_1m side of the comparison comes from memory where it can (:class:`WrittenCounts`: the
counts of the minutes this process wrote itself, over the last ``L + 2 I + 2`` minutes); loops
or minutes not in memory (after a restart, a lease taken over, the reconciliation's hours) are
read from ``agg_1m`` (their sums, then the minutes of the loops whose totals differ).

A minute is stale when the store holds more samples of a field than ``agg_1m`` counted (samples
only ever arrive; minutes pruned from the store by a retention are not touched). The InfluxQL
store counts PV only (each counted field costs influxd as much again): there a late sample that
carries no PV is not found; the embedded store counts all three fields. Stale minutes
are read again, their buckets upserted and the complete hours that contain them rolled up again
from ``agg_1m``, in one transaction per range; one log line per corrected range. Watermarks are
not touched: only minutes already written are recomputed (an idempotent upsert of the same key),
so exactly-once holds. A sample that replaces another one at the same time stamp does not change
the counts and is not found.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_aggregation.planning import HOUR, MINUTE, floor_to
from clpm_shared.aggregation import BucketTable, concatenate, minute_buckets, rollup
from clpm_shared.db.repositories.aggregates import AggregateRepository
from clpm_shared.timeseries.base import (
    NOT_COUNTED,
    MinuteCounts,
    SampleTotaller,
    SampleTotals,
    TimeSeriesError,
    TimeSeriesStore,
    count_minutes,
    from_ns,
    to_ns,
)

logger = logging.getLogger(__name__)

MINUTE_NS = 60_000_000_000
_COUNT_COLUMNS = ("pv_count", "sp_count", "op_count")
Counts = tuple[int, int, int]


@dataclass(frozen=True)
class StaleRange:
    """Consecutive minutes ``[start, end)`` of one loop whose store counts exceed agg_1m's."""

    loop_id: str
    start: datetime
    end: datetime
    store_samples: int
    """PV samples in the store over the range."""
    aggregated_samples: int
    """PV samples agg_1m had counted over the range."""


def aggregated_counts(stored: BucketTable) -> dict[str, dict[int, Counts]]:
    """``loop -> minute ns -> (pv_count, sp_count, op_count)`` of agg_1m rows."""
    aggregated: dict[str, dict[int, Counts]] = {}
    if not len(stored):
        return aggregated
    columns = [stored.stats[name].astype(np.int64).tolist() for name in _COUNT_COLUMNS]
    for loop_id, bucket, pv, sp, op in zip(
        stored.loop_ids.tolist(), stored.bucket_ns.tolist(), *columns, strict=True
    ):
        minutes = aggregated.get(loop_id)
        if minutes is None:
            minutes = aggregated[str(loop_id)] = {}
        minutes[int(bucket)] = (pv, sp, op)
    return aggregated


def stale_ranges(
    counts: Mapping[str, MinuteCounts],
    aggregated: Mapping[str, Mapping[int, Counts]],
    until: Mapping[str, datetime],
    known: Mapping[tuple[str, int], Counts] | None = None,
) -> list[StaleRange]:
    """Minutes before each loop's ``until`` where the store has more samples than agg_1m (pure).

    Parameters
    ----------
    counts
        The store's per-minute counts of PV, SP and OP per loop.
    aggregated
        agg_1m's counts of the same loops and window (:func:`aggregated_counts`): a minute
        absent there has no row.
    until
        Per loop, the end of the minutes written (its watermark); later minutes are not judged.
    known
        ``(loop, minute ns) -> store counts`` of minutes already recomputed at those counts: a
        value the aggregation rejects (non-finite, wrong type) is counted by the store but not
        by agg_1m, and must not make the minute stale again at every check.

    Returns
    -------
    list of StaleRange
        Runs of consecutive stale minutes, by loop then time.
    """
    nothing: Mapping[int, Counts] = {}
    remembered = known or {}
    ranges: list[StaleRange] = []
    for loop_id in sorted(counts):
        minutes = counts[loop_id]
        if loop_id not in until or not minutes.bucket_ns.size:
            continue
        limit = int(until[loop_id].timestamp()) * 1_000_000_000
        written = aggregated.get(loop_id, nothing)
        run: list[tuple[int, int, int]] = []  # (minute ns, store pv, aggregated pv)
        rows = zip(
            minutes.bucket_ns.tolist(),
            minutes.pv.tolist(),
            minutes.sp.tolist(),
            minutes.op.tolist(),
            strict=True,
        )
        for bucket, pv, sp, op in rows:
            if bucket >= limit:
                break
            have = written.get(bucket, (0, 0, 0))
            now_counts = (pv, sp, op)
            stale = any(s > a for s, a in zip(now_counts, have, strict=True))
            earlier = remembered.get((loop_id, bucket))
            if stale and earlier is not None and _same(now_counts, earlier):
                stale = False
            if stale and run and bucket != run[-1][0] + MINUTE_NS:
                ranges.append(_range(loop_id, run))
                run = []
            if stale:
                run.append((bucket, pv, have[0]))
            elif run:
                ranges.append(_range(loop_id, run))
                run = []
        if run:
            ranges.append(_range(loop_id, run))
    return ranges


def window_totals(
    aggregated: Mapping[str, Mapping[int, Counts]], start: datetime, end: datetime
) -> dict[str, Counts]:
    """Per loop, the sums of agg_1m's counts over ``[start, end)`` (pure)."""
    start_ns, end_ns = to_ns(start), to_ns(end)
    totals: dict[str, Counts] = {}
    for loop_id, minutes in aggregated.items():
        written = [0, 0, 0]
        for bucket, counts in minutes.items():
            if start_ns <= bucket < end_ns:
                written[0] += counts[0]
                written[1] += counts[1]
                written[2] += counts[2]
        totals[loop_id] = (written[0], written[1], written[2])
    return totals


def suspects(totals: Mapping[str, SampleTotals], written: Mapping[str, Counts]) -> list[str]:
    """Loops whose store total over a window differs from agg_1m's (``written``; a loop absent
    there has no row) in a field the store counted (pure).

    Samples only ever arrive, so where none was removed from the window the store's count of
    every minute is at least agg_1m's, and equal totals mean equal minutes: only the others
    need counting minute by minute. A removal (a retention, a ``DELETE``) breaks that: a lower
    total is a suspect too, but a removal and an arrival of as many samples cancel, so the
    reconciliation uses totals only over windows the store's retention does not reach
    (:func:`totals_are_safe`). A loop without samples in the store is absent from ``totals``
    and has no stale minute.
    """
    nothing = (0, 0, 0)
    found = [
        loop_id
        for loop_id, total in totals.items()
        if any(
            t not in (NOT_COUNTED, w)
            for t, w in zip(total, written.get(loop_id, nothing), strict=True)
        )
    ]
    return sorted(found)


RETENTION_MARGIN = timedelta(minutes=10)
"""How far inside a retention period a window must start for its totals to be trusted (clock
differences between the service and the store)."""


def totals_are_safe(start: datetime, now: datetime, kept: timedelta | None) -> bool:
    """Whether no retention removes samples at or after ``start`` (pure): the store keeps every
    sample for ``kept`` (None: for ever), so ``start >= now - kept`` plus a margin."""
    return kept is None or start >= now - kept + RETENTION_MARGIN


def _same(counted: Counts, remembered: Counts) -> bool:
    """Equal where the store counted (it may leave SP and OP uncounted)."""
    return all(c in (NOT_COUNTED, r) for c, r in zip(counted, remembered, strict=True))


def _range(loop_id: str, run: Sequence[tuple[int, int, int]]) -> StaleRange:
    return StaleRange(
        loop_id,
        from_ns(run[0][0]),
        from_ns(run[-1][0] + MINUTE_NS),
        sum(item[1] for item in run),
        sum(item[2] for item in run),
    )


@dataclass
class LateDataReport:
    """What one check found and corrected."""

    loops: int = 0
    ranges: int = 0
    minutes: int = 0
    hours: int = 0
    samples: int = 0


@dataclass(frozen=True)
class AllowanceFindings:
    """What the count half of an allowance check found (:meth:`LateDataChecker.find_allowance`)."""

    ranges: list[StaleRange]
    starts: dict[str, datetime]
    """Per loop checked, where its count started (the reconciliation stops there)."""
    at: datetime
    """When the loops were checked."""
    next_from: datetime
    """Where their next check starts counting (``S - L``)."""

    @property
    def loops(self) -> int:
        """Loops checked."""
        return len(self.starts)


@dataclass(frozen=True)
class ReconciliationFindings:
    """What the count half of a reconciliation slice found
    (:meth:`LateDataChecker.find_reconciliation`), and where the slices go on once it is
    corrected."""

    loops: int
    """Loops reconciled."""
    ranges: list[StaleRange]
    at: datetime
    credit: float
    cursor: int
    horizon: datetime


@dataclass(frozen=True)
class LateFindings:
    """Both checks' counts of one poll (:meth:`LateDataChecker.find`)."""

    allowance: AllowanceFindings | None
    reconciliation: ReconciliationFindings | None


@dataclass
class WrittenCounts:
    """The counts of the agg_1m rows this process wrote, per loop over one span of minutes.

    ``spans[loop] = [since, until)`` (ns): every minute of it that has an agg_1m row is in
    ``minutes[loop]`` with the row's counts, a minute without one has no row. A span grows with
    each unit that starts inside it; a unit that starts elsewhere (another writer moved the
    watermark) starts a new one. Minutes older than ``horizon`` are dropped.
    """

    horizon: timedelta
    minutes: dict[str, dict[int, Counts]] = field(default_factory=dict)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)

    def record(
        self, table: BucketTable, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> None:
        """A unit committed ``table``: every row of ``loop_ids`` over ``[start, end)``."""
        start_ns, end_ns = to_ns(start), to_ns(end)
        for loop_id in loop_ids:
            span = self.spans.get(loop_id)
            if span is not None and span[0] <= start_ns <= span[1]:
                self.spans[loop_id] = (span[0], max(span[1], end_ns))
            else:
                self.spans[loop_id] = (start_ns, end_ns)
                self.minutes[loop_id] = {}
        self.update(table)

    def update(self, table: BucketTable) -> None:
        """Rows written again (recomputed minutes): their new counts, where a span holds them."""
        for loop_id, minutes in aggregated_counts(table).items():
            span = self.spans.get(loop_id)
            if span is None:
                continue
            mine = self.minutes.setdefault(loop_id, {})
            for bucket, counts in minutes.items():
                if span[0] <= bucket < span[1]:
                    mine[bucket] = counts

    def covers(self, loop_id: str, start: datetime, end: datetime) -> bool:
        span = self.spans.get(loop_id)
        return span is not None and span[0] <= to_ns(start) and to_ns(end) <= span[1]

    def prune(self, now: datetime) -> None:
        bound = to_ns(floor_to(now - self.horizon, MINUTE))
        for loop_id, (since, until) in list(self.spans.items()):
            if since >= bound:
                continue
            if until <= bound:
                self.forget([loop_id])
                continue
            self.spans[loop_id] = (bound, until)
            minutes = self.minutes.get(loop_id, {})
            for bucket in [bucket for bucket in minutes if bucket < bound]:
                del minutes[bucket]

    def forget(self, loop_ids: Sequence[str]) -> None:
        for loop_id in loop_ids:
            self.spans.pop(loop_id, None)
            self.minutes.pop(loop_id, None)


def check_phase(loop_id: str) -> float:
    """A loop's stable slot in ``[0, 1)`` of the check interval (CRC-32 of its id)."""
    return zlib.crc32(loop_id.encode()) / 2**32


def check_due(loop_id: str, last: datetime | None, now: datetime, interval_s: float) -> bool:
    """Whether the loop's slot ``(k + phase) * interval`` passed in ``(last, now]``."""
    if last is None or interval_s <= 0:
        return True
    offset = check_phase(loop_id) * interval_s
    return math.floor((now.timestamp() - offset) / interval_s) > math.floor(
        (last.timestamp() - offset) / interval_s
    )


def reconcile_phase_cursor(now: datetime, interval_s: float, loops: int) -> int:
    """Where a fresh process starts the reconciliation's slices in its sorted loops:
    ``floor(n (t mod I) / I)`` for ``n`` loops, ``t`` the time and ``I`` the interval, the
    position a process running since the last multiple of ``I`` would have reached."""
    if loops <= 0 or interval_s <= 0:
        return 0
    phase = (now.timestamp() % interval_s) / interval_s
    return min(loops - 1, math.floor(loops * phase))


@dataclass
class LateDataChecker:
    """Count checks of the lateness allowance and the periodic reconciliation (module docs)."""

    store: TimeSeriesStore
    sessions: async_sessionmaker[AsyncSession]
    lateness: timedelta
    check_interval_s: float
    reconcile_horizon: timedelta
    reconcile_interval_s: float
    clock: Callable[[], datetime]
    poll_interval_s: float = 0.0
    """The service's polling interval: a fresh process's first cycle reconciles one poll's
    share of the loops."""
    checked_at: dict[str, datetime] = field(default_factory=dict)
    """Per loop, the time of its last allowance check (its slot decides the next one)."""
    check_from: dict[str, datetime] = field(default_factory=dict)
    """Per loop, ``S_prev - L``: where its next allowance check starts counting."""
    known: dict[tuple[str, int], Counts] = field(default_factory=dict)
    written: WrittenCounts = field(default_factory=lambda: WrittenCounts(timedelta(0)))
    last_reconcile: datetime | None = None
    reconcile_cursor: int = 0
    reconcile_credit: float = 0.0
    retention_unknown: bool = False
    """The store's retention could not be read (logged once until it can again)."""

    def __post_init__(self) -> None:
        self.written.horizon = (
            self.lateness + timedelta(seconds=2 * self.check_interval_s) + 2 * MINUTE
        )

    def forget(self, loop_ids: Sequence[str]) -> None:
        """Loops no longer leased: a later owner starts with ``W - L`` again."""
        for loop_id in loop_ids:
            self.checked_at.pop(loop_id, None)
            self.check_from.pop(loop_id, None)
        self.written.forget(loop_ids)

    def wrote(
        self, table: BucketTable, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> None:
        """A unit committed the minutes ``[start, end)`` of ``loop_ids`` (rows in ``table``)."""
        self.written.record(table, loop_ids, start, end)

    async def find_allowance(
        self, started: datetime, before: Mapping[str, datetime]
    ) -> AllowanceFindings | None:
        """Count the allowance of the loops due at the poll's start (``started``; ``before``:
        the watermarks then); None when no loop is due.

        It reads only minutes below each loop's watermark at the poll's start, so it can run
        while the poll aggregates the new minutes; :meth:`correct` then recomputes what it
        found, once the poll's units are done, and only then are the loops checked.
        """
        now = self.clock()
        if self.lateness <= timedelta(0):
            return None
        self.written.prune(now)
        due = [
            loop_id
            for loop_id in before
            if check_due(loop_id, self.checked_at.get(loop_id), now, self.check_interval_s)
        ]
        if not due:
            return None
        windows: dict[str, datetime] = {}
        until: dict[str, datetime] = {}
        for loop_id in due:
            first = before[loop_id]
            previous = self.check_from.get(loop_id)
            start = first - self.lateness if previous is None else min(first, previous)
            windows[loop_id] = floor_to(start, MINUTE)
            until[loop_id] = first  # [first, after): read by this poll, counts known
        found = await self._find(windows, until, by_totals=True)
        # the loops count as checked once :meth:`correct` has recomputed what was found: a
        # cycle that fails before leaves them due, and the next poll counts them again
        return AllowanceFindings(found, windows, now, started - self.lateness)

    async def find(self, started: datetime, before: Mapping[str, datetime]) -> LateFindings:
        """The allowance's counts, then the reconciliation's, both below the watermarks at the
        poll's start (``before``): they run while the poll aggregates its new minutes, and
        :meth:`correct` and :meth:`reconcile` recompute what they found after the units.

        A loop checked by both reconciles up to where its allowance count started, so no
        minute is found, and recomputed, twice.
        """
        allowance = await self.find_allowance(started, before)
        checked = allowance.starts if allowance is not None else {}
        return LateFindings(allowance, await self.find_reconciliation(before, checked))

    async def correct(
        self, found: AllowanceFindings, marks: Mapping[str, datetime]
    ) -> LateDataReport:
        """Recompute the stale minutes :meth:`find_allowance` found, for the loops still owned
        (``marks``: the watermarks now; the hours they complete are rolled up again)."""
        report = LateDataReport(loops=found.loops)
        ranges = [stale for stale in found.ranges if stale.loop_id in marks]
        if ranges:
            await self._correct(ranges, marks, "lateness allowance", report)
        for loop_id in found.starts:
            if loop_id in marks:
                self.checked_at[loop_id] = found.at
                self.check_from[loop_id] = found.next_from
        return report

    async def find_reconciliation(
        self, before: Mapping[str, datetime], checked: Mapping[str, datetime]
    ) -> ReconciliationFindings | None:
        """Count the next slice of loops over the horizon, up to each loop's watermark at the
        poll's start (``before``) or, for a loop whose allowance this poll counts from
        ``checked[loop]``, up to there; None when off or no loop is due."""
        now = self.clock()
        if self.reconcile_horizon <= timedelta(0) or not before:
            return None
        if self.last_reconcile is None:
            # a fresh process starts where the clock's phase of the interval points, so that
            # restarts neither reconcile every loop at once nor always start with the same
            # ones, and takes one poll's share at once: a process that restarts more often
            # than it polls still reconciles every loop
            self.reconcile_cursor = reconcile_phase_cursor(
                now, self.reconcile_interval_s, len(before)
            )
            self.last_reconcile = now - timedelta(seconds=self.poll_interval_s)
        elapsed = max(0.0, (now - self.last_reconcile).total_seconds())
        due = self.reconcile_credit + len(before) * min(1.0, elapsed / self.reconcile_interval_s)
        take = min(len(before), math.floor(due))
        if take <= 0:
            self.last_reconcile, self.reconcile_credit = now, due
            return None
        ordered = sorted(before)
        start_at = self.reconcile_cursor % len(ordered)
        chosen = [ordered[(start_at + k) % len(ordered)] for k in range(take)]
        start = floor_to(now - self.reconcile_horizon, MINUTE)
        until = {
            loop_id: min(before[loop_id], checked.get(loop_id, before[loop_id]))
            for loop_id in chosen
        }
        by_totals = await self._totals_are_safe(start, now)
        found = await self._find(dict.fromkeys(chosen, start), until, by_totals=by_totals)
        return ReconciliationFindings(
            loops=take,
            ranges=found,
            at=now,
            credit=due - take if take < len(ordered) else 0.0,
            cursor=(start_at + take) % len(ordered),
            horizon=start,
        )

    async def reconcile(
        self, found: ReconciliationFindings, marks: Mapping[str, datetime]
    ) -> LateDataReport:
        """Recompute the stale minutes :meth:`find_reconciliation` found, for the loops still
        owned (``marks``: the watermarks now), then move on to the next slice."""
        report = LateDataReport(loops=found.loops)
        ranges = [stale for stale in found.ranges if stale.loop_id in marks]
        if ranges:
            await self._correct(ranges, marks, "reconciliation", report)
        # only after the slice succeeded: a failed one is tried again by the next cycle
        self.last_reconcile = found.at
        self.reconcile_credit = found.credit
        self.reconcile_cursor = found.cursor
        horizon_ns = int(found.horizon.timestamp()) * 1_000_000_000
        for key in [
            key for key in self.known if key[1] < horizon_ns - int(HOUR.total_seconds()) * 10**9
        ]:
            del self.known[key]
        return report

    async def _find(
        self,
        windows: Mapping[str, datetime],
        until: Mapping[str, datetime],
        *,
        by_totals: bool = False,
    ) -> list[StaleRange]:
        """Stale minutes of each loop from ``windows[loop]`` to ``until[loop]``.

        ``by_totals``: on a store that counts totals itself (:class:`SampleTotaller`), compare
        each loop's window in one number first (the store's, and agg_1m's sum) and count its
        minutes only where the two differ (:func:`suspects`).
        """
        groups: dict[tuple[datetime, datetime], list[str]] = defaultdict(list)
        for loop_id, start in windows.items():
            end = until[loop_id]
            if start < end:
                groups[(start, end)].append(loop_id)
        # a store without its own totals would sum the same minute counts: count once
        totaller = self.store if by_totals and isinstance(self.store, SampleTotaller) else None
        found: list[StaleRange] = []
        for (start, end), loop_ids in groups.items():
            aggregated: dict[str, Mapping[int, Counts]] = {}
            unknown: list[str] = []
            for loop_id in loop_ids:
                if self.written.covers(loop_id, start, end):
                    aggregated[loop_id] = self.written.minutes.get(loop_id, {})
                else:
                    unknown.append(loop_id)
            counted = loop_ids
            if totaller is not None:
                written = window_totals(aggregated, start, end)
                if unknown:  # one row per loop from agg_1m, its minutes only for the suspects
                    async with self.sessions() as session:
                        written.update(
                            await AggregateRepository(session).sample_totals(
                                "agg_1m", unknown, start, end
                            )
                        )
                totals = await totaller.sample_totals(loop_ids, start, end)
                counted = suspects(totals, written)
                if not counted:
                    continue
                chosen = set(counted)
                unknown = [loop_id for loop_id in unknown if loop_id in chosen]
            if unknown:
                async with self.sessions() as session:
                    stored = await AggregateRepository(session).read(
                        "agg_1m", unknown, start, end, statistics=_COUNT_COLUMNS, mode_shares=False
                    )
                aggregated.update(aggregated_counts(stored))
            counts = await count_minutes(self.store, counted, start, end)
            found.extend(stale_ranges(counts, aggregated, until, self.known))
        return found

    async def _totals_are_safe(self, start: datetime, now: datetime) -> bool:
        """Whether the reconciliation may compare totals over windows from ``start``: the store
        counts them and its retention removes nothing there (:func:`totals_are_safe`)."""
        if not isinstance(self.store, SampleTotaller):
            return False
        try:
            kept = await self.store.retention_period()
        except TimeSeriesError as exc:
            if not self.retention_unknown:
                logger.warning(
                    "reconciliation: the store's retention is unknown; counting every "
                    "reconciled loop minute by minute",
                    extra={"error": str(exc)},
                )
            self.retention_unknown = True
            return False
        self.retention_unknown = False
        return totals_are_safe(start, now, kept)

    async def _correct(
        self,
        ranges: Sequence[StaleRange],
        until: Mapping[str, datetime],
        reason: str,
        report: LateDataReport,
    ) -> None:
        """Recompute ``ranges`` in agg_1m, and the hours complete below each loop's ``until``
        (its watermark now: an hour the poll has just completed holds the stale minute too)."""
        by_window: dict[tuple[datetime, datetime], list[str]] = defaultdict(list)
        for stale in ranges:
            by_window[(stale.start, stale.end)].append(stale.loop_id)
        for (start, end), loop_ids in by_window.items():
            raw = await self.store.query_raw_many(loop_ids, start, end)
            result = minute_buckets(raw)
            for loop_id, series in raw.items():
                counted = MinuteCounts.of_series(series)
                for k, bucket in enumerate(counted.bucket_ns.tolist()):
                    self.known[(loop_id, bucket)] = (
                        int(counted.pv[k]),
                        int(counted.sp[k]),
                        int(counted.op[k]),
                    )
            hours: dict[datetime, list[str]] = defaultdict(list)
            for loop_id in loop_ids:
                hour = floor_to(start, HOUR)
                while hour < end:
                    if hour + HOUR <= until[loop_id]:
                        hours[hour].append(loop_id)
                    hour += HOUR
            async with self.sessions() as session, session.begin():
                aggregates = AggregateRepository(session)
                minutes = await aggregates.upsert("agg_1m", result.buckets)
                tables: list[BucketTable] = []
                for hour, members in hours.items():
                    tables.append(
                        rollup(await aggregates.read("agg_1m", members, hour, hour + HOUR))
                    )
                written_hours = await aggregates.upsert("agg_1h", concatenate(tables))
            self.written.update(result.buckets)  # committed: agg_1m holds these counts now
            report.ranges += len(loop_ids)
            report.minutes += minutes
            report.hours += written_hours
            report.samples += result.samples
        for stale in ranges:
            logger.warning(
                "late samples: minutes recomputed",
                extra={
                    "reason": reason,
                    "loop_id": stale.loop_id,
                    "start": stale.start.astimezone(UTC).isoformat(),
                    "end": stale.end.astimezone(UTC).isoformat(),
                    "minutes": int((stale.end - stale.start) / MINUTE),
                    "pv_samples_before": stale.aggregated_samples,
                    "pv_samples_now": stale.store_samples,
                },
            )
