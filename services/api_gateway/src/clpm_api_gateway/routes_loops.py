"""``/loops``: listing (filters, sort, pages), CRUD with soft delete, configuration, data.

Reads need ``viewer``; configuration changes ``engineer``; creating, changing and deleting
loops ``admin``. Every change drops the cached answers about the loop and the fleet, and is
recorded in the audit trail in the change's transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import Response

from clpm_api_gateway.audit_trail import (
    CONFIG_ENTITY,
    LOOP_ENTITY,
    loop_states,
    record_loop_changes,
)
from clpm_api_gateway.dependencies import FreshDep, ResourcesDep, SessionDep, SettingsDep
from clpm_api_gateway.problems import (
    PROBLEM_401,
    PROBLEM_404,
    PROBLEM_422,
    PROBLEM_503,
    loop_not_found,
)
from clpm_api_gateway.query_parameters import parse_loop_id
from clpm_api_gateway.rate_limit import PROBLEM_429, rate_limited
from clpm_api_gateway.response_cache import invalidate_loop
from clpm_api_gateway.routes_data import (
    RAW_RESPONSES,
    EndQuery,
    FieldsQuery,
    FormatQuery,
    StartQuery,
    serve_range,
    serve_raw,
)
from clpm_api_gateway.schemas import (
    NAME_PATTERN,
    DataRangeOut,
    LoopConfigFields,
    LoopConfigOut,
    LoopCreate,
    LoopOut,
    LoopPage,
    LoopSort,
    LoopStatus,
    LoopUpdate,
    Period,
    RawData,
)
from clpm_api_gateway.security import AdminPrincipal, EngineerPrincipal, require_role
from clpm_shared.analytics.ranking import bad_actor_value
from clpm_shared.db.models import LoopConfig
from clpm_shared.db.repositories.loop_overview import LoopOverview, LoopOverviewRepository
from clpm_shared.db.repositories.loops import LoopConfigRepository, LoopRepository
from clpm_shared.web.problems import TYPE_CONFLICT, ProblemError, invalid_parameter

router = APIRouter(
    prefix="/loops",
    tags=["loops"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)

UnitQuery = Annotated[str | None, Query(max_length=128, pattern=NAME_PATTERN, examples=["U100"])]
AreaQuery = Annotated[
    str | None, Query(max_length=128, pattern=NAME_PATTERN, examples=["Reactors"])
]
LoopIdPath = Annotated[str, Path(description="Loop (tag) id", examples=["FIC-101"], max_length=128)]


def _status(value: str) -> LoopStatus:
    try:
        return LoopStatus(value)
    except ValueError:
        return LoopStatus.OFFLINE


def loop_out(item: LoopOverview) -> LoopOut:
    loop = item.loop
    return LoopOut(
        loop_id=loop.loop_id,
        name=loop.name,
        description=loop.description,
        unit=loop.unit,
        area=loop.area,
        engineering_units=loop.engineering_units,
        data_source=loop.data_source,
        data_source_detail=loop.data_source_detail,
        active=loop.active,
        created_at=loop.created_at,
        updated_at=loop.updated_at,
        status=_status(item.status),
        health_score=item.health_score,
        main_problem=item.main_problem,
        kpi_window_end=item.kpi_window_end,
        reason=item.reason,
        criticality=item.criticality,
        bad_actor_score=(
            None
            if item.health_score is None
            else bad_actor_value(item.health_score, item.criticality)
        ),
    )


async def existing_loop(session: SessionDep, loop_id: str) -> LoopOverview:
    item = await LoopOverviewRepository(session).get(loop_id)
    if item is None:
        raise loop_not_found(loop_id)
    return item


def path_loop_id(loop_id: str) -> str:
    return parse_loop_id(loop_id, "loop_id", "path")


@router.get("", summary="List loops (filter, sort, paginate)", response_model=LoopPage)
async def list_loops(
    session: SessionDep,
    unit: UnitQuery = None,
    area: AreaQuery = None,
    status_: Annotated[
        LoopStatus | None, Query(alias="status", description="status of the latest KPI window")
    ] = None,
    sort: Annotated[LoopSort, Query(description="sort key")] = LoopSort.LOOP_ID,
    order: Annotated[str, Query(pattern="^(asc|desc)$", description="asc or desc")] = "asc",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    period: Annotated[
        Period,
        Query(
            description="status, health and bad-actor score over: the latest KPI window, or "
            "the rating of the last shift / day / week"
        ),
    ] = Period.DAY,
) -> LoopPage:
    """Active loops with their status, health and main problem over ``period`` (default the
    last day). Sorting by ``bad_actor`` descending ranks the loops most worth fixing first;
    loops without a value (offline, not assessed: ``reason``) come last."""
    items, total = await LoopOverviewRepository(session).list_page(
        unit=unit,
        area=area,
        status=status_.value if status_ else None,
        sort=sort.value,
        descending=order == "desc",
        offset=offset,
        limit=limit,
        period=None if period is Period.WINDOW else period.value,
    )
    return LoopPage(items=[loop_out(i) for i in items], total=total, offset=offset, limit=limit)


@router.post(
    "",
    summary="Create a loop (admin)",
    status_code=status.HTTP_201_CREATED,
    response_model=LoopOut,
    responses={409: {"description": "A loop with this id exists"}},
)
async def create_loop(
    body: LoopCreate,
    session: SessionDep,
    resources: ResourcesDep,
    response: Response,
    principal: AdminPrincipal,
) -> LoopOut:
    """Registers a loop; re-creating a deleted loop restores it with the new fields."""
    repository = LoopRepository(session)
    if await repository.get(body.loop_id) is not None:
        raise ProblemError(
            409,
            f"loop {body.loop_id!r} already exists",
            type_=TYPE_CONFLICT,
            title="Loop exists",
        )
    values = body.model_dump(exclude={"loop_id"}, exclude_none=True)
    values.setdefault("name", body.loop_id)
    before = await loop_states(session, LOOP_ENTITY, [body.loop_id])
    await repository.save(body.loop_id, values)
    await record_loop_changes(session, principal.username, "create", LOOP_ENTITY, before)
    await session.commit()
    await invalidate_loop(resources.cache, body.loop_id)
    response.headers["Location"] = f"{resources.settings.api.api_prefix}/loops/{body.loop_id}"
    return loop_out(await existing_loop(session, body.loop_id))


@router.get("/{loop_id}", summary="One loop", response_model=LoopOut, responses={**PROBLEM_404})
async def get_loop(session: SessionDep, loop_id: LoopIdPath) -> LoopOut:
    return loop_out(await existing_loop(session, path_loop_id(loop_id)))


@router.put(
    "/{loop_id}", summary="Change a loop (admin)", response_model=LoopOut, responses=PROBLEM_404
)
async def update_loop(
    loop_id: LoopIdPath,
    body: LoopUpdate,
    session: SessionDep,
    resources: ResourcesDep,
    principal: AdminPrincipal,
) -> LoopOut:
    """Changes the given fields; omitted fields keep their value."""
    loop_id = path_loop_id(loop_id)
    repository = LoopRepository(session)
    if await repository.get(loop_id) is None:
        raise loop_not_found(loop_id)
    values = body.model_dump(exclude_unset=True)
    if values.get("name") is None:
        values.pop("name", None)
    if values.get("description") is None:
        values.pop("description", None)
    if values.get("active") is None:
        values.pop("active", None)
    if values:
        before = await loop_states(session, LOOP_ENTITY, [loop_id])
        await repository.save(loop_id, values)
        await record_loop_changes(session, principal.username, "update", LOOP_ENTITY, before)
        await session.commit()
        await invalidate_loop(resources.cache, loop_id)
    return loop_out(await existing_loop(session, loop_id))


@router.delete(
    "/{loop_id}",
    summary="Delete a loop (admin; soft delete)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=PROBLEM_404,
)
async def delete_loop(
    loop_id: LoopIdPath,
    session: SessionDep,
    resources: ResourcesDep,
    principal: AdminPrincipal,
) -> Response:
    """Marks the loop deleted (``deleted_at``); its data and history stay in the stores."""
    loop_id = path_loop_id(loop_id)
    before = await loop_states(session, LOOP_ENTITY, [loop_id])
    if not await LoopRepository(session).soft_delete(loop_id):
        raise loop_not_found(loop_id)
    await record_loop_changes(session, principal.username, "delete", LOOP_ENTITY, before)
    await session.commit()
    await invalidate_loop(resources.cache, loop_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------------------------- configuration


def config_out(loop_id: str, config: LoopConfig | None, default_window_min: int) -> LoopConfigOut:
    if config is None:
        return LoopConfigOut(
            loop_id=loop_id,
            is_default=True,
            loop_type="other",
            criticality=3,
            normal_modes=None,
            op_lo=0.0,
            op_hi=100.0,
            sat_margin=None,
            pv_lo=None,
            pv_hi=None,
            deadband=None,
            dead_time_s=None,
            apc_enabled=False,
            apc_modes=None,
            kpi_window_min=default_window_min,
            updated_at=None,
            updated_by=None,
        )
    return LoopConfigOut(
        loop_id=loop_id,
        is_default=False,
        loop_type=config.loop_type,
        criticality=config.criticality,
        normal_modes=config.normal_modes,
        op_lo=config.op_lo,
        op_hi=config.op_hi,
        sat_margin=config.sat_margin,
        pv_lo=config.pv_lo,
        pv_hi=config.pv_hi,
        deadband=config.deadband,
        dead_time_s=config.dead_time_s,
        apc_enabled=config.apc_enabled,
        apc_modes=config.apc_modes,
        kpi_window_min=config.kpi_window_min,
        updated_at=config.updated_at,
        updated_by=config.updated_by,
    )


_CONFIG_FIELDS = tuple(LoopConfigFields.model_fields)


def _check_ranges(values: dict[str, Any]) -> None:
    for low, high in (("op_lo", "op_hi"), ("pv_lo", "pv_hi")):
        lower, upper = values.get(low), values.get(high)
        if lower is not None and upper is not None and lower >= upper:
            raise invalid_parameter(high, f"must be greater than {low}", "body")


async def _save_config(
    session: SessionDep,
    resources: ResourcesDep,
    loop_id: str,
    body: LoopConfigFields,
    username: str,
    *,
    replace: bool,
) -> LoopConfigOut:
    loop_id = path_loop_id(loop_id)
    await existing_loop(session, loop_id)
    repository = LoopConfigRepository(session)
    window_min = resources.settings.kpi.kpi_window_min
    fields = set(_CONFIG_FIELDS)
    defaults = config_out(loop_id, None, window_min).model_dump(include=fields)
    stored = None if replace else await repository.get(loop_id)
    current = config_out(loop_id, stored, window_min).model_dump(include=fields)
    merged = {**current, **body.model_dump(exclude_unset=True)}
    for name in ("loop_type", "criticality", "op_lo", "op_hi", "apc_enabled", "kpi_window_min"):
        if merged.get(name) is None:  # NOT NULL columns: null means back to the default
            merged[name] = defaults[name]
    merged["loop_type"] = str(merged["loop_type"])
    _check_ranges(merged)
    before = await loop_states(session, CONFIG_ENTITY, [loop_id])
    saved = await repository.save(loop_id, {**merged, "updated_by": username})
    action = "replace" if replace else "update"
    await record_loop_changes(session, username, action, CONFIG_ENTITY, before)
    await session.commit()
    await invalidate_loop(resources.cache, loop_id)
    return config_out(loop_id, saved, resources.settings.kpi.kpi_window_min)


@router.get(
    "/{loop_id}/config",
    summary="Analysis settings of a loop",
    response_model=LoopConfigOut,
    responses=PROBLEM_404,
)
async def get_config(
    loop_id: LoopIdPath, session: SessionDep, settings: SettingsDep
) -> LoopConfigOut:
    """The stored settings, or the defaults (``is_default``) when none are stored."""
    loop_id = path_loop_id(loop_id)
    await existing_loop(session, loop_id)
    config = await LoopConfigRepository(session).get(loop_id)
    return config_out(loop_id, config, settings.kpi.kpi_window_min)


@router.put(
    "/{loop_id}/config",
    summary="Change analysis settings (engineer)",
    response_model=LoopConfigOut,
    responses=PROBLEM_404,
)
async def update_config(
    loop_id: LoopIdPath,
    body: LoopConfigFields,
    session: SessionDep,
    resources: ResourcesDep,
    principal: EngineerPrincipal,
) -> LoopConfigOut:
    """Changes the given settings; omitted ones keep their value, null resets one."""
    return await _save_config(session, resources, loop_id, body, principal.username, replace=False)


@router.post(
    "/{loop_id}/config",
    summary="Replace analysis settings (engineer)",
    response_model=LoopConfigOut,
    responses=PROBLEM_404,
)
async def replace_config(
    loop_id: LoopIdPath,
    body: LoopConfigFields,
    session: SessionDep,
    resources: ResourcesDep,
    principal: EngineerPrincipal,
) -> LoopConfigOut:
    """Stores exactly the given settings; omitted ones take their default."""
    return await _save_config(session, resources, loop_id, body, principal.username, replace=True)


@router.delete(
    "/{loop_id}/config",
    summary="Reset analysis settings to the defaults (engineer)",
    response_model=LoopConfigOut,
    responses=PROBLEM_404,
)
async def reset_config(
    loop_id: LoopIdPath,
    session: SessionDep,
    resources: ResourcesDep,
    principal: EngineerPrincipal,
) -> LoopConfigOut:
    loop_id = path_loop_id(loop_id)
    await existing_loop(session, loop_id)
    before = await loop_states(session, CONFIG_ENTITY, [loop_id])
    await LoopConfigRepository(session).delete(loop_id)
    await record_loop_changes(session, principal.username, "reset", CONFIG_ENTITY, before)
    await session.commit()
    await invalidate_loop(resources.cache, loop_id)
    return config_out(loop_id, None, resources.settings.kpi.kpi_window_min)


# ------------------------------------------------------------------------------------------- data


@router.get(
    "/{loop_id}/data",
    summary="Raw samples of a loop (as /data/raw)",
    response_model=RawData,
    responses={**RAW_RESPONSES, **PROBLEM_404, **PROBLEM_429},
    dependencies=[Depends(rate_limited)],
)
async def loop_data(
    request: Request,
    resources: ResourcesDep,
    fresh: FreshDep,
    loop_id: LoopIdPath,
    start: StartQuery,
    end: EndQuery = None,
    fields: FieldsQuery = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    export_format: FormatQuery = None,
) -> Response:
    return await serve_raw(
        request,
        resources,
        path_loop_id(loop_id),
        start,
        end,
        fields,
        limit,
        cursor,
        export_format,
        fresh,
    )


@router.get(
    "/{loop_id}/data/range",
    summary="Data span of a loop (as /data/range)",
    response_model=DataRangeOut,
    responses=PROBLEM_404,
)
async def loop_data_range(
    resources: ResourcesDep, fresh: FreshDep, loop_id: LoopIdPath
) -> Response:
    return await serve_range(resources, path_loop_id(loop_id), fresh)
