"""Scheduled reports: due slots (known answers), and reports e-mailed with their attachments
through a real SMTP server (aiosmtpd with STARTTLS and login) on PostgreSQL and SQLite; a slot
is sent once, a failing e-mail is retried later and never raises."""

from __future__ import annotations

import asyncio
import io
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pydantic import SecretStr
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_kpi_worker.reporting import ReportMailer, due_slot
from clpm_shared.config import AlertSettings, KpiSettings, ReportSettings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import ReportDelivery, ReportSubscription
from clpm_shared.db.repositories.reports import (
    ReportDeliveryRepository,
    ReportSubscriptionRepository,
)
from tests.harness.notification_receivers import SMTP_PASSWORD, SMTP_USER, SmtpServer
from tests.harness.report_fleet import WORST_LOOP, seed_report_fleet
from tests.harness.servers import free_port, migrate

# a slot after the subscriptions are created (they are stamped with the real clock)
SLOT = (datetime.now(UTC) + timedelta(days=2)).replace(hour=6, minute=0, second=0, microsecond=0)
NOW = SLOT + timedelta(minutes=7)


def test_daily_reports_are_due_at_the_hour_and_weekly_ones_on_the_weekday() -> None:
    friday = datetime(2026, 12, 4, 5, 59, tzinfo=UTC)
    assert due_slot("day", friday, 6, 0) == datetime(2026, 12, 3, 6, tzinfo=UTC)
    assert due_slot("day", friday.replace(hour=6, minute=0), 6, 0) == datetime(
        2026, 12, 4, 6, tzinfo=UTC
    )
    # the Monday before (2026-11-30), at 06:00
    assert due_slot("week", friday, 6, 0) == datetime(2026, 11, 30, 6, tzinfo=UTC)
    monday_early = datetime(2026, 11, 30, 5, tzinfo=UTC)
    assert due_slot("week", monday_early, 6, 0) == datetime(2026, 11, 23, 6, tzinfo=UTC)
    assert due_slot("week", friday, 6, 4) == datetime(2026, 11, 27, 6, tzinfo=UTC)


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
    else:
        path: Path = tmp_path_factory.mktemp("sqlite") / "clpm.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate(url)
    engine = create_engine(url)
    factory = create_session_factory(engine)
    async with factory() as session, session.begin():
        await seed_report_fleet(session, SLOT)
    yield factory
    await engine.dispose()


