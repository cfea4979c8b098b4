"""Benchmark of the long-term trend queries on PostgreSQL (``KpiTrendRepository``).

Starts a private PostgreSQL with the test harness, migrates it and fills ``kpi_results`` with
``--loops`` loops x 96 windows a day x ``--days`` days (health, service factor, error std and
a status; the other KPIs NULL) with ``generate_series``, in 10 units. Then times, best of
``--repeats``: one loop's trend per day and per week over the whole span, the before/after
comparison of one loop over 14 days each side, and the fleet's plant trend per day and per
unit per week over the last 90 days and over the whole span.

Run: ``PYTHONPATH=. nice .venv/bin/python bench/trend_queries.py [--loops 500] [--days 365]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.repositories.kpi_trends import KpiTrendRepository
from tests.harness.servers import migrate, start_postgres

END = datetime(2026, 1, 1, tzinfo=UTC)


async def fill(url: str, loops: int, days: int) -> float:
    engine = create_engine(url)
    began = time.perf_counter()
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO loops (loop_id, name, description, unit, area, active) "
                "SELECT 'L-' || i, 'L-' || i, '', 'U' || (i % 10), 'A' || (i % 3), true "
                "FROM generate_series(0, :n - 1) AS i"
            ),
            {"n": loops},
        )
        await connection.execute(
            text(
                "INSERT INTO kpi_results (loop_id, window_start, window_end, source, samples, "
                "health_score, service_factor, error_std_pct, status) "
                "SELECT 'L-' || i, t, t + interval '15 minutes', 'raw', 900, "
                "50 + (i % 50), 0.9, 2.0, CASE WHEN i % 50 > 30 THEN 'good' ELSE 'fair' END "
                "FROM generate_series(0, :n - 1) AS i, "
                "generate_series(CAST(:start AS timestamptz), CAST(:end AS timestamptz) "
                "- interval '15 minutes', interval '15 minutes') AS t"
            ),
            {"n": loops, "start": END - timedelta(days=days), "end": END},
        )
        await connection.execute(text("ANALYZE kpi_results"))
    await engine.dispose()
    return time.perf_counter() - began


async def timed(
    call: Callable[[KpiTrendRepository], Awaitable[Any]], url: str, repeats: int
) -> dict[str, Any]:
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    best = float("inf")
    size = 0
    for _ in range(repeats):
        async with sessions() as session:
            began = time.perf_counter()
            result = await call(KpiTrendRepository(session))
            best = min(best, time.perf_counter() - began)
        size = len(result) if isinstance(result, list) else 2
    await engine.dispose()
    return {"best_s": round(best, 3), "rows": size}


async def run(url: str, loops: int, days: int, repeats: int) -> dict[str, Any]:
    start = END - timedelta(days=days)
    recent = END - timedelta(days=min(days, 90))
    middle = END - timedelta(days=days // 2)
    calls: dict[str, Callable[[KpiTrendRepository], Awaitable[Any]]] = {
        "loop_day": lambda r: r.loop_trend("L-7", start, END, "day"),
        "loop_week": lambda r: r.loop_trend("L-7", start, END, "week"),
        "loop_compare_14d": lambda r: r.compare(
            "L-7", middle, middle - timedelta(days=14), middle + timedelta(days=14)
        ),
        "fleet_plant_day_90d": lambda r: r.fleet_trend(recent, END, "day", "plant"),
        "fleet_unit_week_90d": lambda r: r.fleet_trend(recent, END, "week", "unit"),
        "fleet_plant_day_all": lambda r: r.fleet_trend(start, END, "day", "plant"),
    }
    return {name: await timed(call, url, repeats) for name, call in calls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loops", type=int, default=500)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pg = start_postgres("bench-pg-")
    try:
        pg.psql('CREATE DATABASE "bench"')
        url = pg.url("bench")
        migrate(url)
        fill_s = asyncio.run(fill(url, args.loops, args.days))
        result = {
            "loops": args.loops,
            "days": args.days,
            "rows": args.loops * args.days * 96,
            "fill_s": round(fill_s, 1),
            "queries": asyncio.run(run(url, args.loops, args.days, args.repeats)),
        }
    finally:
        pg.stop()
        shutil.rmtree(pg.workdir, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
