"""Work items: acknowledge, annotate and assign loops and their findings; "my items"; the
fleet's view of them.

Viewers read; engineers create and change items. Items are never deleted, they are closed
(``done``, ``wont_fix``). Every creation and change is recorded in the audit trail (entity
``work_item``) in the same transaction; an item's history is that trail.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_api_gateway.dependencies import ResourcesDep, SessionDep
from clpm_api_gateway.problems import (
    PROBLEM_401,
    PROBLEM_404,
    PROBLEM_422,
    PROBLEM_503,
    loop_not_found,
)
from clpm_api_gateway.query_parameters import parse_loop_id
from clpm_api_gateway.routes_audit import AuditEntryOut, audit_entry_out
from clpm_api_gateway.schemas import NAME_PATTERN
from clpm_api_gateway.security import EngineerPrincipal, ViewerPrincipal, require_role
from clpm_shared.db.models import WorkItem
from clpm_shared.db.repositories.audit import AuditFilter, AuditRepository
from clpm_shared.db.repositories.diagnostics_read import DiagnosticReadRepository
from clpm_shared.db.repositories.loop_overview import LoopOverviewRepository
from clpm_shared.db.repositories.work_items import WorkItemRepository, work_item_fields
from clpm_shared.web.problems import TYPE_NOT_FOUND, ProblemError, invalid_parameter
from clpm_shared.work_items import (
    OPEN_STATES,
    LoopCondition,
    WorkItemKind,
    WorkItemState,
    acknowledgement_holds,
    findings_by_category,
)

router = APIRouter(
    tags=["work items"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)

WORK_ITEM_ENTITY = "work_item"
CATEGORY_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"

LoopIdPath = Annotated[str, Path(description="Loop (tag) id", examples=["FIC-101"], max_length=128)]
ItemIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="Work item id")]
OffsetQuery = Annotated[int, Query(ge=0, le=10_000_000)]
LimitQuery = Annotated[int, Query(ge=1, le=1000)]
Assignee = Annotated[str, Field(min_length=1, max_length=256, pattern=NAME_PATTERN)]
WorkOrder = Annotated[str, Field(min_length=1, max_length=128, pattern=NAME_PATTERN)]
Text = Annotated[str, Field(max_length=4000)]


class WorkItemOut(BaseModel):
    """An acknowledgement, annotation or assignment; ``active`` says whether an
    acknowledgement still holds (always false for the other kinds)."""

    id: int
    loop_id: str
    category: str | None = Field(description="finding category, or null for the whole loop")
    kind: WorkItemKind
    text: str
    assignee: str | None
    due_date: date | None
    state: WorkItemState
    work_order: str | None = Field(description="id of the work order in the maintenance system")
    acknowledged_until: datetime | None
    acknowledged_state: dict[str, Any] | None = Field(
        description="what was acknowledged, when without a date: the loop's status and main "
        "problem, or the finding's severity"
    )
    active: bool
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


class WorkItemPage(BaseModel):
    items: list[WorkItemOut]
    total: int
    offset: int
    limit: int


class WorkItemCreate(BaseModel):
    """An annotation (``text``) or an assignment (``assignee``, optionally due date and work
    order). Acknowledgements: ``POST /loops/{loop_id}/acknowledge``."""

    model_config = ConfigDict(extra="forbid")

    kind: WorkItemKind = WorkItemKind.ANNOTATION
    category: str | None = Field(default=None, pattern=CATEGORY_PATTERN)
    text: Text = ""
    assignee: Assignee | None = None
    due_date: date | None = None
    state: WorkItemState = WorkItemState.OPEN
    work_order: WorkOrder | None = None


class WorkItemUpdate(BaseModel):
    """Fields to change; omitted ones keep their value, null clears an optional one."""

    model_config = ConfigDict(extra="forbid")

    state: WorkItemState | None = None
    text: Text | None = None
    assignee: Assignee | None = None
    due_date: date | None = None
    work_order: WorkOrder | None = None


class AcknowledgeBody(BaseModel):
    """Acknowledge a loop, or one finding category of it, until ``until`` or, without a
    date, until it changes."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = Field(default=None, pattern=CATEGORY_PATTERN)
    until: AwareDatetime | None = None
    text: Text = ""


