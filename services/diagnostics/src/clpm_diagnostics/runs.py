"""Diagnosis runs: raw samples of a window → findings (and clusters) → diagnostic_results."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.aggregation.buckets import BucketTable
from clpm_shared.analytics import (
    LoopConfig,
    LoopWindow,
    OscillationComponent,
    detect_oscillations,
)
from clpm_shared.analytics.diagnosis import (
    LoopDiagnosis,
    OscillationCluster,
    OscillationSummary,
    cluster_oscillations,
    diagnose_loop,
    with_plant_context,
)
from clpm_shared.analytics.kpis import MIN_SERVICE_FOR_ERROR_SIGNAL
from clpm_shared.analytics.minute_mean_oscillation import minute_mean_oscillation
from clpm_shared.analytics.service_factor import summarise_modes
from clpm_shared.db.models import LoopConfig as LoopConfigRow
from clpm_shared.db.repositories import LoopConfigRepository, LoopRepository
from clpm_shared.db.repositories.aggregates import AggregateRepository
from clpm_shared.db.repositories.diagnostics import DiagnosticRepository
from clpm_shared.timeseries import RawSeries, TimeSeriesStore

log = logging.getLogger("clpm_diagnostics.runs")

LOOPS_PER_READ = 50
DEFAULT_CLUSTER_RAW_MAX = timedelta(hours=2)
LOOPS_PER_MEANS_READ = 200
"""Loops whose minute means are read at once: a week of 200 loops is ~2 M rows of 2 columns."""
MEANS_STATISTICS = ("pv_mean", "sp_mean")
"""Loops fetched from the time-series store per query (bounded memory, few round trips)."""

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
    components = detect_oscillations(_oscillation_signal(window, config), ts)
    return LoopOutcome(series.loop_id, start, end, len(series), ts, diagnosis, notes, components)


def _oscillation_signal(window: LoopWindow, config: LoopConfig) -> np.ndarray:
    """The KPI's oscillation signal: control error in service when the loop mostly is, else PV."""
    in_service = summarise_modes(window.mode, window.pv, config.normal_modes).in_service
    if in_service.size and float(np.mean(in_service)) >= MIN_SERVICE_FOR_ERROR_SIGNAL:
        return np.where(in_service, window.sp - window.pv, np.nan)
    return window.pv


def diagnose_many(
    raw: dict[str, RawSeries],
    configs: dict[str, tuple[LoopConfig, str | None]],
    loop_ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> tuple[list[LoopOutcome], list[OscillationCluster]]:
    """Diagnose several loops of one window, cluster their oscillations, add the plant view."""
    outcomes = []
    for loop_id in loop_ids:
        config, note = configs.get(loop_id, (LoopConfig(), None))
        series = raw.get(loop_id) or RawSeries.empty(loop_id)
        outcomes.append(diagnose_series(series, config, start, end, note))
    oscillating = [
        o.diagnosis.oscillation
        for o in outcomes
        if o.diagnosis is not None and o.diagnosis.oscillation is not None
    ]
    clusters = cluster_oscillations(oscillating)
    placed = [
        o
        if o.diagnosis is None
        else LoopOutcome(
            o.loop_id,
            o.start,
            o.end,
            o.samples,
            o.ts,
            with_plant_context(o.diagnosis, o.loop_id, clusters),
            o.notes,
            o.components,
        )
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
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.cluster_raw_max = cluster_raw_max

    async def _known(self, loop_ids: Sequence[str]) -> tuple[list[str], list[str]]:
        async with self.sessions() as session:
            repository = LoopRepository(session)
            known = set(await repository.all_ids())
        present = [loop_id for loop_id in loop_ids if loop_id in known]
        missing = [loop_id for loop_id in loop_ids if loop_id not in known]
        return present, missing

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
        raw = await self._raw(present, start, end)
        outcomes, clusters = await asyncio.to_thread(
            diagnose_many, raw, configs, present, start, end
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
        evidence for the likely source); longer ones on the 1-minute means in ``agg_1m``
        (periods from 4 minutes; see
        :mod:`clpm_shared.analytics.minute_mean_oscillation`): a day of a whole plant is too
        many raw samples for one request.
        """
        if loop_ids is None:
            async with self.sessions() as session:
                loop_ids = await LoopRepository(session).all_ids()
        configs = await self._configs(loop_ids)
        if end - start > self.cluster_raw_max:
            oscillating = await self._oscillations_on_means(loop_ids, configs, start, end)
            basis = CLUSTERS_ON_MINUTE_MEANS
        else:
            oscillating = await self._oscillations_on_raw(loop_ids, configs, start, end)
            basis = CLUSTERS_ON_RAW
        return ClusterRun(cluster_oscillations(oscillating), len(loop_ids), len(oscillating), basis)

    async def _oscillations_on_raw(
        self,
        loop_ids: Sequence[str],
        configs: dict[str, tuple[LoopConfig, str | None]],
        start: datetime,
        end: datetime,
    ) -> list[OscillationSummary]:
        oscillating: list[OscillationSummary] = []
        for offset in range(0, len(loop_ids), LOOPS_PER_READ):
            chunk = list(loop_ids[offset : offset + LOOPS_PER_READ])
            raw = await self.store.query_raw_many(chunk, start, end)
            outcomes, _ = await asyncio.to_thread(diagnose_many, raw, configs, chunk, start, end)
            oscillating.extend(
                o.diagnosis.oscillation
                for o in outcomes
                if o.diagnosis is not None and o.diagnosis.oscillation is not None
            )
        return oscillating

    async def _oscillations_on_means(
        self,
        loop_ids: Sequence[str],
        configs: dict[str, tuple[LoopConfig, str | None]],
        start: datetime,
        end: datetime,
    ) -> list[OscillationSummary]:
        found: list[OscillationSummary] = []
        for offset in range(0, len(loop_ids), LOOPS_PER_MEANS_READ):
            chunk = list(loop_ids[offset : offset + LOOPS_PER_MEANS_READ])
            async with self.sessions() as session:
                minutes = await AggregateRepository(session).read(
                    "agg_1m", chunk, start, end, statistics=MEANS_STATISTICS
                )
            found += await asyncio.to_thread(_oscillations_in_minutes, minutes, configs, start, end)
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


def _oscillations_in_minutes(
    minutes: BucketTable,
    configs: dict[str, tuple[LoopConfig, str | None]],
    start: datetime,
    end: datetime,
) -> list[OscillationSummary]:
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
    found: list[OscillationSummary] = []
    for rows in np.split(np.arange(len(minutes)), bounds):
        loop_id = str(loops[rows[0]])
        config = configs.get(loop_id, (LoopConfig(), None))[0]
        summary = minute_mean_oscillation(
            loop_id,
            minute_index[rows],
            minutes.stats["pv_mean"][rows],
            minutes.stats["sp_mean"][rows],
            manual[rows],
            n_minutes,
            config,
        )
        if summary is not None:
            found.append(summary)
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
