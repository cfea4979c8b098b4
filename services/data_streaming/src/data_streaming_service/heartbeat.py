"""Heartbeats of the data-streaming service in ``worker_heartbeats`` (container health probe).

``python -m clpm_shared.healthcheck data-streaming`` reads the newest heartbeat of service
``data-streaming``. Heartbeats are best effort: when the relational database is unreachable
the service logs it and keeps streaming.
"""

from __future__ import annotations

import logging
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.db.repositories.heartbeats import HeartbeatRepository

SERVICE = "data-streaming"

logger = logging.getLogger(__name__)


def new_instance_id() -> str:
    """``<host name>-<8 hex digits>``: the health probe can filter on the host name prefix."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class HeartbeatPublisher:
    """Writes this instance's heartbeat with the latest streaming statistics."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], instance_id: str) -> None:
        self.sessions = sessions
        self.instance_id = instance_id
        self._failing = False

    async def beat(self, stats: dict[str, Any], now: datetime | None = None) -> bool:
        """Record a heartbeat; False (and one warning per outage) when the database fails."""
        try:
            async with self.sessions() as session, session.begin():
                await HeartbeatRepository(session, SERVICE).beat(
                    self.instance_id, now or datetime.now(UTC), stats
                )
        except (SQLAlchemyError, OSError) as exc:
            if not self._failing:
                logger.warning(
                    "heartbeat not recorded: database unavailable",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                )
            self._failing = True
            return False
        if self._failing:
            logger.info("heartbeat recorded again")
        self._failing = False
        return True

    async def remove(self) -> None:
        """Forget this instance (clean shutdown), so the probe does not see a stale one."""
        try:
            async with self.sessions() as session, session.begin():
                await HeartbeatRepository(session, SERVICE).remove(self.instance_id)
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("heartbeat not removed", extra={"error": str(exc)[:300]})
