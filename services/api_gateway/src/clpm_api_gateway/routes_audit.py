"""``GET /audit``: the audit trail, filtered and paginated, as JSON or CSV (admin).

The trail is read-only through the API: there is no route that changes or removes an entry
(and the database refuses UPDATE and DELETE on the table).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from clpm_api_gateway.csv_export import (
    CSV_RESPONSE_DOC,
    ExportFormat,
    csv_response,
    rows_csv,
    wants_csv,
)
from clpm_api_gateway.dependencies import SessionDep
from clpm_api_gateway.problems import PROBLEM_401, PROBLEM_422, PROBLEM_503
from clpm_api_gateway.query_parameters import parse_time
from clpm_api_gateway.schemas import NAME_PATTERN
from clpm_api_gateway.security import require_role
from clpm_shared.db.models import AuditEntry
from clpm_shared.db.repositories.audit import AuditFilter, AuditRepository
from clpm_shared.web.problems import invalid_parameter

router = APIRouter(
    prefix="/audit",
    tags=["audit"],
    dependencies=[Depends(require_role("admin"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)

CSV_COLUMNS = ("id", "at", "actor", "action", "entity", "entity_id", "before", "after")
MAX_CSV_ROWS = 100_000

FilterText = Annotated[str | None, Query(min_length=1, max_length=256, pattern=NAME_PATTERN)]


class AuditEntryOut(BaseModel):
    """A recorded change: ``actor`` did ``action`` to ``entity`` ``entity_id`` at ``at``;
    ``before`` null: it did not exist; ``after`` null: it no longer exists."""

    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
    offset: int
    limit: int


def audit_entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        entity=entry.entity,
        entity_id=entry.entity_id,
        before=entry.before,
        after=entry.after,
    )


@router.get(
    "",
    summary="The audit trail (admin)",
    response_model=AuditPage,
    responses={200: {"content": CSV_RESPONSE_DOC}},
)
async def audit_trail(
    request: Request,
    session: SessionDep,
    actor: FilterText = None,
    entity: Annotated[
        str | None, Query(max_length=32, pattern=r"^[a-z_]+$", examples=["loop"])
    ] = None,
    entity_id: FilterText = None,
    action: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")] = None,
    start: Annotated[str | None, Query(description="ISO-8601 with zone, inclusive")] = None,
    end: Annotated[str | None, Query(description="ISO-8601 with zone, exclusive")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    export_format: Annotated[
        ExportFormat | None,
        Query(alias="format", description="csv: every matching entry (up to 100,000)"),
    ] = None,
) -> Response | AuditPage:
    """Entries newest first. Filters combine; ``start``/``end`` bound the time of the change.
    The CSV export ignores ``offset`` and ``limit`` and holds every matching entry."""
    since = None if start is None else parse_time(start, "start")
    until = None if end is None else parse_time(end, "end")
    if since is not None and until is not None and since >= until:
        raise invalid_parameter("end", "must be later than start")
    where = AuditFilter(
        actor=actor, action=action, entity=entity, entity_id=entity_id, start=since, end=until
    )
    repository = AuditRepository(session)
    if wants_csv(request, export_format):
        entries, _ = await repository.list_page(where, offset=0, limit=MAX_CSV_ROWS)
        rows = [audit_entry_out(entry).model_dump(mode="json") for entry in entries]
        return csv_response(rows_csv(rows, CSV_COLUMNS), "audit")
    entries, total = await repository.list_page(where, offset=offset, limit=limit)
    return AuditPage(
        items=[audit_entry_out(entry) for entry in entries],
        total=total,
        offset=offset,
        limit=limit,
    )
