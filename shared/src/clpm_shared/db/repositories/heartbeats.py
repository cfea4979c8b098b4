"""Worker heartbeats: each worker instance's last sign of life and cycle statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import WorkerHeartbeat
from clpm_shared.db.repositories.upsert import upsert_rows

HISTORY_RUN = "history_run"
"""Key of a heartbeat's statistics that is true while the instance works through history (the
kpi-worker's ``run-once`` backfill): other services defer their heavy scheduled work meanwhile."""


class HeartbeatRepository:
    """Writes of ``worker_heartbeats`` and the list of live instances of one service."""

    def __init__(self, session: AsyncSession, service: str) -> None:
        self.session = session
        self.service = service

    async def beat(self, instance_id: str, now: datetime, stats: dict[str, Any]) -> None:
        """Record that ``instance_id`` is alive at ``now`` with its latest statistics."""
        row = {
            "service": self.service,
            "instance_id": instance_id,
            "last_seen": now,
            "stats": stats,
        }
        await upsert_rows(
            self.session,
            WorkerHeartbeat.__table__,  # type: ignore[arg-type]
            [row],
            ["service", "instance_id"],
        )

    async def live(self, since: datetime) -> list[str]:
        """Instances of the service seen at or after ``since``, sorted."""
        rows = await self.session.execute(
            select(WorkerHeartbeat.instance_id)
            .where(WorkerHeartbeat.service == self.service, WorkerHeartbeat.last_seen >= since)
            .order_by(WorkerHeartbeat.instance_id)
        )
        return list(rows.scalars())

    async def live_history_runs(self, since: datetime) -> list[str]:
        """Instances seen at or after ``since`` whose statistics say :data:`HISTORY_RUN`."""
        rows = await self.session.execute(
            select(WorkerHeartbeat.instance_id, WorkerHeartbeat.stats).where(
                WorkerHeartbeat.service == self.service, WorkerHeartbeat.last_seen >= since
            )
        )
        return sorted(instance for instance, stats in rows if (stats or {}).get(HISTORY_RUN))

    async def remove(self, instance_id: str) -> None:
        """Forget an instance (on clean shutdown)."""
        await self.session.execute(
            delete(WorkerHeartbeat).where(
                WorkerHeartbeat.service == self.service,
                WorkerHeartbeat.instance_id == instance_id,
            )
        )
