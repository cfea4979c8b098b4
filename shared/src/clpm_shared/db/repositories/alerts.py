"""Alert rules, alert events and the writes of one evaluation (events, outbox, inbox).

:meth:`AlertEventRepository.apply` writes everything an evaluation decided in the caller's
transaction: the alerts opened, held and cleared, one outbox row per e-mail address and
webhook of each notice, and one inbox entry per recipient. Nothing is sent here; the notifier
(``clpm_shared.notify``) delivers the outbox, so a notice is either committed with its alert
or not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Table, bindparam, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.alerts import AlertRule, Evaluation, FleetState, OpenAlert, QuietHours
from clpm_shared.db.models import (
    AlertEvent,
    AlertRuleRow,
    DiagnosticResult,
    InboxEntry,
    KpiResult,
    Loop,
    NotificationOutbox,
    WorkerHeartbeat,
)

_BATCH = 1000
# Core tables for the bulk writes: SQLAlchemy's ORM bulk path costs several times more per row
_EVENTS: Table = AlertEvent.__table__  # type: ignore[assignment]
_OUTBOX: Table = NotificationOutbox.__table__  # type: ignore[assignment]
_INBOX: Table = InboxEntry.__table__  # type: ignore[assignment]
ACTIVE = ("pending", "open", "acked")
"""States of an alert whose condition holds (``acked``: its loop or finding is acknowledged)."""


def rule_of(row: AlertRuleRow) -> AlertRule:
    """The evaluation's view of a stored rule."""
    quiet = None
    if row.quiet_start and row.quiet_end:
        quiet = QuietHours(
            time.fromisoformat(row.quiet_start),
            time.fromisoformat(row.quiet_end),
            row.quiet_timezone or "UTC",
        )
    return AlertRule(
        rule_id=row.id,
        name=row.name,
        scope=row.scope,  # type: ignore[arg-type]
        condition=row.condition,  # type: ignore[arg-type]
        scope_value=row.scope_value,
        threshold=row.threshold,
        for_s=row.for_s,
        categories=tuple(row.categories or ()),
        statuses=tuple(row.statuses or ()),
        services=tuple(row.services or ()),
        renotify_s=row.renotify_s,
        channels=tuple(row.channels or ()),
        recipients=tuple(row.recipients or ()) or ((row.created_by,) if row.created_by else ()),
        emails=tuple(row.emails or ()),
        webhook_url=row.webhook_url,
        quiet_hours=quiet,
        enabled=row.enabled,
    )


