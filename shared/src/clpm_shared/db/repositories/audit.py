"""The audit trail: all SQL on ``audit_log``. Entries are only ever added (the table's
triggers refuse UPDATE and DELETE), so this repository has no method that changes one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import AuditEntry


@dataclass(frozen=True)
class AuditChange:
    """One change to record with :meth:`AuditRepository.record_many`."""

    action: str
    entity: str
    entity_id: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list; None means any. ``start`` inclusive, ``end`` exclusive."""

    actor: str | None = None
    action: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        for column, value in (
            (AuditEntry.actor, self.actor),
            (AuditEntry.action, self.action),
            (AuditEntry.entity, self.entity),
            (AuditEntry.entity_id, self.entity_id),
        ):
            if value is not None:
                found.append(column == value)
        if self.start is not None:
            found.append(AuditEntry.at >= self.start)
        if self.end is not None:
            found.append(AuditEntry.at < self.end)
        return found


def _document(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A JSON document of ``value`` (dates as ISO-8601 text, enums as their values)."""
    if value is None:
        return None
    document: dict[str, Any] = to_jsonable_python(dict(value))
    return document


class AuditRepository:
    """Appends to and reads the audit trail, in the caller's transaction: an entry is stored
    exactly when the change it describes is committed."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        actor: str,
        action: str,
        entity: str,
        entity_id: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        """Add one entry: ``actor`` did ``action`` to ``entity`` ``entity_id``, which was
        ``before`` (None: did not exist) and became ``after`` (None: no longer exists)."""
        await self.record_many(actor, [AuditChange(action, entity, entity_id, before, after)])

    async def record_many(self, actor: str, changes: Sequence[AuditChange]) -> None:
        """Add one entry per change, all at the same time (one statement, executemany)."""
        if not changes:
            return
        at = datetime.now(UTC)
        rows = [
            {
                "at": at,
                "actor": actor,
                "action": change.action,
                "entity": change.entity,
                "entity_id": change.entity_id,
                "before": _document(change.before),
                "after": _document(change.after),
            }
            for change in changes
        ]
        await self.session.execute(insert(AuditEntry), rows)

    async def list_page(
        self, where: AuditFilter, *, offset: int = 0, limit: int = 100
    ) -> tuple[Sequence[AuditEntry], int]:
        """Matching entries, newest first, and how many match in all."""
        conditions = where.conditions()
        total = (
            await self.session.execute(
                select(func.count()).select_from(AuditEntry).where(*conditions)
            )
        ).scalar_one()
        rows = await self.session.execute(
            select(AuditEntry)
            .where(*conditions)
            .order_by(AuditEntry.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows.scalars()), int(total)
