"""Work leases: replicas of a worker share loops through ``work_leases`` rows with an expiry.

A lease is claimed with one atomic conditional upsert (``INSERT ... ON CONFLICT DO UPDATE ...
WHERE expires_at < now RETURNING``): of several replicas racing for a loop exactly one gets a
row back. A holder renews its leases every cycle; a dead holder's leases expire and are taken
over. Leases spread the work; they do not by themselves guarantee exactly-once writes (a slow
holder may outlive its lease), so writers also fence their commits (see ``watermarks``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import Loop, WorkLease

_BATCH = 1000


class WorkLeaseRepository:
    """All SQL on ``work_leases`` for one kind of work (e.g. ``"aggregation"``)."""

    def __init__(self, session: AsyncSession, work: str) -> None:
        self.session = session
        self.work = work

    async def held(self, owner: str, now: datetime) -> list[str]:
        """Loops whose lease ``owner`` holds and that have not expired, sorted."""
        rows = await self.session.execute(
            select(WorkLease.loop_id)
            .where(
                WorkLease.work == self.work,
                WorkLease.owner == owner,
                WorkLease.expires_at >= now,
            )
            .order_by(WorkLease.loop_id)
        )
        return list(rows.scalars())

    async def renew(self, owner: str, now: datetime, until: datetime) -> list[str]:
        """Extend the unexpired leases of ``owner`` to ``until``; returns their loops, sorted."""
        rows = await self.session.execute(
            update(WorkLease)
            .where(
                WorkLease.work == self.work,
                WorkLease.owner == owner,
                WorkLease.expires_at >= now,
            )
            .values(expires_at=until)
            .returning(WorkLease.loop_id)
            .execution_options(synchronize_session=False)
        )
        return sorted(rows.scalars())

    async def claimable(self, now: datetime, limit: int) -> list[str]:
        """Up to ``limit`` active loops without a valid lease (none, or expired), sorted."""
        statement = (
            select(Loop.loop_id)
            .outerjoin(
                WorkLease, and_(WorkLease.work == self.work, WorkLease.loop_id == Loop.loop_id)
            )
            .where(
                Loop.deleted_at.is_(None),
                or_(WorkLease.loop_id.is_(None), WorkLease.expires_at < now),
            )
            .order_by(Loop.loop_id)
            .limit(limit)
        )
        return list((await self.session.execute(statement)).scalars())

    async def claim(
        self, owner: str, loop_ids: Sequence[str], now: datetime, until: datetime
    ) -> list[str]:
        """Take the leases of ``loop_ids`` that are free or expired; returns those obtained."""
        connection = await self.session.connection()
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        got: list[str] = []
        wanted = sorted(set(loop_ids))
        for offset in range(0, len(wanted), _BATCH):
            rows = [
                {"work": self.work, "loop_id": loop_id, "owner": owner, "expires_at": until}
                for loop_id in wanted[offset : offset + _BATCH]
            ]
            statement = insert(WorkLease).values(rows)
            conditional = statement.on_conflict_do_update(
                index_elements=["work", "loop_id"],
                set_={
                    "owner": statement.excluded.owner,
                    "expires_at": statement.excluded.expires_at,
                },
                where=WorkLease.expires_at < now,
            )
            result = await self.session.execute(conditional.returning(WorkLease.loop_id))
            got.extend(result.scalars())
        return sorted(got)

    async def release(self, owner: str, loop_ids: Sequence[str] | None = None) -> int:
        """Give up leases of ``owner`` (all, or those of ``loop_ids``); returns how many."""
        condition = [WorkLease.work == self.work, WorkLease.owner == owner]
        if loop_ids is None:
            result = await self.session.execute(delete(WorkLease).where(*condition))
            return int(result.rowcount)  # type: ignore[attr-defined]
        released = 0
        wanted = sorted(set(loop_ids))
        for offset in range(0, len(wanted), _BATCH):
            batch = wanted[offset : offset + _BATCH]
            result = await self.session.execute(
                delete(WorkLease).where(*condition, WorkLease.loop_id.in_(batch))
            )
            released += int(result.rowcount)  # type: ignore[attr-defined]
        return released

    async def owners(self, now: datetime) -> dict[str, int]:
        """Number of unexpired leases per owner."""
        rows = await self.session.execute(
            select(WorkLease.owner, func.count())
            .where(WorkLease.work == self.work, WorkLease.expires_at >= now)
            .group_by(WorkLease.owner)
        )
        return {owner: int(count) for owner, count in rows}
