"""``/data/raw``, ``/data/aggregated``, ``/data/realtime``, ``/data/range`` (original shapes).

Every endpoint needs the ``viewer`` role. ``/loops/{id}/data`` and ``/loops/{id}/data/range``
(in :mod:`clpm_api_gateway.routes_loops`) serve the same answers through the functions here.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from clpm_api_gateway import data_queries
from clpm_api_gateway.csv_export import (
    CSV_RESPONSE_DOC,
    ExportFormat,
    columnar_csv,
    csv_response,
    wants_csv,
)
from clpm_api_gateway.dependencies import FreshDep, GatewayResources, ResourcesDep
from clpm_api_gateway.problems import PROBLEM_401, PROBLEM_404, PROBLEM_422, PROBLEM_503
from clpm_api_gateway.query_parameters import (
    DATE_TIME,
    TIME_DESCRIPTION,
    TimeWindow,
    now_utc,
    parse_fields,
    parse_interval,
    parse_limit,
    parse_loop_id,
    parse_window,
)
from clpm_api_gateway.rate_limit import PROBLEM_429, rate_limited
from clpm_api_gateway.realtime_age import with_current_age
from clpm_api_gateway.response_cache import FLEET_TAG, cached_json, json_response, loop_tags
from clpm_api_gateway.schemas import AggregatedData, DataRangeOut, RawData, RealtimeData
from clpm_api_gateway.security import require_role
from clpm_shared.cache import cache_key, ttl_for_range
from clpm_shared.web.problems import invalid_parameter

router = APIRouter(
    prefix="/data",
    tags=["data"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_404, **PROBLEM_422, **PROBLEM_503},
)

LoopIdQuery = Annotated[
    str,
    Query(
        alias="loopId",
        description="Loop (tag) id: 1-128 letters, digits and _ . : - /",
        examples=["FIC-101"],
    ),
]
StartQuery = Annotated[
    str,
    Query(
        description=f"Range start (inclusive), {TIME_DESCRIPTION}",
        examples=["2025-01-10T10:00:00Z"],
        json_schema_extra=DATE_TIME,
    ),
]
EndQuery = Annotated[
    str | None,
    Query(
        description=f"Range end (exclusive), {TIME_DESCRIPTION}; default now",
        examples=["2025-01-10T11:00:00Z"],
        json_schema_extra=DATE_TIME,
    ),
]
FieldsQuery = Annotated[
    list[str] | None,
    Query(
        description="Fields to return, comma-separated or repeated, any case: pv, sp, op, mode "
        "(default pv,op,sp)",
        examples=["pv,op,sp"],
    ),
]
FormatQuery = Annotated[
    ExportFormat | None,
    Query(alias="format", description="csv for a CSV download (or send Accept: text/csv)"),
]
RAW_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": CSV_RESPONSE_DOC}}
AGGREGATED_INTERVAL_MAX_LENGTH = 16


def aggregated_key(loop_id: str, window: TimeWindow, interval_s: int) -> str:
    """Cache key of an aggregated answer (also used by :mod:`clpm_api_gateway.cached_hits`)."""
    return cache_key(
        "api:data:aggregated",
        loop_id=loop_id,
        start=window.start,
        end=window.end,
        interval_s=interval_s,
    )


def realtime_key(loop_id: str, fields: tuple[str, ...]) -> str:
    """Cache key of a realtime answer (also used by :mod:`clpm_api_gateway.cached_hits`)."""
    return cache_key("api:data:realtime", loop_id=loop_id, fields=fields)


async def serve_raw(
    request: Request,
    resources: GatewayResources,
    loop_id: str,
    start: str,
    end: str | None,
    fields: list[str] | None,
    limit: int | None,
    cursor: str | None,
    export_format: ExportFormat | None,
    fresh: bool,
) -> Response:
    settings = resources.settings
    now = now_utc()
    window = parse_window(
        start,
        end,
        default_span=None,
        now=now,
        max_span=timedelta(hours=settings.api.api_max_raw_range_h),
    )
    chosen = parse_fields(fields)
    page_size = parse_limit(limit, settings.api.api_default_limit, settings.api.api_max_limit)
    csv = wants_csv(request, export_format)

    async def compute() -> dict[str, Any]:
        async with resources.sessions() as session:
            await data_queries.require_loop(session, resources.store, loop_id)
        return await data_queries.raw_data(
            resources.store, loop_id, window, chosen, page_size, cursor
        )

    key = cache_key(
        "api:data:raw",
        loop_id=loop_id,
        start=window.start,
        end=window.end,
        fields=chosen,
        limit=page_size,
        cursor=cursor,
    )
    ttl = ttl_for_range(settings.cache, window.end, now=now)
    payload = await cached_json(resources.cache, key, ttl, compute, loop_tags(loop_id), fresh=fresh)
    if csv:
        body = json.loads(payload)
        columns = ["ts", *(data_queries.output_name(field) for field in chosen)]
        headers = {"X-Next-Cursor": body["next_cursor"]} if body["next_cursor"] else None
        return csv_response(columnar_csv(body, columns), f"{loop_id}-raw", headers)
    return json_response(payload)


@router.get(
    "/raw",
    summary="Raw samples of a loop (columnar, paginated)",
    response_model=RawData,
    responses={**RAW_RESPONSES, **PROBLEM_429},
    dependencies=[Depends(rate_limited)],
)
async def raw(
    request: Request,
    resources: ResourcesDep,
    fresh: FreshDep,
    loop_id: LoopIdQuery,
    start: StartQuery,
    end: EndQuery = None,
    fields: FieldsQuery = None,
    limit: Annotated[
        int | None,
        Query(ge=1, description="Samples per page (API_DEFAULT_LIMIT; at most API_MAX_LIMIT)"),
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    export_format: FormatQuery = None,
) -> Response:
    """Samples with start <= time < end, oldest first. The range may span at most
    API_MAX_RAW_RANGE_H hours; longer series are read page by page with ``cursor``."""
    return await serve_raw(
        request,
        resources,
        parse_loop_id(loop_id),
        start,
        end,
        fields,
        limit,
        cursor,
        export_format,
        fresh,
    )


@router.get(
    "/aggregated",
    summary="Aggregated data of a loop (agg_1m/agg_1h first, raw fallback)",
    response_model=AggregatedData,
    responses={**RAW_RESPONSES, **PROBLEM_429},
    dependencies=[Depends(rate_limited)],
)
async def aggregated(
    request: Request,
    resources: ResourcesDep,
    fresh: FreshDep,
    loop_id: LoopIdQuery,
    start: StartQuery,
    end: EndQuery = None,
    interval: Annotated[
        str,
        Query(
            max_length=AGGREGATED_INTERVAL_MAX_LENGTH,
            description="Bucket width: 30s, 1m, 15m, 1h, 1d",
        ),
    ] = "1m",
    export_format: FormatQuery = None,
) -> Response:
    """Per-bucket mean, count, min and max. Buckets come from the stored aggregates when the
    database has rows for the range (coarser intervals are combined from them), otherwise they
    are computed from the raw samples; ``source`` says which. Ranges: intervals under a minute
    at most API_MAX_RAW_RANGE_H and API_MAX_RAW_BUCKETS buckets, minutes at most
    API_MAX_MINUTE_RANGE_D, hours API_MAX_HOUR_RANGE_D (422 naming ``end`` or ``interval``)."""
    loop_id = parse_loop_id(loop_id)
    settings = resources.settings
    now = now_utc()
    interval_s = parse_interval(interval)
    window = parse_window(start, end, default_span=None, now=now)
    data_queries.check_aggregated_cost(window, interval_s, settings.api)
    csv = wants_csv(request, export_format)

    async def compute() -> dict[str, Any]:
        async with resources.sessions() as session:
            await data_queries.require_loop(session, resources.store, loop_id)
            return await data_queries.aggregated_data(
                session,
                resources.store,
                loop_id,
                window,
                interval_s,
                timedelta(hours=settings.api.api_max_raw_range_h),
            )

    key = aggregated_key(loop_id, window, interval_s)
    ttl = ttl_for_range(settings.cache, window.end, now=now)
    payload = await cached_json(resources.cache, key, ttl, compute, loop_tags(loop_id), fresh=fresh)
    if csv:
        columns = ["ts", "pv", "op", "sp", "pv_count", "pv_min", "pv_max"]
        columns += ["op_min", "op_max", "sp_min", "sp_max"]
        return csv_response(columnar_csv(json.loads(payload), columns), f"{loop_id}-aggregated")
    return json_response(payload)


MAX_REALTIME_LOOPS = 1000
"""Loops one ``/data/realtime`` request may name."""
LoopIdsQuery = Annotated[
    list[str] | None,
    Query(
        alias="loopIds",
        description=f"Several loops at once, comma-separated or repeated (at most "
        f"{MAX_REALTIME_LOOPS}); the answer is then a list (see the description)",
        examples=["FIC-101,TIC-204"],
    ),
]


def realtime_many_key(loop_ids: tuple[str, ...], fields: tuple[str, ...]) -> str:
    """Cache key of a batched realtime answer (the loop list is hashed when long)."""
    return cache_key("api:data:realtime-many", loop_ids=loop_ids, fields=fields)


def parse_loop_list(loop_id: list[str] | None, loop_ids: list[str] | None) -> list[str]:
    """Every loop named by ``loopId`` (repeated) and ``loopIds`` (comma-separated), in order."""
    named: list[tuple[str, str]] = [("loopId", value) for value in loop_id or []]
    for value in loop_ids or []:
        named.extend(("loopIds", part.strip()) for part in value.split(",") if part.strip())
    if not named:
        raise invalid_parameter("loopId", "is required (or loopIds)")
    ordered = list(dict.fromkeys(parse_loop_id(value, name) for name, value in named))
    if len(ordered) > MAX_REALTIME_LOOPS:
        name = "loopIds" if loop_ids else "loopId"
        raise invalid_parameter(
            name, f"at most {MAX_REALTIME_LOOPS} loops per request, got {len(ordered)}"
        )
    return ordered


@router.get(
    "/realtime",
    summary="Latest value of each field, with its age (one loop or up to 1,000)",
    response_model=RealtimeData,
    responses={
        200: {
            "description": "One loop: the object below. Several loops (loopId "
            "repeated or loopIds): {generated_at, count, loops: [the object below, ...], unknown: "
            "[loop ids neither registered nor with data]}"
        }
    },
)
async def realtime(
    resources: ResourcesDep,
    fresh: FreshDep,
    loop_id: Annotated[
        list[str] | None,
        Query(
            alias="loopId",
            description="Loop (tag) id: 1-128 letters, digits and _ . : - /; repeat it for "
            "several loops",
            examples=["FIC-101"],
        ),
    ] = None,
    fields: FieldsQuery = None,
    loop_ids: LoopIdsQuery = None,
) -> Response:
    """The most recent value of each requested field; null values when the loop has none.

    Several loops at once (``loopId`` repeated or ``loopIds=a,b,c``, at most 1,000) are read
    from the store in one batched query and cached like one loop's answer.
    """
    ordered = parse_loop_list(loop_id, loop_ids)
    chosen = parse_fields(fields)
    ttl = resources.settings.cache.cache_ttl_realtime_s
    if len(ordered) > 1 or loop_ids:
        many = tuple(ordered)

        async def compute_many() -> dict[str, Any]:
            async with resources.sessions() as session:
                return await data_queries.realtime_many(
                    session, resources.store, many, chosen, now_utc()
                )

        key = realtime_many_key(many, chosen)
        # one fleet-wide tag (dropped with any loop's entries) rather than 1,000 loop tags
        tags = [FLEET_TAG]
        return json_response(
            await cached_json(resources.cache, key, ttl, compute_many, tags, fresh=fresh)
        )
    single = ordered[0]

    async def compute() -> dict[str, Any]:
        async with resources.sessions() as session:
            await data_queries.require_loop(session, resources.store, single)
        return await data_queries.realtime_data(resources.store, single, chosen, now_utc())

    key = realtime_key(single, chosen)
    payload = await cached_json(resources.cache, key, ttl, compute, loop_tags(single), fresh=fresh)
    # the age at answer time, also for a cached value
    return json_response(with_current_age(payload, now_utc()))


async def serve_range(resources: GatewayResources, loop_id: str, fresh: bool) -> Response:
    async def compute() -> dict[str, Any]:
        async with resources.sessions() as session:
            await data_queries.require_loop(session, resources.store, loop_id)
            return await data_queries.data_range(session, resources.store, loop_id)

    key = cache_key("api:data:range", loop_id=loop_id)
    ttl = resources.settings.cache.cache_ttl_recent_s
    return json_response(
        await cached_json(resources.cache, key, ttl, compute, loop_tags(loop_id), fresh=fresh)
    )


@router.get(
    "/range",
    summary="Earliest and latest data of a loop (raw and aggregates)",
    response_model=DataRangeOut,
)
async def data_range(resources: ResourcesDep, fresh: FreshDep, loop_id: LoopIdQuery) -> Response:
    """``start``/``end`` span the broadest of raw data, agg_1m and agg_1h; each source's own
    span is listed too (null when it holds nothing for the loop)."""
    return await serve_range(resources, parse_loop_id(loop_id), fresh)
