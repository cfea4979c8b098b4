"""The KPI worker's repositories on PostgreSQL and SQLite: the SQL totals of loop_assessments
give assess_period's rating; kpi_cycle findings; windows stored without their data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.analytics.assessment import WindowRating, assess_period
from clpm_shared.analytics.period_totals import PeriodTotals, rate_totals
from clpm_shared.db import (
    Agg1m,
    DiagnosticResult,
    KpiResult,
    create_engine,
    create_session_factory,
)
from clpm_shared.db.repositories import LoopConfigRepository, LoopRepository, upsert_rows
from clpm_shared.db.repositories.aggregates import AggregateRepository
from clpm_shared.db.repositories.assessments import AssessmentRepository
from clpm_shared.db.repositories.diagnostics import DiagnosticRepository
from clpm_shared.db.repositories.diagnostics_read import DiagnosticReadRepository
from clpm_shared.db.repositories.kpis_write import KpiWriteRepository
from tests.harness.servers import migrate

WINDOW = timedelta(minutes=15)
END = datetime(2025, 3, 4, 6, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
START = END - DAY


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A fresh migrated database: real PostgreSQL, or the embedded default's SQLite file."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
    else:
        path: Path = tmp_path_factory.mktemp("sqlite") / "clpm.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate(url)
    engine = create_engine(url)
    yield create_session_factory(engine)
    await engine.dispose()


def _window(loop_id: str, k: int, status: str, health: float | None, main: str | None) -> Any:
    start = START + k * WINDOW
    return WindowRating(start, start + WINDOW, status, health, main)


def _fleet(seed: int) -> dict[str, list[WindowRating]]:
    """Windows of a day (and some of the day before) for loops of known character."""
    rng = np.random.default_rng(seed)
    loops: dict[str, list[WindowRating]] = {}
    sticky = []
    for k in range(96):
        rating = _window("STICKY", k, "poor", float(rng.uniform(40, 58)), "stiction")
        findings = {"stiction": float(rng.uniform(0.5, 0.9))}
        if k % 10 == 0:  # sporadic: under 25 % of the windows, not part of the rating
            findings["sensor_noise"] = 0.3
        sticky.append(
            WindowRating(
                rating.start, rating.end, "poor", rating.health_score, "stiction", findings
            )
        )
    loops["STICKY"] = sticky
    loops["GOOD"] = [
        _window("GOOD", k, "good", float(rng.uniform(85, 98)), None) for k in range(-96, 96)
    ]
    loops["PARTIAL"] = [
        _window("PARTIAL", k, "good", 90.0, None)
        if k < 30
        else _window("PARTIAL", k, "not_assessed", None, None)
        for k in range(96)
    ]
    mixed = []
    for k in range(96):
        status = str(
            rng.choice(
                ["good", "fair", "poor", "not_assessed", "offline"], p=[0.4, 0.2, 0.2, 0.1, 0.1]
            )
        )
        health = {"good": 88.0, "fair": 70.0, "poor": 45.0}.get(status)
        if health is not None:
            health += float(rng.uniform(-5, 5))
        main = (
            str(rng.choice(["saturation", "aggressive_tuning"]))
            if status in ("fair", "poor")
            else None
        )
        findings = {main: float(rng.uniform(0.2, 1.0))} if main else {}
        if status == "poor" and rng.uniform() < 0.5:
            findings["sensor_noise"] = float(rng.uniform(0.1, 0.5))
        mixed.append(
            WindowRating(
                START + k * WINDOW, START + (k + 1) * WINDOW, status, health, main, findings
            )
        )
    loops["MIXED"] = [w for i, w in enumerate(mixed) if i % 7 != 3]  # some missing: offline
    return loops


async def _store(
    sessions: async_sessionmaker[AsyncSession], loops: dict[str, list[WindowRating]]
) -> None:
    kpi_rows: list[dict[str, Any]] = []
    finding_rows: list[dict[str, Any]] = []
    for loop_id, windows in loops.items():
        for w in windows:
            kpi_rows.append(
                {
                    "loop_id": loop_id,
                    "window_start": w.start,
                    "window_end": w.end,
                    "source": "raw",
                    "samples": 900 if w.status != "offline" else 0,
                    "status": w.status,
                    "health_score": w.health_score,
                    "main_problem": w.main_problem,
                }
            )
            for category, severity in w.findings.items():
                finding_rows.append(
                    {
                        "loop_id": loop_id,
                        "window_start": w.start,
                        "category": category,
                        "window_end": w.end,
                        "severity": severity,
                        "confidence": 0.8,
                        "evidence": {},
                        "recommendation": "-",
                        "trigger": "kpi_cycle",
                    }
                )
    async with sessions() as session, session.begin():
        await LoopRepository(session).register_discovered([*loops, "SILENT"])
        for loop_id, unit, criticality in (
            ("STICKY", "U1", 5),
            ("GOOD", "U1", 3),
            ("PARTIAL", "U2", 3),
            ("MIXED", "U2", 1),
        ):
            await LoopRepository(session).save(loop_id, {"unit": unit})
            await LoopConfigRepository(session).save(loop_id, {"criticality": criticality})
        await upsert_rows(session, KpiResult.__table__, kpi_rows, ["loop_id", "window_start"])  # type: ignore[arg-type]
        await upsert_rows(
            session,
            DiagnosticResult.__table__,  # type: ignore[arg-type]
            finding_rows,
            ["loop_id", "window_start", "category"],
        )
        await AssessmentRepository(session).refresh([*loops, "SILENT"], "day", START, END, WINDOW)


@pytest.fixture(scope="module")
async def fleet(sessions: async_sessionmaker[AsyncSession]) -> dict[str, list[WindowRating]]:
    loops = _fleet(seed=7)
    await _store(sessions, loops)
    return loops


@pytest.mark.parametrize("loop_id", ["STICKY", "GOOD", "PARTIAL", "MIXED"])
async def test_the_stored_rating_is_assess_periods_rating_of_the_same_windows(
    sessions: async_sessionmaker[AsyncSession], fleet: dict[str, list[WindowRating]], loop_id: str
) -> None:
    expected = assess_period(fleet[loop_id], START, END)
    async with sessions() as session:
        row = await AssessmentRepository(session).get(loop_id, "day")
    assert row is not None
    assert (row.period_start, row.period_end) == (START, END)
    assert row.status == expected.status
    assert row.health_score == pytest.approx(expected.health_score, abs=0.011)
    assert row.main_problem == expected.main_problem
    assert row.status_shares == pytest.approx(expected.status_shares, abs=1e-4)
    assert row.findings == [f.to_dict() for f in expected.findings]
    assert row.windows_assessed == expected.windows_assessed
    assert row.windows_total == expected.windows_total
    worst = expected.worst_window
    if worst is None:
        assert row.worst_window is None
    else:
        assert row.worst_window is not None
        assert datetime.fromisoformat(row.worst_window["start"]) == worst.start
        assert row.worst_window["health_score"] == pytest.approx(worst.health_score)


async def test_a_sticky_valve_is_a_poor_day_with_stiction_and_no_sporadic_finding(
    sessions: async_sessionmaker[AsyncSession], fleet: dict[str, list[WindowRating]]
) -> None:
    async with sessions() as session:
        row = await AssessmentRepository(session).get("STICKY", "day")
    assert row is not None
    assert (row.status, row.main_problem) == ("poor", "stiction")
    assert [f["category"] for f in row.findings] == ["stiction"]
    assert row.findings[0]["persistence"] == 1.0


async def test_a_period_mostly_without_data_is_not_assessed_with_the_reason(
    sessions: async_sessionmaker[AsyncSession], fleet: dict[str, list[WindowRating]]
) -> None:
    async with sessions() as session:
        partial = await AssessmentRepository(session).get("PARTIAL", "day")
        silent = await AssessmentRepository(session).get("SILENT", "day")
    assert partial is not None
    assert silent is not None
    assert (partial.status, partial.health_score) == ("not_assessed", None)
    assert partial.reason == "30 of 96 windows assessed"
    assert (silent.status, silent.reason, silent.windows_total) == (
        "offline",
        "no data in the period",
        0,
    )


async def test_the_change_against_the_previous_period_is_stored(
    sessions: async_sessionmaker[AsyncSession], fleet: dict[str, list[WindowRating]]
) -> None:
    previous = assess_period(fleet["GOOD"], START - DAY, START)
    async with sessions() as session:
        row = await AssessmentRepository(session).get("GOOD", "day")
        sticky = await AssessmentRepository(session).get("STICKY", "day")
    assert row is not None
    assert sticky is not None
    assert row.previous_status == "good"
    assert row.previous_health_score == pytest.approx(previous.health_score, abs=0.011)
    assert (sticky.previous_status, sticky.previous_health_score) == (None, None)  # no data


def test_totals_of_a_period_without_windows_are_offline() -> None:
    rating = rate_totals(PeriodTotals(), START, END, WINDOW)
    assert (rating.status, rating.health_score, rating.windows_total) == ("offline", None, 0)
    assert rating.status_shares["offline"] == 1.0


async def test_a_cycle_replaces_its_findings_and_keeps_an_on_demand_run(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    start = END + timedelta(days=3)
    end = start + WINDOW

    def finding(category: str, severity: float) -> dict[str, Any]:
        return {
            "category": category,
            "severity": severity,
            "confidence": 0.8,
            "evidence": {},
            "recommendation": "-",
        }

    async with sessions() as session, session.begin():
        await LoopRepository(session).register_discovered(["CYC-1", "CYC-2"])
        repository = DiagnosticRepository(session)
        await repository.replace_window(
            "CYC-1", start, start + timedelta(hours=1), [finding("stiction", 0.9)]
        )
        await repository.replace_cycle_findings(
            start,
            end,
            {"CYC-1": [finding("stiction", 0.1), finding("saturation", 0.5)], "CYC-2": []},
        )
        await repository.replace_cycle_findings(
            start, end, {"CYC-1": [finding("sensor_noise", 0.3)], "CYC-2": []}
        )
    async with sessions() as session:
        rows = {
            (row.category, row.trigger, row.severity)
            for row in await DiagnosticReadRepository(session).history("CYC-1")
        }
    # the second cycle replaced the first one's findings; the on-demand run kept its row
    assert rows == {("stiction", "on_demand", 0.9), ("sensor_noise", "kpi_cycle", 0.3)}


async def test_windows_stored_without_their_data_and_the_minutes_that_arrived_since(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    start = END + timedelta(days=4)
    kpis = [
        {
            "loop_id": loop_id,
            "window_start": start + k * WINDOW,
            "window_end": start + (k + 1) * WINDOW,
            "source": "agg_1m",
            "samples": 0,
            "status": status,
            "dq_completeness": completeness,
        }
        for loop_id, k, status, completeness in [
            ("LATE-1", 0, "offline", None),
            ("LATE-1", 1, "good", 1.0),
            ("LATE-2", 0, "not_assessed", 0.4),
        ]
    ]
    minutes = [
        {
            "loop_id": "LATE-1",
            "bucket_start": start + timedelta(minutes=m),
            "pv_count": 60 if m % 5 else 0,
        }
        for m in range(15)
    ]
    async with sessions() as session, session.begin():
        await upsert_rows(session, KpiResult.__table__, kpis, ["loop_id", "window_start"])  # type: ignore[arg-type]
        await upsert_rows(session, Agg1m.__table__, minutes, ["loop_id", "bucket_start"])  # type: ignore[arg-type]
    async with sessions() as session:
        incomplete = await KpiWriteRepository(session).incomplete_windows(
            ["LATE-1", "LATE-2"], start
        )
        counts = await AggregateRepository(session).minutes_with_data(
            ["LATE-1", "LATE-2"], start, start + WINDOW
        )
    assert incomplete == [("LATE-1", start, None), ("LATE-2", start, 0.4)]
    assert counts == {"LATE-1": 12}  # minutes with PV samples only
