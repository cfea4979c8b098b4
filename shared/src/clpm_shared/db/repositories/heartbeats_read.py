"""Reads of ``worker_heartbeats``: when a worker service last showed a sign of life."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import WorkerHeartbeat


class HeartbeatReadRepository:
    """Read-only queries of ``worker_heartbeats`` (written by the workers every cycle)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def last_seen(self, service: str, instance_prefix: str | None = None) -> datetime | None:
        """Newest ``last_seen`` over the service's instances; None when there is no row.

        ``instance_prefix`` keeps only instances whose ``instance_id`` starts with it (taken
        literally: ``%`` and ``_`` are not wildcards), e.g. one container's host name.
        """
        statement = select(func.max(WorkerHeartbeat.last_seen)).where(
            WorkerHeartbeat.service == service
        )
        if instance_prefix:
            statement = statement.where(
                WorkerHeartbeat.instance_id.startswith(instance_prefix, autoescape=True)
            )
        value: datetime | None = (await self.session.execute(statement)).scalar_one_or_none()
        return value