class FleetWorkItems(BaseModel):
    """A loop with open work items or an acknowledgement that holds."""

    loop_id: str
    open_items: int = Field(description="open or in-progress annotations and assignments")
    acknowledged: bool = Field(description="an acknowledgement of the loop holds")
    acknowledged_categories: list[str] = Field(description="findings acknowledged, holding")
    acknowledged_until: datetime | None = Field(
        description="latest date of a holding acknowledgement with a date"
    )


class FleetWorkItemsOut(BaseModel):
    loops: list[FleetWorkItems]


def item_not_found(item_id: int) -> ProblemError:
    return ProblemError(
        404,
        f"work item {item_id} does not exist",
        type_=TYPE_NOT_FOUND,
        title="Work item not found",
        extensions={"item_id": item_id},
    )


async def loop_condition(session: AsyncSession, loop_id: str) -> LoopCondition | None:
    """The loop's latest status, main problem and findings (None: unknown loop)."""
    overview = await LoopOverviewRepository(session).get(loop_id)
    if overview is None:
        return None
    latest = await DiagnosticReadRepository(session).latest(loop_id)
    return LoopCondition(
        status=overview.status,
        main_problem=overview.main_problem,
        findings=findings_by_category([(f.category, f.severity) for f in latest]),
    )


def item_out(item: WorkItem, now: datetime, condition: LoopCondition | None) -> WorkItemOut:
    active = item.kind == WorkItemKind.ACKNOWLEDGEMENT and acknowledgement_holds(
        state=item.state,
        category=item.category,
        until=item.acknowledged_until,
        snapshot=item.acknowledged_state,
        now=now,
        current=condition,
    )
    return WorkItemOut(
        id=item.id,
        loop_id=item.loop_id,
        category=item.category,
        kind=WorkItemKind(item.kind),
        text=item.text,
        assignee=item.assignee,
        due_date=item.due_date,
        state=WorkItemState(item.state),
        work_order=item.work_order,
        acknowledged_until=item.acknowledged_until,
        acknowledged_state=item.acknowledged_state,
        active=active,
        created_by=item.created_by,
        created_at=item.created_at,
        updated_by=item.updated_by,
        updated_at=item.updated_at,
    )


async def items_out(session: AsyncSession, items: list[WorkItem]) -> list[WorkItemOut]:
    """Items as answered, each acknowledgement judged against its loop's current condition."""
    now = datetime.now(UTC)
    conditions: dict[str, LoopCondition | None] = {}
    for item in items:
        if item.kind == WorkItemKind.ACKNOWLEDGEMENT and item.loop_id not in conditions:
            conditions[item.loop_id] = await loop_condition(session, item.loop_id)
    return [item_out(item, now, conditions.get(item.loop_id)) for item in items]


async def _existing_condition(session: AsyncSession, loop_id: str) -> LoopCondition:
    condition = await loop_condition(session, loop_id)
    if condition is None:
        raise loop_not_found(loop_id)
    return condition


async def _existing_item(session: AsyncSession, item_id: int) -> WorkItem:
    item = await WorkItemRepository(session).get(item_id)
    if item is None:
        raise item_not_found(item_id)
    return item


def _check_assignment(kind: str, assignee: str | None) -> None:
    if kind == WorkItemKind.ASSIGNMENT and assignee is None:
        raise invalid_parameter("assignee", "an assignment needs an assignee", "body")


# ----------------------------------------------------------------------------- fleet, my items
# (declared before /work-items/{item_id}, which would otherwise take their paths)


