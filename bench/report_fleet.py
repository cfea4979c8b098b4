"""Benchmark of the fleet report at plant size: reads, assembly, PDF and XLSX on PostgreSQL.

Starts a private PostgreSQL with the test harness, migrates it and fills, with
``generate_series``: ``--loops`` loops in 20 units, their ``day`` and ``week`` ratings in
``loop_assessments`` (health, status, the previous period's, one finding for every third
loop), ``--days`` days of 15-minute ``kpi_results`` windows per loop and 1,000 work items.
Then times each stage of the daily (or ``--period week``) report (best of ``--repeats``):
the four repository reads, the assembly, the PDF and the XLSX, and the whole report end to
end (gather + both files).
Baseline in the same run: the same every-loop sheet written with pandas
``DataFrame.to_excel`` (openpyxl and xlsxwriter engines).

Run: ``PYTHONPATH=. nice .venv/bin/python bench/report_fleet.py [--loops 10000] [--days 2]``
(the weekly report: ``--period week --days 14 --repeats 1``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import text

from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.repositories.kpi_trends import KpiTrendRepository
from clpm_shared.db.repositories.reports import ReportDataRepository
from clpm_shared.reports import assemble_fleet_report, report_window
from clpm_shared.reports.content import TrendPoint
from clpm_shared.reports.gather import gather_fleet_report
from clpm_shared.reports.pdf import render_pdf
from clpm_shared.reports.xlsx import LOOP_COLUMNS, render_xlsx
from tests.harness.servers import migrate, start_postgres

END = datetime(2026, 1, 1, 6, tzinfo=UTC)
DAY = timedelta(hours=24)


async def fill(url: str, loops: int, days: int) -> float:
    engine = create_engine(url)
    began = time.perf_counter()
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO loops (loop_id, name, description, unit, area, active) "
                "SELECT 'L-' || lpad(i::text, 5, '0'), 'Loop ' || i, '', 'U' || (i % 20), "
                "'A' || (i % 4), true FROM generate_series(0, :n - 1) AS i"
            ),
            {"n": loops},
        )
        await connection.execute(
            text(
                "INSERT INTO loop_config (loop_id, loop_type, criticality, op_lo, op_hi, "
                "apc_enabled, kpi_window_min) "
                "SELECT 'L-' || lpad(i::text, 5, '0'), 'flow', 1 + (i % 5), 0, 100, false, 15 "
                "FROM generate_series(0, :n - 1) AS i"
            ),
            {"n": loops},
        )
        for period, length in (("day", DAY), ("week", timedelta(days=7))):
            await connection.execute(
                text(
                    "INSERT INTO loop_assessments (loop_id, period, period_start, period_end, "
                    "computed_at, status, health_score, main_problem, reason, status_shares, "
                    "findings, worst_window, windows_assessed, windows_total, "
                    "previous_health_score, previous_status) "
                    "SELECT 'L-' || lpad(i::text, 5, '0'), :period, :start, :end, :end, "
                    "CASE WHEN h >= 80 THEN 'good' WHEN h >= 60 THEN 'fair' ELSE 'poor' END, "
                    "h, CASE WHEN i % 3 = 0 THEN 'valve_stiction' END, NULL, '{}'::jsonb, "
                    "CASE WHEN i % 3 = 0 THEN jsonb_build_array(jsonb_build_object("
                    "'category', 'valve_stiction', 'persistence', 0.5, 'mean_severity', 0.4)) "
                    "ELSE '[]'::jsonb END, NULL, 96, 96, ph, "
                    "CASE WHEN ph >= 80 THEN 'good' WHEN ph >= 60 THEN 'fair' ELSE 'poor' END "
                    "FROM (SELECT i, 30 + (i * 7919 % 700) / 10.0 AS h, "
                    "30 + (i * 104729 % 700) / 10.0 AS ph "
                    "FROM generate_series(0, :n - 1) AS i) AS s"
                ),
                {"n": loops, "period": period, "start": END - length, "end": END},
            )
        await connection.execute(
            text(
                "INSERT INTO kpi_results (loop_id, window_start, window_end, source, samples, "
                "health_score, service_factor, saturation, error_std_pct, status) "
                "SELECT 'L-' || lpad(i::text, 5, '0'), t, t + interval '15 minutes', 'raw', "
                "900, 30 + (i % 70), 0.95, 0.02, 2.0, "
                "CASE WHEN i % 70 > 50 THEN 'good' WHEN i % 70 > 30 THEN 'fair' ELSE 'poor' END "
                "FROM generate_series(0, :n - 1) AS i, "
                "generate_series(CAST(:start AS timestamptz), CAST(:end AS timestamptz) "
                "- interval '15 minutes', interval '15 minutes') AS t"
            ),
            {"n": loops, "start": END - timedelta(days=days), "end": END},
        )
        await connection.execute(
            text(
                "INSERT INTO work_items (loop_id, kind, text, state, assignee, created_by, "
                "created_at, updated_by, updated_at) "
                "SELECT 'L-' || lpad((i * 7)::text, 5, '0'), 'assignment', 'check', "
                "CASE WHEN i % 3 = 0 THEN 'done' ELSE 'open' END, 'alice', 'bob', "
                "CAST(:end AS timestamptz) - (i % 48) * interval '1 hour', 'bob', "
                "CAST(:end AS timestamptz) - (i % 20) * interval '1 hour' "
                "FROM generate_series(0, 999) AS i WHERE i * 7 < :n"
            ),
            {"n": loops, "end": END},
        )
        await connection.execute(text("ANALYZE"))
    await engine.dispose()
    return time.perf_counter() - began


def best_of(repeats: int, call: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - began)
    return round(best, 3), result


async def abest_of(repeats: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        result = await call()
        best = min(best, time.perf_counter() - began)
    return round(best, 3), result


async def run(url: str, repeats: int, period: str) -> dict[str, Any]:
    length = DAY if period == "day" else timedelta(days=7)
    resolution = "hour" if period == "day" else "day"
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    now = END + timedelta(minutes=5)
    stages: dict[str, float] = {}
    async with sessions() as session:
        data = ReportDataRepository(session)
        stages["read_ratings_s"], loops = await abest_of(
            repeats, lambda: data.assessed_loops(period)
        )
        start, end = report_window(loops, length, now)
        stages["read_trend_s"], buckets = await abest_of(
            repeats,
            lambda: KpiTrendRepository(session).fleet_trend(
                start - length, end, resolution, "plant"
            ),
        )
        stages["read_kpi_means_s"], (means, previous) = await abest_of(
            repeats, lambda: data.kpi_means(start - length, start, end)
        )
        stages["read_work_items_s"], items = await abest_of(
            repeats, lambda: data.work_items(start, end)
        )
    trend = [
        TrendPoint(b.bucket_start, b.windows, b.means.get("health_score"), b.status_shares)
        for b in buckets
    ]
    stages["assemble_s"], report = best_of(
        repeats,
        lambda: assemble_fleet_report(
            period=period,
            start=start,
            end=end,
            generated_at=now,
            loops=loops,
            trend=trend,
            kpi_means=means,
            previous_kpi_means=previous,
            work_items=items,
        ),
    )
    stages["render_pdf_s"], pdf = best_of(repeats, lambda: render_pdf(report))
    stages["render_xlsx_s"], xlsx = best_of(repeats, lambda: render_xlsx(report))

    frame = pd.DataFrame(
        [{name: getattr(row, name) for name in LOOP_COLUMNS} for row in report.loops]
    )
    baselines: dict[str, float] = {}
    for engine_name in ("openpyxl", "xlsxwriter"):

        def to_excel(name: str = engine_name) -> int:
            buffer = io.BytesIO()
            frame.to_excel(buffer, sheet_name="Bad actors", index=False, engine=name)
            return len(buffer.getvalue())

        baselines[f"pandas_to_excel_{engine_name}_loops_sheet_only_s"], _ = best_of(
            repeats, to_excel
        )

    async def end_to_end() -> int:
        async with sessions() as session:
            whole = await gather_fleet_report(session, period, length, now)
        return len(render_pdf(whole)) + len(render_xlsx(whole))

    total_s, _ = await abest_of(repeats, end_to_end)
    await engine.dispose()
    return {
        "loops_in_report": len(report.loops),
        "ranked": report.loops_rated,
        "status_changes": len(report.status_changes),
        "work_items": len(report.work_items.items),
        "pdf_bytes": len(pdf),
        "xlsx_bytes": len(xlsx),
        "stages": stages,
        "baselines": baselines,
        "end_to_end_s": total_s,
        "fleet_health": report.health_score,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--period", choices=("day", "week"), default="day", help="week: use --days 14"
    )
    args = parser.parse_args()
    pg = start_postgres("bench-pg-")
    try:
        pg.psql('CREATE DATABASE "bench"')
        url = pg.url("bench")
        migrate(url)
        fill_s = asyncio.run(fill(url, args.loops, args.days))
        result = {
            "loops": args.loops,
            "days_of_windows": args.days,
            "kpi_rows": args.loops * args.days * 96,
            "fill_s": round(fill_s, 1),
            "period": args.period,
            **asyncio.run(run(url, args.repeats, args.period)),
        }
    finally:
        pg.stop()
        shutil.rmtree(pg.workdir, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
