"""The aggregation worker: every POLLING_INTERVAL it brings its loops' aggregates up to date.

One cycle:

1. **Coordinate** (one transaction): register loops first seen in the raw store, write this
   instance's heartbeat, renew its leases and claim or release leases towards a fair share
   (loops / live instances). Replicas thus split the loops; a dead replica's leases expire
   after AGG_LEASE_S and are claimed by the others.
2. **Watermarks**: read the leased loops' watermarks; a loop seen for the first time starts at
   its oldest raw sample (or AGG_BACKFILL_HOURS before now), so start-up performs the
   historical aggregation, in chunks of AGG_CHUNK_MINUTES, with progress logged.
3. **Units** (see :mod:`clpm_aggregation.planning` and :mod:`clpm_aggregation.pipeline`):
   complete minutes only, one atomic compare-and-set commit per unit. With
   ``AGG_LATE_DATA=counts`` (default) units read from the watermark on, and late samples are
   found by counting (:mod:`clpm_aggregation.late_data`); with ``reread`` every unit re-reads
   from ``W - AGG_LATENESS_S``.
4. **Late data**: the count check of the lateness allowance (when due) and a slice of the
   periodic reconciliation over AGG_RECONCILE_HOURS recompute the minutes that gained samples.
5. **Log** one line of cycle statistics (loops, samples read, buckets written, lag behind now).

Faults: the store unavailable or the database unavailable end the cycle; watermarks stay
where the last committed unit left them, and the next cycle (after a capped exponential
backoff) resumes there: nothing is skipped, nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_aggregation.late_data import LateDataChecker, LateDataReport
from clpm_aggregation.pipeline import UnitOutcome, WatermarkMode, run_units
from clpm_aggregation.planning import (
    HOUR,
    MINUTE,
    WorkUnit,
    backlog_minutes,
    far_behind,
    floor_to,
    head_start_units,
    held_span,
    initial_watermark,
    plan_units,
    span_if_spread,
    spread_offsets,
)
from clpm_aggregation.progress import ProgressMeter
from clpm_shared.config import AggregationSettings
from clpm_shared.db.errors import DatabaseFailure, classify
from clpm_shared.db.repositories.heartbeats import HeartbeatRepository
from clpm_shared.db.repositories.leases import WorkLeaseRepository
from clpm_shared.db.repositories.loops import LoopRepository
from clpm_shared.db.repositories.watermarks import WatermarkRepository
from clpm_shared.timeseries.base import StoreUnavailableError, TimeSeriesStore

logger = logging.getLogger(__name__)

SERVICE = "aggregation"
"""Name of this worker in ``worker_heartbeats`` and ``work_leases``."""

MAX_SAMPLES_PER_UNIT = 600_000
"""About this many raw samples per unit (bounded memory; several units are read at once)."""

TIME_RANGE_CONCURRENCY = 8

CLAIM_ROUNDS = 3

JOIN_SETTLE_S = 2.0
"""Seconds a starting instance waits after its first heartbeat before it claims loops."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_instance_id() -> str:
    """``host:pid:random``: starts with the host name (the health check filters on it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _spread(instance_id: str, loop_id: str) -> bytes:
    return hashlib.blake2b(f"{instance_id}/{loop_id}".encode(), digest_size=8).digest()


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_dead_predecessor(instance_id: str, me: str) -> bool:
    """Whether ``instance_id`` names a process of this host that is gone (``host:pid:random``).

    A crashed or killed instance leaves its leases behind; the process that replaces it (a
    restart in place: same host, often the same pid in a container) need not wait for them to
    expire. Instances of other hosts are never judged: their leases expire by themselves.
    """
    if instance_id == me:
        return False
    host, _, rest = instance_id.partition(":")
    pid_text, _, _ = rest.partition(":")
    my_host, _, my_rest = me.partition(":")
    if host != my_host or host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if str(pid) == my_rest.partition(":")[0]:
        return True  # two live processes of one host never share a pid: that one is gone
    return not _pid_running(pid)


_DATABASE_FAILURES = {
    DatabaseFailure.UNREACHABLE: "database unavailable; uncommitted work rolled back, retrying",
    DatabaseFailure.NO_SPACE: "database out of disk space or memory; uncommitted work rolled "
    "back, retrying",
    DatabaseFailure.BUSY: "database statement or lock wait timed out; uncommitted work rolled "
    "back, retrying",
    DatabaseFailure.OTHER: "database refused a statement; uncommitted work rolled back, retrying",
}


class StoppedError(Exception):
    """The service was asked to stop in the middle of a cycle (nothing half-written)."""


@dataclass
class CycleReport:
    """Statistics of one cycle (also the heartbeat's ``stats``)."""

    loops: int = 0
    new_loops: int = 0
    units: int = 0
    lost_units: int = 0
    samples: int = 0
    buckets_written: int = 0
    hours_written: int = 0
    malformed_values: int = 0
    unusable_samples: int = 0
    missing_values: dict[str, int] = field(default_factory=dict)
    malformed_examples: list[str] = field(default_factory=list)
    lag_s: float | None = None
    late_minutes: int = 0
    """Minutes recomputed because their samples changed after they were written."""
    late_ranges: int = 0
    head_start_buckets: int = 0
    """Minutes written ahead of the watermarks of loops far behind (written again later)."""
    duration_s: float = 0.0

    def add_late(self, late: LateDataReport | None) -> None:
        if late is not None:
            self.late_minutes += late.minutes
            self.late_ranges += late.ranges

    def add(self, outcome: UnitOutcome) -> None:
        self.units += 1
        if not outcome.committed:
            self.lost_units += 1
            return
        self.samples += outcome.samples
        self.buckets_written += outcome.minutes_written
        self.hours_written += outcome.hours_written
        skipped = outcome.skipped
        self.malformed_values += skipped.malformed_total
        self.unusable_samples += skipped.unusable_samples
        for name, count in skipped.missing.items():
            self.missing_values[name] = self.missing_values.get(name, 0) + count
        for example in skipped.examples:
            if example not in self.malformed_examples and len(self.malformed_examples) < 5:
                self.malformed_examples.append(example)


class Backoff:
    """Capped exponential backoff with jitter for retrying after an outage."""

    def __init__(self, initial_s: float, maximum_s: float) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.failures = 0

    def next_delay(self, at_least_s: float = 0.0) -> float:
        self.failures += 1
        base = min(self.maximum_s, self.initial_s * 2.0 ** (self.failures - 1))
        jitter = 0.8 + 0.4 * secrets.randbelow(1000) / 1000
        return min(self.maximum_s, max(at_least_s, base * jitter))

    def reset(self) -> None:
        self.failures = 0


class AggregationService:
    """Keeps ``agg_1m`` / ``agg_1h`` up to date for the loops this instance leases.

    Parameters
    ----------
    settings
        AGG_* and POLLING_INTERVAL settings.
    store
        The raw time-series store (its own retries happen inside it).
    sessions
        Session factory of the relational database.
    instance_id
        This replica's name in leases and heartbeats.
    clock
        Source of "now" (UTC); tests pass a controllable clock.
    """

    def __init__(
        self,
        settings: AggregationSettings,
        store: TimeSeriesStore,
        sessions: async_sessionmaker[AsyncSession],
        *,
        instance_id: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_samples_per_unit: int = MAX_SAMPLES_PER_UNIT,
        read_ahead: int = 3,
    ) -> None:
        self.settings = settings
        self.store = store
        self.sessions = sessions
        self.instance_id = instance_id or default_instance_id()
        self.clock = clock
        self.max_samples_per_unit = max_samples_per_unit
        self.read_ahead = read_ahead
        self.lateness = timedelta(seconds=settings.agg_lateness_s)
        counting = settings.agg_late_data == "counts"
        self.read_lateness = timedelta(0) if counting else self.lateness
        """How far before the watermark units re-read: the allowance only with ``reread``."""
        self.late_data = LateDataChecker(
            store,
            sessions,
            lateness=self.lateness if counting else timedelta(0),
            check_interval_s=settings.agg_late_check_interval_s,
            reconcile_horizon=timedelta(hours=settings.agg_reconcile_hours),
            reconcile_interval_s=settings.agg_reconcile_interval_s,
            clock=clock,
            poll_interval_s=settings.polling_interval / 1000.0,
        )
        self.chunk = timedelta(minutes=settings.agg_chunk_minutes)
        self.lease = timedelta(seconds=settings.agg_lease_s)
        self.interval_s = settings.polling_interval / 1000.0
        self._offsets: dict[str, timedelta] = {}
        """Spread offsets computed so far (stable per loop id and span)."""
        self.span = MINUTE
        """The spread's span of the last cycle (``planning.spread_span``)."""
        self.settled: dict[str, datetime] = {}
        self.ahead_until: dict[str, datetime] = {}
        """Where each loop's last head start ended (minutes written ahead of its watermark)."""
        self.known_marks: dict[str, datetime] = {}
        """Watermarks this instance committed itself (saves reading them every cycle). Safe to
        be stale: a stale value only makes a unit lose its compare-and-set; it is then reread."""
        self.samples_per_loop_s = 1.0
        self.last_report = CycleReport()
        self._registered: set[str] = set()
        self._stopping = asyncio.Event()
        self._last_renewal = 0.0
        self._renewed_at: datetime | None = None
        """Service-clock time of the last lease renewal (with ``_last_renewal``, its monotonic
        time: a renewal is due when either says half a lease has passed)."""
        self._held: list[str] | None = None
        """The loops whose leases the last renewal or claim gave this instance."""
        self._joined = False
        self.join_settle_s = min(JOIN_SETTLE_S, self.interval_s)

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask :meth:`run` to finish the unit in progress and return."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Cycle every POLLING_INTERVAL until :meth:`stop`; outages are retried with backoff."""
        backoff = Backoff(initial_s=1.0, maximum_s=max(30.0, self.interval_s))
        logger.info(
            "aggregation started",
            extra={
                "instance": self.instance_id,
                "polling_interval_s": self.interval_s,
                "lateness_s": self.lateness.total_seconds(),
                "late_data": self.settings.agg_late_data,
                "reconcile_hours": self.settings.agg_reconcile_hours,
                "chunk_minutes": self.settings.agg_chunk_minutes,
                "lease_s": self.lease.total_seconds(),
            },
        )
        while not self.stopping:
            started = time.monotonic()
            try:
                await self.run_cycle()
            except StoppedError:
                break
            except StoreUnavailableError as exc:
                delay = backoff.next_delay(exc.retry_after_s if backoff.failures else 0.0)
                logger.warning(
                    "time-series store unavailable; watermarks unchanged, retrying",
                    extra={"error": str(exc), "retry_in_s": round(delay, 2)},
                )
            except (SQLAlchemyError, OSError) as exc:
                delay = backoff.next_delay()
                logger.warning(
                    _DATABASE_FAILURES[classify(exc)],
                    extra={"error": _first_line(exc), "retry_in_s": round(delay, 2)},
                )
            except Exception as exc:  # a worker keeps going; the next cycle retries
                delay = backoff.next_delay()
                logger.exception("aggregation cycle failed", extra={"error": _first_line(exc)})
            else:
                backoff.reset()
                delay = max(0.0, self.interval_s - (time.monotonic() - started))
            await self._sleep(delay)
        await self.shutdown()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return

    async def shutdown(self) -> None:
        """Release this instance's leases and heartbeat so others take over at once."""
        try:
            async with self.sessions() as session, session.begin():
                await WorkLeaseRepository(session, SERVICE).release(self.instance_id)
                await HeartbeatRepository(session, SERVICE).remove(self.instance_id)
        except (SQLAlchemyError, OSError) as exc:
            logger.warning(
                "could not release leases on shutdown; they expire by themselves",
                extra={"error": _first_line(exc)},
            )
        logger.info("aggregation stopped", extra={"instance": self.instance_id})

    # ------------------------------------------------------------------ one cycle

    async def run_cycle(self) -> CycleReport:
        """Coordinate, then aggregate every leased loop up to the start of the current minute."""
        try:
            return await self._cycle()
        except BaseException:
            self.known_marks.clear()  # after a failure, read the watermarks again
            self._held = None  # and renew the leases
            raise

    async def _cycle(self) -> CycleReport:
        if not self._joined:
            await self.join()
        started = time.monotonic()
        report = CycleReport()
        now = self.clock()
        mine, report.new_loops = await self.coordinate(now)
        marks = await self.watermarks(mine, now)
        report.loops = len(marks)
        offsets = self.spread(marks)
        backlog = backlog_minutes(marks, now, offsets, self.span)
        meter = ProgressMeter(backlog, label="catch-up")
        owned = set(marks)
        before = dict(marks)

        async def on_outcome(outcome: UnitOutcome) -> None:
            report.add(outcome)
            unit = outcome.unit
            if outcome.committed:
                self.late_data.wrote(outcome.minutes, unit.loop_ids, unit.watermark, unit.end)
                settled = outcome.read_at - self.read_lateness
                for loop_id in unit.loop_ids:
                    if loop_id in marks:
                        marks[loop_id] = unit.end
                        self.known_marks[loop_id] = unit.end
                        self.settled[loop_id] = settled
                self._learn_rate(outcome)
                meter.advance(unit.new_minutes, outcome.samples)
            else:
                self.late_data.forget(unit.loop_ids)  # another writer: agg_1m is not ours
                for loop_id in unit.loop_ids:
                    marks.pop(loop_id, None)
                    self.known_marks.pop(loop_id, None)
                    self.settled.pop(loop_id, None)
            if outcome.skipped.malformed_total or outcome.skipped.unusable_samples:
                logger.warning(
                    "skipped malformed values",
                    extra={
                        "malformed": dict(outcome.skipped.malformed),
                        "unusable_samples": outcome.skipped.unusable_samples,
                        "loops": list(outcome.skipped.examples),
                    },
                )
            if self.stopping:
                raise StoppedError
            await self._renew_if_due(owned)

        # the allowance's and the reconciliation's counts read only minutes below the
        # watermarks at the start: they run while the units aggregate the new minutes, and
        # what they find is corrected after
        late = asyncio.create_task(self.late_data.find(now, before))
        try:
            while not self.stopping:
                units = self.plan(marks, offsets)
                if not units:
                    break
                if await self._head_start(marks, report):
                    # the oldest chunk, then a fresh head start: current minutes stay current
                    units = [unit for unit in units if unit.end <= units[0].end]
                await self._run_units(units, WatermarkMode.COMPARE_AND_SET, on_outcome)
            found = await late
        finally:
            if not late.done():
                late.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await late
        if meter.logged:
            meter.finish()
        if not self.stopping:
            await self._renew_if_due(owned)  # a cycle without units renews here
            if found.allowance is not None:
                report.add_late(await self.late_data.correct(found.allowance, marks))
            if found.reconciliation is not None:
                report.add_late(await self.late_data.reconcile(found.reconciliation, marks))
        end_now = self.clock()
        if marks:
            report.lag_s = round((end_now - min(marks.values())).total_seconds(), 3)
        report.duration_s = round(time.monotonic() - started, 3)
        self.last_report = report
        logger.info("cycle", extra={"instance": self.instance_id, **asdict(report)})
        return report

    async def _run_units(
        self,
        units: list[WorkUnit],
        mode: WatermarkMode,
        on_outcome: Callable[[UnitOutcome], Awaitable[None] | None],
    ) -> None:
        """:func:`~clpm_aggregation.pipeline.run_units` with this service's store and settings."""
        await run_units(
            units,
            store=self.store,
            sessions=self.sessions,
            lateness=self.read_lateness,
            clock=self.clock,
            read_ahead=self.read_ahead,
            mode=mode,
            on_outcome=on_outcome,
        )

    async def _head_start(self, marks: dict[str, datetime], report: CycleReport) -> bool:
        """Write the newest minutes of the loops far behind ahead of their watermarks
        (:func:`~clpm_aggregation.planning.head_start_units`); True when some loop is far
        behind (the catch-up then goes one chunk at a time)."""
        now = self.clock()
        units = head_start_units(
            marks,
            self.ahead_until,
            now=now,
            max_samples_per_unit=self.max_samples_per_unit,
            samples_per_loop_s=self.samples_per_loop_s,
        )
        behind = any(far_behind(mark, now) for mark in marks.values())

        def on_ahead(outcome: UnitOutcome) -> None:
            report.head_start_buckets += outcome.minutes_written
            for loop_id in outcome.unit.loop_ids:
                self.ahead_until[loop_id] = outcome.unit.end
            if self.stopping:
                raise StoppedError

        if units:
            await self._run_units(units, WatermarkMode.AHEAD, on_ahead)
            logger.info(
                "head start: newest minutes of loops far behind written ahead of the catch-up",
                extra={"loops": sum(len(unit.loop_ids) for unit in units)},
            )
        return behind

    def spread(self, marks: Mapping[str, datetime]) -> dict[str, timedelta]:
        """The spread offsets of the loops (``planning.spread_offsets``) over the span that
        keeps a poll under ``AGG_SPREAD_LOOPS_PER_POLL`` loops (``self.span``; a shorter one
        only with a margin, ``planning.held_span``), once per cycle; none below
        ``AGG_SPREAD_MIN_LOOPS`` loops."""
        poll = timedelta(seconds=self.interval_s)
        span = span_if_spread(
            len(marks),
            poll,
            self.settings.agg_spread_min_loops,
            self.settings.agg_spread_loops_per_poll,
        )
        if span is None:
            self.span = MINUTE
            return {}
        span = held_span(self.span, span, len(marks), poll, self.settings.agg_spread_loops_per_poll)
        if span != self.span:
            self._offsets.clear()
            self.span = span
        missing = [loop_id for loop_id in marks if loop_id not in self._offsets]
        if missing:
            self._offsets.update(spread_offsets(missing, poll, span))
        return {loop_id: self._offsets[loop_id] for loop_id in marks if loop_id in self._offsets}

    def plan(self, marks: dict[str, datetime], offsets: Mapping[str, timedelta]) -> list[WorkUnit]:
        return plan_units(
            marks,
            self.settled,
            now=self.clock(),
            lateness=self.read_lateness,
            chunk=self.chunk,
            max_samples_per_unit=self.max_samples_per_unit,
            samples_per_loop_s=self.samples_per_loop_s,
            loops_per_query=self.settings.agg_loops_per_query,
            offsets=offsets,
            span=self.span,
        )

    def _learn_rate(self, outcome: UnitOutcome) -> None:
        span = len(outcome.unit.loop_ids) * outcome.unit.window_s
        if span > 0 and outcome.samples:
            observed = outcome.samples / span
            self.samples_per_loop_s = 0.7 * self.samples_per_loop_s + 0.3 * observed

    # ------------------------------------------------------------------ coordination

    async def join(self) -> None:
        """Announce this instance, then give replicas started with it time to do the same.

        Without it the first replica to coordinate sees itself alone, takes every loop and
        keeps them through its (long) first catch-up cycle while the others idle.
        """
        async with self.sessions() as session, session.begin():
            await HeartbeatRepository(session, SERVICE).beat(
                self.instance_id, self.clock(), asdict(self.last_report)
            )
        await asyncio.sleep(self.join_settle_s)
        self._joined = True

    async def coordinate(self, now: datetime) -> tuple[list[str], int]:
        """Register new loops, beat, and settle this instance's leases; returns (loops, new)."""
        discovered = await self.store.discover_loops()
        async with self.sessions() as session, session.begin():
            loops = LoopRepository(session)
            known = set(await loops.all_ids())
            new = sorted(set(discovered) - known - self._registered)
            if new:
                await loops.register_discovered(new)
                self._registered.update(new)
                known.update(new)
                logger.info("registered new loops", extra={"count": len(new), "loops": new[:10]})
            beats = HeartbeatRepository(session, SERVICE)
            await beats.beat(self.instance_id, now, asdict(self.last_report))
            live = await beats.live(now - self.lease)
            leases = WorkLeaseRepository(session, SERVICE)
            dead = [
                instance
                for instance in sorted(set(live) | set(await leases.owners(now)))
                if is_dead_predecessor(instance, self.instance_id)
            ]
            for instance in dead:
                released = await leases.release(instance)
                await beats.remove(instance)
                logger.info(
                    "released the leases of a dead instance of this host",
                    extra={"dead_instance": instance, "leases": released},
                )
            live = [instance for instance in live if instance not in dead]
            until = now + self.lease
            # Renewing 10,000 leases is an UPDATE of 10,000 rows: done once half a lease has
            # passed (every other 30-s poll at the defaults), not at every poll, and then not
            # here but after the cycle's first unit (``_renew_if_due``), while the next units
            # are read. Until then the last renewal's list is used: those leases are still
            # valid. Here renew the first cycle, new loops, a dead instance, and leases with
            # less than a quarter left (a late cycle: they may have expired and been claimed).
            renew_now = self._held is None or new or dead or self._renewal_due(now, 0.75)
            held = None if renew_now else self._held
            if held is None:
                renewed = await leases.renew(self.instance_id, now, until)
            else:
                renewed = list(held)
            gone = [loop_id for loop_id in renewed if loop_id not in known]
            mine = [loop_id for loop_id in renewed if loop_id in known]
            fair = math.ceil(len(known) / max(1, len(live)))
            if len(mine) > fair:
                gone.extend(mine[fair:])
                mine = mine[:fair]
            if gone:
                await leases.release(self.instance_id, gone)
            for _ in range(CLAIM_ROUNDS):
                if len(mine) >= fair:
                    break
                # replicas claiming at the same moment would all try the same first free loops
                # (and all but one get nothing): each takes its own pseudo-random share of the
                # free loops, and tries again with what is still free after the others' commits
                need = fair - len(mine)
                free = await leases.claimable(now, need * max(1, len(live)))
                if not free:
                    break
                free.sort(key=lambda loop_id: _spread(self.instance_id, loop_id))
                mine.extend(await leases.claim(self.instance_id, free[:need], now, until))
        if held is None:  # renewed
            self._last_renewal, self._renewed_at = time.monotonic(), now
        self._held = sorted(mine)
        for loop_id in gone:
            self.settled.pop(loop_id, None)
            self.known_marks.pop(loop_id, None)
        self.late_data.forget(gone)
        return sorted(mine), len(new)

    def _renewal_due(self, now: datetime, fraction: float = 0.5) -> bool:
        """``fraction`` of a lease has passed since the last renewal, by the monotonic or
        service clock."""
        passed = self.lease.total_seconds() * fraction
        return (
            self._renewed_at is None
            or (now - self._renewed_at).total_seconds() >= passed
            or time.monotonic() - self._last_renewal >= passed
        )

    async def _renew_if_due(self, owned: set[str]) -> None:
        now = self.clock()
        if not self._renewal_due(now):
            return
        async with self.sessions() as session, session.begin():
            kept = await WorkLeaseRepository(session, SERVICE).renew(
                self.instance_id, now, now + self.lease
            )
            await HeartbeatRepository(session, SERVICE).beat(
                self.instance_id, now, asdict(self.last_report)
            )
        self._last_renewal, self._renewed_at = time.monotonic(), now
        lost = owned - set(kept)
        if self._held is not None:
            self._held = [loop_id for loop_id in self._held if loop_id not in lost]
        for loop_id in lost:
            self.known_marks.pop(loop_id, None)
        self.late_data.forget(sorted(lost))
        if lost:
            logger.warning("leases lost during the cycle", extra={"count": len(lost)})

    async def watermarks(self, loop_ids: Sequence[str], now: datetime) -> dict[str, datetime]:
        """Watermarks of ``loop_ids``; loops without one get their starting watermark first.

        Watermarks this instance committed come from memory; the others from the database.
        """
        marks = {i: self.known_marks[i] for i in loop_ids if i in self.known_marks}
        unknown = [loop_id for loop_id in loop_ids if loop_id not in marks]
        if unknown:
            async with self.sessions() as session:
                marks.update(await WatermarkRepository(session).get(unknown))
        missing = [loop_id for loop_id in loop_ids if loop_id not in marks]
        if missing:
            initial = await self.initial_watermarks(missing, now)
            async with self.sessions() as session, session.begin():
                await WatermarkRepository(session).initialize(initial)
            async with self.sessions() as session:
                stored = await WatermarkRepository(session).get(missing)
            for loop_id, mark in stored.items():
                marks[loop_id] = mark
                if mark == initial.get(loop_id):
                    self.settled[loop_id] = mark  # nothing before the start to re-read
            logger.info(
                "loops start aggregating",
                extra={
                    "count": len(missing),
                    "from": min(stored.values()).isoformat() if stored else None,
                },
            )
        self.known_marks.update(marks)
        return marks

    async def initial_watermarks(
        self, loop_ids: Sequence[str], now: datetime
    ) -> dict[str, datetime]:
        """Where new loops start: AGG_BACKFILL_HOURS before now, else their oldest sample."""
        current = floor_to(now, MINUTE)
        hours = self.settings.agg_backfill_hours
        if hours is not None:
            start = min(current, floor_to(now - timedelta(hours=hours), MINUTE))
            return dict.fromkeys(loop_ids, start)
        limit = asyncio.Semaphore(TIME_RANGE_CONCURRENCY)

        async def oldest(loop_id: str) -> tuple[str, datetime]:
            async with limit:
                span = await self.store.time_range(loop_id)
            if span is None:
                return loop_id, current
            return loop_id, min(current, initial_watermark(span.start, self.chunk))

        return dict(await asyncio.gather(*(oldest(loop_id) for loop_id in loop_ids)))

    # ------------------------------------------------------------------ backfill command

    async def backfill(self, hours: float, loop_ids: Sequence[str] | None = None) -> CycleReport:
        """Recompute the last ``hours`` (from the start of that hour) for every loop, then stop.

        Watermarks only move forward, and only for loops already aggregated up to the start of
        the recomputed range (a loop further behind keeps its watermark: nothing is skipped).
        Independent of leases: it may run next to the service.
        """
        started = time.monotonic()
        report = CycleReport()
        now = self.clock()
        discovered = await self.store.discover_loops()
        async with self.sessions() as session, session.begin():
            repository = LoopRepository(session)
            known = set(await repository.all_ids())
            new = sorted(set(discovered) - known)
            if new:
                await repository.register_discovered(new)
            report.new_loops = len(new)
            chosen = sorted(known | set(new)) if loop_ids is None else sorted(set(loop_ids))
        start = floor_to(now - timedelta(hours=hours), HOUR)
        end = floor_to(now, MINUTE)
        report.loops = len(chosen)
        units: list[WorkUnit] = []
        mark = start
        size = max(
            self.settings.agg_loops_per_query,
            int(self.max_samples_per_unit / max(60.0, self.chunk.total_seconds()))
            // self.settings.agg_loops_per_query
            * self.settings.agg_loops_per_query,
        )
        while mark < end:
            chunk_end = min(end, floor_to(mark, self.chunk) + self.chunk)
            for offset in range(0, len(chosen), size):
                batch = tuple(chosen[offset : offset + size])
                units.append(WorkUnit(batch, mark, mark, chunk_end))
            mark = chunk_end
        meter = ProgressMeter(sum(unit.new_minutes for unit in units), label="backfill")

        def on_outcome(outcome: UnitOutcome) -> None:
            report.add(outcome)
            meter.advance(outcome.unit.new_minutes, outcome.samples)
            if self.stopping:
                raise StoppedError

        await self._run_units(units, WatermarkMode.RECOMPUTE, on_outcome)
        meter.finish()
        report.duration_s = round(time.monotonic() - started, 3)
        logger.info("backfill", extra=asdict(report))
        return report


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
