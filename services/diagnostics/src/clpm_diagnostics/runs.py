"""Diagnosis runs: raw samples of a window → findings (and clusters) → diagnostic_results."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.aggregation.buckets import BucketTable
from clpm_shared.analytics import (
    LoopConfig,
    LoopWindow,
    OscillationComponent,
    detect_oscillations,
)
from clpm_shared.analytics.diagnosis import LoopDiagnosis, diagnose_loop
from clpm_shared.analytics.kpis import MIN_SERVICE_FOR_ERROR_SIGNAL
from clpm_shared.analytics.minute_mean_oscillation import MINUTE_S, minute_mean_error
from clpm_shared.analytics.plant_oscillation import (
    LoopSignal,
    OscillationCluster,
    cluster_oscillations,
    with_plant_context,
)
from clpm_shared.analytics.service_factor import summarise_modes
from clpm_shared.db.models import LoopConfig as LoopConfigRow
from clpm_shared.db.repositories import LoopConfigRepository, LoopRepository
from clpm_shared.db.repositories.aggregates import AggregateRepository
from clpm_shared.db.repositories.diagnostics import DiagnosticRepository
from clpm_shared.db.repositories.heartbeats import HeartbeatRepository
from clpm_shared.db.repositories.oscillation_clusters import OscillationClusterRepository
from clpm_shared.timeseries import RawSeries, TimeSeriesStore

log = logging.getLogger("clpm_diagnostics.runs")

FloatArray = npt.NDArray[np.float64]

LOOPS_PER_READ = 50
DEFAULT_CLUSTER_RAW_MAX = timedelta(hours=2)
DEFAULT_CLUSTER_RAW_MAX_LOOP_HOURS = 4000.0
LOOPS_PER_MEANS_READ = 200
"""Loops whose minute means are read at once: a week of 200 loops is ~2 M rows of 2 columns."""
MEANS_STATISTICS = ("pv_mean", "sp_mean")
"""Loops fetched from the time-series store per query (bounded memory, few round trips)."""

KPI_WORKER = "kpi-worker"
HISTORY_RUN_MAX_AGE = timedelta(minutes=2)
"""A kpi-worker history run counts as active while its heartbeat (every 30 s) is younger."""
RECENT_DATA = timedelta(minutes=5)
MIN_LOOPS_WITH_RECENT_DATA = 0.5
"""A scheduled cluster run is stored only when at least this share of the loops has data in
the last :data:`RECENT_DATA` of its window: a run over a store still being filled (the
history written at start-up) would be stored near-empty and answer for a whole interval."""

MIN_TS_S, MAX_TS_S = 0.1, 60.0
"""Bounds of the sample period inferred from the raw time stamps."""


@dataclass(frozen=True)
class LoopOutcome:
    """One loop's diagnosis of one window, ready to answer and to store."""

    loop_id: str
    start: datetime
    end: datetime
    samples: int
    ts: float | None
    diagnosis: LoopDiagnosis | None
    notes: dict[str, str] = field(default_factory=dict)
    error: tuple[FloatArray, FloatArray] | None = None
    """Time stamps (s) and control error of an oscillating loop, for the plant-wide view."""
    components: tuple[OscillationComponent, ...] = ()

    def findings(self) -> list[dict[str, Any]]:
        if self.diagnosis is None:
            return []
        return [finding.to_dict() for finding in self.diagnosis.findings]

    def to_dict(self) -> dict[str, Any]:
        diagnosis = self.diagnosis
        stiction = diagnosis.stiction if diagnosis is not None else None
        oscillation = diagnosis.oscillation if diagnosis is not None else None
        notes = dict(self.notes)
        if diagnosis is not None:
            notes.update(diagnosis.notes)
        return {
            "loop_id": self.loop_id,
            "window_start": self.start,
            "window_end": self.end,
            "samples": self.samples,
            "sample_period_s": self.ts,
            "primary": diagnosis.primary if diagnosis is not None else None,
            "findings": self.findings(),
            "stiction": None
            if stiction is None
            else {
                "verdict": stiction.verdict,
                "index": stiction.index,
                "confidence": stiction.confidence,
                "method_scores": dict(stiction.method_scores),
                "method_votes": dict(stiction.method_votes),
                "apparent_stiction": stiction.apparent_stiction,
                "period_s": stiction.period_s,
                "reason": stiction.reason,
            },
            "oscillation": None
            if oscillation is None
            else {
                "period_s": oscillation.period_s,
                "amplitude_pct_of_span": oscillation.amplitude_pct,
                "regularity": oscillation.regularity,
            },
            "oscillation_components": [c.to_dict() for c in self.components],
            "health_score": diagnosis.kpis.health_score if diagnosis is not None else None,
            "notes": notes,
        }


