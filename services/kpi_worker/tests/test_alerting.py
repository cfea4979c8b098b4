"""Alerts after a KPI cycle, on PostgreSQL and SQLite: evaluated from the stored windows,
de-duplicated, re-notified, cleared; delivered by the notifier to a real SMTP server
(STARTTLS + AUTH LOGIN) and a real HTTP receiver (HMAC checked), retried with backoff, and
neither lost nor sent twice across a restart of the sender."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_kpi_worker.alerting import evaluate_alerts
from clpm_shared.config import AlertSettings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import (
    AlertEvent,
    AlertRuleRow,
    DiagnosticResult,
    KpiResult,
    Loop,
    NotificationOutbox,
    WorkerHeartbeat,
    WorkItem,
)
from clpm_shared.db.repositories import LoopRepository, upsert_rows
from clpm_shared.db.repositories.alerts import AlertRuleRepository
from clpm_shared.db.repositories.heartbeats import HeartbeatRepository
from clpm_shared.db.repositories.notifications import InboxRepository
from clpm_shared.db.repositories.work_items import WorkItemRepository
from clpm_shared.notify import Notifier
from tests.harness.notification_receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_SECRET,
    SmtpServer,
    WebhookReceiver,
)
from tests.harness.servers import REPO_ROOT, migrate

WINDOW = timedelta(minutes=15)
END = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)
NOW = END + timedelta(minutes=2)


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
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def db(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The module's database, emptied of what these tests write."""
    async with sessions() as session, session.begin():
        for model in (AlertRuleRow, KpiResult, DiagnosticResult, WorkerHeartbeat, WorkItem, Loop):
            await session.execute(delete(model))
    return sessions


def settings(**values: Any) -> AlertSettings:
    return AlertSettings(**values)


async def store_window(
    sessions: async_sessionmaker[AsyncSession],
    end: datetime,
    loops: dict[str, tuple[float | None, str]],
    findings: dict[str, list[str]] | None = None,
    main_problem: str | None = None,
    severity: float = 0.5,
) -> None:
    rows = [
        {
            "loop_id": loop_id,
            "window_start": end - WINDOW,
            "window_end": end,
            "samples": 0 if status == "offline" else 900,
            "health_score": health,
            "status": status,
            "main_problem": main_problem,
        }
        for loop_id, (health, status) in loops.items()
    ]
    found = [
        {
            "loop_id": loop_id,
            "window_start": end - WINDOW,
            "category": category,
            "window_end": end,
            "severity": severity,
            "confidence": 0.9,
            "evidence": {},
            "recommendation": "",
            "trigger": "kpi_cycle",
        }
        for loop_id, categories in (findings or {}).items()
        for category in categories
    ]
    async with sessions() as session, session.begin():
        await upsert_rows(session, KpiResult.__table__, rows, ["loop_id", "window_start"])  # type: ignore[arg-type]
        if found:
            await upsert_rows(
                session,
                DiagnosticResult.__table__,  # type: ignore[arg-type]
                found,
                ["loop_id", "window_start", "category"],
            )


async def add_loops(sessions: async_sessionmaker[AsyncSession], units: dict[str, str]) -> None:
    async with sessions() as session, session.begin():
        for loop_id, unit in units.items():
            await LoopRepository(session).save(loop_id, {"name": loop_id, "unit": unit})


async def add_rule(sessions: async_sessionmaker[AsyncSession], **values: Any) -> int:
    base: dict[str, Any] = {
        "name": "test rule",
        "scope": "fleet",
        "condition": "health_below",
        "threshold": 60.0,
        "channels": ["inbox"],
        "recipients": ["alice"],
    }
    base.update(values)
    async with sessions() as session, session.begin():
        row = await AlertRuleRepository(session).create(base, "bob")
        return row.id


async def run(
    sessions: async_sessionmaker[AsyncSession],
    loops: list[str],
    now: datetime = NOW,
    end: datetime = END,
    config: AlertSettings | None = None,
) -> dict[str, Any]:
    """Evaluate as a cycle at ``now`` whose last complete window ends at ``end``."""
    stats = await evaluate_alerts(sessions, config or settings(), loops, end, WINDOW, now)
    return stats.__dict__


async def outbox(sessions: async_sessionmaker[AsyncSession]) -> list[NotificationOutbox]:
    async with sessions() as session:
        rows = await session.execute(select(NotificationOutbox).order_by(NotificationOutbox.id))
        return list(rows.scalars())


