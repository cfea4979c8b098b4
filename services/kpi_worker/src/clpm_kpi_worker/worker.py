"""The KPI worker: for each due window, read each loop's data, compute KPIs, diagnose every
loop, upsert the rows and the findings, then re-rate the assessment periods.

Per loop the raw samples come from the time-series store; when the store has no raw data for
the window or is down, the window is built from agg_1m means instead (``source = "agg_1m"``).
At most KPI_MAX_CONCURRENCY loops are analysed at once, in worker processes that also run the
diagnosis on the samples they already hold (findings: ``diagnostic_results``, trigger
``kpi_cycle``). The window's verdict (status incl. ``not_assessed``, health, main problem =
root cause) goes into ``kpi_results``. Windows stored as offline or not_assessed are
re-checked against the agg_1m minute counts for ``KPI_RECHECK_WINDOWS`` windows and
recomputed once their data has arrived. After the periods are rated, the alert rules are
evaluated on what the cycle stored (``alerting``). Replicas share loops through
``work_leases`` (work ``"kpi"``) with expiry, like the aggregation service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_kpi_worker.alerting import evaluate_alerts
from clpm_kpi_worker.loop_analysis import (
    AnalysisJob,
    LoopAnalysis,
    analyse_batch,
    loop_config_from_row,
    window_from_buckets,
)
from clpm_kpi_worker.windows import (
    KpiWindow,
    due_windows,
    last_complete_window,
    newest_first,
    windows_between,
    windows_to_recheck,
)
from clpm_shared.aggregation.buckets import BucketTable
from clpm_shared.analytics import LoopConfig
from clpm_shared.config import AlertSettings, KpiSettings
from clpm_shared.db.repositories import LoopConfigRepository, LoopRepository
from clpm_shared.db.repositories.aggregates import AggregateRepository
from clpm_shared.db.repositories.assessments import PERIODS, AssessmentRepository
from clpm_shared.db.repositories.diagnostics import DiagnosticRepository
from clpm_shared.db.repositories.heartbeats import HISTORY_RUN, HeartbeatRepository
from clpm_shared.db.repositories.kpis_write import KpiWriteRepository
from clpm_shared.db.repositories.leases import WorkLeaseRepository
from clpm_shared.timeseries import RawSeries, StoreUnavailableError, TimeSeriesStore

log = logging.getLogger("clpm_kpi_worker")


WORK = "kpi"
SERVICE = "kpi-worker"
HISTORY_BEAT_S = 30.0
"""Seconds between the heartbeats of a history run (statistics ``history_run: true``); the
diagnostics service defers its scheduled cluster runs while one is fresh."""
_CONFIG_COLUMNS = (
    "loop_type",
    "criticality",
    "normal_modes",
    "op_lo",
    "op_hi",
    "sat_margin",
    "pv_lo",
    "pv_hi",
    "deadband",
    "dead_time_s",
    "apc_enabled",
    "apc_modes",
    "kpi_window_min",
)


@dataclass
class CycleStats:
    """What one cycle did (logged, stored in the heartbeat)."""

    loops: int = 0
    windows: int = 0
    from_raw: int = 0
    from_agg_1m: int = 0
    failed: int = 0
    seconds: float = 0.0
    findings: int = 0
    rechecked: int = 0
    assessment_seconds: float = 0.0
    alerts: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "loops": self.loops,
            "windows": self.windows,
            "from_raw": self.from_raw,
            "from_agg_1m": self.from_agg_1m,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "findings": self.findings,
            "rechecked": self.rechecked,
            "assessment_seconds": round(self.assessment_seconds, 3),
            "alerts": dict(self.alerts),
            "statuses": dict(self.statuses),
        }


class KpiWorker:
    """Computes and stores KPIs: :meth:`run_cycle` on schedule, :meth:`run_range` for backfills."""

    def __init__(
        self,
        settings: KpiSettings,
        sessions: async_sessionmaker[AsyncSession],
        store: TimeSeriesStore,
        *,
        instance_id: str | None = None,
        chunk_size: int = 250,
        executor: Executor | None = None,
        alerts: AlertSettings | None = None,
    ) -> None:
        self.settings = settings
        self.alert_settings = alerts
        self.sessions = sessions
        self.store = store
        self.instance_id = instance_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.chunk_size = chunk_size
        self._pool: Executor | None = executor
        self.last_stats: CycleStats | None = None
        self.cycle_running = False

    # ------------------------------------------------------------------ scheduling

    async def run_cycle(self, now: datetime | None = None) -> CycleStats:
        """Claim loops, catch up each loop's missed windows (bounded), store the results."""
        now = now or datetime.now(UTC)
        self.cycle_running = True
        try:
            return await self._cycle(now)
        finally:
            self.cycle_running = False

    async def _cycle(self, now: datetime) -> CycleStats:
        started = time.perf_counter()
        loop_ids = await self._claim_loops(now)
        minutes = self.settings.kpi_window_min
        async with self.sessions() as session:
            last = await KpiWriteRepository(session).last_windows(loop_ids)
        plan: dict[KpiWindow, list[str]] = {}
        for loop_id in loop_ids:
            for window in due_windows(
                now, minutes, last.get(loop_id), self.settings.kpi_catchup_max_windows
            ):
                plan.setdefault(window, []).append(loop_id)
        stats = CycleStats(loops=len(loop_ids))
        for window, ids in (await self._windows_with_new_data(loop_ids, now)).items():
            planned = set(plan.get(window, ()))
            again = [loop_id for loop_id in ids if loop_id not in planned]
            if again:
                plan.setdefault(window, []).extend(again)
                stats.rechecked += len(again)
        for window in sorted(plan):
            await self._run_window(window, sorted(plan[window]), stats)
        stats.assessment_seconds = await self.rate_periods(
            loop_ids, last_complete_window(now, minutes).end
        )
        await self._evaluate_alerts(loop_ids, now, stats)  # after the cycle, on what it stored
        stats.seconds = time.perf_counter() - started
        self.last_stats = stats
        await self._heartbeat(now, stats.as_dict())
        log.info("kpi cycle done", extra={"cycle": stats.as_dict()})
        return stats

    async def _evaluate_alerts(
        self, loop_ids: Sequence[str], now: datetime, stats: CycleStats
    ) -> None:
        """Evaluate the alert rules on the loops' state at ``now`` (their windows up to the
        last complete one), when alerts are configured."""
        if self.alert_settings is None:
            return
        minutes = self.settings.kpi_window_min
        stats.alerts = asdict(
            await evaluate_alerts(
                self.sessions,
                self.alert_settings,
                loop_ids,
                last_complete_window(now, minutes).end,
                timedelta(minutes=minutes),
                now,
            )
        )

    async def _windows_with_new_data(
        self, loop_ids: Sequence[str], now: datetime
    ) -> dict[KpiWindow, list[str]]:
        """Recent windows stored as offline / not_assessed whose agg_1m minutes now hold
        clearly more data than the stored completeness (the data arrived late, e.g. after a
        store outage): they are computed again."""
        count = self.settings.kpi_recheck_windows
        if count == 0 or not loop_ids:
            return {}
        minutes = self.settings.kpi_window_min
        since = last_complete_window(now, minutes).end - timedelta(minutes=minutes * count)
        async with self.sessions() as session:
            incomplete = await KpiWriteRepository(session).incomplete_windows(loop_ids, since)
            starts = sorted({start for _, start, _ in incomplete})
            counts = {
                start: await AggregateRepository(session).minutes_with_data(
                    sorted({loop for loop, s, _ in incomplete if s == start}),
                    start,
                    start + timedelta(minutes=minutes),
                )
                for start in starts
            }
        return windows_to_recheck(incomplete, counts, minutes)

    async def rate_periods(self, loop_ids: Sequence[str], end: datetime) -> float:
        """Re-rate every period (shift, day, week) of ``loop_ids`` ending at ``end``
        (``loop_assessments``; one transaction per period, the fleet summed in one pass);
        returns the seconds it took. A database error is logged, not raised: the next cycle
        rates them again."""
        started = time.perf_counter()
        window = timedelta(minutes=self.settings.kpi_window_min)
        try:
            for period in PERIODS:
                length = self.settings.period_length(period)
                async with self.sessions() as session, session.begin():
                    await AssessmentRepository(session).refresh(
                        loop_ids, period, end - length, end, window
                    )
        except SQLAlchemyError:
            log.exception("assessment periods not rated; the next cycle rates them again")
        return time.perf_counter() - started

    async def beat(self, now: datetime | None = None) -> None:
        """Heartbeat between (and during) cycles, so a health probe need not wait a cron period:
        the last cycle's statistics and whether a cycle is running. A database outage is
        logged, never raised (the next beat or cycle tries again)."""
        stats = self.last_stats.as_dict() if self.last_stats is not None else {}
        stats["cycle_running"] = self.cycle_running
        try:
            await self._heartbeat(now or datetime.now(UTC), stats)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("heartbeat not written", extra={"error": str(exc)})

    async def run_range(
        self,
        start: datetime,
        end: datetime,
        loop_ids: Sequence[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
        now: datetime | None = None,
    ) -> CycleStats:
        """Compute every aligned window in ``[start, end)`` (backfill; no leases needed), the
        newest first (:func:`newest_first`: every loop has a current KPI early), then
        rate the loops' periods ending with its last window, as a cycle does: without it the
        shift / day / week ratings stayed "no rating yet" until the first scheduled cycle.
        Loops rated up to a later time keep their ratings (a backfill of old history does not
        replace the current ones; an import of old history is rated).

        At its end the alert rules are evaluated once, as a cycle at ``now`` (default: the
        clock) would: on the loops' current state, never window by window through the
        history, which would open and clear an alert for every bad stretch of the past and
        send a notice for each."""
        started = time.perf_counter()
        if loop_ids is None:
            await self._register_new_loops()
            async with self.sessions() as session:
                loop_ids = await LoopRepository(session).all_ids()
        windows = newest_first(windows_between(start, end, self.settings.kpi_window_min))
        stats = CycleStats(loops=len(loop_ids))
        beats = asyncio.create_task(self._beat_history(stats, len(windows)))
        try:
            for done, window in enumerate(windows, start=1):
                await self._run_window(window, list(loop_ids), stats)
                if progress is not None:
                    progress(done, len(windows))
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
            await self._end_history_beats()
        if windows:
            newest = windows[0].end
            newer = await self._rated_before(loop_ids, newest)
            if newer:
                stats.assessment_seconds = await self.rate_periods(newer, newest)
        await self._evaluate_alerts(loop_ids, now or datetime.now(UTC), stats)
        stats.seconds = time.perf_counter() - started
        return stats

    @property
    def history_instance_id(self) -> str:
        """The instance name of this worker's history runs in ``worker_heartbeats``."""
        return f"{self.instance_id}-history"

    async def _beat_history(self, stats: CycleStats, windows: int) -> None:
        """Heartbeat every :data:`HISTORY_BEAT_S` while a history run works (its progress and
        ``history_run: true``), so the diagnostics service defers its cluster runs meanwhile."""
        while True:
            beat = {HISTORY_RUN: True, "windows": windows, "loop_windows_done": stats.windows}
            try:
                async with self.sessions() as session, session.begin():
                    await HeartbeatRepository(session, SERVICE).beat(
                        self.history_instance_id, datetime.now(UTC), beat
                    )
            except (SQLAlchemyError, OSError) as exc:
                log.warning("history heartbeat not written", extra={"error": str(exc)})
            await asyncio.sleep(HISTORY_BEAT_S)

    async def _end_history_beats(self) -> None:
        """Remove the history run's heartbeat: deferred work may start at once."""
        try:
            async with self.sessions() as session, session.begin():
                await HeartbeatRepository(session, SERVICE).remove(self.history_instance_id)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("history heartbeat not removed (it expires)", extra={"error": str(exc)})

    async def _rated_before(self, loop_ids: Sequence[str], end: datetime) -> list[str]:
        """``loop_ids`` not rated yet or rated up to before ``end``."""
        async with self.sessions() as session:
            rated = await AssessmentRepository(session).rated_until(loop_ids)
        return [loop_id for loop_id in loop_ids if loop_id not in rated or rated[loop_id] < end]

    async def _claim_loops(self, now: datetime) -> list[str]:
        until = now + timedelta(seconds=self.settings.kpi_lease_s)
        await self._register_new_loops()
        async with self.sessions() as session, session.begin():
            leases = WorkLeaseRepository(session, WORK)
            held = await leases.renew(self.instance_id, now, until)
            free = await leases.claimable(now, limit=100_000)
            got = await leases.claim(self.instance_id, free, now, until) if free else []
        return sorted(set(held) | set(got))

    async def _register_new_loops(self) -> None:
        """Register loops present in the store but not yet in ``loops`` (as aggregation does)."""
        try:
            discovered = await self.store.discover_loops()
        except StoreUnavailableError as exc:
            log.warning("loop discovery skipped: store unavailable", extra={"error": str(exc)})
            return
        if discovered:
            async with self.sessions() as session, session.begin():
                await LoopRepository(session).register_discovered(discovered)

    async def _heartbeat(self, now: datetime, stats: dict[str, Any]) -> None:
        async with self.sessions() as session, session.begin():
            await HeartbeatRepository(session, SERVICE).beat(self.instance_id, now, stats)

    async def release(self) -> None:
        """Give up this instance's leases (on clean shutdown) so others take over at once."""
        async with self.sessions() as session, session.begin():
            await WorkLeaseRepository(session, WORK).release(self.instance_id)

    def close(self) -> None:
        """Stop the analysis worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # ------------------------------------------------------------------ one window

    async def _run_window(self, window: KpiWindow, loop_ids: list[str], stats: CycleStats) -> None:
        """Analyse ``loop_ids`` over ``window`` in chunks; the next chunk's raw data is read
        while the current one is analysed (reading millions of raw lines dominates a cycle).
        Plant-wide oscillation clusters (which need every member's signal on one grid) are
        judged by the diagnostics service, not per window here."""
        configs = await self._configs(loop_ids)
        chunks = [
            loop_ids[i : i + self.chunk_size] for i in range(0, len(loop_ids), self.chunk_size)
        ]
        pending = asyncio.create_task(self._read_raw(chunks[0], window)) if chunks else None
        for index, chunk in enumerate(chunks):
            assert pending is not None
            raw = await pending
            pending = (
                asyncio.create_task(self._read_raw(chunks[index + 1], window))
                if index + 1 < len(chunks)
                else None
            )
            analyses = await self._analyse_chunk(chunk, window, raw, configs, stats)
            stats.findings += await self._store(window, analyses)

    async def _store(self, window: KpiWindow, analyses: Sequence[LoopAnalysis]) -> int:
        """Upsert the KPI and APC rows and replace the window's kpi_cycle findings (one
        transaction); returns the number of finding rows written."""
        async with self.sessions() as session, session.begin():
            repository = KpiWriteRepository(session)
            await repository.upsert_kpis([a.kpi_row() for a in analyses])
            await repository.upsert_apc([r for a in analyses if (r := a.apc_row()) is not None])
            return await DiagnosticRepository(session).replace_cycle_findings(
                window.start, window.end, {a.loop_id: a.findings() for a in analyses}
            )

    async def _configs(self, loop_ids: list[str]) -> dict[str, LoopConfig]:
        async with self.sessions() as session:
            config_rows = await LoopConfigRepository(session).get_many(loop_ids)
        configs = {}
        for loop_id in loop_ids:
            row = config_rows.get(loop_id)
            values = {c: getattr(row, c) for c in _CONFIG_COLUMNS} if row is not None else None
            try:
                configs[loop_id] = loop_config_from_row(values)
            except ValueError as exc:
                log.warning(
                    "invalid loop_config, using defaults",
                    extra={"loop_id": loop_id, "error": str(exc)},
                )
                configs[loop_id] = LoopConfig()
        return configs

    async def _analyse_chunk(
        self,
        loop_ids: list[str],
        window: KpiWindow,
        raw: dict[str, RawSeries],
        configs: dict[str, LoopConfig],
        stats: CycleStats,
    ) -> list[LoopAnalysis]:
        """Prepare each loop's window (raw, else agg_1m), then analyse them in worker processes,
        at most KPI_MAX_CONCURRENCY loops at once."""
        jobs: list[AnalysisJob] = []
        floor = self.settings.kpi_min_completeness
        without_raw = [i for i in loop_ids if i not in raw or len(raw[i]) == 0]
        aggregates = await self._read_agg_1m(without_raw, window)
        for loop_id in loop_ids:
            series = raw.get(loop_id)
            if series is not None and len(series) > 0:
                # the grid is built in the worker process: it costs as much as the analysis
                jobs.append(
                    AnalysisJob(
                        loop_id, window, configs[loop_id], raw=series, min_completeness=floor
                    )
                )
                continue
            try:
                rows = aggregates.select(aggregates.loop_ids == loop_id)
                data = window_from_buckets(rows, window)
            except Exception:
                log.exception(
                    "could not prepare the window of a loop; continuing with the others",
                    extra={"loop_id": loop_id, "window_start": window.start.isoformat()},
                )
                stats.failed += 1
                continue
            jobs.append(
                AnalysisJob(loop_id, window, configs[loop_id], data=data, min_completeness=floor)
            )
        workers = self.settings.kpi_max_concurrency
        batches = [jobs[i::workers] for i in range(workers) if jobs[i::workers]]
        loop = asyncio.get_running_loop()
        executor = self._executor()
        outcomes = await asyncio.gather(
            *(loop.run_in_executor(executor, analyse_batch, batch) for batch in batches)
        )
        analyses: list[LoopAnalysis] = []
        for outcome in outcomes:
            for item in outcome:
                if isinstance(item, LoopAnalysis):
                    analyses.append(item)
                    status = item.kpi_row()["status"]
                    stats.statuses[status] = stats.statuses.get(status, 0) + 1
                    if item.kpis.source == "raw":
                        stats.from_raw += 1
                    else:
                        stats.from_agg_1m += 1
                else:
                    stats.failed += 1
                    log.error("kpi computation failed for a loop; continuing", extra=item)
        stats.windows += len(analyses)
        return analyses

    async def _read_agg_1m(self, loop_ids: list[str], window: KpiWindow) -> BucketTable:
        """agg_1m rows of loops that have no raw data in the window (the seed's fallback)."""
        if not loop_ids:
            return BucketTable.empty()
        async with self.sessions() as session:
            return await AggregateRepository(session).read(
                "agg_1m", loop_ids, window.start, window.end
            )

    def _executor(self) -> Executor:
        if self._pool is None:
            workers = max(1, min(self.settings.kpi_max_concurrency, os.cpu_count() or 1))
            context = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        return self._pool

    async def _read_raw(self, loop_ids: list[str], window: KpiWindow) -> dict[str, RawSeries]:
        """Raw samples of the window (plus a short lead-in to seed the hold); {} when down."""
        lead_in = timedelta(seconds=5)
        try:
            return await self.store.query_raw_many(loop_ids, window.start - lead_in, window.end)
        except StoreUnavailableError as exc:
            log.warning(
                "time-series store unavailable, falling back to agg_1m",
                extra={"window_start": window.start.isoformat(), "error": str(exc)},
            )
            return {}
