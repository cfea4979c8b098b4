"""Work item and audit repositories on PostgreSQL and SQLite: items by loop, assignee and
state; audit entries filtered and paged; the audit trail refuses UPDATE and DELETE."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import DiagnosticResult, KpiResult
from clpm_shared.db.repositories import LoopRepository
from clpm_shared.db.repositories.audit import AuditChange, AuditFilter, AuditRepository
from clpm_shared.db.repositories.diagnostics_read import DiagnosticReadRepository
from clpm_shared.db.repositories.loop_overview import LoopOverviewRepository
from clpm_shared.db.repositories.work_items import WorkItemRepository, work_item_fields
from clpm_shared.work_items import LoopCondition, findings_by_category
from tests.harness.servers import migrate


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
    async with factory() as session:
        loops = LoopRepository(session)
        for loop_id in ("FIC-101", "TIC-205", "GONE-1"):
            await loops.save(loop_id, {"name": loop_id})
        await loops.soft_delete("GONE-1")
        await session.commit()
    yield factory
    await engine.dispose()


async def test_work_items_are_listed_per_loop_newest_first_with_state_and_kind_filters(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        repository = WorkItemRepository(session)
        first = await repository.create(
            "engineer", {"loop_id": "FIC-101", "kind": "annotation", "text": "valve repacked"}
        )
        second = await repository.create(
            "engineer",
            {
                "loop_id": "FIC-101",
                "kind": "assignment",
                "assignee": "alice",
                "due_date": date(2025, 4, 1),
                "work_order": "WO-1",
            },
        )
        await repository.update(second, "admin", {"state": "done"})
        await session.commit()
        items, total = await repository.for_loop("FIC-101")
        assert total == 2
        assert [item.id for item in items] == [second.id, first.id]
        done, _ = await repository.for_loop("FIC-101", states=["done"])
        assert [item.id for item in done] == [second.id]
        assert done[0].updated_by == "admin"
        assert done[0].created_by == "engineer"
        assert done[0].due_date == date(2025, 4, 1)
        notes, _ = await repository.for_loop("FIC-101", kind="annotation")
        assert [item.text for item in notes] == ["valve repacked"]
        assert (await repository.for_loop("TIC-205")) == ([], 0)


async def test_my_items_are_the_open_ones_assigned_to_me_on_loops_that_exist(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        repository = WorkItemRepository(session)
        mine = await repository.create(
            "engineer", {"loop_id": "TIC-205", "kind": "assignment", "assignee": "bob"}
        )
        closed = await repository.create(
            "engineer",
            {"loop_id": "TIC-205", "kind": "assignment", "assignee": "bob", "state": "wont_fix"},
        )
        await repository.create(
            "engineer", {"loop_id": "GONE-1", "kind": "assignment", "assignee": "bob"}
        )
        await repository.create(
            "engineer", {"loop_id": "TIC-205", "kind": "assignment", "assignee": "carol"}
        )
        await session.commit()
        items, total = await repository.assigned_to("bob")
        assert (total, [item.id for item in items]) == (1, [mine.id])
        every, total = await repository.assigned_to("bob", states=None)
        assert total == 2
        assert {item.id for item in every} == {mine.id, closed.id}
        open_loops = {item.loop_id for item in await repository.open_items()}
        assert "GONE-1" not in open_loops
        assert "TIC-205" in open_loops


async def test_audit_entries_are_filtered_and_paged_newest_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        audit = AuditRepository(session)
        await audit.record("alice", "update", "loop", "A-1", {"name": "a"}, {"name": "b"})
        await audit.record_many(
            "bob",
            [AuditChange("import", "loop", f"B-{i}", None, {"name": f"b{i}"}) for i in range(5)],
        )
        await session.commit()
        entries, total = await audit.list_page(AuditFilter(actor="alice"))
        assert total == 1
        assert (entries[0].before, entries[0].after) == ({"name": "a"}, {"name": "b"})
        page, total = await audit.list_page(AuditFilter(action="import"), offset=1, limit=2)
        assert total == 5
        assert [e.entity_id for e in page] == ["B-3", "B-2"]
        assert (await audit.list_page(AuditFilter(entity_id="B-4")))[1] == 1
        later = datetime.now(UTC) + timedelta(minutes=1)
        assert (await audit.list_page(AuditFilter(start=later)))[1] == 0
        assert (await audit.list_page(AuditFilter(end=later, actor="bob")))[1] == 5


async def test_audit_documents_hold_dates_as_iso_text(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        item = await WorkItemRepository(session).create(
            "engineer",
            {
                "loop_id": "FIC-101",
                "kind": "assignment",
                "assignee": "x",
                "due_date": date(2025, 5, 6),
            },
        )
        audit = AuditRepository(session)
        await audit.record(
            "engineer", "create", "work_item", str(item.id), None, work_item_fields(item)
        )
        await session.commit()
        entries, _ = await audit.list_page(AuditFilter(entity="work_item", entity_id=str(item.id)))
        after = entries[0].after
        assert after is not None
        assert after["due_date"] == "2025-05-06"
        assert after["created_at"].startswith(str(item.created_at.year))


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"]
)
async def test_the_audit_trail_refuses_update_and_delete(
    sessions: async_sessionmaker[AsyncSession], statement: str
) -> None:
    async with sessions() as session:
        entity_id = f"Z-{statement.split(maxsplit=1)[0]}"
        await AuditRepository(session).record("alice", "create", "loop", entity_id, None, {"a": 1})
        await session.commit()
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text(statement))
        await session.rollback()
        entries, _ = await AuditRepository(session).list_page(AuditFilter(entity_id=entity_id))
        assert [(e.actor, e.after) for e in entries] == [("alice", {"a": 1})]


T0 = datetime(2025, 3, 4, 6, 0, tzinfo=UTC)
W = timedelta(minutes=15)


def _finding(
    loop_id: str, start: datetime, category: str, severity: float, created: datetime
) -> DiagnosticResult:
    return DiagnosticResult(
        loop_id=loop_id,
        window_start=start,
        window_end=start + W,
        category=category,
        severity=severity,
        confidence=0.9,
        evidence={},
        recommendation="",
        trigger="kpi_cycle",
        created_at=created,
    )


async def test_conditions_of_undated_acknowledgements_are_read_in_one_pass_as_per_loop(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """ACK-1: the newest window is fair/oscillation, but an on-demand run of the older window
    was stored last, so its findings count; ACK-2: no window, no finding (offline); ACK-3:
    two diagnoses stored at the same moment, the newer window's counts; ACK-4 only a closed
    and a dated acknowledgement, GONE-1 deleted: both left out."""
    async with sessions() as session:
        loops = LoopRepository(session)
        for loop_id in ("ACK-1", "ACK-2", "ACK-3", "ACK-4"):
            await loops.save(loop_id, {"name": loop_id})
        session.add_all(
            [
                KpiResult(loop_id="ACK-1", window_start=T0, window_end=T0 + W, status="poor",
                          health_score=30.0, main_problem="stiction"),
                KpiResult(loop_id="ACK-1", window_start=T0 + W, window_end=T0 + 2 * W,
                          status="fair", health_score=70.0, main_problem="oscillation"),
                KpiResult(loop_id="ACK-3", window_start=T0, window_end=T0 + W, status="good",
                          health_score=90.0, main_problem=None),
                _finding("ACK-1", T0 + W, "oscillation", 0.4, T0 + 2 * W),
                _finding("ACK-1", T0, "stiction", 0.9, T0 + 3 * W),
                _finding("ACK-1", T0, "saturation", 0.3, T0 + 3 * W),
                _finding("ACK-3", T0, "oscillation", 0.5, T0 + 2 * W),
                _finding("ACK-3", T0 + W, "stiction", 0.6, T0 + 2 * W),
            ]
        )  # fmt: skip
        items = WorkItemRepository(session)
        undated = {"kind": "acknowledgement", "state": "open"}
        await items.create("e", {"loop_id": "ACK-1", **undated})
        await items.create("e", {"loop_id": "ACK-1", "category": "stiction", **undated})
        await items.create("e", {"loop_id": "ACK-2", **undated, "state": "in_progress"})
        await items.create("e", {"loop_id": "ACK-3", "category": "stiction", **undated})
        await items.create("e", {"loop_id": "ACK-4", **undated, "state": "done"})
        await items.create(
            "e", {"loop_id": "ACK-4", **undated, "acknowledged_until": T0 + timedelta(days=9)}
        )
        await items.create("e", {"loop_id": "GONE-1", **undated})
        await session.commit()
        conditions = await items.acknowledged_conditions()
        assert conditions == {
            "ACK-1": LoopCondition("fair", "oscillation", {"stiction": 0.9, "saturation": 0.3}),
            "ACK-2": LoopCondition("offline", None, {}),
            "ACK-3": LoopCondition("good", None, {"stiction": 0.6}),
        }
        # the same as reading each loop on its own (what the fleet view did before)
        for loop_id, condition in conditions.items():
            overview = await LoopOverviewRepository(session).get(loop_id)
            assert overview is not None
            latest = await DiagnosticReadRepository(session).latest(loop_id)
            assert condition == LoopCondition(
                overview.status,
                overview.main_problem,
                findings_by_category([(f.category, f.severity) for f in latest]),
            )
        acknowledgements = await items.open_acknowledgements()
        assert [(a.loop_id, a.category, a.state) for a in acknowledgements] == [
            ("ACK-1", None, "open"),
            ("ACK-1", "stiction", "open"),
            ("ACK-2", None, "in_progress"),
            ("ACK-3", "stiction", "open"),
            ("ACK-4", None, "open"),
        ]