async def events(sessions: async_sessionmaker[AsyncSession]) -> list[AlertEvent]:
    async with sessions() as session:
        rows = await session.execute(select(AlertEvent).order_by(AlertEvent.id))
        return list(rows.scalars())


# ---------------------------------------------------------------------- evaluation


async def test_a_loop_below_the_level_opens_one_alert_notified_once(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await add_loops(db, {"FIC101": "U1", "FIC102": "U1", "TIC201": "U2"})
    await store_window(
        db, END, {"FIC101": (30.0, "poor"), "FIC102": (90.0, "good"), "TIC201": (50.0, "fair")}
    )
    await add_rule(
        db,
        scope="unit",
        scope_value="U1",
        channels=["inbox", "email", "webhook"],
        emails=["ops@example.com"],
        webhook_url="http://127.0.0.1:9/hook",
    )
    first = await run(db, ["FIC101", "FIC102", "TIC201"])
    assert (first["opened"], first["outbox"], first["inbox"]) == (1, 2, 1)
    [event] = await events(db)
    assert (event.loop_id, event.state, event.value) == ("FIC101", "open", 30.0)
    assert [(r.channel, r.target) for r in await outbox(db)] == [
        ("email", "ops@example.com"),
        ("webhook", "http://127.0.0.1:9/hook"),
    ]
    again = await run(db, ["FIC101", "FIC102", "TIC201"], NOW + timedelta(minutes=1))
    assert (again["opened"], again["held"], again["outbox"], again["inbox"]) == (0, 1, 0, 0)
    assert len(await outbox(db)) == 2
    async with db() as session:
        inbox = InboxRepository(session, "alice")
        [entry] = await inbox.list(unread_only=True, limit=10, offset=0)
        assert entry.loop_id == "FIC101"
        assert "health 30.0 below 60" in entry.title
        assert await InboxRepository(session, "bob").unread() == 0


async def test_renotified_after_the_interval_and_cleared_when_health_recovers(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await add_loops(db, {"FIC101": "U1"})
    await store_window(db, END, {"FIC101": (30.0, "poor")})
    await add_rule(db, renotify_s=3600.0)
    assert (await run(db, ["FIC101"]))["inbox"] == 1
    assert (await run(db, ["FIC101"], NOW + timedelta(minutes=59)))["inbox"] == 0
    assert (await run(db, ["FIC101"], NOW + timedelta(minutes=61)))["inbox"] == 1
    later = END + timedelta(minutes=75)
    await store_window(db, later, {"FIC101": (85.0, "good")})
    cleared = await run(db, ["FIC101"], NOW + timedelta(minutes=75), later)
    assert (cleared["cleared"], cleared["inbox"]) == (1, 1)
    [event] = await events(db)
    assert event.state == "cleared"
    assert event.notify_count == 3
    # the condition returns: a new alert, not the old one re-opened
    await store_window(db, later + WINDOW, {"FIC101": (20.0, "critical")})
    await run(db, ["FIC101"], NOW + timedelta(minutes=90), later + WINDOW)
    assert [e.state for e in await events(db)] == ["cleared", "open"]


async def test_findings_status_changes_stale_data_and_heartbeats_from_the_store(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await add_loops(db, {"FIC101": "U1", "FIC102": "U1", "LIC301": "U3"})
    await store_window(
        db,
        END - WINDOW,
        {"FIC101": (80.0, "fair"), "FIC102": (95.0, "good"), "LIC301": (90.0, "good")},
    )
    await store_window(
        db,
        END,
        {"FIC101": (40.0, "poor"), "FIC102": (95.0, "good"), "LIC301": (None, "offline")},
        findings={"FIC101": ["stiction"], "FIC102": ["oscillation"]},
    )
    async with db() as session, session.begin():
        await HeartbeatRepository(session, "kpi-worker").beat("a", NOW, {})
        await HeartbeatRepository(session, "aggregation").beat("b", NOW - timedelta(hours=1), {})
    finding = await add_rule(db, condition="finding", categories=["stiction"], threshold=None)
    change = await add_rule(db, condition="status_change", statuses=["poor"], threshold=None)
    stale = await add_rule(db, condition="stale_data", threshold=600.0)
    beat = await add_rule(db, condition="heartbeat_missing", threshold=300.0)
    stats = await run(db, ["FIC101", "FIC102", "LIC301"])
    assert stats["opened"] == 4
    opened = {(e.rule_id, e.loop_id, e.key) for e in await events(db)}
    assert opened == {
        (finding, "FIC101", "stiction"),
        (change, "FIC101", "poor"),
        (stale, "LIC301", "stale_data"),
        (beat, "", "aggregation"),
    }


async def test_health_below_for_a_period_waits_before_notifying(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await add_loops(db, {"FIC101": "U1"})
    await store_window(db, END, {"FIC101": (30.0, "poor")})
    await add_rule(db, for_s=1800.0)
    first = await run(db, ["FIC101"])
    assert (first["opened"], first["inbox"]) == (1, 0)
    assert [e.state for e in await events(db)] == ["pending"]
    await store_window(db, END + 2 * WINDOW, {"FIC101": (35.0, "poor")})
    fired = await run(db, ["FIC101"], NOW + 2 * WINDOW, END + 2 * WINDOW)
    assert fired["inbox"] == 1
    assert [e.state for e in await events(db)] == ["open"]


# ---------------------------------------------------------------------- alert storms


async def storm(
    db: async_sessionmaker[AsyncSession], loops: int, health: float = 30.0, **rule: Any
) -> list[str]:
    """``loops`` loops below a rule's level, told by inbox (alice, bob), e-mail and webhook."""
    ids = {f"FIC{100 + i}": "U1" for i in range(loops)}
    await add_loops(db, ids)
    await store_window(db, END, {loop_id: (health, "poor") for loop_id in ids})
    values: dict[str, Any] = {
        "name": "low health",
        "channels": ["inbox", "email", "webhook"],
        "recipients": ["alice", "bob"],
        "emails": ["ops@plant.example"],
        "webhook_url": "http://127.0.0.1:9/hook",
    }
    values.update(rule)
    await add_rule(db, **values)
    return sorted(ids)


async def inbox_titles(db: async_sessionmaker[AsyncSession], user: str = "alice") -> list[str]:
    async with db() as session:
        entries = await InboxRepository(session, user).list(False, 100, 0)
        return [e.title for e in entries]


async def test_a_burst_over_the_threshold_is_told_in_one_digest_per_channel_and_recipient(
    db: async_sessionmaker[AsyncSession],
) -> None:
    loops = await storm(db, 25)
    first = await run(db, loops, config=settings(alert_digest_threshold=20))
    assert (first["opened"], first["outbox"], first["inbox"]) == (25, 2, 2)
    alerts = await events(db)
    assert [(e.state, e.notify_count) for e in alerts] == [("open", 1)] * 25
    rows = await outbox(db)
    assert [(r.channel, r.kind) for r in rows] == [("email", "opened"), ("webhook", "opened")]
    assert rows[0].subject == "[CLPM] opened: 25 alerts (low health)"
    payload = rows[1].payload
    assert (payload["digest"], payload["count"], payload["more"]) == (True, 25, 0)
    assert [a["loop_id"] for a in payload["alerts"]] == loops
    assert {a["event_id"] for a in payload["alerts"]} == {e.id for e in alerts}
    assert payload["alerts"][0]["message"] == "FIC100: health 30.0 below 60"
    assert rows[0].idempotency_key != rows[1].idempotency_key
    [title] = await inbox_titles(db, "alice")
    assert title == (
        "opened: 25 alerts (low health): FIC100, FIC101, FIC102, FIC103, FIC104 and 20 more"
    )
    assert await unread(db, "bob") == 1
    # held: nothing more is told
    again = await run(db, loops, NOW + timedelta(minutes=1), config=settings())
    assert (again["held"], again["outbox"], again["inbox"]) == (25, 0, 0)


async def test_a_burst_up_to_the_threshold_is_told_alert_by_alert(
    db: async_sessionmaker[AsyncSession],
) -> None:
    loops = await storm(db, 20)
    first = await run(db, loops, config=settings(alert_digest_threshold=20))
    assert (first["opened"], first["outbox"], first["inbox"]) == (20, 40, 40)
    assert all("digest" not in r.payload for r in await outbox(db))


async def test_digested_reminders_and_clearing_have_their_own_keys(
    db: async_sessionmaker[AsyncSession],
) -> None:
    config = settings(alert_digest_threshold=10)
    loops = await storm(db, 12, renotify_s=3600.0, channels=["webhook"])
    await run(db, loops, config=config)
    later = NOW + timedelta(minutes=61)
    reminded = await run(db, loops, later, config=config)
    assert (reminded["held"], reminded["outbox"]) == (12, 1)
    recovered = END + timedelta(minutes=75)
    await store_window(db, recovered, {loop_id: (90.0, "good") for loop_id in loops})
    cleared = await run(db, loops, NOW + timedelta(minutes=75), recovered, config=config)
    assert (cleared["cleared"], cleared["outbox"]) == (12, 1)
    rows = await outbox(db)
    assert [(r.kind, r.payload["count"], r.payload["state"]) for r in rows] == [
        ("opened", 12, "open"),
        ("reminder", 12, "open"),
        ("cleared", 12, "cleared"),
    ]
    assert len({r.idempotency_key for r in rows}) == 3
    assert [e.notify_count for e in await events(db)] == [3] * 12


async def test_acknowledging_one_loop_of_a_digest_leaves_the_digest_unread(
    db: async_sessionmaker[AsyncSession],
) -> None:
    loops = await storm(db, 4)
    await run(db, loops, config=settings(alert_digest_threshold=3))
    assert await unread(db) == 1
    await acknowledge(db, loops[0])
    quiet = await run(db, loops, NOW + timedelta(minutes=5), config=settings())
    assert (quiet["held"], quiet["outbox"], quiet["inbox"]) == (4, 0, 0)
    assert [e.state for e in await events(db)] == ["acked", "open", "open", "open"]
    assert await unread(db) == 1  # the other three alerts still need attention


# ---------------------------------------------------------------------- acknowledgements


async def acknowledge(
    sessions: async_sessionmaker[AsyncSession],
    loop_id: str,
    *,
    category: str | None = None,
    until: datetime | None = None,
    snapshot: dict[str, Any] | None = None,
) -> None:
    async with sessions() as session, session.begin():
        await WorkItemRepository(session).create(
            "bob",
            {
                "loop_id": loop_id,
                "kind": "acknowledgement",
                "category": category,
                "state": "open",
                "acknowledged_until": until,
                "acknowledged_state": snapshot,
            },
        )


async def unread(sessions: async_sessionmaker[AsyncSession], user: str = "alice") -> int:
    async with sessions() as session:
        return await InboxRepository(session, user).unread()


async def test_an_acknowledged_loop_is_not_notified_until_its_main_problem_changes(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await add_loops(db, {"FIC101": "U1"})
    await store_window(
        db, END, {"FIC101": (30.0, "poor")}, {"FIC101": ["stiction"]}, main_problem="stiction"
    )
    await add_rule(db, channels=["inbox", "email"], emails=["ops@plant.example"], renotify_s=60)
    first = await run(db, ["FIC101"])
    assert (first["opened"], first["outbox"], first["inbox"]) == (1, 1, 1)
    await acknowledge(
        db,
        "FIC101",
        snapshot={"status": "poor", "main_problem": "stiction", "categories": ["stiction"]},
    )
    quiet = await run(db, ["FIC101"], NOW + timedelta(minutes=5))
    assert (quiet["held"], quiet["outbox"], quiet["inbox"]) == (1, 0, 0)
    [event] = await events(db)
    assert event.state == "acked"
    assert await unread(db) == 0  # the inbox no longer counts the acknowledged alert
    # renotify_s (60 s) has passed many times over: still nothing
    later = await run(db, ["FIC101"], NOW + timedelta(minutes=14))
    assert (later["outbox"], later["inbox"]) == (0, 0)
    assert len(await outbox(db)) == 1
    # the main problem changes: the acknowledgement ends and the alert is told again
    await store_window(
        db,
        END + WINDOW,
        {"FIC101": (25.0, "poor")},
        {"FIC101": ["oscillation"]},
        main_problem="oscillation",
    )
    again = await run(db, ["FIC101"], NOW + WINDOW, END + WINDOW)
    assert (again["outbox"], again["inbox"]) == (1, 1)
    [event] = await events(db)
    assert (event.state, event.notify_count) == ("open", 2)
    assert [r.kind for r in await outbox(db)] == ["opened", "opened"]
    assert await unread(db) == 1


async def test_an_acknowledgement_until_a_date_silences_until_that_date(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await add_loops(db, {"FIC101": "U1"})
    await store_window(db, END, {"FIC101": (30.0, "poor")})
    await add_rule(db)
    await acknowledge(db, "FIC101", until=NOW + timedelta(minutes=30))
    first = await run(db, ["FIC101"])
    assert (first["opened"], first["inbox"]) == (1, 0)
    assert [e.state for e in await events(db)] == ["acked"]
    assert (await run(db, ["FIC101"], NOW + timedelta(minutes=29)))["inbox"] == 0
    expired = await run(db, ["FIC101"], NOW + timedelta(minutes=30))
    assert expired["inbox"] == 1
    assert [e.state for e in await events(db)] == ["open"]


async def test_an_acknowledged_finding_alerts_again_when_it_gets_worse(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await add_loops(db, {"FIC101": "U1"})
    await store_window(db, END, {"FIC101": (70.0, "fair")}, {"FIC101": ["stiction"]}, severity=0.5)
    await add_rule(db, condition="finding", threshold=None)
    await acknowledge(
        db, "FIC101", category="stiction", snapshot={"category": "stiction", "severity": 0.5}
    )
    assert (await run(db, ["FIC101"]))["inbox"] == 0
    # a new category of the same loop is not covered by the finding's acknowledgement
    await store_window(
        db,
        END + WINDOW,
        {"FIC101": (70.0, "fair")},
        {"FIC101": ["stiction", "saturation"]},
        severity=0.5,
    )
    both = await run(db, ["FIC101"], NOW + WINDOW, END + WINDOW)
    assert (both["opened"], both["inbox"]) == (1, 1)
    await store_window(
        db, END + 2 * WINDOW, {"FIC101": (60.0, "fair")}, {"FIC101": ["stiction"]}, severity=0.8
    )
    worse = await run(db, ["FIC101"], NOW + 2 * WINDOW, END + 2 * WINDOW)
    assert worse["inbox"] == 2  # stiction opened again, saturation cleared
    states = {e.key: e.state for e in await events(db)}
    assert states == {"stiction": "open", "saturation": "cleared"}


# ---------------------------------------------------------------------- delivery


def notifier_settings(smtp: SmtpServer, **values: Any) -> AlertSettings:
    base: dict[str, Any] = {
        "alert_smtp_host": smtp.host,
        "alert_smtp_port": smtp.port,
        "alert_smtp_username": SMTP_USER,
        "alert_smtp_password": SecretStr(SMTP_PASSWORD),
        "alert_smtp_ca_file": smtp.ca_file,
        "alert_smtp_from": "clpm@plant.example",
        "alert_webhook_secret": SecretStr(WEBHOOK_SECRET.decode()),
        "alert_retry_base_s": 60.0,
        "alert_notify_lease_s": 60.0,
    }
    base.update(values)
    return AlertSettings(**base)


async def one_alert(
    db: async_sessionmaker[AsyncSession], channels: list[str], url: str, loops: int = 1
) -> None:
    ids = {f"FIC{100 + i}": "U1" for i in range(loops)}
    await add_loops(db, ids)
    await store_window(db, END, {loop_id: (30.0, "poor") for loop_id in ids})
    await add_rule(db, channels=channels, emails=["ops@plant.example"], webhook_url=url)
    await run(db, sorted(ids))


async def test_email_goes_through_starttls_and_login_with_the_key_as_message_id(
    db: async_sessionmaker[AsyncSession], smtp_server: SmtpServer
) -> None:
    smtp_server.received.clear()
    await one_alert(db, ["email"], "http://unused")
    notifier = Notifier(notifier_settings(smtp_server), db, name="n1")
    stats = await notifier.run_once(NOW)
    await notifier.aclose()
    assert (stats.claimed, stats.sent) == (1, 1)
    [mail] = smtp_server.received
    [row] = await outbox(db)
    assert mail.tls is True
    assert mail.login == SMTP_USER
    assert mail.recipients == ["ops@plant.example"]
    assert mail.message["Message-ID"] == f"<{row.idempotency_key}@clpm>"
    assert "FIC100: health 30.0 below 60" in str(mail.message["Subject"])
    assert row.sent_at is not None
    assert row.attempts == 1


async def test_a_failing_channel_is_retried_later_and_does_not_hold_up_the_other(
    db: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    smtp_server.received.clear()
    webhook_receiver.reset()
    smtp_server.fail_next = 1
    await one_alert(db, ["email", "webhook"], webhook_receiver.url)
    notifier = Notifier(notifier_settings(smtp_server), db, name="n1")
    first = await notifier.run_once(NOW)
    assert (first.claimed, first.sent, first.failed) == (2, 1, 1)
    assert len(webhook_receiver.requests) == 1
    email = next(r for r in await outbox(db) if r.channel == "email")
    assert email.sent_at is None
    assert email.attempts == 1
    assert "451" in (email.last_error or "")
    wait = (email.next_attempt_at - datetime.now(UTC)).total_seconds()
    assert 25 <= wait <= 61  # first retry: 60 s base with equal jitter, [30, 60] s
    assert (await notifier.run_once(datetime.now(UTC))).claimed == 0  # not due yet
    retried = await notifier.run_once(email.next_attempt_at + timedelta(seconds=1))
    await notifier.aclose()
    assert (retried.claimed, retried.sent) == (1, 1)
    assert len(smtp_server.received) == 1
    assert len(webhook_receiver.requests) == 1


async def test_webhook_is_signed_and_a_5xx_is_retried_with_the_same_key(
    db: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.reset()
    webhook_receiver.statuses.extend([503])
    await one_alert(db, ["webhook"], webhook_receiver.url)
    notifier = Notifier(notifier_settings(smtp_server), db, name="n1")
    assert (await notifier.run_once(NOW)).failed == 1
    [row] = await outbox(db)
    assert (await notifier.run_once(row.next_attempt_at)).sent == 1
    await notifier.aclose()
    first, second = webhook_receiver.requests
    assert first.signature_valid
    assert second.signature_valid
    assert first.idempotency_key == second.idempotency_key == row.idempotency_key
    assert second.body["loop_id"] == "FIC100"
    assert second.body["kind"] == "opened"


async def test_a_wrong_signature_key_is_detected_by_the_receiver(
    db: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.reset()
    await one_alert(db, ["webhook"], webhook_receiver.url)
    wrong = notifier_settings(smtp_server, alert_webhook_secret=SecretStr("not-the-key"))
    notifier = Notifier(wrong, db, name="n1")
    await notifier.run_once(NOW)
    await notifier.aclose()
    [request] = webhook_receiver.requests
    assert request.signature_valid is False


async def test_a_digest_email_and_webhook_list_the_alerts_and_count_the_rest(
    db: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    smtp_server.received.clear()
    webhook_receiver.reset()
    loops = await storm(db, 8, webhook_url=webhook_receiver.url)
    await run(db, loops, config=settings(alert_digest_threshold=5, alert_digest_listed=3))
    notifier = Notifier(notifier_settings(smtp_server), db, name="n1")
    assert (await notifier.run_once(NOW)).sent == 2
    await notifier.aclose()
    [mail] = smtp_server.received
    assert mail.message["Subject"] == "[CLPM] opened: 8 alerts (low health)"
    body = mail.message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "8 alerts opened: low health" in body
    listed = [line for line in body.splitlines() if line.startswith("- ")]
    assert [line.split(":")[0] for line in listed] == ["- FIC100", "- FIC101", "- FIC102"]
    assert "... and 5 more" in body
    [request] = webhook_receiver.requests
    assert request.signature_valid
    assert (request.body["count"], request.body["more"]) == (8, 5)
    assert [a["loop_id"] for a in request.body["alerts"]] == ["FIC100", "FIC101", "FIC102"]
    [row] = [r for r in await outbox(db) if r.channel == "webhook"]
    assert request.idempotency_key == row.idempotency_key


async def test_a_sender_stopped_between_claim_and_send_loses_nothing(
    db: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.reset()
    await one_alert(db, ["webhook"], webhook_receiver.url, loops=5)
    config = notifier_settings(smtp_server)
    claimed = await Notifier(config, db, name="dies").claim(NOW)
    assert len(claimed) == 5  # ... and the process ends here, before sending
    survivor = Notifier(config, db, name="restarted")
    assert (await survivor.run_once(NOW)).claimed == 0  # the leases still hold
    after = NOW + timedelta(seconds=config.alert_notify_lease_s + 1)
    assert (await survivor.run_once(after)).sent == 5
    assert (await survivor.run_once(after + timedelta(hours=1))).claimed == 0
    await survivor.aclose()
    keys = webhook_receiver.delivered_keys()
    assert sorted(keys) == sorted(r.idempotency_key for r in await outbox(db))  # type: ignore[type-var]
    assert len(set(keys)) == 5


async def test_a_digest_claimed_by_a_stopped_sender_is_delivered_once_after_the_lease(
    db: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.reset()
    loops = await storm(db, 30, channels=["webhook"], webhook_url=webhook_receiver.url)
    await run(db, loops, config=settings(alert_digest_threshold=20))
    config = notifier_settings(smtp_server)
    [claimed] = await Notifier(config, db, name="dies").claim(NOW)
    assert claimed.payload["count"] == 30  # ... and the process ends here, before sending
    survivor = Notifier(config, db, name="restarted")
    assert (await survivor.run_once(NOW)).claimed == 0
    after = NOW + timedelta(seconds=config.alert_notify_lease_s + 1)
    assert (await survivor.run_once(after)).sent == 1
    assert (await survivor.run_once(after + timedelta(hours=1))).claimed == 0
    await survivor.aclose()
    assert webhook_receiver.delivered_keys() == [claimed.idempotency_key]
    # the next evaluation of the same state tells nothing again
    held = await run(db, loops, NOW + timedelta(minutes=1), config=settings())
    assert (held["held"], held["outbox"]) == (30, 0)


async def test_a_sender_killed_mid_batch_delivers_each_alert_exactly_once(
    db: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    """The sender dies while the receiver handles its 3rd request: the 2 before are marked
    sent, the 3rd is sent again (same idempotency key, which the receiver uses to drop the
    repeat), the rest once each; nothing is sent a third time."""
    webhook_receiver.reset()
    webhook_receiver.hold_request = 3
    webhook_receiver.hold_s = 1.0
    await one_alert(db, ["webhook"], webhook_receiver.url, loops=6)
    config = notifier_settings(smtp_server)
    dying = asyncio.create_task(Notifier(config, db, name="dies").run_once(NOW))
    assert await asyncio.to_thread(webhook_receiver.holding.wait, 30)
    dying.cancel()  # the process is killed: the in-flight row's "sent" is never committed
    with pytest.raises(asyncio.CancelledError):
        await dying
    rows = await outbox(db)
    assert sum(r.sent_at is not None for r in rows) == 2
    survivor = Notifier(config, db, name="restarted")
    after = NOW + timedelta(seconds=config.alert_notify_lease_s + 1)
    assert (await survivor.run_once(after)).sent == 4
    assert (await survivor.run_once(after + timedelta(hours=1))).claimed == 0
    await survivor.aclose()
    rows = await outbox(db)
    assert all(r.sent_at is not None for r in rows)
    keys = webhook_receiver.delivered_keys()
    assert len(keys) == 7
    assert set(keys) == {r.idempotency_key for r in rows}  # every alert delivered ...
    repeated = {k for k in keys if keys.count(k) > 1}
    assert repeated == {rows[2].idempotency_key}  # ... and only the in-flight one repeated
    assert all(r.signature_valid for r in webhook_receiver.requests)


async def test_a_sender_process_killed_mid_batch_delivers_each_alert_exactly_once(
    db: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    """As above with a real process killed by SIGKILL while its 3rd request is in flight."""
    webhook_receiver.reset()
    webhook_receiver.hold_request = 3
    webhook_receiver.hold_s = 3.0
    await one_alert(db, ["webhook"], webhook_receiver.url, loops=6)
    config = notifier_settings(smtp_server)
    url = db.kw["bind"].url.render_as_string(hide_password=False)
    values = {
        "alert_webhook_secret": WEBHOOK_SECRET.decode(),
        "alert_notify_lease_s": config.alert_notify_lease_s,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.harness.notifier_child", url, json.dumps(values),
        NOW.isoformat(), "child", cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        assert await asyncio.to_thread(webhook_receiver.holding.wait, 60)
    finally:
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 30)
    assert child.returncode == -signal.SIGKILL
    rows = await outbox(db)
    assert sum(r.sent_at is not None for r in rows) == 2
    assert {r.claimed_by for r in rows if r.sent_at is None} == {"child"}
    survivor = Notifier(config, db, name="restarted")
    assert (await survivor.run_once(NOW)).claimed == 0  # the dead sender's lease holds
    after = NOW + timedelta(seconds=config.alert_notify_lease_s + 1)
    assert (await survivor.run_once(after)).sent == 4
    assert (await survivor.run_once(after + timedelta(hours=1))).claimed == 0
    await survivor.aclose()
    rows = await outbox(db)
    assert all(r.sent_at is not None for r in rows)
    keys = webhook_receiver.delivered_keys()
    assert set(keys) == {r.idempotency_key for r in rows}
    assert len(keys) == 7
    assert {k for k in keys if keys.count(k) > 1} == {rows[2].idempotency_key}
