"""Alert rules, alert events and the writes of one evaluation (events, outbox, inbox).

:meth:`AlertEventRepository.apply` writes everything an evaluation decided in the caller's
transaction: the alerts opened, held and cleared, one outbox row per e-mail address and
webhook of each notice, and one inbox entry per recipient. Nothing is sent here; the notifier
(``clpm_shared.notify``) delivers the outbox, so a notice is either committed with its alert
or not at all.

An alert storm is told in digests: when one rule has more than ``digest_threshold`` notices of
one kind (opened, reminder, cleared) in one evaluation, they become one outbox row per e-mail
address and webhook and one inbox entry per recipient, naming the alerts (the first
``digest_listed`` of them; the rest are counted). Each alert is still written, and counted
as notified, on its own, so de-duplication and reminders work as for single notices. A
digest's idempotency key is derived from its alerts and their notice counts, so a repeat
of the same digest carries the same key and a later one (a reminder) a new key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    Table,
    Text,
    TypeDecorator,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.alerts import (
    FLEET,
    AlertRule,
    Evaluation,
    FleetState,
    NoticeKind,
    OpenAlert,
    QuietHours,
)
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
        self,
        evaluation: Evaluation,
        rules: Mapping[int, AlertRule],
        now: datetime,
        *,
        digest_threshold: int | None = None,
        digest_listed: int = 50,
    ) -> ApplyStats:
        """Write ``evaluation`` (the caller commits). New alerts another evaluator opened
        first are skipped (the partial unique index), as are their notices. A rule's notices
        of one kind beyond ``digest_threshold`` (None: never) are told in digests naming
        ``digest_listed`` alerts (the module docstring)."""
        notices: list[tuple[int, NoticeKind]] = []
        fresh: list[NoticedAlert] = []
        opened = 0
        if evaluation.new:
            # a new alert told now is counted as notified when it is written: no second pass
            rows = await self._bulk_insert(
                _EVENTS,
                [
                    {
                        "rule_id": a.rule_id,
                        "loop_id": a.loop_id,
                        "key": a.key,
                        "state": a.state,
                        "value": a.value,
                        "message": a.message,
                        "first_seen": now,
                        "last_seen": now,
                        "last_notified_at": now if a.notify else None,
                        "notify_count": 1 if a.notify else 0,
                    }
                    for a in evaluation.new
                ],
                conflict=(("rule_id", "loop_id", "key"), "state <> 'cleared'"),
                returning=("id", "rule_id", "loop_id", "key"),
            )
            ids = {(rule_id, loop_id, key): event_id for event_id, rule_id, loop_id, key in rows}
            opened = len(ids)
            for a in evaluation.new:
                event_id = ids.get((a.rule_id, a.loop_id, a.key))
                if a.notify and event_id is not None:
                    fresh.append(
                        NoticedAlert(
                            event_id, a.rule_id, a.loop_id, a.key, a.value, a.message, now, 1
                        )
                    )
        if evaluation.held:
            held = [h.event_id for h in evaluation.held]
            for batch in self._chunks(held):
                await self.session.execute(
                    update(AlertEvent)
                    .where(self._among(AlertEvent.id, batch))
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
            for batch in self._chunks(fired):
                await self.session.execute(
                    update(AlertEvent)
                    .where(self._among(AlertEvent.id, batch), AlertEvent.state == "pending")
                    .values(state="open")
                    .execution_options(synchronize_session=False)
                )
            await self._move(evaluation, now)
            notices.extend((h.event_id, h.notice) for h in evaluation.held if h.notice)
        cleared = [event_id for event_id, _ in evaluation.cleared]
        for batch in self._chunks(cleared):
            await self.session.execute(
                update(AlertEvent)
                .where(self._among(AlertEvent.id, batch), AlertEvent.state.in_(ACTIVE))
                .values(state="cleared", cleared_at=now)
                .execution_options(synchronize_session=False)
            )
        notices.extend((event_id, "cleared") for event_id, notify in evaluation.cleared if notify)
        outbox, inbox = await self._notify(
            notices, fresh, rules, now, digest_threshold, digest_listed
        )
        return ApplyStats(opened, len(evaluation.held), len(cleared), outbox, inbox)

    async def _bulk_insert(
        self,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        conflict: tuple[Sequence[str], str | None] | None = None,
        returning: Sequence[str] = (),
    ) -> list[tuple[Any, ...]]:
        """Insert ``rows`` (all with the same keys), skipping those that violate the unique
        index ``conflict`` = (columns, predicate of a partial index or None); returns the
        ``returning`` columns of the rows inserted.

        On PostgreSQL one statement whatever the number of rows: each column travels as one
        array parameter and ``unnest`` turns the arrays back into rows (``INSERT ... SELECT
        FROM unnest(...)``), which costs a fraction of multi-row VALUES lists (one bound
        parameter per cell, a statement per thousand rows). Elsewhere SQLAlchemy's batched
        executemany."""
        if not rows:
            return []
        columns = list(rows[0])
        if self._postgres and not conflict and not returning:
            await self._copy(table, columns, rows)
            return []
        if self._postgres:
            arrays: list[Any] = []
            scalars: dict[str, Any] = {}
            varying: list[tuple[str, str, bool]] = []  # column, label, JSON
            for n, name in enumerate(columns):
                column_type: Any = table.c[name].type
                is_json = isinstance(column_type, JSON)  # sent as text, cast back to JSONB
                element: Any = (
                    Text()
                    if is_json
                    else column_type.impl_instance
                    if isinstance(column_type, TypeDecorator)
                    else column_type
                )
                first = rows[0][name]
                if (
                    not is_json
                    and (varying or n < len(columns) - 1)
                    and all(row[name] == first for row in rows)
                ):
                    # the same in every row (a clock, a counter, a kind): one parameter
                    scalars[name] = cast(bindparam(f"c{n}", first, type_=element), element)
                    continue
                values = [row[name] for row in rows]
                if is_json:
                    dumped: dict[int, str] = {}  # a payload shared by several rows: once
                    values = [
                        None
                        if v is None
                        else dumped.get(id(v)) or dumped.setdefault(id(v), json.dumps(v))
                        for v in values
                    ]
                arrays.append(bindparam(f"c{n}", values, type_=postgresql.ARRAY(element)))
                varying.append((name, f"c{n}", is_json))
            rowset = (
                func.unnest(*arrays)
                .table_valued(*(label for _, label, _ in varying))
                .render_derived()
            )
            cells = {
                name: cast(rowset.c[label], postgresql.JSONB) if is_json else rowset.c[label]
                for name, label, is_json in varying
            }
            source = select(*(cells[name] if name in cells else scalars[name] for name in columns))
            statement: Any = postgresql.insert(table).from_select(columns, source)
            if conflict is not None:
                index, where = conflict
                statement = statement.on_conflict_do_nothing(
                    index_elements=list(index), index_where=text(where) if where else None
                )
            if returning:
                statement = statement.returning(*(table.c[name] for name in returning))
            result = await self.session.execute(statement)
            return [tuple(row) for row in result] if returning else []
        insert = sqlite.insert(table)
        if conflict is not None:
            index, where = conflict
            insert = insert.on_conflict_do_nothing(
                index_elements=list(index), index_where=text(where) if where else None
            )
        if not returning:
            await self.session.execute(insert, list(rows))
            return []
        statement = insert.returning(*(table.c[name] for name in returning))
        out: list[tuple[Any, ...]] = []
        for offset in range(0, len(rows), _BATCH):
            result = await self.session.execute(statement, list(rows[offset : offset + _BATCH]))
            out.extend(tuple(row) for row in result)
        return out

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
            for batch in self._chunks(ids):
                await self.session.execute(
                    update(AlertEvent)
                    .where(self._among(AlertEvent.id, batch), AlertEvent.state.in_(ACTIVE))
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if state == "acked":
                    # a digest's entry (no loop) tells other alerts too: it stays unread
                    await self.session.execute(
                        update(InboxEntry)
                        .where(
                            self._among(InboxEntry.event_id, batch),
                            InboxEntry.read_at.is_(None),
                            InboxEntry.loop_id != FLEET,
                        )
                        .values(read_at=now)
                        .execution_options(synchronize_session=False)
                    )

    @property
    def _postgres(self) -> bool:
        return self.session.bind is not None and self.session.bind.dialect.name == "postgresql"

    def _chunks(self, ids: Sequence[int]) -> Iterable[list[int]]:
        """``ids`` in one piece on PostgreSQL (one array parameter), else in IN-list batches."""
        if self._postgres:
            return [list(ids)] if ids else []
        return _batches(ids)

    def _among(self, column: Any, ids: list[int]) -> Any:
        """``column`` is one of ``ids`` (a chunk of :meth:`_chunks`)."""
        if self._postgres:
            return column == any_(literal(ids, type_=postgresql.ARRAY(Integer)))
        return column.in_(ids)

    async def _copy(
        self, table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """PostgreSQL's COPY (binary, through the session's own connection and transaction):
        the cheapest way in for rows that need no conflict check and no ids back."""
        json_columns = {name for name in columns if isinstance(table.c[name].type, JSON)}
        dumped: dict[int, str] = {}  # a payload shared by several rows: serialised once

        def cell(name: str, value: Any) -> Any:
            if name not in json_columns or value is None:
                return value
            text_value = dumped.get(id(value))
            if text_value is None:
                text_value = dumped[id(value)] = json.dumps(value)
            return text_value

        records = [tuple(cell(name, row[name]) for name in columns) for row in rows]
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=records, columns=list(columns)
        )

    async def _notify(
        self,
        notices: Sequence[tuple[int, NoticeKind]],
        fresh: Sequence[NoticedAlert],
        rules: Mapping[int, AlertRule],
        now: datetime,
        digest_threshold: int | None,
        digest_listed: int,
    ) -> tuple[int, int]:
        """Count the notices on their alerts (those of ``fresh``, opened now, are counted
        already), then write their outbox rows and inbox entries: one per notice, or one
        digest per rule and kind with more than ``digest_threshold`` notices."""
        if not notices and not fresh:
            return 0, 0
        kinds: dict[int, NoticeKind] = dict(notices)
        events: dict[int, NoticedAlert] = {}
        for batch in self._chunks(list(kinds)):
            rows = await self.session.execute(
                update(AlertEvent)
                .where(self._among(AlertEvent.id, batch))
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
        told: dict[tuple[int, NoticeKind], list[NoticedAlert]] = {}
        for event in fresh:
            told.setdefault((event.rule_id, "opened"), []).append(event)
        for event_id, kind in notices:
            noticed = events.get(event_id)
            if noticed is not None:
                told.setdefault((noticed.rule_id, kind), []).append(noticed)
        new_ids = {event.id for event in fresh}
        outbox: list[dict[str, Any]] = []
        outbox_new: list[dict[str, Any]] = []  # of alerts opened now: no row has their keys
        inbox: list[dict[str, Any]] = []
        hashed_targets: dict[str, str] = {}
        for (rule_id, kind), group in told.items():
            rule = rules.get(rule_id)
            if rule is None:
                continue
            notes = (
                [_digest_note(group, rule, kind, now, digest_listed)]
                if digest_threshold is not None and len(group) > digest_threshold
                else [_single_note(event, rule, kind, now) for event in group]
            )
            targets: list[tuple[str, str]] = []
            if "email" in rule.channels:
                targets.extend(("email", address) for address in rule.emails)
            if "webhook" in rule.channels and rule.webhook_url:
                targets.append(("webhook", rule.webhook_url))
            for note in notes:
                fresh_only = all(event_id in new_ids for event_id in note.event_ids)
                for channel, target in dict.fromkeys(targets):
                    hashed = hashed_targets.get(target)
                    if hashed is None:
                        hashed = hashlib.sha256(target.encode()).hexdigest()[:12]
                        hashed_targets[target] = hashed
                    (outbox_new if fresh_only else outbox).append(
                        {
                            "event_id": note.event_id,
                            "channel": channel,
                            "target": target,
                            "kind": kind,
                            "subject": f"[CLPM] {note.title}",
                            "payload": note.payload,
                            "idempotency_key": f"clpm-{note.key}-{channel}-{hashed}",
                            "attempts": 0,
                            "next_attempt_at": now,
                        }
                    )
                if "inbox" in rule.channels:
                    inbox.extend(
                        {
                            "username": username,
                            "event_id": note.event_id,
                            "rule_id": rule.rule_id,
                            "loop_id": note.loop_id,
                            "kind": kind,
                            "title": note.inbox_title,
                            "created_at": now,
                        }
                        for username in rule.recipients
                    )
        await self._bulk_insert(_OUTBOX, outbox_new)
        await self._bulk_insert(_OUTBOX, outbox, conflict=(("idempotency_key",), None))
        await self._bulk_insert(_INBOX, inbox)
        return len(outbox_new) + len(outbox), len(inbox)


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


@dataclass(frozen=True)
class _Note:
    """One notification to write: of one alert, or a digest of several."""

    event_id: int
    """The alert the outbox row and inbox entry belong to (a digest's first)."""
    event_ids: tuple[int, ...]
    loop_id: str
    title: str
    inbox_title: str
    payload: dict[str, Any]
    key: str
    """The idempotency key before its channel and target."""


def _single_note(event: NoticedAlert, rule: AlertRule, kind: NoticeKind, now: datetime) -> _Note:
    title = f"{kind}: {event.message} ({rule.name})"
    return _Note(
        event.id,
        (event.id,),
        event.loop_id,
        title,
        title,
        notice_payload(event, rule, kind, now),
        f"{event.id}-{event.notify_count}-{kind}",
    )


_DIGEST_TITLE_NAMES = 5
"""Loops (or keys) an inbox entry of a digest names."""


def _digest_note(
    events: Sequence[NoticedAlert], rule: AlertRule, kind: NoticeKind, now: datetime, listed: int
) -> _Note:
    ordered = sorted(events, key=lambda e: (e.loop_id, e.key, e.id))
    title = f"{kind}: {len(ordered)} alerts ({rule.name})"
    names = [e.loop_id or e.key for e in ordered[:_DIGEST_TITLE_NAMES]]
    rest = len(ordered) - len(names)
    inbox_title = f"{title}: {', '.join(names)}" + (f" and {rest} more" if rest else "")
    told = hashlib.sha256(
        ",".join(f"{e.id}:{e.notify_count}" for e in sorted(ordered, key=lambda e: e.id)).encode()
    ).hexdigest()[:16]
    return _Note(
        min(e.id for e in ordered),
        tuple(e.id for e in ordered),
        FLEET,
        title,
        inbox_title,
        digest_payload(ordered, rule, kind, now, listed),
        f"digest-{rule.rule_id}-{kind}-{told}",
    )


_DONE = {"opened": "opened", "reminder": "still open", "cleared": "cleared"}


def digest_payload(
    events: Sequence[NoticedAlert], rule: AlertRule, kind: NoticeKind, now: datetime, listed: int
) -> dict[str, Any]:
    """The JSON body of a webhook (and the facts of an e-mail) about many notices of one rule:
    ``count`` alerts, the first ``listed`` of them in ``alerts``, the number of the rest in
    ``more``."""
    shown = events[:listed]
    return {
        "kind": kind,
        "digest": True,
        "rule_id": rule.rule_id,
        "rule": rule.name,
        "condition": rule.condition,
        "state": "cleared" if kind == "cleared" else "open",
        "count": len(events),
        "message": f"{len(events)} alerts {_DONE[kind]}: {rule.name}",
        "alerts": [
            {
                "event_id": e.id,
                "loop_id": e.loop_id or None,
                "key": e.key,
                "value": e.value,
                "message": e.message,
                "first_seen": e.first_seen.isoformat(),
            }
            for e in shown
        ],
        "more": len(events) - len(shown),
        "at": now.isoformat(),
    }


def _batches(ids: Sequence[int]) -> Iterable[list[int]]:
    for offset in range(0, len(ids), _BATCH):
        yield list(ids[offset : offset + _BATCH])


def recent_since(end: datetime, window: timedelta) -> datetime:
    """Start of the span whose windows an evaluation at ``end`` reads: the latest two
    windows plus one for a cycle that ran late."""
    return end - 3 * window
