"""Scheduled fleet reports: queue each subscription's due slot, build and e-mail the report.

A daily report is due every day at REPORT_HOUR_UTC, a weekly one on REPORT_WEEKDAY at that
hour. Each pass (every REPORT_CHECK_INTERVAL_S, an APScheduler job beside the KPI cycles)
queues the latest slot of every enabled subscription created before it (once: a unique
``(subscription, slot)`` row in ``report_deliveries``), claims due rows under a lease and
sends each through the alert e-mail server (ALERT_SMTP_*). A report is built once per pass
for each period and scope, and rendered in a worker thread, so neither the event loop nor the
KPI cycles wait for it. A failed e-mail is logged and retried with the alerts' backoff
(:func:`clpm_shared.notify.retry_delay`) up to REPORT_MAX_ATTEMPTS; the report is rebuilt
for a retry (from the then-current ratings of the same period length).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.config import AlertSettings, KpiSettings, ReportSettings
from clpm_shared.db.repositories.reports import (
    ClaimedDelivery,
    ReportDeliveryRepository,
    ReportSubscriptionRepository,
)
from clpm_shared.notify import retry_delay
from clpm_shared.notify.email import EmailChannel
from clpm_shared.notify.sender import DELIVERY_ERRORS
from clpm_shared.reports.content import FleetReport
from clpm_shared.reports.gather import gather_fleet_report
from clpm_shared.reports.mail import Attachment, report_message
from clpm_shared.reports.pdf import render_pdf
from clpm_shared.reports.xlsx import render_xlsx

log = logging.getLogger("clpm_kpi_worker.reporting")

CLAIM_BATCH = 20
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def due_slot(period: str, now: datetime, hour: int, weekday: int) -> datetime:
    """The latest moment at or before ``now`` a ``day`` / ``week`` report was due."""
    today = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if period == "day":
        return today if today <= now else today - timedelta(days=1)
    slot = today - timedelta(days=(now.weekday() - weekday) % 7)
    return slot if slot <= now else slot - timedelta(days=7)


@dataclass
class ReportPassStats:
    """What one pass did."""

    queued: int = 0
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    gave_up: int = 0


class ReportMailer:
    """Sends the due reports; :meth:`run_once` is one pass (scheduled by the KPI worker)."""

    def __init__(
        self,
        settings: ReportSettings,
        alerts: AlertSettings,
        kpi: KpiSettings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        name: str | None = None,
        email: EmailChannel | None = None,
    ) -> None:
        self.settings = settings
        self.alerts = alerts
        self.kpi = kpi
        self.sessions = sessions
        self.name = name or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.email = email or EmailChannel(alerts)
        self._random = random.Random()  # noqa: S311 - jitter, not security

    async def queue_due(self, now: datetime) -> int:
        """Queue the latest slot of every enabled subscription created before that slot."""
        async with self.sessions() as session, session.begin():
            slots = []
            for subscription in await ReportSubscriptionRepository(session).enabled():
                slot = due_slot(
                    subscription.period,
                    now,
                    self.settings.report_hour_utc,
                    self.settings.report_weekday,
                )
                created = subscription.created_at
                if created.tzinfo is None:
                    created = created.replace(tzinfo=UTC)
                if created <= slot:
                    slots.append((subscription.id, slot))
            return await ReportDeliveryRepository(session).queue(slots, now)

    async def run_once(self, now: datetime | None = None) -> ReportPassStats:
        """Queue, claim and send one batch. Database errors are logged, never raised."""
        stats = ReportPassStats()
        moment = now or datetime.now(UTC)
        try:
            stats.queued = await self.queue_due(moment)
            async with self.sessions() as session, session.begin():
                claimed = await ReportDeliveryRepository(session).claim(
                    self.name,
                    moment,
                    moment + timedelta(seconds=self.settings.report_lease_s),
                    CLAIM_BATCH,
                )
            stats.claimed = len(claimed)
            reports: dict[tuple[str, str | None, str | None], FleetReport] = {}
            for item in claimed:
                await self.deliver(item, moment, reports, stats)
        except SQLAlchemyError:
            log.exception("report pass stopped by a database error; the next pass resumes")
        if stats.claimed:
            log.info("report pass", extra={"reports": stats.__dict__})
        return stats

    async def _report(
        self,
        item: ClaimedDelivery,
        now: datetime,
        reports: dict[tuple[str, str | None, str | None], FleetReport],
    ) -> FleetReport:
        key = (item.period, item.unit, item.area)
        if key not in reports:
            async with self.sessions() as session:
                reports[key] = await gather_fleet_report(
                    session,
                    item.period,
                    self.kpi.period_length(item.period),
                    now,
                    unit=item.unit,
                    area=item.area,
                )
        return reports[key]

    async def _attachments(self, report: FleetReport, fmt: str) -> list[Attachment]:
        files: list[Attachment] = []
        if fmt in ("pdf", "both"):
            pdf = await asyncio.to_thread(render_pdf, report, self.settings.report_pdf_top)
            files.append((report.file_name("pdf"), "application/pdf", pdf))
        if fmt in ("xlsx", "both"):
            xlsx = await asyncio.to_thread(render_xlsx, report)
            files.append((report.file_name("xlsx"), XLSX_MIME, xlsx))
        return files

    async def deliver(
        self,
        item: ClaimedDelivery,
        now: datetime,
        reports: dict[tuple[str, str | None, str | None], FleetReport],
        stats: ReportPassStats,
    ) -> None:
        """Build, send and record one claimed delivery."""
        report = await self._report(item, now, reports)
        key = f"report-{item.subscription_id}-{item.due_at:%Y%m%dT%H%MZ}"
        try:
            message = report_message(
                self.alerts.alert_smtp_from,
                item.email,
                report,
                await self._attachments(report, item.format),
                key,
            )
            await asyncio.wait_for(
                self.email.send_message(message), timeout=self.alerts.alert_smtp_timeout_s * 3
            )
        except DELIVERY_ERRORS as exc:
            attempt = item.attempts + 1
            done = now  # the pass's clock: a retry is due that long after this pass
            retry_at = None
            if attempt < self.settings.report_max_attempts:
                delay = retry_delay(
                    attempt,
                    self.alerts.alert_retry_base_s,
                    self.alerts.alert_retry_max_s,
                    self._random.random(),
                )
                retry_at = done + timedelta(seconds=delay)
                stats.failed += 1
            else:
                stats.gave_up += 1
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "report e-mail not delivered",
                extra={
                    "delivery_id": item.delivery_id,
                    "attempt": attempt,
                    "error": error,
                    "retry_at": retry_at.isoformat() if retry_at else None,
                },
            )
            async with self.sessions() as session, session.begin():
                await ReportDeliveryRepository(session).mark_failed(
                    item.delivery_id, self.name, error, retry_at, done
                )
            return
        async with self.sessions() as session, session.begin():
            marked = await ReportDeliveryRepository(session).mark_sent(
                item.delivery_id,
                self.name,
                datetime.now(UTC),
                report.period_start,
                report.period_end,
            )
        if marked:
            stats.sent += 1
        else:
            log.warning(
                "report e-mail sent after its lease was taken over",
                extra={"delivery_id": item.delivery_id, "key": key},
            )
