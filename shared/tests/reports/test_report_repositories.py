"""Report reads, subscriptions and deliveries on PostgreSQL and the embedded SQLite: the
report gathered from a rated fleet, subscriptions per user, a slot queued once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.repositories.reports import (
    ReportDeliveryRepository,
    ReportSubscriptionRepository,
)
from clpm_shared.reports.gather import gather_fleet_report
from tests.harness.report_fleet import WORST_LOOP, seed_report_fleet
from tests.harness.servers import migrate

END = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)


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
        await seed_report_fleet(session, END)
    yield factory
    await engine.dispose()


async def test_the_report_is_gathered_from_the_stored_ratings(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        report = await gather_fleet_report(
            session, "day", timedelta(hours=24), END + timedelta(hours=1)
        )
    assert (report.period_start, report.period_end) == (END - timedelta(hours=24), END)
    assert [row.loop_id for row in report.bad_actors] == [WORST_LOOP, "REP-2", "REP-3"]
    assert report.loops[-1].loop_id == "REP-4"
    assert report.loops[-1].status == "offline"
    # (5*40 + 1*30 + 3*90) / 9 and (5*70 + 1*35 + 3*60) / 9
    assert report.health_score == pytest.approx(55.56)
    assert report.previous_health_score == pytest.approx(62.78)
    assert [(c.loop_id, c.direction) for c in report.status_changes] == [
        ("REP-1", "worse"),
        ("REP-3", "better"),
    ]
    assert report.findings[0].worst_loop_id == WORST_LOOP
    kpis = {k.kpi: k for k in report.kpis}
    assert kpis["saturation"].current == pytest.approx(0.1)
    assert kpis["saturation"].previous == pytest.approx(0.05)
    # one window per loop and day: mean of 40, 30, 90 and of 70, 35, 60
    assert kpis["health_score"].current == pytest.approx(160 / 3)
    assert [p.health_score for p in report.trend] == [pytest.approx(55.56, abs=0.01)]
    assert len(report.previous_trend) == 1
    items = report.work_items
    assert (items.opened, items.closed, items.open_now) == (1, 1, 1)
    assert {i.work_order for i in items.items} == {"WO-7", None}


async def test_a_unit_scope_leaves_other_loops_out(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        report = await gather_fleet_report(
            session, "week", timedelta(days=7), END, unit="no-such-unit"
        )
    assert report.loops == ()
    assert report.scope == "unit no-such-unit"
    assert report.work_items.items == ()


async def test_subscriptions_belong_to_their_user(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        repository = ReportSubscriptionRepository(session)
        mine = await repository.create(
            "alice", {"email": "alice@example.com", "period": "day", "format": "pdf"}
        )
        await repository.create(
            "bob", {"email": "bob@example.com", "period": "week", "format": "both", "unit": "U1"}
        )
    async with sessions() as session, session.begin():
        repository = ReportSubscriptionRepository(session)
        assert [s.email for s in await repository.of_user("alice")] == ["alice@example.com"]
        assert not await repository.delete("bob", mine.id)
        assert await repository.delete("alice", mine.id)
        assert await repository.of_user("alice") == []
        assert [s.username for s in await repository.enabled()] == ["bob"]


async def test_a_slot_is_queued_once_and_claimed_by_one_sender(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = END + timedelta(hours=1)
    async with sessions() as session, session.begin():
        subscription = await ReportSubscriptionRepository(session).create(
            "carol", {"email": "carol@example.com", "period": "day", "format": "xlsx"}
        )
        deliveries = ReportDeliveryRepository(session)
        await deliveries.queue([(subscription.id, END)], now)
        await deliveries.queue([(subscription.id, END)], now)
    async with sessions() as session, session.begin():
        rows = await ReportDeliveryRepository(session).of_subscription(subscription.id)
    assert len(rows) == 1
    async with sessions() as session, session.begin():
        first = await ReportDeliveryRepository(session).claim(
            "a", now, now + timedelta(minutes=5), 10
        )
    async with sessions() as session, session.begin():
        second = await ReportDeliveryRepository(session).claim(
            "b", now, now + timedelta(minutes=5), 10
        )
    assert [c.email for c in first] == ["carol@example.com"]
    assert first[0].format == "xlsx"
    assert second == []
    async with sessions() as session, session.begin():
        deliveries = ReportDeliveryRepository(session)
        assert not await deliveries.mark_sent(first[0].delivery_id, "b", now, END, END)
        assert await deliveries.mark_sent(
            first[0].delivery_id, "a", now, END - timedelta(hours=24), END
        )
    async with sessions() as session:
        sent = await ReportDeliveryRepository(session).last_sent([subscription.id])
    assert sent == {subscription.id: now}
