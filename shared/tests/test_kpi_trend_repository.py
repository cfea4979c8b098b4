"""Trend buckets and before/after means of ``kpi_results`` on both dialects (known answers).

Loop TR-1 (criticality 4, unit U1): Sunday 2025-01-05 23:00 health 40 (poor); Monday
2025-01-06 01:00 health 60 (fair) and 01:30 health 80 (good); Monday 01:45 offline without
a health. Loop TR-2 (no config: criticality 3, unit U2): Monday 01:00 health 20 (poor).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import KpiResult, Loop, LoopConfig
from clpm_shared.db.repositories.kpi_trends import KpiTrendRepository
from tests.harness.servers import migrate

SUNDAY = datetime(2025, 1, 5, 23, 0, tzinfo=UTC)
MONDAY = datetime(2025, 1, 6, tzinfo=UTC)
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 1, 8, tzinfo=UTC)


def _row(loop_id: str, start: datetime, health: float | None, status: str) -> KpiResult:
    return KpiResult(
        loop_id=loop_id,
        window_start=start,
        window_end=start + timedelta(minutes=15),
        health_score=health,
        status=status,
    )


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
    factory = create_session_factory(engine)
    async with factory() as session, session.begin():
        session.add_all([Loop(loop_id="TR-1", unit="U1"), Loop(loop_id="TR-2", unit="U2")])
        await session.flush()
        session.add(LoopConfig(loop_id="TR-1", criticality=4))
        session.add_all(
            [
                _row("TR-1", SUNDAY, 40.0, "poor"),
                _row("TR-1", MONDAY + timedelta(hours=1), 60.0, "fair"),
                _row("TR-1", MONDAY + timedelta(hours=1, minutes=30), 80.0, "good"),
                _row("TR-1", MONDAY + timedelta(hours=1, minutes=45), None, "offline"),
                _row("TR-2", MONDAY + timedelta(hours=1), 20.0, "poor"),
            ]
        )
    yield factory
    await engine.dispose()


async def test_buckets_are_utc_hours_days_and_monday_weeks(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        repository = KpiTrendRepository(session)
        hours = await repository.loop_trend("TR-1", START, END, "hour")
        days = await repository.loop_trend("TR-1", START, END, "day")
        weeks = await repository.loop_trend("TR-1", START, END, "week")
    assert [b.bucket_start for b in hours] == [SUNDAY, MONDAY + timedelta(hours=1)]
    assert hours[1].windows == 3
    assert hours[1].means["health_score"] == pytest.approx(70.0)
    assert hours[1].status_shares["offline"] == pytest.approx(1 / 3)
    assert [b.bucket_start for b in days] == [SUNDAY.replace(hour=0), MONDAY]
    # the Sunday belongs to the week of Monday 2024-12-30
    assert [b.bucket_start for b in weeks] == [datetime(2024, 12, 30, tzinfo=UTC), MONDAY]
    assert weeks[0].means["health_score"] == pytest.approx(40.0)
    assert weeks[0].status_shares["poor"] == pytest.approx(1.0)


async def test_fleet_health_is_criticality_weighted_per_group(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        repository = KpiTrendRepository(session)
        plant = await repository.fleet_trend(START, END, "day", "plant")
        units = await repository.fleet_trend(START, END, "day", "unit")
    monday = [b for b in plant if b.bucket_start == MONDAY]
    assert len(monday) == 1
    # (4 x 60 + 4 x 80 + 3 x 20) / (4 + 4 + 3); the offline window has no health
    assert monday[0].means["health_score"] == pytest.approx(620 / 11)
    assert monday[0].loops == 2
    assert monday[0].windows == 4
    assert [(b.group, b.bucket_start) for b in units] == [
        ("U1", SUNDAY.replace(hour=0)),
        ("U1", MONDAY),
        ("U2", MONDAY),
    ]
    assert units[1].means["health_score"] == pytest.approx(70.0)


async def test_compare_splits_at_the_moment(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        before, after = await KpiTrendRepository(session).compare(
            "TR-1", MONDAY, MONDAY - timedelta(days=1), MONDAY + timedelta(days=1)
        )
        empty, _ = await KpiTrendRepository(session).compare(
            "TR-2", MONDAY, MONDAY - timedelta(days=1), MONDAY + timedelta(days=1)
        )
    assert (before.windows, after.windows) == (1, 3)
    assert before.means["health_score"] == pytest.approx(40.0)
    assert after.means["health_score"] == pytest.approx(70.0)
    assert after.counts["health_score"] == 2
    assert empty.windows == 0
    assert empty.means["health_score"] is None
