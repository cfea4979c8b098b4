"""DiagnosticRepository on PostgreSQL: one row per category, a repeat replaces the window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.db import DiagnosticResult, create_engine, create_session_factory
from clpm_shared.db.repositories.diagnostics import DiagnosticRepository

START = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=15)


def _finding(category: str, severity: float, **evidence: object) -> dict[str, object]:
    return {
        "category": category,
        "severity": severity,
        "confidence": 0.8,
        "evidence": evidence,
        "recommendation": f"Fix the {category}.",
    }


@pytest.fixture(scope="module")
async def sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(postgres_url)
    yield create_session_factory(engine)
    await engine.dispose()


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> list[DiagnosticResult]:
    async with sessions() as session:
        statement = select(DiagnosticResult).order_by(DiagnosticResult.category)
        return list((await session.execute(statement)).scalars())


async def test_two_findings_of_one_category_share_a_row(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    findings = [
        _finding("sensor_fault", 0.9, fault="noise"),
        _finding("oscillation", 0.5, period_s=88.0),
        _finding("sensor_fault", 0.4, fault="spikes", spikes=5),
    ]
    async with sessions() as session, session.begin():
        written = await DiagnosticRepository(session).replace_window(
            "FIC-1", START, END, findings, "kpi_cycle"
        )
    assert written == 2
    oscillation, sensor = await _rows(sessions)
    assert sensor.severity == pytest.approx(0.9)
    assert sensor.evidence["fault"] == "noise"
    assert sensor.evidence["other_findings"][0]["evidence"] == {"fault": "spikes", "spikes": 5}
    assert oscillation.trigger == "kpi_cycle"
    assert oscillation.window_end == END


async def test_a_repeat_replaces_the_window_and_healthy_clears_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await DiagnosticRepository(session).replace_window(
            "FIC-1", START, END, [_finding("stiction", 0.7, stiction_index=0.8)]
        )
    assert [row.category for row in await _rows(sessions)] == ["stiction"]
    async with sessions() as session, session.begin():
        assert await DiagnosticRepository(session).replace_window("FIC-1", START, END, []) == 0
    assert await _rows(sessions) == []


async def test_an_unknown_trigger_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        with pytest.raises(ValueError, match=r"^trigger:"):
            await DiagnosticRepository(session).replace_window("FIC-1", START, END, [], "cron")