def sample_period(series: RawSeries) -> float | None:
    """Median spacing of the raw time stamps, seconds (bounded to 0.1-60 s)."""
    if len(series) < 3:
        return None
    spacing = np.diff(series.t_ns) / 1e9
    spacing = spacing[spacing > 0]
    if spacing.size == 0:
        return None
    return float(min(MAX_TS_S, max(MIN_TS_S, round(float(np.median(spacing)), 3))))


def config_of(row: LoopConfigRow | None) -> tuple[LoopConfig, str | None]:
    """LoopConfig from a loop_config row; an invalid stored row falls back to defaults."""
    if row is None:
        return LoopConfig(), None
    values = {column.name: getattr(row, column.name) for column in row.__table__.columns}
    try:
        return LoopConfig.from_mapping(values), None
    except ValueError as error:
        return LoopConfig(), f"loop_config ignored ({error}); defaults used"


def diagnose_series(
    series: RawSeries,
    config: LoopConfig,
    start: datetime,
    end: datetime,
    config_note: str | None = None,
) -> LoopOutcome:
    """Put one loop's raw samples on a grid and diagnose them (CPU only, no I/O)."""
    notes = {"config": config_note} if config_note else {}
    ts = sample_period(series)
    if ts is None:
        notes["data"] = "fewer than three raw samples in the window: nothing to diagnose"
        return LoopOutcome(series.loop_id, start, end, len(series), None, None, notes)
    mode = np.asarray(["" if m is None else str(m) for m in series.mode], dtype=object)
    window = LoopWindow.from_raw(
        series.t_ns.astype(np.float64) / 1e9,
        series.pv,
        series.sp,
        series.op,
        mode,
        start=start.timestamp(),
        end=end.timestamp(),
        ts=ts,
    )
    diagnosis = diagnose_loop(window, config, loop_id=series.loop_id)
    error = None
    if diagnosis.oscillation is not None:
        manual = float(np.mean(window.mode == "MAN")) > 0.5 if len(window) else False
        error = (window.t, window.pv if manual else window.sp - window.pv)
    components = detect_oscillations(_oscillation_signal(window, config), ts)
    return LoopOutcome(
        series.loop_id, start, end, len(series), ts, diagnosis, notes, error, components
    )


def _oscillation_signal(window: LoopWindow, config: LoopConfig) -> np.ndarray:
    """The KPI's oscillation signal: control error in service when the loop mostly is, else PV."""
    in_service = summarise_modes(window.mode, window.pv, config.normal_modes).in_service
    if in_service.size and float(np.mean(in_service)) >= MIN_SERVICE_FOR_ERROR_SIGNAL:
        return np.where(in_service, window.sp - window.pv, np.nan)
    return window.pv


