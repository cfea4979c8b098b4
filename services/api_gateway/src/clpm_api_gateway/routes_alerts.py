"""``/alerts`` (rules and alerts) and ``/inbox`` (the caller's notifications).

Reading rules and alerts needs ``viewer``; creating, changing and deleting rules ``engineer``
(or ``admin``). The inbox is the caller's own: entries of other users are never listed, and
marking one of them read answers 404 as for an unknown id.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_api_gateway.dependencies import SessionDep
from clpm_api_gateway.problems import PROBLEM_401, PROBLEM_422, PROBLEM_503
from clpm_api_gateway.security import CurrentPrincipal, EngineerPrincipal, require_role
from clpm_shared.alerts import CHANNELS, CONDITIONS, SCOPES, validate_rule
from clpm_shared.db.models import AlertEvent, AlertRuleRow, InboxEntry
from clpm_shared.db.repositories.alerts import AlertEventRepository, AlertRuleRepository
from clpm_shared.db.repositories.audit import AuditRepository
from clpm_shared.db.repositories.notifications import InboxRepository
from clpm_shared.web.problems import (
    TYPE_INVALID_PARAMETER,
    TYPE_NOT_FOUND,
    ParameterError,
    ProblemError,
)

alerts = APIRouter(
    prefix="/alerts",
    tags=["alerts"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)
inbox = APIRouter(
    prefix="/inbox",
    tags=["inbox"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)
routers = (alerts, inbox)

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_NAME = r"^[^\s,;]+$"
ScopeName = Literal["loop", "unit", "area", "fleet"]
ConditionName = Literal[
    "health_below", "finding", "status_change", "stale_data", "heartbeat_missing"
]
ChannelName = Literal["inbox", "email", "webhook"]
assert set(ScopeName.__args__) == set(SCOPES)  # type: ignore[attr-defined]
assert set(ConditionName.__args__) == set(CONDITIONS)  # type: ignore[attr-defined]
assert set(ChannelName.__args__) == set(CHANNELS)  # type: ignore[attr-defined]

PROBLEM_404: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown id"}}


def _inbox_only() -> list[ChannelName]:
    return ["inbox"]


class AlertRuleIn(BaseModel):
    """An alert rule as created or replaced (PUT replaces every field)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["Unit 100 health"])
    scope: ScopeName = "fleet"
    scope_value: str | None = Field(default=None, max_length=128, examples=["U100"])
    condition: ConditionName = Field(examples=["health_below"])
    threshold: float | None = Field(
        default=None,
        description="health_below: the health level (0-100); stale_data and "
        "heartbeat_missing: seconds without data / heartbeat",
        examples=[60],
    )
    for_s: float = Field(default=0.0, ge=0, le=30 * 86400)
    categories: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list)
    statuses: list[Literal["good", "fair", "poor", "critical", "offline", "not_assessed"]] = Field(
        default_factory=list
    )
    services: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list)
    renotify_s: float = Field(default=0.0, ge=0, le=30 * 86400)
    channels: list[ChannelName] = Field(default_factory=_inbox_only)
    recipients: list[Annotated[str, Field(pattern=_NAME, max_length=256)]] = Field(
        default_factory=list
    )
    emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)]] = Field(
        default_factory=list
    )
    webhook_url: str | None = Field(default=None, max_length=2000)
    quiet_start: str | None = Field(default=None, pattern=_TIME.pattern, examples=["22:00"])
    quiet_end: str | None = Field(default=None, pattern=_TIME.pattern, examples=["06:00"])
    quiet_timezone: str | None = Field(default=None, max_length=64, examples=["Europe/Berlin"])
    enabled: bool = True


class AlertRuleOut(AlertRuleIn):
    model_config = ConfigDict(extra="ignore", from_attributes=True)

    id: int
    created_by: str | None
    created_at: datetime | None
    updated_by: str | None
    updated_at: datetime | None


class AlertEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_id: int
    loop_id: str | None
    key: str
    state: str
    value: float | None
    message: str
    first_seen: datetime
    last_seen: datetime
    last_notified_at: datetime | None
    notify_count: int
    cleared_at: datetime | None


class InboxEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: int
    rule_id: int
    loop_id: str | None
    kind: str
    title: str
    created_at: datetime
    read_at: datetime | None


class InboxPage(BaseModel):
    items: list[InboxEntryOut]
    unread: int = Field(description="unread entries of the caller in all")


class UnreadCount(BaseModel):
    unread: int


class MarkedRead(BaseModel):
    marked: int
    unread: int


RuleIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="Alert rule id")]
EntryIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="Inbox entry id")]


def _not_found(what: str, ident: int) -> ProblemError:
    return ProblemError(
        404,
        f"{what} {ident} does not exist",
        type_=TYPE_NOT_FOUND,
        title=f"{what.capitalize()} not found",
        extensions={"id": ident},
    )


def _checked(body: AlertRuleIn) -> dict[str, Any]:
    """The body as column values, after the checks across fields (422 naming the field)."""
    problems = validate_rule(
        body.scope,
        body.condition,
        body.scope_value,
        body.threshold,
        tuple(body.channels),
        tuple(body.emails),
        body.webhook_url,
        body.quiet_timezone,
    )
    if (body.quiet_start is None) != (body.quiet_end is None):
        missing = "quiet_end" if body.quiet_end is None else "quiet_start"
        problems.append((missing, "quiet hours need both quiet_start and quiet_end"))
    if problems:
        raise ProblemError(
            422,
            "; ".join(f"{name}: {reason}" for name, reason in problems),
            type_=TYPE_INVALID_PARAMETER,
            title="Invalid parameter",
            errors=[
                ParameterError(parameter=name, location="body", message=reason)
                for name, reason in problems
            ],
        )
    values = body.model_dump()
    if body.scope == "fleet":
        values["scope_value"] = None
    return values


