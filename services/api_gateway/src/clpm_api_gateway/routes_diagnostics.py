"""Diagnoses: a loop's latest findings and history, running a diagnosis now, oscillation clusters.

Reading needs ``viewer``; running a diagnosis ``engineer``. Runs and clusters are answered by
the diagnostics service (see :mod:`.diagnostics_client`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from clpm_api_gateway import diagnostics_client
from clpm_api_gateway.dependencies import DiagnosticsClientDep, ResourcesDep, SessionDep
from clpm_api_gateway.problems import PROBLEM_401, PROBLEM_404, PROBLEM_422, PROBLEM_503
from clpm_api_gateway.query_parameters import (
    OptionalEnd,
    OptionalStart,
    now_utc,
    parse_limit,
    parse_window,
)
from clpm_api_gateway.rate_limit import PROBLEM_429, rate_limited
from clpm_api_gateway.response_cache import invalidate_loop
from clpm_api_gateway.routes_loops import LoopIdPath, existing_loop, path_loop_id
from clpm_api_gateway.schemas import DiagnoseRequest, ExplainedFinding, Finding, Findings
from clpm_api_gateway.security import EngineerPrincipal, require_role
from clpm_shared.db.models import DiagnosticResult
from clpm_shared.db.repositories.diagnostics_read import DiagnosticReadRepository
from clpm_shared.web.problems import invalid_parameter

router = APIRouter(
    tags=["diagnostics"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)

DEFAULT_RUN_SPAN = timedelta(hours=1)
MAX_RUN_SPAN = timedelta(hours=24)  # the diagnostics service's own bound
DEFAULT_CLUSTER_SPAN = timedelta(hours=24)

UPSTREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    502: {"description": "The diagnostics service failed"},
    504: {"description": "The diagnostics service did not answer within DIAG_TIMEOUT_S"},
}


def explained_findings(root: str, stored: object) -> list[ExplainedFinding]:
    """The findings stored under a root cause's ``evidence["explained"]``, flattened (an
    explained finding's own explained ones are explained by the same root cause); entries
    that are not finding objects are skipped."""
    out: list[ExplainedFinding] = []
    for item in stored if isinstance(stored, list) else []:
        if not isinstance(item, dict) or "category" not in item:
            continue
        evidence = item.get("evidence")
        out.append(
            ExplainedFinding(
                category=str(item["category"]),
                severity=float(item.get("severity") or 0.0),
                confidence=float(item.get("confidence") or 0.0),
                evidence=dict(evidence) if isinstance(evidence, dict) else {},
                recommendation=str(item.get("recommendation") or ""),
                explained_by=root,
            )
        )
        out.extend(explained_findings(root, item.get("explained")))
    return out


def findings(loop_id: str, rows: Sequence[DiagnosticResult]) -> Findings:
    items = []
    for row in rows:
        evidence = dict(row.evidence or {})
        explained = explained_findings(row.category, evidence.pop("explained", None))
        items.append(
            Finding(
                loop_id=row.loop_id,
                window_start=row.window_start,
                window_end=row.window_end,
                category=row.category,
                severity=row.severity,
                confidence=row.confidence,
                evidence=evidence,
                recommendation=row.recommendation,
                trigger=row.trigger,
                created_at=row.created_at,
                explained=explained,
            )
        )
    return Findings(loop_id=loop_id, count=len(items), items=items)


@router.get(
    "/loops/{loop_id}/diagnostics",
    summary="Latest findings of a loop, or those of one diagnosed window",
    response_model=Findings,
    responses=PROBLEM_404,
)
async def latest_findings(
    session: SessionDep,
    loop_id: LoopIdPath,
    start: OptionalStart = None,
    end: OptionalEnd = None,
) -> Findings:
    """Findings of the loop's most recent diagnosis (the last one stored: after
    ``POST .../diagnostics/run`` that run, until the KPI cycle diagnoses the next window),
    most severe first. With ``start`` and ``end``: the diagnosis of exactly that window,
    e.g. the one just asked for (empty when it found nothing or did not run)."""
    loop_id = path_loop_id(loop_id)
    await existing_loop(session, loop_id)
    repository = DiagnosticReadRepository(session)
    if start is None and end is None:
        return findings(loop_id, await repository.latest(loop_id))
    if start is None or end is None:
        missing = "start" if start is None else "end"
        raise invalid_parameter(missing, "give both start and end (the diagnosed window)")
    window = parse_window(start, end, default_span=MAX_RUN_SPAN, now=now_utc())
    return findings(loop_id, await repository.for_window(loop_id, window.start, window.end))


@router.get(
    "/loops/{loop_id}/diagnostics/history",
    summary="All findings of a loop, newest first",
    response_model=Findings,
    responses=PROBLEM_404,
)
async def finding_history(
    session: SessionDep,
    loop_id: LoopIdPath,
    start: OptionalStart = None,
    end: OptionalEnd = None,
    limit: Annotated[int | None, Query(ge=1, description="at most 10000")] = None,
) -> Findings:
    """Findings whose window starts in [start, end) (default: all), newest window first."""
    loop_id = path_loop_id(loop_id)
    await existing_loop(session, loop_id)
    window = None
    if start is not None or end is not None:
        window = parse_window(start, end, default_span=timedelta(days=3650), now=now_utc())
    rows = await DiagnosticReadRepository(session).history(
        loop_id,
        window.start if window else None,
        window.end if window else None,
        parse_limit(limit, 1000, 10_000),
    )
    return findings(loop_id, rows)


@router.post(
    "/loops/{loop_id}/diagnostics/run",
    summary="Diagnose a loop now (engineer)",
    responses={**PROBLEM_404, **UPSTREAM_RESPONSES, **PROBLEM_429},
    dependencies=[Depends(rate_limited)],
)
async def run_diagnosis(
    session: SessionDep,
    resources: ResourcesDep,
    client: DiagnosticsClientDep,
    loop_id: LoopIdPath,
    _principal: EngineerPrincipal,
    body: Annotated[DiagnoseRequest | None, Body()] = None,
) -> Any:
    """Asks the diagnostics service to analyse [start, end) (default: the last hour, at most
    24 h) and answers its diagnosis (findings, which it also stores). 503 with Retry-After when
    the service is unreachable, 504 when it does not answer within DIAG_TIMEOUT_S."""
    loop_id = path_loop_id(loop_id)
    await existing_loop(session, loop_id)
    await session.close()  # the diagnosis may take long: do not hold a connection meanwhile
    request = body or DiagnoseRequest()
    end = request.end or now_utc()
    start = request.start or end - DEFAULT_RUN_SPAN
    if start >= end:
        raise invalid_parameter("end", "must be later than start", "body")
    if end - start > MAX_RUN_SPAN:
        raise invalid_parameter("end", "range end - start must be at most 24 h", "body")
    answer = await diagnostics_client.diagnose(client, loop_id, start, end)
    await invalidate_loop(resources.cache, loop_id)
    return answer


@router.get(
    "/oscillation-clusters",
    summary="Plant-wide oscillation clusters",
    responses={**UPSTREAM_RESPONSES, **PROBLEM_429},
    dependencies=[Depends(rate_limited)],
)
async def oscillation_clusters(
    client: DiagnosticsClientDep,
    start: OptionalStart = None,
    end: OptionalEnd = None,
) -> Any:
    """Loops oscillating with periods within +-10 % of each other, grouped, with the most
    likely source (from the diagnostics service). Default period: the last 24 hours."""
    window = parse_window(start, end, default_span=DEFAULT_CLUSTER_SPAN, now=now_utc())
    return await diagnostics_client.oscillation_clusters(client, window.start, window.end)
