"""Fleet reports: the reads a report is assembled from, report subscriptions, and the
scheduled deliveries (an outbox of report e-mails).

Deliveries follow the alert outbox (:mod:`clpm_shared.db.repositories.notifications`): one row
per subscription and schedule slot, inserted with ``ON CONFLICT DO NOTHING`` on
``(subscription_id, due_at)`` so a slot is queued once whatever the number of workers and
restarts; claimed under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), marked sent only
while the lease is the sender's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, literal, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import (
    KpiResult,
    Loop,
    LoopAssessment,
    LoopConfig,
    ReportDelivery,
    ReportSubscription,
    WorkItem,
)
from clpm_shared.db.repositories.kpi_trends import TREND_KPIS
from clpm_shared.db.repositories.loop_overview import DEFAULT_CRITICALITY
from clpm_shared.db.repositories.notifications import failed_attempt
from clpm_shared.db.repositories.upsert import insert_missing
from clpm_shared.reports.content import (
    CLOSED_STATES,
    OPEN_STATES,
    AssessedLoop,
    WorkItemEntry,
)


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _scope(unit: str | None, area: str | None) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [Loop.deleted_at.is_(None)]
    if unit is not None:
        conditions.append(Loop.unit == unit)
    if area is not None:
        conditions.append(Loop.area == area)
    return and_(*conditions)


class ReportDataRepository:
    """What a fleet report reads: ratings, KPI means and work items of a scope."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def assessed_loops(
        self, period: str, unit: str | None = None, area: str | None = None
    ) -> list[AssessedLoop]:
        """Every loop of the scope with its stored rating over ``period`` (one query; loops
        never rated come with status ``offline``)."""
        statement = (
            select(
                Loop.loop_id,
                Loop.name,
                Loop.unit,
                Loop.area,
                func.coalesce(LoopConfig.criticality, literal(DEFAULT_CRITICALITY)),
                func.coalesce(LoopAssessment.status, literal("offline")),
                LoopAssessment.health_score,
                LoopAssessment.main_problem,
                LoopAssessment.previous_status,
                LoopAssessment.previous_health_score,
                LoopAssessment.reason,
                LoopAssessment.findings,
                LoopAssessment.period_start,
                LoopAssessment.period_end,
            )
            .select_from(Loop)
            .outerjoin(
                LoopAssessment,
                and_(LoopAssessment.loop_id == Loop.loop_id, LoopAssessment.period == period),
            )
            .outerjoin(LoopConfig, LoopConfig.loop_id == Loop.loop_id)
            .where(_scope(unit, area))
            .order_by(Loop.loop_id)
        )
        return [
            AssessedLoop(
                loop_id=row[0],
                name=row[1] or None,
                unit=row[2],
                area=row[3],
                criticality=int(row[4]),
                status=str(row[5]),
                health_score=None if row[6] is None else float(row[6]),
                main_problem=row[7],
                previous_status=row[8],
                previous_health_score=None if row[9] is None else float(row[9]),
                reason=row[10],
                findings=tuple(row[11] or ()),
                period_start=_aware(row[12]),
                period_end=_aware(row[13]),
            )
            for row in await self.session.execute(statement)
        ]

    async def kpi_means(
        self,
        previous_start: datetime,
        start: datetime,
        end: datetime,
        unit: str | None = None,
        area: str | None = None,
    ) -> tuple[dict[str, float | None], dict[str, float | None]]:
        """Fleet means of the trend KPIs over the windows starting in ``[start, end)`` and in
        ``[previous_start, start)`` (NULL KPIs skipped): one ``GROUP BY`` over both."""
        side = case((KpiResult.window_start >= start, 1), else_=0).label("current")
        statement = (
            select(side, *(func.avg(getattr(KpiResult, name)) for name in TREND_KPIS))
            .select_from(KpiResult)
            .where(KpiResult.window_start >= previous_start, KpiResult.window_start < end)
            .group_by(side)
        )
        if unit is not None or area is not None:
            statement = statement.join(Loop, Loop.loop_id == KpiResult.loop_id).where(
                _scope(unit, area)
            )
        found: dict[int, dict[str, float | None]] = {}
        for row in await self.session.execute(statement):
            found[int(row[0])] = {
                name: None if value is None else float(value)
                for name, value in zip(TREND_KPIS, row[1:], strict=True)
            }
        empty: dict[str, float | None] = dict.fromkeys(TREND_KPIS)
        return found.get(1, dict(empty)), found.get(0, dict(empty))

    async def work_items(
        self,
        start: datetime,
        end: datetime,
        unit: str | None = None,
        area: str | None = None,
    ) -> list[WorkItemEntry]:
        """Items created or closed in ``[start, end)``, or open, on loops of the scope."""
        touched = or_(
            and_(WorkItem.created_at >= start, WorkItem.created_at < end),
            and_(
                WorkItem.state.in_(CLOSED_STATES),
                WorkItem.updated_at >= start,
                WorkItem.updated_at < end,
            ),
            WorkItem.state.in_(OPEN_STATES),
        )
        statement = (
            select(WorkItem)
            .join(Loop, Loop.loop_id == WorkItem.loop_id)
            .where(touched, _scope(unit, area))
            .order_by(WorkItem.id)
        )
        return [
            WorkItemEntry(
                item_id=item.id,
                loop_id=item.loop_id,
                kind=item.kind,
                state=item.state,
                category=item.category,
                assignee=item.assignee,
                due_date=item.due_date,
                work_order=item.work_order,
                text=item.text,
                created_by=item.created_by,
                created_at=_aware(item.created_at) or start,
                updated_at=_aware(item.updated_at) or start,
            )
            for item in (await self.session.execute(statement)).scalars()
        ]