def _rule_out(row: AlertRuleRow) -> AlertRuleOut:
    return AlertRuleOut.model_validate(row)


async def _audit(
    session: AsyncSession,
    actor: str,
    action: str,
    rule_id: int,
    before: AlertRuleOut | None,
    after: AlertRuleOut | None,
) -> None:
    """Record a rule change in the audit trail, in the transaction of the change."""
    await AuditRepository(session).record(
        actor,
        action,
        "alert_rule",
        str(rule_id),
        None if before is None else before.model_dump(mode="json"),
        None if after is None else after.model_dump(mode="json"),
    )


@alerts.get("/rules", summary="List the alert rules")
async def list_rules(session: SessionDep) -> list[AlertRuleOut]:
    return [_rule_out(row) for row in await AlertRuleRepository(session).list()]


@alerts.post(
    "/rules",
    status_code=status.HTTP_201_CREATED,
    summary="Create an alert rule (engineer)",
)
async def create_rule(
    body: AlertRuleIn, session: SessionDep, principal: EngineerPrincipal
) -> AlertRuleOut:
    values = _checked(body)
    async with session.begin():
        row = await AlertRuleRepository(session).create(values, principal.username)
        answer = _rule_out(row)
        await _audit(session, principal.username, "create", answer.id, None, answer)
        return answer


@alerts.get("/rules/{rule_id}", responses=PROBLEM_404, summary="One alert rule")
async def get_rule(rule_id: RuleIdPath, session: SessionDep) -> AlertRuleOut:
    row = await AlertRuleRepository(session).get(rule_id)
    if row is None:
        raise _not_found("alert rule", rule_id)
    return _rule_out(row)


@alerts.put("/rules/{rule_id}", responses=PROBLEM_404, summary="Replace an alert rule (engineer)")
async def update_rule(
    rule_id: RuleIdPath, body: AlertRuleIn, session: SessionDep, principal: EngineerPrincipal
) -> AlertRuleOut:
    values = _checked(body)
    async with session.begin():
        repository = AlertRuleRepository(session)
        old = await repository.get(rule_id)
        before = None if old is None else _rule_out(old)
        row = await repository.update(rule_id, values, principal.username)
        if row is None:
            raise _not_found("alert rule", rule_id)
        answer = _rule_out(row)
        await _audit(session, principal.username, "update", rule_id, before, answer)
        return answer


@alerts.delete(
    "/rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=PROBLEM_404,
    summary="Delete an alert rule and its alerts (engineer)",
)
async def delete_rule(
    rule_id: RuleIdPath, session: SessionDep, principal: EngineerPrincipal
) -> Response:
    async with session.begin():
        repository = AlertRuleRepository(session)
        old = await repository.get(rule_id)
        before = None if old is None else _rule_out(old)
        if before is None or not await repository.delete(rule_id):
            raise _not_found("alert rule", rule_id)
        await _audit(session, principal.username, "delete", rule_id, before, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@alerts.get("/events", summary="Alerts, newest first")
async def list_events(
    session: SessionDep,
    state: Annotated[Literal["pending", "open", "acked", "cleared"] | None, Query()] = None,
    loop_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertEventOut]:
    rows: list[AlertEvent] = await AlertEventRepository(session).list_events(state, loop_id, limit)
    out = []
    for row in rows:
        item = AlertEventOut.model_validate(row)
        item.loop_id = row.loop_id or None
        out.append(item)
    return out


def _entry_out(row: InboxEntry) -> InboxEntryOut:
    item = InboxEntryOut.model_validate(row)
    item.loop_id = row.loop_id or None
    return item


@inbox.get("", summary="The caller's notifications, newest first")
async def list_inbox(
    session: SessionDep,
    principal: CurrentPrincipal,
    unread: Annotated[bool, Query(description="only unread entries")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> InboxPage:
    repository = InboxRepository(session, principal.username)
    rows = await repository.list(unread, limit, offset)
    return InboxPage(items=[_entry_out(r) for r in rows], unread=await repository.unread())


@inbox.get("/unread-count", summary="Number of the caller's unread notifications")
async def unread_count(session: SessionDep, principal: CurrentPrincipal) -> UnreadCount:
    return UnreadCount(unread=await InboxRepository(session, principal.username).unread())


@inbox.post("/{entry_id}/read", responses=PROBLEM_404, summary="Mark one notification read")
async def mark_read(
    entry_id: EntryIdPath, session: SessionDep, principal: CurrentPrincipal
) -> MarkedRead:
    async with session.begin():
        repository = InboxRepository(session, principal.username)
        if await repository.get(entry_id) is None:
            raise _not_found("inbox entry", entry_id)
        marked = await repository.mark_read([entry_id], datetime.now(UTC))
        return MarkedRead(marked=marked, unread=await repository.unread())


@inbox.post("/read-all", summary="Mark all the caller's notifications read")
async def mark_all_read(session: SessionDep, principal: CurrentPrincipal) -> MarkedRead:
    async with session.begin():
        repository = InboxRepository(session, principal.username)
        marked = await repository.mark_read(None, datetime.now(UTC))
        return MarkedRead(marked=marked, unread=await repository.unread())
