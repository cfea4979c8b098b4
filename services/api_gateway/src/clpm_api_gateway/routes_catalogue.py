"""``POST /loops/catalogue``: import a plant's loop list (CSV or JSON) into loops and their
configuration, as ``python -m clpm_shared.loop_catalogue`` does (admin).

Every row is validated first; one bad cell refuses the whole list (422 naming each row and
column) and nothing is written. ``dry_run=true`` validates only. Each loop the import changes
gets an audit entry (action ``import``) with its state before and after.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from clpm_api_gateway.audit_trail import LOOP_ENTITY, loop_states, record_loop_changes
from clpm_api_gateway.dependencies import ResourcesDep, SessionDep
from clpm_api_gateway.problems import PROBLEM_401, PROBLEM_422, PROBLEM_503
from clpm_api_gateway.response_cache import invalidate_loop
from clpm_api_gateway.security import AdminPrincipal, require_role
from clpm_shared.loop_catalogue import CatalogueError, parse_catalogue, save_catalogue
from clpm_shared.web.problems import (
    TYPE_INVALID_PARAMETER,
    ParameterError,
    ProblemError,
    invalid_parameter,
)

router = APIRouter(
    prefix="/loops",
    tags=["loops"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)

MAX_CATALOGUE_BYTES = 8 * 1024 * 1024
"""A loop list of 10,000 loops with every column is about 2 MB."""

CSV_TYPES = ("text/csv", "text/plain", "application/csv")


class CatalogueImport(BaseModel):
    """What an import did (or, with ``dry_run``, would do)."""

    loops: int = Field(description="rows of the list, one loop each")
    dry_run: bool
    loop_ids: list[str]


@router.post(
    "/catalogue",
    summary="Import a loop list, CSV or JSON (admin)",
    response_model=CatalogueImport,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
)
async def import_loop_list(
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    principal: AdminPrincipal,
    dry_run: Annotated[bool, Query(description="validate only, write nothing")] = False,
) -> CatalogueImport:
    """Columns as the command line import: loop_id (required), name, description, unit,
    area, engineering_units, loop_type, criticality, apc_enabled, apc_modes, normal_modes,
    op_lo, op_hi, pv_lo, pv_hi (the PV range: both or neither), sat_margin, deadband,
    dead_time_s, kpi_window_min; empty cells keep the defaults."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and media_type not in CSV_TYPES:
        raise invalid_parameter(
            "Content-Type", "send the list as text/csv or application/json", "header"
        )
    body = await request.body()
    if len(body) > MAX_CATALOGUE_BYTES:
        raise ProblemError(413, f"a loop list may have at most {MAX_CATALOGUE_BYTES} bytes")
    try:
        entries = parse_catalogue(body.decode("utf-8-sig"), json_list=media_type.endswith("json"))
    except UnicodeDecodeError:
        raise invalid_parameter("body", "the list must be UTF-8 text", "body") from None
    except json.JSONDecodeError as exc:
        raise invalid_parameter("body", f"not valid JSON: {exc.msg}", "body") from None
    except CatalogueError as exc:
        raise ProblemError(
            422,
            f"{len(exc.problems)} invalid cells; nothing was imported",
            type_=TYPE_INVALID_PARAMETER,
            title="Invalid loop list",
            errors=[
                ParameterError(
                    parameter=f"row {p.row}: {p.column}", location="body", message=p.message
                )
                for p in exc.problems[:1000]
            ],
        ) from None
    if not entries:
        raise invalid_parameter("body", "the list has no loops", "body")
    loop_ids = [entry.loop_id for entry in entries]
    if not dry_run:
        before = await loop_states(session, LOOP_ENTITY, loop_ids)
        await save_catalogue(session, entries)
        await record_loop_changes(session, principal.username, "import", LOOP_ENTITY, before)
        await session.commit()
        for loop_id in loop_ids:
            await invalidate_loop(resources.cache, loop_id)
    return CatalogueImport(loops=len(entries), dry_run=dry_run, loop_ids=loop_ids)
