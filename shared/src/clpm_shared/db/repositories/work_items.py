"""Work items on loops (acknowledgements, annotations, assignments): all SQL on ``work_items``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from clpm_shared.db.models import DiagnosticResult, KpiResult, Loop, WorkItem
from clpm_shared.work_items import (
    OPEN_STATES,
    Acknowledgement,
    LoopCondition,
    WorkItemKind,
    findings_by_category,
)

WORK_ITEM_FIELDS = tuple(column.key for column in WorkItem.__table__.columns)


def work_item_fields(item: WorkItem) -> dict[str, Any]:
    """Every column of ``item`` (what the audit trail records before and after a change)."""
    return {name: getattr(item, name) for name in WORK_ITEM_FIELDS}


class WorkItemRepository:
    """Creates, changes and lists work items; items are never deleted (an item that no longer
    applies is closed: ``done`` or ``wont_fix``)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, item_id: int) -> WorkItem | None:
        statement = select(WorkItem).where(WorkItem.id == item_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def create(self, actor: str, values: dict[str, Any]) -> WorkItem:
        now = datetime.now(UTC)
        item = WorkItem(
            **values, created_by=actor, created_at=now, updated_by=actor, updated_at=now
        )
        self.session.add(item)
        await self.session.flush()
        return item

    async def update(self, item: WorkItem, actor: str, values: dict[str, Any]) -> WorkItem:
        for name, value in values.items():
            setattr(item, name, value)
        item.updated_by = actor
        item.updated_at = datetime.now(UTC)
        await self.session.flush()
        return item

    async def _page(
        self, conditions: list[ColumnElement[bool]], offset: int, limit: int
    ) -> tuple[Sequence[WorkItem], int]:
        total = (
            await self.session.execute(
                select(func.count()).select_from(WorkItem).where(*conditions)
            )
        ).scalar_one()
        rows = await self.session.execute(
            select(WorkItem)
            .where(*conditions)
            .order_by(WorkItem.created_at.desc(), WorkItem.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows.scalars()), int(total)

    async def for_loop(
        self,
        loop_id: str,
        *,
        states: Iterable[str] | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[Sequence[WorkItem], int]:
        """A loop's items, newest first (its history), and how many match in all."""
        conditions: list[ColumnElement[bool]] = [WorkItem.loop_id == loop_id]
        if states is not None:
            conditions.append(WorkItem.state.in_(list(states)))
        if kind is not None:
            conditions.append(WorkItem.kind == kind)
        return await self._page(conditions, offset, limit)

    async def assigned_to(
        self,
        assignee: str,
        *,
        states: Iterable[str] | None = OPEN_STATES,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[Sequence[WorkItem], int]:
        """Items assigned to ``assignee`` on loops that are not deleted, newest first."""
        conditions: list[ColumnElement[bool]] = [
            WorkItem.assignee == assignee,
            WorkItem.loop_id.in_(select(Loop.loop_id).where(Loop.deleted_at.is_(None))),
        ]
        if states is not None:
            conditions.append(WorkItem.state.in_(list(states)))
        return await self._page(conditions, offset, limit)

    async def open_items(self) -> Sequence[WorkItem]:
        """Every open or in-progress item on a loop that is not deleted (the fleet's view)."""
        rows = await self.session.execute(
            select(WorkItem)
            .join(Loop, Loop.loop_id == WorkItem.loop_id)
            .where(WorkItem.state.in_(OPEN_STATES), Loop.deleted_at.is_(None))
            .order_by(WorkItem.loop_id, WorkItem.id)
        )
        return list(rows.scalars())

    async def open_acknowledgements(self) -> list[Acknowledgement]:
        """Every open or in-progress acknowledgement on a loop that is not deleted."""
        rows = await self.session.execute(
            select(
                WorkItem.loop_id,
                WorkItem.category,
                WorkItem.state,
                WorkItem.acknowledged_until,
                WorkItem.acknowledged_state,
            )
            .join(Loop, Loop.loop_id == WorkItem.loop_id)
            .where(
                WorkItem.kind == WorkItemKind.ACKNOWLEDGEMENT.value,
                WorkItem.state.in_(OPEN_STATES),
                Loop.deleted_at.is_(None),
            )
            .order_by(WorkItem.id)
        )
        return [Acknowledgement(*row) for row in rows]

    async def acknowledged_conditions(self) -> dict[str, LoopCondition]:
        """The current condition of every loop (not deleted) with an open acknowledgement
        without a date, in two queries whatever their number: the latest KPI window's status
        (``offline`` without one) and main problem, and the findings of the loop's most
        recent diagnosis (the one stored last; on a tie the newer window), as
        ``LoopOverviewRepository.get`` and ``DiagnosticReadRepository.latest`` read them."""
        acknowledged = _undated_acknowledged()
        inner = aliased(KpiResult)
        newest = (
            select(func.max(inner.window_start))
            .where(inner.loop_id == Loop.loop_id)
            .correlate(Loop)
            .scalar_subquery()
        )
        heads = await self.session.execute(
            select(
                Loop.loop_id,
                func.coalesce(KpiResult.status, literal("offline")),
                KpiResult.main_problem,
            )
            .select_from(Loop)
            .outerjoin(
                KpiResult,
                and_(KpiResult.loop_id == Loop.loop_id, KpiResult.window_start == newest),
            )
            .where(Loop.deleted_at.is_(None), Loop.loop_id.in_(acknowledged))
        )
        ranked = (
            select(
                DiagnosticResult.loop_id,
                DiagnosticResult.window_start,
                DiagnosticResult.window_end,
                func.row_number()
                .over(
                    partition_by=DiagnosticResult.loop_id,
                    order_by=(
                        DiagnosticResult.created_at.desc(),
                        DiagnosticResult.window_start.desc(),
                    ),
                )
                .label("rank"),
            )
            .where(DiagnosticResult.loop_id.in_(acknowledged))
            .subquery()
        )
        found = await self.session.execute(
            select(DiagnosticResult.loop_id, DiagnosticResult.category, DiagnosticResult.severity)
            .join(
                ranked,
                and_(
                    ranked.c.loop_id == DiagnosticResult.loop_id,
                    ranked.c.window_start == DiagnosticResult.window_start,
                    ranked.c.window_end == DiagnosticResult.window_end,
                ),
            )
            .where(ranked.c.rank == 1)
        )
        findings: dict[str, list[tuple[str, float]]] = {}
        for loop_id, category, severity in found:
            findings.setdefault(loop_id, []).append((category, severity))
        return {
            loop_id: LoopCondition(
                status=str(status),
                main_problem=main_problem,
                findings=findings_by_category(findings.get(loop_id, [])),
            )
            for loop_id, status, main_problem in heads
        }


def _undated_acknowledged() -> Select[Any]:
    return select(WorkItem.loop_id).where(
        WorkItem.kind == WorkItemKind.ACKNOWLEDGEMENT.value,
        WorkItem.state.in_(OPEN_STATES),
        WorkItem.acknowledged_until.is_(None),
    )