class ReportSubscriptionRepository:
    """A user's report subscriptions (all SQL on ``report_subscriptions``)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_user(self, username: str) -> list[ReportSubscription]:
        rows = await self.session.execute(
            select(ReportSubscription)
            .where(ReportSubscription.username == username)
            .order_by(ReportSubscription.id)
        )
        return list(rows.scalars())

    async def create(self, username: str, values: dict[str, Any]) -> ReportSubscription:
        row = ReportSubscription(username=username, enabled=True, **values)
        self.session.add(row)
        await self.session.flush()
        await self.session.refresh(row)
        return row

    async def delete(self, username: str, subscription_id: int) -> bool:
        """Delete one of the user's subscriptions; False when it is not theirs or absent."""
        result = await self.session.execute(
            delete(ReportSubscription).where(
                ReportSubscription.id == subscription_id,
                ReportSubscription.username == username,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def enabled(self) -> list[ReportSubscription]:
        rows = await self.session.execute(
            select(ReportSubscription)
            .where(ReportSubscription.enabled.is_(True))
            .order_by(ReportSubscription.id)
        )
        return list(rows.scalars())


@dataclass(frozen=True)
class ClaimedDelivery:
    """A report e-mail claimed for sending, with what its subscription asks for."""

    delivery_id: int
    due_at: datetime
    attempts: int
    subscription_id: int
    email: str
    period: str
    format: str
    unit: str | None
    area: str | None


class ReportDeliveryRepository:
    """All SQL on ``report_deliveries``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def queue(self, slots: Sequence[tuple[int, datetime]], now: datetime) -> int:
        """Queue ``(subscription_id, due_at)`` slots not queued before; returns how many sent."""
        table: Any = ReportDelivery.__table__
        rows = [
            {
                "subscription_id": subscription_id,
                "due_at": due_at,
                "attempts": 0,
                "next_attempt_at": now,
            }
            for subscription_id, due_at in slots
        ]
        return await insert_missing(self.session, table, rows, ("subscription_id", "due_at"))

    async def claim(
        self, sender: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[ClaimedDelivery]:
        """Claim up to ``limit`` due deliveries under a lease (the caller commits at once)."""
        due = (
            select(ReportDelivery.id)
            .where(
                ReportDelivery.sent_at.is_(None),
                ReportDelivery.gave_up_at.is_(None),
                ReportDelivery.next_attempt_at <= now,
                or_(
                    ReportDelivery.claimed_until.is_(None),
                    ReportDelivery.claimed_until < now,
                ),
            )
            .order_by(ReportDelivery.id)
            .limit(limit)
        )
        bind = self.session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        claimed = await self.session.execute(
            update(ReportDelivery)
            .where(ReportDelivery.id.in_(due.scalar_subquery()))
            .values(claimed_by=sender, claimed_until=lease_until)
            .returning(ReportDelivery.id)
            .execution_options(synchronize_session=False)
        )
        ids = [row[0] for row in claimed]
        if not ids:
            return []
        rows = await self.session.execute(
            select(
                ReportDelivery.id,
                ReportDelivery.due_at,
                ReportDelivery.attempts,
                ReportSubscription.id,
                ReportSubscription.email,
                ReportSubscription.period,
                ReportSubscription.format,
                ReportSubscription.unit,
                ReportSubscription.area,
            )
            .join(ReportSubscription, ReportSubscription.id == ReportDelivery.subscription_id)
            .where(ReportDelivery.id.in_(ids))
            .order_by(ReportDelivery.id)
        )
        return [
            ClaimedDelivery(row[0], _aware(row[1]) or now, int(row[2]), *row[3:]) for row in rows
        ]

    def _own(self, delivery_id: int, sender: str) -> ColumnElement[bool]:
        return and_(
            ReportDelivery.id == delivery_id,
            ReportDelivery.claimed_by == sender,
            ReportDelivery.sent_at.is_(None),
        )

    async def mark_sent(
        self,
        delivery_id: int,
        sender: str,
        now: datetime,
        period_start: datetime,
        period_end: datetime,
    ) -> bool:
        """Record the delivery; False when the lease was no longer this sender's."""
        result = await self.session.execute(
            update(ReportDelivery)
            .where(self._own(delivery_id, sender))
            .values(
                sent_at=now,
                attempts=ReportDelivery.attempts + 1,
                claimed_until=None,
                last_error=None,
                period_start=period_start,
                period_end=period_end,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_failed(
        self,
        delivery_id: int,
        sender: str,
        error: str,
        retry_at: datetime | None,
        now: datetime,
    ) -> None:
        """A failed attempt: retried at ``retry_at``, or given up when it is None."""
        values = failed_attempt(ReportDelivery, error, retry_at, now)
        await self.session.execute(
            update(ReportDelivery)
            .where(self._own(delivery_id, sender))
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def of_subscription(self, subscription_id: int) -> list[ReportDelivery]:
        rows = await self.session.execute(
            select(ReportDelivery)
            .where(ReportDelivery.subscription_id == subscription_id)
            .order_by(ReportDelivery.id)
        )
        return list(rows.scalars())

    async def last_sent(self, subscription_ids: Sequence[int]) -> dict[int, datetime]:
        """When each subscription's last report went out."""
        if not subscription_ids:
            return {}
        rows = await self.session.execute(
            select(ReportDelivery.subscription_id, func.max(ReportDelivery.sent_at))
            .where(
                ReportDelivery.subscription_id.in_(list(subscription_ids)),
                ReportDelivery.sent_at.is_not(None),
                true(),
            )
            .group_by(ReportDelivery.subscription_id)
        )
        return {sid: moment for sid, at in rows.all() if (moment := _aware(at)) is not None}
