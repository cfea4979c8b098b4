"""Aggregation benchmark: 10,000 loops x 3 fields at 1 Hz against real influxd + PostgreSQL.

Starts a private influxd 1.6 and PostgreSQL 15 with the test harness's classes, writes the raw
samples, then measures (every figure is printed as one JSON object):

* ``cycle``: one 30-s poll end to end -- ``AggregationService.run_cycle()`` on 10,000 loops whose
  watermarks stand at the start of a minute holding 30 s of samples (300,000 lines): discovery,
  leases, heartbeat, watermarks, raw read, numpy buckets, COPY upsert, compare-and-set commit.
  Median of ``--repeats`` runs (watermarks are put back between runs). Target <= 1.5 s.
* ``server_side``: the same minute computed by InfluxDB (``GROUP BY time(1m), loop_id``, 21
  statistics, batched like the raw reads) and upserted -- the baseline the cycle must beat.
  It is still missing the mode shares, which InfluxQL cannot give in the same query.
* ``defaults_cycle``: the same poll at the default settings (AGG_LATENESS_S=120,
  AGG_LATE_DATA=counts): the new minute is read, the allowance is counted by influxd and
  compared with agg_1m (no minute changed, so nothing is re-read), and a reconciliation slice
  (loops x 30 s / AGG_RECONCILE_INTERVAL_S of the loops over AGG_RECONCILE_HOURS) is counted.
* ``defaults_poll`` and ``lateness0_poll``: the steady state -- consecutive 30-s polls (the
  clock moves 30 s per poll, each poll aggregates a minute holding 30 s of samples, the
  late-data state carries over from poll to poll, the first 26 polls are a warm-up) at the
  defaults and at AGG_LATENESS_S=0, in alternating rounds (``--steady-rounds``); median and
  mean over the polls and CPU per poll. Each poll
  carries its share of the allowance check and a reconciliation slice.
* ``live_polls``, ``live_polls_minute_spread`` and ``live_polls_unspread``: the service at the
  defaults as it runs -- 30-s polls over 1-Hz samples, nothing put back between polls (the
  clock moves 30 s per poll, 26 warm-up polls), with the loops spread (AGG_SPREAD_MIN_LOOPS
  reached) over the 4 polls of 2 minutes (AGG_SPREAD_LOOPS_PER_POLL: each poll aggregates 2
  minutes of a quarter of the loops, 300,000 samples); as baselines in the same run, spread
  over the polls of one minute (the former default: the minute of half the loops) and not
  spread (the poll after a minute boundary aggregates every loop's minute, 600,000 samples,
  the next one nothing). Median over all polls, median of the polls that read samples, CPU per
  poll. ``--only-live`` measures these alone. With ``--reconcile-history`` (the default) the
  loops the polls reconcile hold the reconciliation's hours of 1-Hz samples before T_LIVE,
  aggregated first, as in a running plant (10,000 loops: 2,940 loops, 33.5 million lines); one
  run before the measured rounds is not counted (it inserts the agg_1m rows).
* ``reconcile_slice`` (with the history): the reads of one reconciliation slice, the loops of
  one 30-s poll over AGG_RECONCILE_HOURS, minute by minute (the former way) against totals
  first (each loop's total in the store and in agg_1m, one row per loop), alternating.
* ``default_lateness_cycle``: the former default, AGG_LATE_DATA=reread with AGG_LATENESS_S=120,
  which re-reads 2 minutes on every poll.
* ``compute``: the bucket computation alone on the cycle's 300,000 rows: numpy ``reduceat``
  (``minute_buckets``) vs pandas ``groupby`` + ``Grouper(freq="1min")`` and
  ``groupby().resample("1min")`` on the same rows (results checked equal; resample is timed on
  200 loops and scaled, it takes minutes on all of them).
* ``backfill``: start-up catch-up of one hour of ``--backfill-loops`` loops (36,000,000 lines for
  10,000 loops), reads, computation and writes overlapped; target >= 450,000 raw lines/s.
  ``read_only`` is the raw read rate of influxd alone on a part of the same hour (the ceiling).

    PYTHONPATH=. .venv/bin/python bench/aggregation.py [--loops 10000] [--backfill-loops 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import json
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.process_cpu import (
    cpu_snapshot,
    cpu_spent,
    host_ticks,
    server_pid,
    steal_percent,
    wait_until_idle,
)
from clpm_aggregation.late_data import reconcile_phase_cursor
from clpm_aggregation.service import AggregationService
from clpm_shared.aggregation import MINUTE_NS, STAT_COLUMNS, BucketTable, minute_buckets
from clpm_shared.config import AggregationSettings, InfluxSettings, TimeSeriesBackend
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.repositories.aggregates import AggregateRepository
from clpm_shared.db.repositories.loops import LoopRepository
from clpm_shared.db.repositories.watermarks import WatermarkRepository
from clpm_shared.timeseries.base import RawSeries
from clpm_shared.timeseries.influxql import InfluxQLStore
from tests.harness.servers import (
    InfluxServer,
    PostgresServer,
    free_port,
    migrate,
    start_postgres,
)

T0 = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
"""Start of the backfill hour."""
T1 = T0 + timedelta(hours=2)
"""Start of the polled minute (30 s of samples, plus 150 s before it for the lateness re-read)."""
SECOND_NS = 1_000_000_000


# ------------------------------------------------------------------ servers and data


@dataclass
class Servers:
    influx: InfluxServer
    postgres: PostgresServer
    workdir: Path


def start_servers() -> Servers:
    workdir = Path(tempfile.mkdtemp(prefix="bench-aggregation-"))
    postgres = start_postgres("bench-aggregation-pg-")
    postgres.psql(f'CREATE DATABASE "{postgres.template}"')
    migrate(postgres.url(postgres.template))
    influx_dir = workdir / "influx"
    influx_dir.mkdir()
    influx = InfluxServer("influxd", free_port(), influx_dir, rpc_port=free_port())
    influx.write_config()
    influx.start()
    influx.create_database("bench")
    return Servers(influx, postgres, workdir)


def stop_servers(servers: Servers) -> None:
    servers.influx.stop()
    servers.postgres.stop()
    shutil.rmtree(servers.postgres.workdir, ignore_errors=True)
    shutil.rmtree(servers.workdir, ignore_errors=True)


def loop_names(n: int) -> list[str]:
    return [f"TIC{k:05d}" for k in range(n)]


class LineMaker:
    """Line protocol of plant-like samples, fast: per-second value texts are made once."""

    def __init__(self, period: int = 3607, seed: int = 3) -> None:
        rng = np.random.default_rng(seed)
        pv = 50 + 5 * np.sin(np.arange(period) / 40.0) + rng.normal(0, 0.4, period)
        op = 30 + 10 * np.sin(np.arange(period) / 55.0) + rng.normal(0, 1.0, period)
        sp = np.where((np.arange(period) // 600) % 2 == 0, 50.0, 52.5)
        self.values = [
            f"PV={a:.4f},SP={b:g},OP={c:.3f} " for a, b, c in zip(pv, sp, op, strict=True)
        ]
        self.period = period

    def lines(self, loop_index: int, loop_id: str, start: datetime, seconds: int) -> str:
        t0 = int(start.timestamp())
        times = [f"{(t0 + s) * SECOND_NS}\n" for s in range(seconds)]
        rotate = (loop_index * 389) % self.period
        values, period = self.values, self.period
        # every tenth loop runs in MAN for its second half: two Mode series
        manual_from = seconds // 2 if loop_index % 10 == 0 else seconds
        auto = f"control_loops,loop_id={loop_id},Mode=AUT "
        manual = f"control_loops,loop_id={loop_id},Mode=MAN "
        return "".join(
            (auto if s < manual_from else manual) + values[(rotate + s) % period] + times[s]
            for s in range(seconds)
        )


async def write_lines(
    influx: InfluxServer, loops: list[str], start: datetime, seconds: int, loops_per_post: int
) -> dict[str, float]:
    """Write ``seconds`` samples of every loop (two posts in flight); returns the rate."""
    maker = LineMaker()
    started = time.perf_counter()
    posted = 0
    async with httpx.AsyncClient(base_url=influx.url, timeout=600) as client:

        async def post(body: bytes) -> None:
            response = await client.post(
                "/write", params={"db": "bench", "precision": "ns"}, content=body
            )
            if response.status_code != 204:
                raise RuntimeError(f"influxd refused a write: {response.text[:300]}")

        in_flight: list[asyncio.Task[None]] = []
        for offset in range(0, len(loops), loops_per_post):
            batch = range(offset, min(len(loops), offset + loops_per_post))
            body = "".join(maker.lines(k, loops[k], start, seconds) for k in batch).encode()
            posted += len(batch) * seconds
            in_flight.append(asyncio.create_task(post(body)))
            if len(in_flight) >= 2:
                await in_flight.pop(0)
        await asyncio.gather(*in_flight)
    elapsed = time.perf_counter() - started
    return {"lines": posted, "seconds": round(elapsed, 1), "lines_per_s": round(posted / elapsed)}


# ------------------------------------------------------------------ helpers


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def settings(**overrides: Any) -> AggregationSettings:
    values: dict[str, Any] = {
        "polling_interval": 30_000,
        "agg_lateness_s": 0.0,
        "agg_backfill_hours": None,
        "agg_chunk_minutes": 60,
        "agg_loops_per_query": 100,
        # the default 90-s leases: the 30-s polls renew them as a running service does
        # the poll models aggregate every loop at each poll; live_polls sets its own spread
        "agg_spread_min_loops": 10**9,
    }
    values.update(overrides)
    return AggregationSettings(**values)


async def reset_watermarks(
    sessions: async_sessionmaker[AsyncSession], loops: list[str], to: datetime
) -> None:
    async with sessions() as session, session.begin():
        repository = WatermarkRepository(session)
        current = await repository.get(loops)
        by_value: dict[datetime, list[str]] = {}
        for loop_id, mark in current.items():
            by_value.setdefault(mark, []).append(loop_id)
        for mark, members in by_value.items():
            if mark != to:
                await repository.advance(dict.fromkeys(members, mark), to)
        await repository.initialize(dict.fromkeys(loops, to))


def percentiles(values: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
        "runs": len(values),
    }


# ------------------------------------------------------------------ measurements


async def measure_cycle(
    store: InfluxQLStore,
    sessions: async_sessionmaker[AsyncSession],
    loops: list[str],
    repeats: int,
    lateness_s: float,
    parties: dict[str, int],
    profiler: cProfile.Profile | None = None,
    late_data: str = "reread",
) -> dict[str, Any]:
    """``run_cycle`` over the minute at T1 (watermarks put back to T1 before each run).

    ``parties``: processes whose CPU seconds per cycle are reported (the bench's own includes
    its threads); ``profiler``: enabled around the measured cycles when given.
    """
    clock = FixedClock(T1 + timedelta(seconds=61))
    service = AggregationService(
        settings(
            agg_lateness_s=lateness_s,
            agg_late_data=late_data,
            agg_reconcile_hours=3.0 if late_data == "counts" else 0.0,
        ),
        store,
        sessions,
        instance_id="bench:1",
        clock=clock,
    )
    poll = timedelta(seconds=30)
    reread = lateness_s if late_data == "reread" else 0.0
    durations: list[float] = []
    reads: list[float] = []
    details: list[dict[str, Any]] = []
    cpu: dict[str, float] = {}
    for run in range(repeats + 1):
        await reset_watermarks(sessions, loops, T1)
        service.settled.clear()
        service.known_marks.update(dict.fromkeys(loops, T1))  # as in steady state
        # steady state of the late-data checks: the last allowance check a minute ago, the last
        # reconciliation slice one poll ago
        late = service.late_data
        if hasattr(late, "last_check"):  # the checker before the spread check (baseline runs)
            setattr(late, "last_check", None)  # noqa: B010
        late.checked_at = dict.fromkeys(loops, clock.now - timedelta(minutes=1))
        late.last_reconcile = clock.now - poll
        late.reconcile_credit = 0.0
        before = cpu_snapshot(parties, {"bench": os.getpid()})
        if profiler is not None and run:
            profiler.enable()
        started = time.perf_counter()
        report = await service.run_cycle()
        elapsed = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
        if run == 0:
            continue  # warm-up: registers the loops and takes the leases once
        for name, spent in cpu_spent(before, cpu_snapshot(parties, {"bench": os.getpid()})).items():
            cpu[name] = cpu.get(name, 0.0) + spent / repeats
        durations.append(elapsed)
        # the raw read alone, right after, under the same machine load: the floor of the cycle
        started = time.perf_counter()
        raw = await store.query_raw_many(
            loops, T1 - timedelta(seconds=reread), T1 + timedelta(minutes=1)
        )
        reads.append(time.perf_counter() - started)
        del raw
        details.append(
            {
                "samples": report.samples,
                "buckets_written": report.buckets_written,
                "units": report.units,
                "late_minutes": report.late_minutes,
            }
        )
    expected_samples = len(loops) * (30 + (120 if reread else 0))
    assert all(d["samples"] == expected_samples for d in details), details
    assert all(d["late_minutes"] == 0 for d in details), details
    return {
        **percentiles(durations),
        "raw_read_alone_median_s": round(statistics.median(reads), 3),
        "cpu_s_per_cycle": {name: round(seconds, 2) for name, seconds in cpu.items()},
        **details[-1],
    }


_DEFAULTS = AggregationSettings()
STEADY_WARMUP_POLLS = (
    math.ceil((_DEFAULTS.agg_lateness_s + 2 * _DEFAULTS.agg_late_check_interval_s) / 30.0) + 2
)
"""Polls before the measured ones. The allowance windows of a fresh service reach back before
the first minute it wrote (as after a restart), so its checks read agg_1m until they start
after it: about (AGG_LATENESS_S + 2 x AGG_LATE_CHECK_INTERVAL_S) / 30 s + 2 polls (26 at the
defaults). Fewer warm-up polls measure the restart, not the steady state."""

T_LIVE = T1 + timedelta(hours=4)
"""Start of the 1-Hz samples of ``live_polls``: the reconciliation's 3 hours before it hold no
samples of the other measurements."""


def live_seconds(polls: int) -> int:
    """Seconds of 1-Hz samples from T_LIVE that ``live_polls`` aggregates."""
    return 30 * (STEADY_WARMUP_POLLS + polls) + 60


RECONCILE_HISTORY = timedelta(hours=_DEFAULTS.agg_reconcile_hours, minutes=10)
"""History before T_LIVE (``--reconcile-history``): the reconciliation's hours, and a little."""


