"""Alert evaluation after a KPI cycle: read what the cycle stored, evaluate the rules, write
the alerts, outbox rows and inbox entries in one transaction.

Acknowledged loops and findings suppress their alerts (``clpm_shared.alerts.evaluation``):
the acknowledgements that hold at the cycle's clock are read in the same transaction.

Nothing is sent here (the notifier delivers the outbox), so a slow mail server or webhook
never holds up a cycle; and a database error is logged, not raised: the next cycle
evaluates again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.alerts import evaluate
from clpm_shared.config import AlertSettings
from clpm_shared.db.repositories.alerts import (
    AlertEventRepository,
    AlertRuleRepository,
    recent_since,
    rule_of,
)
from clpm_shared.db.repositories.work_items import WorkItemRepository
from clpm_shared.work_items import holding_acknowledgements

log = logging.getLogger("clpm_kpi_worker.alerting")


@dataclass
class AlertCycleStats:
    """What one evaluation did."""

    rules: int = 0
    loops: int = 0
    opened: int = 0
    held: int = 0
    cleared: int = 0
    outbox: int = 0
    inbox: int = 0
    seconds: float = 0.0


async def evaluate_alerts(
    sessions: async_sessionmaker[AsyncSession],
    settings: AlertSettings,
    loop_ids: Sequence[str],
    end: datetime,
    window: timedelta,
    now: datetime,
) -> AlertCycleStats:
    """Evaluate every rule for ``loop_ids`` on the windows ending at ``end`` (the cycle's
    last complete window); ``now`` is the clock of durations, staleness and quiet hours."""
    started = time.perf_counter()
    stats = AlertCycleStats(loops=len(loop_ids))
    if not settings.alert_enabled:
        return stats
    try:
        async with sessions() as session, session.begin():
            rules = [rule_of(row) for row in await AlertRuleRepository(session).list()]
            stats.rules = len(rules)
            events = AlertEventRepository(session)
            open_alerts = await events.open_alerts()
            if not rules and not open_alerts:
                return stats
            stale = [r.threshold or 0.0 for r in rules if r.enabled and r.condition == "stale_data"]
            data_since = None
            if stale:
                horizon = min(
                    timedelta(hours=settings.alert_recent_h),
                    timedelta(seconds=max(stale)) + 2 * window,
                )
                data_since = now - horizon
            fleet = await events.fleet_state(
                loop_ids, recent_since(end, window), data_since, until=end
            )
            items = WorkItemRepository(session)
            acknowledgements = await items.open_acknowledgements()
            conditions = (
                await items.acknowledged_conditions()
                if any(a.until is None for a in acknowledgements)
                else {}
            )
            acknowledged = holding_acknowledgements(acknowledgements, conditions, now)
            outcome = evaluate(rules, fleet, open_alerts, now, acknowledged)
            written = await events.apply(
                outcome,
                {r.rule_id: r for r in rules},
                now,
                digest_threshold=settings.alert_digest_threshold,
                digest_listed=settings.alert_digest_listed,
            )
        stats.opened, stats.held, stats.cleared = written.opened, written.held, written.cleared
        stats.outbox, stats.inbox = written.outbox, written.inbox
    except SQLAlchemyError:
        log.exception("alerts not evaluated; the next cycle evaluates them again")
    stats.seconds = time.perf_counter() - started
    if stats.opened or stats.cleared or stats.outbox:
        log.info("alerts evaluated", extra={"alerts": asdict(stats)})
    return stats
