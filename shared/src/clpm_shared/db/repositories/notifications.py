"""The notification outbox (claim, mark sent, retry later) and the users' inboxes.

Claiming is one statement per batch: rows not sent, due, and not under another sender's
unexpired lease get this sender's name and a lease, and come back (``UPDATE ... WHERE id IN
(SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`` on PostgreSQL, so concurrent senders skip each
other's rows instead of waiting; SQLite serialises writers anyway). A sender that dies after
claiming leaves rows whose lease expires, and the next pass claims them again. Marking a row
sent checks that the lease is still this sender's, so a sender that outlived its lease cannot
mark a row another sender has claimed since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import InboxEntry, NotificationOutbox, ReportDelivery


def failed_attempt(
    model: type[NotificationOutbox] | type[ReportDelivery],
    error: str,
    retry_at: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """Column values of a failed delivery attempt of an outbox-like row (notifications, report
    deliveries): lease released, error kept, retried at ``retry_at`` or given up when None."""
    values: dict[str, Any] = {
        "attempts": model.attempts + 1,
        "claimed_until": None,
        "last_error": error[:2000],
    }
    if retry_at is None:
        values["gave_up_at"] = now
    else:
        values["next_attempt_at"] = retry_at
    return values


@dataclass(frozen=True)
class ClaimedNotification:
    """An outbox row claimed for sending."""

    outbox_id: int
    channel: str
    target: str
    subject: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int


class OutboxRepository:
    """All SQL on ``notification_outbox``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, sender: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[ClaimedNotification]:
        """Claim up to ``limit`` due rows, oldest first (the caller commits at once)."""
        due = (
            select(NotificationOutbox.id)
            .where(
                NotificationOutbox.sent_at.is_(None),
                NotificationOutbox.gave_up_at.is_(None),
                NotificationOutbox.next_attempt_at <= now,
                or_(
                    NotificationOutbox.claimed_until.is_(None),
                    NotificationOutbox.claimed_until < now,
                ),
            )
            .order_by(NotificationOutbox.id)
            .limit(limit)
        )
        bind = self.session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        rows = await self.session.execute(
            update(NotificationOutbox)
            .where(NotificationOutbox.id.in_(due.scalar_subquery()))
            .values(claimed_by=sender, claimed_until=lease_until)
            .returning(
                NotificationOutbox.id,
                NotificationOutbox.channel,
                NotificationOutbox.target,
                NotificationOutbox.subject,
                NotificationOutbox.payload,
                NotificationOutbox.idempotency_key,
                NotificationOutbox.attempts,
            )
            .execution_options(synchronize_session=False)
        )
        return sorted((ClaimedNotification(*row) for row in rows), key=lambda c: c.outbox_id)

    async def mark_sent(self, outbox_id: int, sender: str, now: datetime) -> bool:
        """Record the delivery; False when the lease was no longer this sender's."""
        result = await self.session.execute(
            update(NotificationOutbox)
            .where(
                NotificationOutbox.id == outbox_id,
                NotificationOutbox.claimed_by == sender,
                NotificationOutbox.sent_at.is_(None),
            )
            .values(
                sent_at=now,
                attempts=NotificationOutbox.attempts + 1,
                claimed_until=None,
                last_error=None,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_failed(
        self,
        outbox_id: int,
        sender: str,
        error: str,
        retry_at: datetime | None,
        now: datetime,
    ) -> None:
        """Record a failed attempt: retried at ``retry_at``, or given up when it is None."""
        values = failed_attempt(NotificationOutbox, error, retry_at, now)
        await self.session.execute(
            update(NotificationOutbox)
            .where(
                NotificationOutbox.id == outbox_id,
                NotificationOutbox.claimed_by == sender,
                NotificationOutbox.sent_at.is_(None),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def counts(self) -> dict[str, int]:
        """Rows per delivery state: pending, sent, gave_up."""
        rows = await self.session.execute(
            select(
                func.count().filter(NotificationOutbox.sent_at.is_not(None)),
                func.count().filter(NotificationOutbox.gave_up_at.is_not(None)),
                func.count().filter(
                    NotificationOutbox.sent_at.is_(None), NotificationOutbox.gave_up_at.is_(None)
                ),
            )
        )
        sent, gave_up, pending = rows.one()
        return {"sent": int(sent), "gave_up": int(gave_up), "pending": int(pending)}


class InboxRepository:
    """A user's inbox entries."""

    def __init__(self, session: AsyncSession, username: str) -> None:
        self.session = session
        self.username = username

    async def list(self, unread_only: bool, limit: int, offset: int) -> list[InboxEntry]:
        statement = select(InboxEntry).where(InboxEntry.username == self.username)
        if unread_only:
            statement = statement.where(InboxEntry.read_at.is_(None))
        rows = await self.session.execute(
            statement.order_by(InboxEntry.created_at.desc(), InboxEntry.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(rows.scalars())

    async def unread(self) -> int:
        count = await self.session.scalar(
            select(func.count()).where(
                InboxEntry.username == self.username, InboxEntry.read_at.is_(None)
            )
        )
        return int(count or 0)

    async def mark_read(self, entry_ids: Sequence[int] | None, now: datetime) -> int:
        """Mark the user's entries read (all when ``entry_ids`` is None); returns how many
        changed. Other users' entries are never touched."""
        condition = [InboxEntry.username == self.username, InboxEntry.read_at.is_(None)]
        if entry_ids is not None:
            condition.append(InboxEntry.id.in_(list(entry_ids)))
        result = await self.session.execute(
            update(InboxEntry)
            .where(and_(*condition))
            .values(read_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def get(self, entry_id: int) -> InboxEntry | None:
        row = await self.session.get(InboxEntry, entry_id)
        return row if row is not None and row.username == self.username else None