class AlertRuleRepository:
    """CRUD of ``alert_rules``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self) -> list[AlertRuleRow]:
        rows = await self.session.execute(select(AlertRuleRow).order_by(AlertRuleRow.id))
        return list(rows.scalars())

    async def get(self, rule_id: int) -> AlertRuleRow | None:
        return await self.session.get(AlertRuleRow, rule_id)

    async def create(self, values: Mapping[str, Any], by: str) -> AlertRuleRow:
        row = AlertRuleRow(**values, created_by=by, updated_by=by)
        self.session.add(row)
        await self.session.flush()
        await self.session.refresh(row)
        return row

    async def update(self, rule_id: int, values: Mapping[str, Any], by: str) -> AlertRuleRow | None:
        row = await self.get(rule_id)
        if row is None:
            return None
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_by = by
        await self.session.flush()
        await self.session.refresh(row)
        return row

    async def delete(self, rule_id: int) -> bool:
        result = await self.session.execute(delete(AlertRuleRow).where(AlertRuleRow.id == rule_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ApplyStats:
    """What :meth:`AlertEventRepository.apply` wrote."""

    opened: int
    held: int
    cleared: int
    outbox: int
    inbox: int


class AlertEventRepository:
    """Reads for an evaluation (fleet state, open alerts) and the writes of its outcome."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------------ reading

    async def fleet_state(
        self,
        loop_ids: Sequence[str],
        since: datetime,
        data_since: datetime | None,
        until: datetime | None = None,
    ) -> FleetState:
        """The latest two windows of each of ``loop_ids`` starting at or after ``since`` and
        ending by ``until`` (None: no bound; health, status, previous status, the latest
        window's findings), the end of the last window with data since ``data_since`` (None:
        not needed, all ``nan``) and the newest heartbeat per worker service."""
        bounded = [] if until is None else [KpiResult.window_end <= until]
        wanted = set(loop_ids)
        places = await self.session.execute(
            select(Loop.loop_id, Loop.unit, Loop.area).where(Loop.deleted_at.is_(None))
        )
        where = {loop_id: (unit, area) for loop_id, unit, area in places if loop_id in wanted}
        windows = await self.session.execute(
            select(
                KpiResult.loop_id, KpiResult.window_start, KpiResult.health_score, KpiResult.status
            )
            .where(KpiResult.window_start >= since, *bounded)
            .order_by(KpiResult.loop_id, KpiResult.window_start.desc())
        )
        latest: dict[str, list[Any]] = {}
        for loop_id, start, health, status in windows:
            if loop_id not in where:
                continue
            seen = latest.get(loop_id)
            if seen is None:
                latest[loop_id] = [start, health, status, None]
            elif seen[3] is None and start < seen[0]:
                seen[3] = status
        last_data: dict[str, float] = {}
        if data_since is not None:
            ends = await self.session.execute(
                select(KpiResult.loop_id, func.max(KpiResult.window_end))
                .where(KpiResult.window_start >= data_since, KpiResult.samples > 0, *bounded)
                .group_by(KpiResult.loop_id)
            )
            last_data = {loop_id: end.timestamp() for loop_id, end in ends if end is not None}
        found = await self.session.execute(
            select(
                DiagnosticResult.loop_id, DiagnosticResult.window_start, DiagnosticResult.category
            ).where(DiagnosticResult.window_start >= since)
        )
        findings: dict[str, set[str]] = {}
        for loop_id, start, category in found:
            seen = latest.get(loop_id)
            if seen is not None and seen[0] == start:
                findings.setdefault(loop_id, set()).add(category)
        beats = await self.session.execute(
            select(WorkerHeartbeat.service, func.max(WorkerHeartbeat.last_seen)).group_by(
                WorkerHeartbeat.service
            )
        )
        rows = []
        for loop_id in sorted(where):
            unit, area = where[loop_id]
            seen = latest.get(loop_id)
            rows.append(
                {
                    "loop_id": loop_id,
                    "unit": unit,
                    "area": area,
                    "health": seen[1] if seen else None,
                    "status": seen[2] if seen else None,
                    "previous_status": seen[3] if seen else None,
                    "last_data_at": last_data.get(loop_id),
                }
            )
        return FleetState.from_rows(
            rows,
            {loop_id: frozenset(c) for loop_id, c in findings.items()},
            {service: seen.timestamp() for service, seen in beats if seen is not None},
        )

    async def open_alerts(self) -> list[OpenAlert]:
        """Every pending, open or acknowledged alert."""
        rows = await self.session.execute(
            select(
                AlertEvent.id,
                AlertEvent.rule_id,
                AlertEvent.loop_id,
                AlertEvent.key,
                AlertEvent.state,
                AlertEvent.first_seen,
                AlertEvent.last_notified_at,
            ).where(AlertEvent.state.in_(ACTIVE))
        )
        return [
            OpenAlert(
                event_id=event_id,
                rule_id=rule_id,
                loop_id=loop_id,
                key=key,
                state="pending" if state == "pending" else "acked" if state == "acked" else "open",
                first_seen=first_seen,
                last_notified_at=last_notified_at,
            )
            for event_id, rule_id, loop_id, key, state, first_seen, last_notified_at in rows
        ]

    async def list_events(
        self, state: str | None, loop_id: str | None, limit: int
    ) -> list[AlertEvent]:
        """The newest alerts (by last seen), optionally of one state and loop."""
        statement = select(AlertEvent).order_by(AlertEvent.last_seen.desc(), AlertEvent.id.desc())
        if state is not None:
            statement = statement.where(AlertEvent.state == state)
        if loop_id is not None:
            statement = statement.where(AlertEvent.loop_id == loop_id)
        rows = await self.session.execute(statement.limit(limit))
        return list(rows.scalars())

    # ------------------------------------------------------------------ writing

    async def apply(
        self, evaluation: Evaluation, rules: Mapping[int, AlertRule], now: datetime
    ) -> ApplyStats:
        """Write ``evaluation`` (the caller commits). New alerts another evaluator opened
        first are skipped (the partial unique index), as are their notices."""
        insert = _insert(self.session)
        notices: list[tuple[int, Literal["opened", "reminder", "cleared"]]] = []
        opened: dict[tuple[int, str, str], int] = {}
        if evaluation.new:
            statement = (
                insert(_EVENTS)
                .on_conflict_do_nothing(
                    index_elements=["rule_id", "loop_id", "key"],
                    index_where=text("state <> 'cleared'"),
                )
                .returning(_EVENTS.c.id, _EVENTS.c.rule_id, _EVENTS.c.loop_id, _EVENTS.c.key)
            )
            values = [
                {
                    "rule_id": a.rule_id,
                    "loop_id": a.loop_id,
                    "key": a.key,
                    "state": a.state,
                    "value": a.value,
                    "message": a.message,
                    "first_seen": now,
                    "last_seen": now,
                    "notify_count": 0,
                }
                for a in evaluation.new
            ]
            for offset in range(0, len(values), _BATCH):
                result = await self.session.execute(statement, values[offset : offset + _BATCH])
                for event_id, rule_id, loop_id, key in result:
                    opened[(rule_id, loop_id, key)] = event_id
            notices.extend(
                (opened[(a.rule_id, a.loop_id, a.key)], "opened")
                for a in evaluation.new
                if a.notify and (a.rule_id, a.loop_id, a.key) in opened
            )
        if evaluation.held:
            held = [h.event_id for h in evaluation.held]
            for batch in _batches(held):
                await self.session.execute(
                    update(AlertEvent)
                    .where(AlertEvent.id.in_(batch))
                    .values(last_seen=now)
                    .execution_options(synchronize_session=False)
                )
            # the value and message change with every window; they are rewritten when a
            # notice tells them (one statement prepared once, executed per row)
            told = [h for h in evaluation.held if h.notice or h.fire]
            if told:
                table: Table = AlertEvent.__table__  # type: ignore[assignment]
                await self.session.execute(
                    update(table)
                    .where(table.c.id == bindparam("event_id"))
                    .values(value=bindparam("v"), message=bindparam("m")),
                    [{"event_id": h.event_id, "v": h.value, "m": h.message} for h in told],
                )
            fired = [h.event_id for h in evaluation.held if h.fire]
            for batch in _batches(fired):
                await self.session.execute(
                    update(AlertEvent)
                    .where(AlertEvent.id.in_(batch), AlertEvent.state == "pending")
                    .values(state="open")
                    .execution_options(synchronize_session=False)
                )
            await self._move(evaluation, now)
            notices.extend((h.event_id, h.notice) for h in evaluation.held if h.notice)
        cleared = [event_id for event_id, _ in evaluation.cleared]
        for batch in _batches(cleared):
            await self.session.execute(
                update(AlertEvent)
                .where(AlertEvent.id.in_(batch), AlertEvent.state.in_(ACTIVE))
                .values(state="cleared", cleared_at=now)
                .execution_options(synchronize_session=False)
            )
        notices.extend((event_id, "cleared") for event_id, notify in evaluation.cleared if notify)
        outbox, inbox = await self._notify(notices, rules, now)
        return ApplyStats(len(opened), len(evaluation.held), len(cleared), outbox, inbox)

    async def _move(self, evaluation: Evaluation, now: datetime) -> None:
        """Acknowledged alerts move to ``acked`` and their unread inbox entries are marked
        read (the inbox no longer counts them); alerts whose acknowledgement ended move back
        to pending / open with their notices forgotten, so they are told as newly opened."""
        moves: dict[tuple[str, bool], list[int]] = {}
        for held in evaluation.held:
            if held.state is not None:
                moves.setdefault((held.state, held.reset_notified), []).append(held.event_id)
        for (state, reset), ids in moves.items():
            values: dict[str, Any] = {"state": state}
            if reset:
                values["last_notified_at"] = None
            for batch in _batches(ids):
                await self.session.execute(
                    update(AlertEvent)
                    .where(AlertEvent.id.in_(batch), AlertEvent.state.in_(ACTIVE))
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if state == "acked":
                    await self.session.execute(
                        update(InboxEntry)
                        .where(InboxEntry.event_id.in_(batch), InboxEntry.read_at.is_(None))
                        .values(read_at=now)
                        .execution_options(synchronize_session=False)
                    )

    async def _notify(
        self,
        notices: Sequence[tuple[int, Literal["opened", "reminder", "cleared"]]],
        rules: Mapping[int, AlertRule],
        now: datetime,
    ) -> tuple[int, int]:
        """Count the notices on their alerts, then write their outbox rows and inbox entries."""
        if not notices:
            return 0, 0
        kinds = dict(notices)
        events: dict[int, NoticedAlert] = {}
        for batch in _batches(list(kinds)):
            rows = await self.session.execute(
                update(AlertEvent)
                .where(AlertEvent.id.in_(batch))
                .values(last_notified_at=now, notify_count=AlertEvent.notify_count + 1)
                .returning(
                    AlertEvent.id,
                    AlertEvent.rule_id,
                    AlertEvent.loop_id,
                    AlertEvent.key,
                    AlertEvent.value,
                    AlertEvent.message,
                    AlertEvent.first_seen,
                    AlertEvent.notify_count,
                )
                .execution_options(synchronize_session=False)
            )
            for event_id, rule_id, loop_id, key, value, message, first_seen, count in rows:
                events[event_id] = NoticedAlert(
                    event_id, rule_id, loop_id, key, value, message, first_seen, count
                )
        outbox: list[dict[str, Any]] = []
        inbox: list[dict[str, Any]] = []
        for event_id, kind in notices:
            event = events.get(event_id)
            rule = rules.get(event.rule_id) if event is not None else None
            if event is None or rule is None:
                continue
            subject = f"[CLPM] {kind}: {event.message} ({rule.name})"
            payload = notice_payload(event, rule, kind, now)
            targets: list[tuple[str, str]] = []
            if "email" in rule.channels:
                targets.extend(("email", address) for address in rule.emails)
            if "webhook" in rule.channels and rule.webhook_url:
                targets.append(("webhook", rule.webhook_url))
            for channel, target in targets:
                digest = hashlib.sha256(target.encode()).hexdigest()[:12]
                outbox.append(
                    {
                        "event_id": event.id,
                        "channel": channel,
                        "target": target,
                        "kind": kind,
                        "subject": subject,
                        "payload": payload,
                        "idempotency_key": (
                            f"clpm-{event.id}-{event.notify_count}-{kind}-{channel}-{digest}"
                        ),
                        "attempts": 0,
                        "next_attempt_at": now,
                    }
                )
            if "inbox" in rule.channels:
                inbox.extend(
                    {
                        "username": username,
                        "event_id": event.id,
                        "rule_id": rule.rule_id,
                        "loop_id": event.loop_id,
                        "kind": kind,
                        "title": subject.removeprefix("[CLPM] "),
                        "created_at": now,
                    }
                    for username in rule.recipients
                )
        if outbox:
            insert = _insert(self.session)
            await self.session.execute(
                insert(_OUTBOX).on_conflict_do_nothing(index_elements=["idempotency_key"]),
                outbox,
            )
        if inbox:
            await self.session.execute(_INBOX.insert(), inbox)
        return len(outbox), len(inbox)


@dataclass(frozen=True)
class NoticedAlert:
    """The facts of an alert that a notice tells."""

    id: int
    rule_id: int
    loop_id: str
    key: str
    value: float | None
    message: str
    first_seen: datetime
    notify_count: int


def notice_payload(
    event: NoticedAlert, rule: AlertRule, kind: str, now: datetime
) -> dict[str, Any]:
    """The JSON body of a webhook (and the facts of an e-mail) about one notice."""
    return {
        "kind": kind,
        "event_id": event.id,
        "rule_id": rule.rule_id,
        "rule": rule.name,
        "condition": rule.condition,
        "loop_id": event.loop_id or None,
        "key": event.key,
        "state": "cleared" if kind == "cleared" else "open",
        "value": event.value,
        "message": event.message,
        "first_seen": event.first_seen.isoformat(),
        "at": now.isoformat(),
    }


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _batches(ids: Sequence[int]) -> Iterable[list[int]]:
    for offset in range(0, len(ids), _BATCH):
        yield list(ids[offset : offset + _BATCH])


def recent_since(end: datetime, window: timedelta) -> datetime:
    """Start of the span whose windows an evaluation at ``end`` reads: the latest two
    windows plus one for a cycle that ran late."""
    return end - 3 * window
