"""The notifier: claims due outbox rows, delivers each through its channel and records the
outcome, one short transaction per row.

Delivery is at-least-once with an idempotency key: a row is marked sent in its own
transaction right after the channel accepted it. A sender killed before that commit leaves
the row claimed; once its lease expires the next pass sends it again with the same key
(``Idempotency-Key`` header, e-mail ``Message-ID``), which is how a receiver recognises the
repeat. Rows committed as sent are never sent again. A failing channel only delays its own
rows: each failure is logged and retried after an exponential backoff (with jitter, up to
ALERT_NOTIFY_MAX_ATTEMPTS attempts), and the pass goes on with the next row.
"""

from __future__ import annotations

import asyncio
import logging
import random
import smtplib
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.config import AlertSettings
from clpm_shared.db.repositories.notifications import ClaimedNotification, OutboxRepository
from clpm_shared.notify.email import EmailChannel, EmailNotConfiguredError
from clpm_shared.notify.webhook import WebhookChannel, WebhookRejectedError

log = logging.getLogger("clpm_shared.notify")

DELIVERY_ERRORS = (
    smtplib.SMTPException,
    OSError,
    httpx.HTTPError,
    WebhookRejectedError,
    EmailNotConfiguredError,
    TimeoutError,
)


def retry_delay(attempt: int, base_s: float, max_s: float, jitter: float) -> float:
    """Seconds before retry number ``attempt`` (1 = the first retry):
    ``min(max_s, base_s * 2**(attempt - 1)) * (0.5 + jitter / 2)`` with ``jitter`` in [0, 1]
    ("equal jitter" backoff, so senders failing together do not retry in step)."""
    return min(max_s, base_s * 2.0 ** max(0, attempt - 1)) * (0.5 + jitter / 2.0)


@dataclass
class PassStats:
    """What one pass over the outbox did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    gave_up: int = 0


class Notifier:
    """Delivers the outbox; :meth:`run_once` is one pass (scheduled by the KPI worker)."""

    def __init__(
        self,
        settings: AlertSettings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        name: str | None = None,
        email: EmailChannel | None = None,
        webhook: WebhookChannel | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.name = name or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.email = email or EmailChannel(settings)
        self.webhook = webhook or WebhookChannel(settings)
        self._random = random.Random()  # noqa: S311 - jitter, not security

    async def claim(self, now: datetime) -> list[ClaimedNotification]:
        """Claim a batch of due rows under a lease (committed before anything is sent)."""
        until = now + timedelta(seconds=self.settings.alert_notify_lease_s)
        async with self.sessions() as session, session.begin():
            return await OutboxRepository(session).claim(
                self.name, now, until, self.settings.alert_notify_batch
            )

    async def run_once(self, now: datetime | None = None) -> PassStats:
        """Claim and deliver one batch. Database errors are logged, never raised (the rows
        stay claimed until their lease expires and are sent by a later pass)."""
        stats = PassStats()
        try:
            claimed = await self.claim(now or datetime.now(UTC))
            stats.claimed = len(claimed)
            for item in claimed:
                await self.deliver(item, stats)
        except SQLAlchemyError:
            log.exception("notifier pass stopped by a database error; the next pass resumes")
        if stats.claimed:
            log.info("notifier pass", extra={"notify": stats.__dict__})
        return stats

    async def deliver(self, item: ClaimedNotification, stats: PassStats) -> None:
        """Send one claimed row and record the outcome."""
        try:
            await asyncio.wait_for(self._send(item), timeout=self._timeout(item))
        except DELIVERY_ERRORS as exc:
            attempt = item.attempts + 1
            done = datetime.now(UTC)
            retry_at = None
            if attempt < self.settings.alert_notify_max_attempts:
                delay = retry_delay(
                    attempt,
                    self.settings.alert_retry_base_s,
                    self.settings.alert_retry_max_s,
                    self._random.random(),
                )
                retry_at = done + timedelta(seconds=delay)
                stats.failed += 1
            else:
                stats.gave_up += 1
            log.warning(
                "notification not delivered",
                extra={
                    "channel": item.channel,
                    "outbox_id": item.outbox_id,
                    "attempt": attempt,
                    "error": f"{type(exc).__name__}: {exc}",
                    "retry_at": retry_at.isoformat() if retry_at else None,
                },
            )
            async with self.sessions() as session, session.begin():
                await OutboxRepository(session).mark_failed(
                    item.outbox_id, self.name, f"{type(exc).__name__}: {exc}", retry_at, done
                )
            return
        async with self.sessions() as session, session.begin():
            marked = await OutboxRepository(session).mark_sent(
                item.outbox_id, self.name, datetime.now(UTC)
            )
        if marked:
            stats.sent += 1
        else:
            log.warning(
                "notification sent after its lease was taken over",
                extra={"outbox_id": item.outbox_id, "key": item.idempotency_key},
            )

    def _timeout(self, item: ClaimedNotification) -> float:
        if item.channel == "email":
            return self.settings.alert_smtp_timeout_s * 3
        return self.settings.alert_webhook_timeout_s * 2

    async def _send(self, item: ClaimedNotification) -> None:
        if item.channel == "email":
            await self.email.send(item.target, item.subject, item.payload, item.idempotency_key)
        elif item.channel == "webhook":
            await self.webhook.send(
                item.target,
                item.payload,
                item.idempotency_key,
                int(datetime.now(UTC).timestamp()),
            )
        else:
            raise WebhookRejectedError(f"unknown channel {item.channel!r}")

    async def aclose(self) -> None:
        await self.webhook.aclose()