@router.get(
    "/work-items/fleet",
    summary="Loops with open items or a holding acknowledgement",
    response_model=FleetWorkItemsOut,
)
async def fleet_work_items(session: SessionDep) -> FleetWorkItemsOut:
    """One entry per loop that has open annotations or assignments, or an acknowledgement that
    holds now; loops with neither are left out. The fleet table joins it to its rows.
    A constant number of queries: the items, then the conditions of every loop with an
    acknowledgement that holds until the loop changes, read together."""
    repository = WorkItemRepository(session)
    items = list(await repository.open_items())
    undated = any(
        item.kind == WorkItemKind.ACKNOWLEDGEMENT and item.acknowledged_until is None
        for item in items
    )
    conditions = await repository.acknowledged_conditions() if undated else {}
    now = datetime.now(UTC)
    answered = [item_out(item, now, conditions.get(item.loop_id)) for item in items]
    loops: dict[str, FleetWorkItems] = {}
    for item in answered:
        entry = loops.get(item.loop_id)
        if entry is None:
            entry = loops[item.loop_id] = FleetWorkItems(
                loop_id=item.loop_id,
                open_items=0,
                acknowledged=False,
                acknowledged_categories=[],
                acknowledged_until=None,
            )
        if item.kind != WorkItemKind.ACKNOWLEDGEMENT:
            entry.open_items += 1
            continue
        if not item.active:
            continue
        if item.category is None:
            entry.acknowledged = True
        elif item.category not in entry.acknowledged_categories:
            entry.acknowledged_categories.append(item.category)
        if item.acknowledged_until is not None and (
            entry.acknowledged_until is None or item.acknowledged_until > entry.acknowledged_until
        ):
            entry.acknowledged_until = item.acknowledged_until
    kept = [
        entry
        for entry in loops.values()
        if entry.open_items or entry.acknowledged or entry.acknowledged_categories
    ]
    return FleetWorkItemsOut(loops=kept)


@router.get("/work-items/mine", summary="Items assigned to the caller", response_model=WorkItemPage)
async def my_work_items(
    session: SessionDep,
    principal: ViewerPrincipal,
    open_only: Annotated[
        bool, Query(alias="open", description="only open and in-progress items")
    ] = True,
    offset: OffsetQuery = 0,
    limit: LimitQuery = 100,
) -> WorkItemPage:
    """Items whose assignee is the caller's user name, newest first."""
    items, total = await WorkItemRepository(session).assigned_to(
        principal.username,
        states=OPEN_STATES if open_only else None,
        offset=offset,
        limit=limit,
    )
    return WorkItemPage(
        items=await items_out(session, list(items)), total=total, offset=offset, limit=limit
    )


# ----------------------------------------------------------------------------------- per loop


@router.get(
    "/loops/{loop_id}/work-items",
    summary="A loop's work items (its history), newest first",
    response_model=WorkItemPage,
    responses=PROBLEM_404,
)
async def loop_work_items(
    session: SessionDep,
    loop_id: LoopIdPath,
    state: Annotated[list[WorkItemState] | None, Query(description="repeatable")] = None,
    kind: Annotated[WorkItemKind | None, Query()] = None,
    offset: OffsetQuery = 0,
    limit: LimitQuery = 100,
) -> WorkItemPage:
    loop_id = parse_loop_id(loop_id, "loop_id", "path")
    condition = await _existing_condition(session, loop_id)
    items, total = await WorkItemRepository(session).for_loop(
        loop_id,
        states=[s.value for s in state] if state else None,
        kind=kind.value if kind else None,
        offset=offset,
        limit=limit,
    )
    now = datetime.now(UTC)
    return WorkItemPage(
        items=[item_out(item, now, condition) for item in items],
        total=total,
        offset=offset,
        limit=limit,
    )


@router.post(
    "/loops/{loop_id}/work-items",
    summary="Annotate a loop or assign work on it (engineer)",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkItemOut,
    responses=PROBLEM_404,
)
async def create_work_item(
    session: SessionDep,
    resources: ResourcesDep,
    response: Response,
    principal: EngineerPrincipal,
    loop_id: LoopIdPath,
    body: WorkItemCreate,
) -> WorkItemOut:
    loop_id = parse_loop_id(loop_id, "loop_id", "path")
    condition = await _existing_condition(session, loop_id)
    if body.kind == WorkItemKind.ACKNOWLEDGEMENT:
        raise invalid_parameter(
            "kind", "acknowledge through POST /loops/{loop_id}/acknowledge", "body"
        )
    _check_assignment(body.kind, body.assignee)
    if body.kind == WorkItemKind.ANNOTATION and not body.text.strip():
        raise invalid_parameter("text", "an annotation needs a text", "body")
    item = await WorkItemRepository(session).create(
        principal.username, {"loop_id": loop_id, **body.model_dump(mode="python")}
    )
    await AuditRepository(session).record(
        principal.username, "create", WORK_ITEM_ENTITY, str(item.id), None, work_item_fields(item)
    )
    answer = item_out(item, datetime.now(UTC), condition)
    await session.commit()
    response.headers["Location"] = f"{resources.settings.api.api_prefix}/work-items/{answer.id}"
    return answer