def plant_signals(
    outcomes: Sequence[LoopOutcome],
    start: datetime,
    end: datetime,
    places: dict[str, tuple[str | None, str | None]],
) -> tuple[list[LoopSignal], float]:
    """The oscillating loops' control errors on one grid (step: the longest sample period)."""
    oscillating = [
        (o, o.diagnosis.oscillation, o.error)
        for o in outcomes
        if o.diagnosis is not None and o.diagnosis.oscillation is not None and o.error is not None
    ]
    if not oscillating:
        return [], 1.0
    step = max(float(o.ts or 1.0) for o, _, _ in oscillating)
    t0 = start.timestamp()
    grid = t0 + step * np.arange(max(1, int((end.timestamp() - t0) // step)))
    signals = []
    for o, summary, (t, values) in oscillating:
        finite = np.isfinite(values)
        if finite.sum() < 2:
            continue
        on_grid = np.interp(grid, t[finite], values[finite], left=np.nan, right=np.nan)
        unit, area = places.get(o.loop_id, (None, None))
        signals.append(LoopSignal(summary, on_grid, unit, area))
    return signals, step


def diagnose_each(
    raw: dict[str, RawSeries],
    configs: dict[str, tuple[LoopConfig, str | None]],
    loop_ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> list[LoopOutcome]:
    """Diagnose several loops of one window, each on its own (CPU only, no I/O)."""
    outcomes = []
    for loop_id in loop_ids:
        config, note = configs.get(loop_id, (LoopConfig(), None))
        series = raw.get(loop_id) or RawSeries.empty(loop_id)
        outcomes.append(diagnose_series(series, config, start, end, note))
    return outcomes


def diagnose_many(
    raw: dict[str, RawSeries],
    configs: dict[str, tuple[LoopConfig, str | None]],
    loop_ids: Sequence[str],
    start: datetime,
    end: datetime,
    places: dict[str, tuple[str | None, str | None]] | None = None,
) -> tuple[list[LoopOutcome], list[OscillationCluster]]:
    """Diagnose several loops of one window, cluster their oscillations, add the plant view."""
    outcomes = diagnose_each(raw, configs, loop_ids, start, end)
    signals, step = plant_signals(outcomes, start, end, places or {})
    clusters = cluster_oscillations(signals, step)
    placed = [
        o
        if o.diagnosis is None
        else dataclasses.replace(o, diagnosis=with_plant_context(o.diagnosis, o.loop_id, clusters))
        for o in outcomes
    ]
    return placed, clusters


class UnknownLoopError(LookupError):
    """A requested loop is not in the ``loops`` table (or was deleted)."""

    def __init__(self, loop_ids: Sequence[str]) -> None:
        super().__init__(", ".join(loop_ids))
        self.loop_ids = list(loop_ids)


class DiagnosisRunner:
    """Reads raw data and loop settings, diagnoses, stores the findings."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: TimeSeriesStore,
        *,
        cluster_raw_max: timedelta = DEFAULT_CLUSTER_RAW_MAX,
        cluster_raw_max_loop_hours: float = DEFAULT_CLUSTER_RAW_MAX_LOOP_HOURS,
        cluster_spans: Sequence[timedelta] = (),
        cluster_interval: timedelta = timedelta(0),
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.cluster_raw_max = cluster_raw_max
        self.cluster_raw_max_loop_hours = cluster_raw_max_loop_hours
        self.cluster_spans = tuple(cluster_spans)
        self.cluster_interval = cluster_interval

    async def _known(self, loop_ids: Sequence[str]) -> tuple[list[str], list[str]]:
        async with self.sessions() as session:
            repository = LoopRepository(session)
            known = set(await repository.all_ids())
        present = [loop_id for loop_id in loop_ids if loop_id in known]
        missing = [loop_id for loop_id in loop_ids if loop_id not in known]
        return present, missing

    async def _places(self, loop_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        async with self.sessions() as session:
            return await LoopRepository(session).places(loop_ids)

    async def _configs(self, loop_ids: Sequence[str]) -> dict[str, tuple[LoopConfig, str | None]]:
        async with self.sessions() as session:
            rows = await LoopConfigRepository(session).get_many(loop_ids)
        return {loop_id: config_of(rows.get(loop_id)) for loop_id in loop_ids}

    async def _raw(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, RawSeries]:
        raw: dict[str, RawSeries] = {}
        for offset in range(0, len(loop_ids), LOOPS_PER_READ):
            chunk = list(loop_ids[offset : offset + LOOPS_PER_READ])
            raw.update(await self.store.query_raw_many(chunk, start, end))
        return raw

    async def _store(self, outcomes: Sequence[LoopOutcome], trigger: str) -> int:
        written = 0
        async with self.sessions() as session, session.begin():
            repository = DiagnosticRepository(session)
            for outcome in outcomes:
                if outcome.diagnosis is None:
                    continue
                written += await repository.replace_window(
                    outcome.loop_id, outcome.start, outcome.end, outcome.findings(), trigger
                )
        return written

    async def diagnose(
        self,
        loop_ids: Sequence[str],
        start: datetime,
        end: datetime,
        trigger: str = "on_demand",
        *,
        require_known: bool = True,
    ) -> tuple[list[LoopOutcome], list[OscillationCluster], list[str]]:
        """Diagnose ``loop_ids`` over ``[start, end)`` and store the findings.

        Returns the outcomes (in request order), the oscillation clusters among these loops
        and the ids that are not registered loops. With ``require_known`` an unknown id
        raises :class:`UnknownLoopError` instead.
        """
        present, missing = await self._known(loop_ids)
        if missing and require_known:
            raise UnknownLoopError(missing)
        configs = await self._configs(present)
        places = await self._places(present)
        raw = await self._raw(present, start, end)
        outcomes, clusters = await asyncio.to_thread(
            diagnose_many, raw, configs, present, start, end, places
        )
        written = await self._store(outcomes, trigger)
        log.info(
            "diagnosed",
            extra={
                "loops": len(present),
                "unknown": len(missing),
                "findings_stored": written,
                "clusters": len(clusters),
                "trigger": trigger,
            },
        )
        return outcomes, clusters, missing

    async def clusters(
        self, start: datetime, end: datetime, loop_ids: Sequence[str] | None = None
    ) -> ClusterRun:
        """Plant-wide oscillation clusters over ``[start, end)`` (nothing is stored).

        Windows up to ``cluster_raw_max`` are judged on the raw samples (every period, stiction
        evidence for the likely source) unless loops x hours exceeds
        ``cluster_raw_max_loop_hours``; the others on the 1-minute means in ``agg_1m``
        (periods from 4 minutes; see
        :mod:`clpm_shared.analytics.minute_mean_oscillation`): a day of a whole plant, or two
        hours of 10,000 loops, is too many raw samples for one run.
        """
        if loop_ids is None:
            async with self.sessions() as session:
                loop_ids = await LoopRepository(session).all_ids()
        configs = await self._configs(loop_ids)
        places = await self._places(loop_ids)
        loop_hours = len(loop_ids) * (end - start).total_seconds() / 3600.0
        recent: set[str] = set()
        if end - start > self.cluster_raw_max or loop_hours > self.cluster_raw_max_loop_hours:
            signals = await self._oscillations_on_means(
                loop_ids, configs, places, start, end, recent
            )
            step, basis = MINUTE_S, CLUSTERS_ON_MINUTE_MEANS
        else:
            signals, step = await self._oscillations_on_raw(
                loop_ids, configs, places, start, end, recent
            )
            basis = CLUSTERS_ON_RAW
        clusters = await asyncio.to_thread(cluster_oscillations, signals, step)
        return ClusterRun(clusters, len(loop_ids), len(signals), basis, len(recent))

    async def kpi_history_running(self, now: datetime) -> bool:
        """A kpi-worker history run has beaten within :data:`HISTORY_RUN_MAX_AGE`."""
        async with self.sessions() as session:
            runs = await HeartbeatRepository(session, KPI_WORKER).live_history_runs(
                now - HISTORY_RUN_MAX_AGE
            )
        return bool(runs)

    async def precompute_clusters(self, now: datetime) -> list[ClusterRun]:
        """Compute and store the clusters of every scheduled window length ending at the last
        interval boundary before ``now`` (runs already stored are skipped, runs over a window
        whose data is incomplete are not stored); drop runs older than the longest window."""
        if not self.cluster_spans or self.cluster_interval <= timedelta(0):
            return []
        step = self.cluster_interval.total_seconds()
        end = datetime.fromtimestamp(now.timestamp() // step * step, tz=now.tzinfo)
        done = []
        for span in self.cluster_spans:
            start = end - span
            async with self.sessions() as session:
                if await OscillationClusterRepository(session).exists(start, end):
                    continue
            began = time.perf_counter()
            run = await self.clusters(start, end)
            elapsed = time.perf_counter() - began
            if not run.data_complete:
                log.info(
                    "clusters not stored: too few loops have data up to the window's end",
                    extra={
                        "hours": span.total_seconds() / 3600,
                        "loops": run.loops_analysed,
                        "loops_with_recent_data": run.loops_with_recent_data,
                    },
                )
                continue
            async with self.sessions() as session, session.begin():
                await OscillationClusterRepository(session).save(
                    start,
                    end,
                    basis=run.basis,
                    loops_analysed=run.loops_analysed,
                    oscillating_loops=run.oscillating_loops,
                    clusters=json_safe([cluster.to_dict() for cluster in run.clusters]),
                    duration_s=elapsed,
                )
            log.info(
                "clusters precomputed",
                extra={"hours": span.total_seconds() / 3600, "seconds": round(elapsed, 2)},
            )
            done.append(run)
        async with self.sessions() as session, session.begin():
            await OscillationClusterRepository(session).prune(end - 2 * max(self.cluster_spans))
        return done

    async def stored_clusters(self, start: datetime, end: datetime) -> dict[str, Any] | None:
        """The stored run of a scheduled window length ending at most one interval (plus a
        minute) before ``end``, as the answer of a clusters request; None when there is none."""
        span = end - start
        tolerance = timedelta(minutes=1)
        if self.cluster_interval <= timedelta(0) or not any(
            abs(span - scheduled) <= tolerance for scheduled in self.cluster_spans
        ):
            return None
        async with self.sessions() as session:
            run = await OscillationClusterRepository(session).latest(
                span, end, self.cluster_interval + tolerance, tolerance
            )
        if run is None:
            return None
        return {
            "start": run.window_start,
            "end": run.window_end,
            "loops_analysed": run.loops_analysed,
            "oscillating_loops": run.oscillating_loops,
            "basis": run.basis,
            "computed_at": run.computed_at,
            "precomputed": True,
            "clusters": list(run.clusters.get("clusters", [])),
        }

    async def _oscillations_on_raw(
        self,
        loop_ids: Sequence[str],
        configs: dict[str, tuple[LoopConfig, str | None]],
        places: dict[str, tuple[str | None, str | None]],
        start: datetime,
        end: datetime,
        recent: set[str],
    ) -> tuple[list[LoopSignal], float]:
        """Oscillating loops' control errors on one grid; adds to ``recent`` the loops with
        samples in the window's last :data:`RECENT_DATA`."""
        oscillating: list[LoopOutcome] = []
        recent_ns = int((end - RECENT_DATA).timestamp() * 1e9)
        for offset in range(0, len(loop_ids), LOOPS_PER_READ):
            chunk = list(loop_ids[offset : offset + LOOPS_PER_READ])
            raw = await self.store.query_raw_many(chunk, start, end)
            recent.update(
                loop_id
                for loop_id, series in raw.items()
                if len(series) and int(series.t_ns[-1]) >= recent_ns
            )
            outcomes = await asyncio.to_thread(diagnose_each, raw, configs, chunk, start, end)
            oscillating.extend(o for o in outcomes if o.error is not None)
        return plant_signals(oscillating, start, end, places)

    async def _oscillations_on_means(
        self,
        loop_ids: Sequence[str],
        configs: dict[str, tuple[LoopConfig, str | None]],
        places: dict[str, tuple[str | None, str | None]],
        start: datetime,
        end: datetime,
        recent: set[str],
    ) -> list[LoopSignal]:
        """Each loop's oscillation on its minute means; adds to ``recent`` the loops with
        minutes in the window's last :data:`RECENT_DATA`."""
        found: list[LoopSignal] = []
        recent_ns = int((end - RECENT_DATA).timestamp() * 1e9)
        for offset in range(0, len(loop_ids), LOOPS_PER_MEANS_READ):
            chunk = list(loop_ids[offset : offset + LOOPS_PER_MEANS_READ])
            async with self.sessions() as session:
                minutes = await AggregateRepository(session).read(
                    "agg_1m", chunk, start, end, statistics=MEANS_STATISTICS
                )
            recent.update(
                str(i) for i in np.unique(minutes.loop_ids[minutes.bucket_ns >= recent_ns])
            )
            found += await asyncio.to_thread(
                _oscillations_in_minutes, minutes, configs, places, start, end
            )
        return found


CLUSTERS_ON_RAW = "raw"
CLUSTERS_ON_MINUTE_MEANS = "minute_means"


@dataclass(frozen=True)
class ClusterRun:
    """Clusters of a window, how many loops were analysed and oscillate, and on what data."""

    clusters: list[OscillationCluster]
    loops_analysed: int
    oscillating_loops: int
    basis: str  # CLUSTERS_ON_RAW or CLUSTERS_ON_MINUTE_MEANS
    loops_with_recent_data: int = 0
    """Loops with data in the last :data:`RECENT_DATA` of the window."""

    @property
    def data_complete(self) -> bool:
        """Enough loops have data up to the window's end to store the run (see
        :data:`MIN_LOOPS_WITH_RECENT_DATA`); never without loops (at start-up, before the
        first loops are registered)."""
        return (
            self.loops_analysed > 0
            and self.loops_with_recent_data >= MIN_LOOPS_WITH_RECENT_DATA * self.loops_analysed
        )


def _oscillations_in_minutes(
    minutes: BucketTable,
    configs: dict[str, tuple[LoopConfig, str | None]],
    places: dict[str, tuple[str | None, str | None]],
    start: datetime,
    end: datetime,
) -> list[LoopSignal]:
    """Each loop's oscillation on its minute means (CPU only, no I/O)."""
    if not len(minutes):
        return []
    start_ns = int(start.timestamp()) * 1_000_000_000
    n_minutes = math.ceil((end - start).total_seconds() / 60.0)
    minute_index = (minutes.bucket_ns - start_ns) // 60_000_000_000
    manual = (
        minutes.mode_shares[:, minutes.modes.index("MAN")]
        if "MAN" in minutes.modes
        else np.zeros(len(minutes))
    )
    loops = minutes.loop_ids
    bounds = np.flatnonzero(loops[1:] != loops[:-1]) + 1
    found: list[LoopSignal] = []
    for rows in np.split(np.arange(len(minutes)), bounds):
        loop_id = str(loops[rows[0]])
        config = configs.get(loop_id, (LoopConfig(), None))[0]
        judged = minute_mean_error(
            loop_id,
            minute_index[rows],
            minutes.stats["pv_mean"][rows],
            minutes.stats["sp_mean"][rows],
            manual[rows],
            n_minutes,
            config,
        )
        if judged is not None:
            summary, error = judged
            unit, area = places.get(loop_id, (None, None))
            found.append(LoopSignal(summary, error, unit, area))
    return found


def json_safe(value: Any) -> Any:
    """``value`` with every NaN/inf float replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value