@pytest.fixture
async def db(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    async with sessions() as session, session.begin():
        await session.execute(delete(ReportDelivery))
        await session.execute(delete(ReportSubscription))
    return sessions


def mailer(db: async_sessionmaker[AsyncSession], smtp: SmtpServer, **alerts: Any) -> ReportMailer:
    values: dict[str, Any] = {
        "alert_smtp_host": smtp.host,
        "alert_smtp_port": smtp.port,
        "alert_smtp_username": SMTP_USER,
        "alert_smtp_password": SecretStr(SMTP_PASSWORD),
        "alert_smtp_ca_file": smtp.ca_file,
        "alert_smtp_from": "clpm@plant.example",
        "alert_retry_base_s": 60,
        "alert_smtp_timeout_s": 5,
        **alerts,
    }
    return ReportMailer(
        ReportSettings(report_max_attempts=3),
        AlertSettings(**values),
        KpiSettings(),
        db,
        name="m1",
    )


async def subscribe(db: async_sessionmaker[AsyncSession], **values: Any) -> int:
    async with db() as session, session.begin():
        row = await ReportSubscriptionRepository(session).create(
            "engineer", {"email": "ops@plant.example", "period": "day", "format": "pdf", **values}
        )
        return row.id


def attachments(message: Any) -> dict[str, bytes]:
    return {
        part.get_filename(): part.get_payload(decode=True)
        for part in message.walk()
        if part.get_filename()
    }


async def pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "mailed.pdf"
    path.write_bytes(pdf)
    done = await asyncio.to_thread(
        subprocess.run,
        ["pdftotext", "-layout", str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


async def test_a_due_daily_report_is_mailed_once_with_its_pdf(
    db: async_sessionmaker[AsyncSession], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_server.received.clear()
    subscription = await subscribe(db)
    sender = mailer(db, smtp_server)
    stats = await sender.run_once(NOW)
    assert (stats.queued, stats.claimed, stats.sent) == (1, 1, 1)
    again = await sender.run_once(NOW + timedelta(minutes=5))
    assert (again.claimed, again.sent) == (0, 0)
    [mail] = smtp_server.received
    assert mail.tls is True
    assert mail.login == SMTP_USER
    assert mail.recipients == ["ops@plant.example"]
    label = f"{SLOT - timedelta(hours=24):%Y-%m-%d %H:%M} – {SLOT:%Y-%m-%d %H:%M} UTC"
    subject = str(make_header(decode_header(mail.message["Subject"])))
    assert subject == f"CLPM daily fleet report: {label}"
    assert mail.message["Message-ID"] == f"<report-{subscription}-{SLOT:%Y%m%dT%H%MZ}@clpm>"
    body = next(p for p in mail.message.walk() if p.get_content_type() == "text/plain")
    assert f"1. {WORST_LOOP}" in body.get_payload(decode=True).decode()
    files = attachments(mail.message)
    assert list(files) == [f"clpm-fleet-day-{SLOT:%Y%m%dT%H%MZ}.pdf"]
    text = await pdftotext(next(iter(files.values())), tmp_path)
    assert WORST_LOOP in text
    assert label in text
    async with db() as session:
        [row] = await ReportDeliveryRepository(session).of_subscription(subscription)
    assert row.sent_at is not None
    assert row.attempts == 1


async def test_both_formats_are_attached_and_the_workbook_opens(
    db: async_sessionmaker[AsyncSession], smtp_server: SmtpServer
) -> None:
    smtp_server.received.clear()
    await subscribe(db, format="both", period="week", unit="U1")
    monday = due_slot("week", NOW, 6, 0)
    stats = await mailer(db, smtp_server).run_once(monday + timedelta(days=7, minutes=1))
    assert stats.sent == 1
    [mail] = smtp_server.received
    files = attachments(mail.message)
    assert sorted(name.rsplit(".", 1)[1] for name in files) == ["pdf", "xlsx"]
    xlsx = next(content for name, content in files.items() if name.endswith(".xlsx"))
    book = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    rows = list(book["Bad actors"].iter_rows(values_only=True))
    assert rows[1][:2] == (1, WORST_LOOP)


async def test_a_failing_mail_server_is_retried_later_and_never_raises(
    db: async_sessionmaker[AsyncSession], smtp_server: SmtpServer
) -> None:
    smtp_server.received.clear()
    smtp_server.fail_next = 1
    subscription = await subscribe(db)
    sender = mailer(db, smtp_server)
    first = await sender.run_once(NOW)
    assert (first.claimed, first.sent, first.failed) == (1, 0, 1)
    async with db() as session:
        [row] = await ReportDeliveryRepository(session).of_subscription(subscription)
    assert "451" in (row.last_error or "")
    retry_at = row.next_attempt_at.replace(tzinfo=UTC)
    wait = (retry_at - NOW).total_seconds()
    assert 30 <= wait <= 60  # first retry: 60 s base with equal jitter, [30, 60] s
    assert (await sender.run_once(NOW + timedelta(seconds=1))).claimed == 0  # not due yet
    retried = await sender.run_once(retry_at + timedelta(seconds=1))
    assert (retried.claimed, retried.sent) == (1, 1)
    assert len(smtp_server.received) == 1


async def test_an_unreachable_server_gives_up_after_the_attempts_without_raising(
    db: async_sessionmaker[AsyncSession], smtp_server: SmtpServer
) -> None:
    subscription = await subscribe(db)
    sender = mailer(db, smtp_server, alert_smtp_port=free_port(), alert_retry_base_s=1)
    moment = NOW
    outcomes = []
    for _ in range(3):
        stats = await sender.run_once(moment)
        outcomes.append((stats.failed, stats.gave_up))
        moment = moment + timedelta(hours=1)
    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    async with db() as session:
        [row] = await ReportDeliveryRepository(session).of_subscription(subscription)
    assert row.gave_up_at is not None
    assert row.sent_at is None


async def test_a_subscription_made_after_the_slot_waits_for_the_next_one(
    db: async_sessionmaker[AsyncSession], smtp_server: SmtpServer
) -> None:
    await subscribe(db)
    before_creation = datetime.now(UTC) - timedelta(hours=1)
    stats = await mailer(db, smtp_server).run_once(before_creation)
    assert (stats.queued, stats.claimed) == (0, 0)