def reconciliation_start(loops: list[str]) -> int:
    """Position in the sorted ids where a ``live_polls`` run's slices start: a fresh process
    starts where the clock's phase points at its first cycle (``T_LIVE + 5 s``)."""
    return reconcile_phase_cursor(
        T_LIVE + timedelta(seconds=5), _DEFAULTS.agg_reconcile_interval_s, len(loops)
    )


def reconciled_loops(loops: list[str], polls: int) -> list[str]:
    """The loops a ``live_polls`` run's reconciliation slices count: the sorted ids from
    :func:`reconciliation_start` on, about ``loops x 30 s / AGG_RECONCILE_INTERVAL_S`` per poll
    (84 of 10,000); one poll to spare."""
    ordered = sorted(loops)
    per_poll = math.ceil(len(loops) * 30.0 / _DEFAULTS.agg_reconcile_interval_s)
    count = min(len(ordered), per_poll * (STEADY_WARMUP_POLLS + polls + 1))
    first = reconciliation_start(loops)
    return [ordered[(first + k) % len(ordered)] for k in range(count)]


async def aggregate_history(
    store: InfluxQLStore,
    sessions: async_sessionmaker[AsyncSession],
    loops: list[str],
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """Aggregate ``[start, end)`` of ``loops`` as the service's catch-up does, so that
    ``agg_1m`` holds the reconciliation's hours as in a running plant."""
    await reset_watermarks(sessions, loops, start)
    service = AggregationService(
        settings(agg_reconcile_hours=0.0),
        _OnlyLoops(store, loops),
        sessions,
        instance_id="bench:history",
        clock=FixedClock(end),
    )
    service.known_marks.update(dict.fromkeys(loops, start))
    started = time.perf_counter()
    samples = 0
    while True:
        report = await service.run_cycle()
        samples += report.samples
        if report.samples == 0:
            break
    elapsed = time.perf_counter() - started
    expected = len(loops) * int((end - start).total_seconds())
    assert samples == expected, (samples, expected)
    return {"loops": len(loops), "lines": samples, "seconds": round(elapsed, 1)}


async def measure_reconcile_counts(
    store: InfluxQLStore,
    sessions: async_sessionmaker[AsyncSession],
    history: list[str],
    slice_size: int,
    parties: dict[str, int],
    repeats: int = 6,
) -> dict[str, Any]:
    """The reads of one reconciliation slice (``slice_size`` loops over AGG_RECONCILE_HOURS,
    nothing late), both ways, on different slices of the history loops in alternating order:
    ``minute_by_minute`` (the former way: agg_1m's count rows and the store's minute counts of
    every loop) and ``totals_first`` (now: agg_1m's sums and the store's totals, one row per
    loop each; the minutes only of loops whose totals differ, none here)."""
    end = T_LIVE
    start = end - timedelta(hours=_DEFAULTS.agg_reconcile_hours)
    counts = ("pv_count", "sp_count", "op_count")

    async def minute_by_minute(chosen: list[str]) -> None:
        async with sessions() as session:
            await AggregateRepository(session).read(
                "agg_1m", chosen, start, end, statistics=counts, mode_shares=False
            )
        await store.minute_counts(chosen, start, end)

    async def totals_first(chosen: list[str]) -> None:
        async with sessions() as session:
            await AggregateRepository(session).sample_totals("agg_1m", chosen, start, end)
        await store.sample_totals(chosen, start, end)

    ways = {"minute_by_minute": minute_by_minute, "totals_first": totals_first}
    measured: dict[str, list[tuple[float, dict[str, float]]]] = {name: [] for name in ways}
    slices = [history[k : k + slice_size] for k in range(0, len(history), slice_size)]
    for k in range(repeats):
        names = list(ways) if k % 2 == 0 else list(ways)[::-1]
        for offset, name in enumerate(names):
            chosen = slices[(2 * k + offset) % len(slices)]
            before = cpu_snapshot(parties, {"bench": os.getpid()})
            started = time.perf_counter()
            await ways[name](chosen)
            elapsed = time.perf_counter() - started
            spent = cpu_spent(before, cpu_snapshot(parties, {"bench": os.getpid()}))
            measured[name].append((elapsed, spent))
    return {
        "loops": slice_size,
        "hours": _DEFAULTS.agg_reconcile_hours,
        **{
            name: {
                "median_s": round(statistics.median(e for e, _ in runs), 3),
                "cpu_s": {
                    party: round(statistics.median(c[party] for _, c in runs), 3)
                    for party in runs[0][1]
                },
            }
            for name, runs in measured.items()
        },
    }


async def measure_live_polls(
    store: InfluxQLStore,
    sessions: async_sessionmaker[AsyncSession],
    loops: list[str],
    polls: int,
    spread: str,
    parties: dict[str, int],
) -> dict[str, Any]:
    """The service at the defaults as it runs: 30-s polls over samples at 1 Hz.

    Nothing is put back between polls: the clock moves 30 s per poll from ``T_LIVE + 5 s`` and
    the service decides what each poll reads. ``spread``:
    - ``"default"``: AGG_SPREAD_MIN_LOOPS reached, the span of AGG_SPREAD_LOOPS_PER_POLL's
      default (10,000 loops: each poll aggregates 2 minutes of a quarter of the loops);
    - ``"minute"``: the spread over one minute (each poll aggregates the minute just ended of
      half the loops);
    - ``"none"``: the poll after a minute boundary aggregates every loop's minute and the next
      one nothing.
    """
    await reset_watermarks(sessions, loops, T_LIVE)
    clock = FixedClock(T_LIVE)
    service = AggregationService(
        settings(
            agg_lateness_s=_DEFAULTS.agg_lateness_s,
            agg_late_data="counts",
            agg_reconcile_hours=_DEFAULTS.agg_reconcile_hours,
            agg_spread_min_loops=_DEFAULTS.agg_spread_min_loops if spread != "none" else 10**9,
            agg_spread_loops_per_poll=_DEFAULTS.agg_spread_loops_per_poll
            if spread == "default"
            else 10**9,
        ),
        store,
        sessions,
        instance_id="bench:1",
        clock=clock,
    )
    service.known_marks.update(dict.fromkeys(loops, T_LIVE))
    durations: list[float] = []
    samples: list[int] = []
    cpu: dict[str, float] = {}
    steal_from = host_ticks()
    reconciled_from = 0
    for k in range(STEADY_WARMUP_POLLS + polls):
        clock.now = T_LIVE + timedelta(seconds=5 + 30 * k)
        if k == STEADY_WARMUP_POLLS:
            steal_from = host_ticks()
            reconciled_from = service.late_data.reconcile_cursor
        before = cpu_snapshot(parties, {"bench": os.getpid()})
        started = time.perf_counter()
        report = await service.run_cycle()
        elapsed = time.perf_counter() - started
        if k < STEADY_WARMUP_POLLS:
            continue
        for name, spent in cpu_spent(before, cpu_snapshot(parties, {"bench": os.getpid()})).items():
            cpu[name] = cpu.get(name, 0.0) + spent / polls
        assert report.late_minutes == 0, report
        durations.append(elapsed)
        samples.append(report.samples)
    # every loop-minute that ended during the measured polls was read once, by one of them
    assert sum(samples) % 60 == 0, samples  # whole minutes of 1-Hz samples
    assert sum(samples) >= len(loops) * 60 * (polls // 2 - 1), samples
    reading = [d for d, n in zip(durations, samples, strict=True) if n]
    return {
        **percentiles(durations),
        "mean_s": round(statistics.mean(durations), 3),
        "reading_polls_median_s": round(statistics.median(reading), 3) if reading else None,
        "cpu_s_per_poll": {name: round(seconds, 2) for name, seconds in cpu.items()},
        "host_steal_pct": steal_percent(steal_from, host_ticks()),
        "polls_s": [round(d, 3) for d in durations],
        "samples_per_poll": samples,
        # the measured polls' reconciliation slices: sorted(loops)[from:until]
        "reconciled": [reconciled_from, service.late_data.reconcile_cursor],
    }


async def measure_live_pair(
    store: InfluxQLStore,
    sessions: async_sessionmaker[AsyncSession],
    loops: list[str],
    polls: int,
    parties: dict[str, int],
    rounds: int,
) -> dict[str, dict[str, Any]]:
    """``live_polls`` at the defaults and the baselines: spread over one minute (the default
    before AGG_SPREAD_LOOPS_PER_POLL) and not spread (every loop's minute at one poll), in
    alternating rounds over the same samples, after one run that is not counted (it inserts the
    agg_1m rows the later runs rewrite)."""
    first = await measure_live_polls(store, sessions, loops, polls, "default", parties)
    runs = await alternating_rounds(
        {
            name: functools.partial(
                measure_live_polls, store, sessions, loops, polls, spread, parties
            )
            for name, spread in (
                ("live_polls", "default"),
                ("live_polls_minute_spread", "minute"),
                ("live_polls_unspread", "none"),
            )
        },
        rounds,
    )
    result: dict[str, dict[str, Any]] = {}
    for name, measured in runs.items():
        reading = [
            poll
            for run in measured
            for poll, n in zip(run["polls_s"], run["samples_per_poll"], strict=True)
            if n
        ]
        result[name] = {
            **pooled_polls(measured, rounds),
            "reading_polls_median_s": round(statistics.median(reading), 3),
            "samples_per_poll": [n for run in measured for n in run["samples_per_poll"]],
            # per round: the same polls take 50-65 % more CPU seconds on a busy host
            "host_steal_pct": [run["host_steal_pct"] for run in measured],
            "reconciled": [run["reconciled"] for run in measured],
        }
    result["live_polls_first_run"] = {"median_s": first["median_s"]}
    return result


async def alternating_rounds(
    variants: dict[str, Callable[[], Awaitable[dict[str, Any]]]], rounds: int
) -> dict[str, list[dict[str, Any]]]:
    """Each variant once per round, in reverse order in odd rounds: influxd compacts the
    bench's samples for minutes, and whichever variant always ran first would pay for more."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for round_ in range(rounds):
        names = list(variants) if round_ % 2 == 0 else list(variants)[::-1]
        for name in names:
            runs[name].append(await variants[name]())
    return runs


def pooled_polls(measured: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """The polls of several runs as one: percentiles and mean, mean CPU per poll."""
    durations = [poll for run in measured for poll in run["polls_s"]]
    return {
        **percentiles(durations),
        "mean_s": round(statistics.mean(durations), 3),
        "cpu_s_per_poll": {
            party: round(statistics.mean(run["cpu_s_per_poll"][party] for run in measured), 2)
            for party in measured[0]["cpu_s_per_poll"]
        },
        "polls_s": durations,
        "rounds": rounds,
    }


def steady_minutes(polls: int) -> int:
    """Minutes after T1 that consecutive 30-s polls from T1 + 61 s aggregate."""
    return (61 + 30 * (STEADY_WARMUP_POLLS + polls - 1)) // 60


async def measure_steady_polls(
    store: InfluxQLStore,
    sessions: async_sessionmaker[AsyncSession],
    loops: list[str],
    polls: int,
    lateness_s: float,
    parties: dict[str, int],
) -> dict[str, Any]:
    """Consecutive 30-s polls with the late-data state carried over (module docs).

    Poll ``k`` runs at ``T1 + 61 s + 30 k s`` with the watermarks put one minute before the
    current one, so each poll aggregates a minute holding 30 s of samples (every other poll
    writes that minute again), as ``cycle`` does.
    """
    clock = FixedClock(T1 + timedelta(seconds=61))
    service = AggregationService(
        settings(
            agg_lateness_s=lateness_s,
            agg_late_data="counts",
            agg_reconcile_hours=3.0 if lateness_s else 0.0,
        ),
        store,
        sessions,
        instance_id="bench:1",
        clock=clock,
    )
    durations: list[float] = []
    cpu: dict[str, float] = {}
    details: list[dict[str, Any]] = []
    for k in range(STEADY_WARMUP_POLLS + polls):
        clock.now = T1 + timedelta(seconds=61 + 30 * k)
        minute = T1 + timedelta(minutes=(61 + 30 * k) // 60 - 1)
        await reset_watermarks(sessions, loops, minute)
        service.known_marks.update(dict.fromkeys(loops, minute))
        before = cpu_snapshot(parties, {"bench": os.getpid()})
        started = time.perf_counter()
        report = await service.run_cycle()
        elapsed = time.perf_counter() - started
        if k < STEADY_WARMUP_POLLS:
            continue
        for name, spent in cpu_spent(before, cpu_snapshot(parties, {"bench": os.getpid()})).items():
            cpu[name] = cpu.get(name, 0.0) + spent / polls
        durations.append(elapsed)
        details.append(
            {"samples": report.samples, "late_minutes": report.late_minutes, "s": round(elapsed, 3)}
        )
    assert all(d["samples"] == len(loops) * 30 for d in details), details
    assert all(d["late_minutes"] == 0 for d in details), details
    return {
        **percentiles(durations),
        "mean_s": round(statistics.mean(durations), 3),
        "cpu_s_per_poll": {name: round(seconds, 2) for name, seconds in cpu.items()},
        "polls_s": [d["s"] for d in details],
    }


async def measure_steady_pair(
    store: InfluxQLStore,
    sessions: async_sessionmaker[AsyncSession],
    loops: list[str],
    polls: int,
    parties: dict[str, int],
    rounds: int,
) -> dict[str, dict[str, Any]]:
    """``defaults_poll`` and ``lateness0_poll`` in alternating rounds (defaults first in even
    rounds, lateness 0 first in odd ones)."""
    per_round = max(1, polls // rounds)
    runs = await alternating_rounds(
        {
            name: functools.partial(
                measure_steady_polls, store, sessions, loops, per_round, lateness_s, parties
            )
            for name, lateness_s in (("defaults_poll", 120.0), ("lateness0_poll", 0.0))
        },
        rounds,
    )
    return {name: pooled_polls(measured, rounds) for name, measured in runs.items()}


def bucket_table_of_server_answer(answer: dict[str, Any]) -> BucketTable:
    loop_ids: list[str] = []
    bucket_ns: list[np.ndarray] = []
    columns: dict[str, list[np.ndarray]] = {name: [] for name in STAT_COLUMNS}
    for loop_id, aggregate in answer.items():
        n = aggregate.bucket_ns.size
        if not n:
            continue
        loop_ids.extend([loop_id] * n)
        bucket_ns.append(aggregate.bucket_ns)
        for name in STAT_COLUMNS:
            columns[name].append(aggregate.stats[name])
    n_rows = len(loop_ids)
    return BucketTable(
        np.asarray(loop_ids, dtype=object),
        np.concatenate(bucket_ns).astype(np.int64),
        {name: np.concatenate(parts) for name, parts in columns.items()},
        (),
        np.zeros((n_rows, 0)),
    )


async def measure_server_side(
    store: InfluxQLStore,
    sessions: async_sessionmaker[AsyncSession],
    loops: list[str],
    repeats: int,
) -> dict[str, Any]:
    """InfluxDB computes the minute (GROUP BY time(1m), loop_id); the rows are upserted."""
    durations: list[float] = []
    reads: list[float] = []
    rows = 0
    for _ in range(repeats):
        await reset_watermarks(sessions, loops, T1)
        started = time.perf_counter()
        answer = await store.aggregate_many(loops, T1, T1 + timedelta(minutes=1), 60)
        read_done = time.perf_counter()
        table = bucket_table_of_server_answer(answer)
        async with sessions() as session, session.begin():
            await WatermarkRepository(session).advance(
                dict.fromkeys(loops, T1), T1 + timedelta(minutes=1)
            )
            rows = await AggregateRepository(session).upsert("agg_1m", table)
        durations.append(time.perf_counter() - started)
        reads.append(read_done - started)
    return {
        **percentiles(durations),
        "server_query_median_s": round(statistics.median(reads), 3),
        "rows": rows,
    }


def pandas_frame(raw: dict[str, RawSeries]) -> pd.DataFrame:
    parts = [s for s in raw.values() if len(s)]
    return pd.DataFrame(
        {
            "loop_id": np.repeat([s.loop_id for s in parts], [len(s) for s in parts]),
            "time": pd.to_datetime(np.concatenate([s.t_ns for s in parts]), utc=True),
            "PV": np.concatenate([s.pv for s in parts]),
            "SP": np.concatenate([s.sp for s in parts]),
            "OP": np.concatenate([s.op for s in parts]),
            "Mode": np.concatenate([s.mode for s in parts]),
        }
    )


PANDAS_STATS = ["count", "mean", "min", "max", "std", "first", "last"]
RESAMPLE_SAMPLE_LOOPS = 200


def pandas_groupby(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    grouped = frame.groupby(["loop_id", pd.Grouper(key="time", freq="1min")])
    stats = grouped[["PV", "SP", "OP"]].agg(PANDAS_STATS)
    modes = (
        frame.groupby(["loop_id", pd.Grouper(key="time", freq="1min"), "Mode"])
        .size()
        .unstack(fill_value=0)
    )
    shares = modes.div(modes.sum(axis=1), axis=0)
    return stats, shares


def pandas_resample(frame: pd.DataFrame) -> pd.DataFrame:
    indexed = frame.set_index("time")
    return indexed.groupby("loop_id")[["PV", "SP", "OP"]].resample("1min").agg(PANDAS_STATS)


def measure_compute(raw: dict[str, RawSeries], repeats: int) -> dict[str, Any]:
    numpy_s: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = minute_buckets(raw)
        numpy_s.append(time.perf_counter() - started)
    frame = pandas_frame(raw)
    groupby_s: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        stats, _shares = pandas_groupby(frame)
        groupby_s.append(time.perf_counter() - started)
    # groupby().resample() takes minutes on every loop: timed on a sample of loops, scaled up
    sample_loops = sorted(raw)[:RESAMPLE_SAMPLE_LOOPS]
    sample = frame[frame["loop_id"].isin(sample_loops)]
    started = time.perf_counter()
    resampled = pandas_resample(sample)
    resample_s = (time.perf_counter() - started) * len(raw) / len(sample_loops)
    # the baselines compute the same numbers
    table = result.buckets
    ours = pd.Series(
        table.stats["pv_mean"],
        index=pd.MultiIndex.from_arrays(
            [table.loop_ids, pd.to_datetime(table.bucket_ns, utc=True)]
        ),
    )
    theirs = stats[("PV", "mean")].reindex(ours.index)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-12)
    theirs_std = stats[("PV", "std")].reindex(ours.index).to_numpy()
    np.testing.assert_allclose(table.stats["pv_std"], theirs_std, rtol=1e-9)
    assert len(resampled.dropna(how="all")) == int(np.isin(table.loop_ids, sample_loops).sum())
    rows = sum(len(s) for s in raw.values())
    return {
        "rows": rows,
        "buckets": len(table),
        "numpy_reduceat_median_ms": round(1000 * statistics.median(numpy_s), 1),
        "pandas_groupby_grouper_median_ms": round(1000 * statistics.median(groupby_s), 1),
        "pandas_groupby_resample_ms_scaled": round(1000 * resample_s, 1),
        "pandas_resample_timed_on_loops": len(sample_loops),
    }


async def measure_backfill(
    servers: Servers, store: InfluxQLStore, loops: list[str]
) -> dict[str, Any]:
    """Start-up catch-up of the hour [T0, T0+1h) on a fresh database (AGG_BACKFILL_HOURS=1)."""
    name = servers.postgres.create_database("backfill")
    engine = create_engine(servers.postgres.url(name))
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            await LoopRepository(session).register_discovered(loops)
        # "now" is 3 minutes after the hour: the hour is complete and final (lateness 120 s)
        clock = FixedClock(T0 + timedelta(hours=1, minutes=3, seconds=1))
        service = AggregationService(
            settings(agg_backfill_hours=1.05, agg_lateness_s=120.0),
            _OnlyLoops(store, loops),
            sessions,
            instance_id="bench:backfill",
            clock=clock,
        )
        parties = {
            "influxd": server_pid(servers.influx),
            "postgres": server_pid(servers.postgres),
        }
        before = cpu_snapshot(parties, {"bench": os.getpid()})
        started = time.perf_counter()
        report = await service.run_cycle()
        elapsed = time.perf_counter() - started
        cpu = cpu_spent(before, cpu_snapshot(parties, {"bench": os.getpid()}))
        hours = int(servers.postgres.psql("SELECT count(*) FROM agg_1h", database=name))
        minutes = int(servers.postgres.psql("SELECT count(*) FROM agg_1m", database=name))
    finally:
        await engine.dispose()
    lines = report.samples
    assert lines == len(loops) * 3600, report
    assert minutes == len(loops) * 60, minutes
    assert hours == len(loops), hours
    return {
        "loops": len(loops),
        "lines": lines,
        "seconds": round(elapsed, 2),
        "lines_per_s": round(lines / elapsed),
        "agg_1m_rows": minutes,
        "agg_1h_rows": hours,
        "cpu_s": cpu,
        "cpu_us_per_line": {name: round(v * 1e6 / lines, 2) for name, v in cpu.items()},
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


class _OnlyLoops:
    """The store, with discovery limited to the backfill's loops (the rest are cycle loops)."""

    def __init__(self, store: InfluxQLStore, loops: list[str]) -> None:
        self._store = store
        self._loops = loops

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def discover_loops(self) -> list[str]:
        return list(self._loops)


async def measure_read_only(store: InfluxQLStore, loops: list[str], influxd: int) -> dict[str, Any]:
    before = cpu_snapshot({"influxd": influxd}, {"bench": os.getpid()})
    started = time.perf_counter()
    raw = await store.query_raw_many(loops, T0, T0 + timedelta(hours=1))
    elapsed = time.perf_counter() - started
    cpu = cpu_spent(before, cpu_snapshot({"influxd": influxd}, {"bench": os.getpid()}))
    lines = sum(len(s) for s in raw.values())
    return {
        "loops": len(loops),
        "lines": lines,
        "lines_per_s": round(lines / elapsed),
        "cpu_us_per_line": {name: round(v * 1e6 / lines, 2) for name, v in cpu.items()},
    }


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


async def measure_poll_models(
    store: InfluxQLStore,
    sessions: async_sessionmaker[AsyncSession],
    loops: list[str],
    parties: dict[str, int],
    args: argparse.Namespace,
    result: dict[str, Any],
) -> None:
    """``cycle``, ``server_side``, ``defaults_cycle``, ``default_lateness_cycle``, the steady
    polls and ``compute`` (module docs), into ``result``."""
    profiler = cProfile.Profile() if args.profile else None
    result["cycle"] = await measure_cycle(
        store, sessions, loops, args.repeats, 0.0, parties, profiler
    )
    if profiler is not None:
        profiler.dump_stats(args.profile)
    if not args.skip_server_side:
        result["server_side"] = await measure_server_side(store, sessions, loops, args.repeats)
    # steady state before T1: the minutes of the allowance are in agg_1m already
    async with sessions() as session, session.begin():
        before = await store.query_raw_many(loops, T1 - timedelta(minutes=3), T1)
        await AggregateRepository(session).upsert("agg_1m", minute_buckets(before).buckets)
        del before
    result["defaults_cycle"] = await measure_cycle(
        store, sessions, loops, args.repeats, 120.0, parties, late_data="counts"
    )
    result["default_lateness_cycle"] = await measure_cycle(
        store, sessions, loops, max(1, args.repeats // 2), 120.0, parties
    )
    result.update(
        await measure_steady_pair(
            store, sessions, loops, args.steady_polls, parties, args.steady_rounds
        )
    )
    raw = await store.query_raw_many(loops, T1, T1 + timedelta(minutes=1))
    result["compute"] = measure_compute(raw, args.repeats)
    del raw


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=10_000)
    parser.add_argument("--backfill-loops", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument(
        "--skip-server-side",
        action="store_true",
        help="skip the server-side GROUP BY baseline (slow; the cycle beat it in every run)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds to wait after writing the polled minutes (influxd compacts them)",
    )
    parser.add_argument(
        "--steady-polls", type=int, default=10, help="measured polls of defaults_poll"
    )
    parser.add_argument(
        "--steady-rounds",
        type=int,
        default=2,
        help="rounds the steady polls are split in, the two settings alternating",
    )
    parser.add_argument(
        "--live-polls", type=int, default=8, help="measured polls of live_polls per round"
    )
    parser.add_argument(
        "--live-rounds", type=int, default=2, help="rounds of live_polls and its two baselines"
    )
    parser.add_argument(
        "--only-live",
        action="store_true",
        help="measure live_polls only (skips cycle, defaults_cycle, the steady polls, compute)",
    )
    parser.add_argument(
        "--reconcile-history",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write and aggregate the reconciliation's hours before the live samples for the "
        "loops the live polls reconcile (as a running plant's store holds them)",
    )
    parser.add_argument("--profile", help="write a cProfile of the measured 30-s cycles here")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logging.getLogger("clpm_aggregation.progress").setLevel(logging.INFO)
    loops = loop_names(args.loops)
    backfill_loops = loop_names(args.backfill_loops)
    result: dict[str, Any] = {"loops": args.loops, "fields": 3, "rate_hz": 1}
    servers = start_servers()
    try:
        if not args.only_live:
            # the polled minute: 30 s of samples at T1, and 150 s before it (lateness re-read)
            result["write_cycle_data"] = await write_lines(
                servers.influx, loops, T1 - timedelta(seconds=150), 180, 250
            )
        # the minutes after it for the steady polls, 30 s of samples each
        for minute in range(1, 0 if args.only_live else steady_minutes(args.steady_polls) + 1):
            await write_lines(servers.influx, loops, T1 + timedelta(minutes=minute), 30, 500)
        # 1-Hz samples for the live polls; influxd compacts them for a while after (a running
        # plant's store compacts only what streams in): the first live round would pay for it
        result["write_live_data"] = await write_lines(
            servers.influx, loops, T_LIVE, live_seconds(args.live_polls), 20
        )
        history = reconciled_loops(loops, args.live_polls) if args.reconcile_history else []
        if history:
            # a running plant's store holds the reconciliation's hours of the loops it counts
            result["write_reconcile_history"] = await write_lines(
                servers.influx,
                history,
                T_LIVE - RECONCILE_HISTORY,
                int(RECONCILE_HISTORY.total_seconds()),
                5,
            )
        result["write_live_data"]["influxd_compaction_s"] = wait_until_idle(
            server_pid(servers.influx)
        )
        if args.settle:
            await asyncio.sleep(args.settle)
        influx_settings = InfluxSettings(
            timeseries_backend=TimeSeriesBackend.INFLUXQL,
            influxdb_url=servers.influx.url,
            influxdb_database="bench",
        )
        store = InfluxQLStore(influx_settings, loops_per_query=100, max_in_flight=3)
        name = servers.postgres.create_database("cycle")
        engine = create_engine(servers.postgres.url(name))
        sessions = create_session_factory(engine)
        try:
            # only the 30 s at T1 are inside [T1, T1 + 1 min); the 150 s before serve lateness
            parties = {
                "influxd": server_pid(servers.influx),
                "postgres": server_pid(servers.postgres),
            }
            if history:
                result["reconcile_history"] = await aggregate_history(
                    store, sessions, history, T_LIVE - RECONCILE_HISTORY, T_LIVE
                )
                result["reconcile_slice"] = await measure_reconcile_counts(
                    store,
                    sessions,
                    history,
                    math.ceil(len(loops) * 30.0 / _DEFAULTS.agg_reconcile_interval_s),
                    parties,
                )
            result.update(
                await measure_live_pair(
                    store, sessions, loops, args.live_polls, parties, args.live_rounds
                )
            )
            if history:  # every measured poll's slice counted loops with history
                first = reconciliation_start(loops)
                for name in ("live_polls", "live_polls_minute_spread", "live_polls_unspread"):
                    for start, until in result[name]["reconciled"]:
                        since, to = (start - first) % len(loops), (until - first) % len(loops)
                        assert since < to <= len(history), (name, start, until)
            if not args.only_live:
                await measure_poll_models(store, sessions, loops, parties, args, result)
        finally:
            await engine.dispose()
        if not args.skip_backfill:
            # written after the cycle measurements: influxd compacts it for minutes afterwards
            result["write_backfill_data"] = await write_lines(
                servers.influx, backfill_loops, T0, 3600, 20
            )
            # a start-up backfill reads history influxd compacted long ago: let it finish
            result["write_backfill_data"]["influxd_compaction_s"] = wait_until_idle(
                server_pid(servers.influx)
            )
            result["backfill_read_only"] = await measure_read_only(
                store, backfill_loops[: min(1000, len(backfill_loops))], server_pid(servers.influx)
            )
            result["backfill"] = await measure_backfill(servers, store, backfill_loops)
        await store.close()
    finally:
        stop_servers(servers)
    cycle, server = result.get("cycle"), result.get("server_side")

    def within_target(name: str) -> bool | None:
        return result[name]["median_s"] <= 1.5 if name in result else None

    result["targets"] = {
        "live_polls_median_le_1_5_s": within_target("live_polls"),
        "cycle_median_le_1_5_s": within_target("cycle"),
        "defaults_cycle_median_le_1_5_s": within_target("defaults_cycle"),
        "defaults_poll_median_le_1_5_s": within_target("defaults_poll"),
        "cycle_beats_server_side": None
        if server is None or cycle is None
        else cycle["median_s"] < server["median_s"],
        "backfill_ge_450k_lines_per_s": (
            result["backfill"]["lines_per_s"] >= 450_000 if "backfill" in result else None
        ),
    }
    result["minute_ns"] = MINUTE_NS
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