@router.post(
    "/loops/{loop_id}/acknowledge",
    summary="Acknowledge a loop or one of its findings (engineer)",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkItemOut,
    responses=PROBLEM_404,
)
async def acknowledge(
    session: SessionDep,
    principal: EngineerPrincipal,
    loop_id: LoopIdPath,
    body: AcknowledgeBody,
) -> WorkItemOut:
    """Without ``until`` the acknowledgement holds until the loop's main problem changes or its
    status gets worse (or, for a finding, until it clears or its severity rises)."""
    loop_id = parse_loop_id(loop_id, "loop_id", "path")
    condition = await _existing_condition(session, loop_id)
    now = datetime.now(UTC)
    if body.until is not None and body.until <= now:
        raise invalid_parameter("until", "must lie in the future", "body")
    if (
        body.until is None
        and body.category is not None
        and body.category not in (condition.findings)
    ):
        raise invalid_parameter(
            "category",
            f"{body.category!r} is not among the loop's latest findings; give 'until'",
            "body",
        )
    values = {
        "loop_id": loop_id,
        "kind": WorkItemKind.ACKNOWLEDGEMENT.value,
        "category": body.category,
        "text": body.text,
        "state": WorkItemState.OPEN.value,
        "acknowledged_until": None if body.until is None else body.until.astimezone(UTC),
        "acknowledged_state": None if body.until else condition.snapshot(body.category),
    }
    item = await WorkItemRepository(session).create(principal.username, values)
    await AuditRepository(session).record(
        principal.username,
        "acknowledge",
        WORK_ITEM_ENTITY,
        str(item.id),
        None,
        work_item_fields(item),
    )
    answer = item_out(item, now, condition)
    await session.commit()
    return answer


# ----------------------------------------------------------------------------------- one item


@router.get(
    "/work-items/{item_id}",
    summary="One work item",
    response_model=WorkItemOut,
    responses=PROBLEM_404,
)
async def get_work_item(session: SessionDep, item_id: ItemIdPath) -> WorkItemOut:
    item = await _existing_item(session, item_id)
    return (await items_out(session, [item]))[0]


@router.patch(
    "/work-items/{item_id}",
    summary="Change state, assignee, due date, work order or text (engineer)",
    response_model=WorkItemOut,
    responses=PROBLEM_404,
)
async def update_work_item(
    session: SessionDep,
    principal: EngineerPrincipal,
    item_id: ItemIdPath,
    body: WorkItemUpdate,
) -> WorkItemOut:
    values = body.model_dump(exclude_unset=True, mode="python")
    for required in ("state", "text"):
        if required in values and values[required] is None:
            raise invalid_parameter(required, "may not be null", "body")
    item = await _existing_item(session, item_id)
    _check_assignment(item.kind, values.get("assignee", item.assignee))
    before = work_item_fields(item)
    if values:
        await WorkItemRepository(session).update(item, principal.username, values)
        await AuditRepository(session).record(
            principal.username,
            "update",
            WORK_ITEM_ENTITY,
            str(item.id),
            before,
            work_item_fields(item),
        )
    answer = (await items_out(session, [item]))[0]
    await session.commit()
    return answer


@router.get(
    "/work-items/{item_id}/history",
    summary="Who created and changed a work item, and how",
    response_model=list[AuditEntryOut],
    responses=PROBLEM_404,
)
async def work_item_history(session: SessionDep, item_id: ItemIdPath) -> list[AuditEntryOut]:
    """The item's audit entries, oldest first."""
    await _existing_item(session, item_id)
    entries, _ = await AuditRepository(session).list_page(
        AuditFilter(entity=WORK_ITEM_ENTITY, entity_id=str(item_id)), limit=1000
    )
    return [audit_entry_out(entry) for entry in reversed(entries)]
