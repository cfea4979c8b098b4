"""The data queries behind ``/data/*`` and ``/loops/{id}/data``: raw, aggregated, latest, span.

Answers are plain JSON-ready dicts in the original columnar shape (``ts`` plus one list per
lowercase field), extended with ``loop_id`` and metadata (``count``, ``next_cursor``,
``source``) so that old clients keep working and new ones can page and see where data came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_api_gateway.columnar import (
    count_values,
    float_values,
    iso_time,
    iso_times,
    text_values,
)
from clpm_api_gateway.problems import loop_not_found
from clpm_api_gateway.query_parameters import TimeWindow
from clpm_shared.aggregation.buckets import BucketTable
from clpm_shared.aggregation.rollup import rollup
from clpm_shared.config import ApiSettings
from clpm_shared.db.repositories.aggregates import AggregateRepository, AggregateTable
from clpm_shared.db.repositories.loops import LoopRepository
from clpm_shared.timeseries import IntervalAggregate, TimeSeriesStore
from clpm_shared.timeseries.base import LatestPoint, latest_of_many
from clpm_shared.web.problems import invalid_parameter

MAX_AGGREGATE_BUCKETS = 100_000
"""Most buckets one aggregated answer may hold (also the time-series store's own bound)."""

_BASE_WIDTH_S: dict[AggregateTable, int] = {"agg_1m": 60, "agg_1h": 3600}
_NO_BUCKETS = np.zeros(0, dtype=np.int64)


def output_name(field: str) -> str:
    """Response key of a stored field name: 'PV' -> 'pv', 'Mode' -> 'mode'."""
    return field.lower()


async def require_loop(session: AsyncSession, store: TimeSeriesStore, loop_id: str) -> None:
    """404 unless the loop is registered (and not deleted) or has raw data in the store.

    Loops appear in ``loops`` when the aggregation service discovers them; a loop whose data
    arrived before that is still served.
    """
    loop = await LoopRepository(session).get(loop_id, include_deleted=True)
    if loop is not None:
        if loop.deleted_at is not None:
            raise loop_not_found(loop_id)
        return
    if await store.time_range(loop_id) is None:
        raise loop_not_found(loop_id)


async def raw_data(
    store: TimeSeriesStore,
    loop_id: str,
    window: TimeWindow,
    fields: Sequence[str],
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """One page of raw samples, columnar."""
    page = await store.query_raw(loop_id, window.start, window.end, fields, limit, cursor)
    series = page.series
    body: dict[str, Any] = {"loop_id": loop_id, "ts": iso_times(series.t_ns)}
    for field in fields:
        column = series.field(field)
        body[output_name(field)] = text_values(column) if field == "Mode" else float_values(column)
    body["count"] = len(series)
    body["next_cursor"] = page.next_cursor
    return body


def interval_text(interval_s: int) -> str:
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if interval_s % seconds == 0:
            return f"{interval_s // seconds}{unit}"
    return f"{interval_s}s"


def check_bucket_count(window: TimeWindow, interval_s: int) -> None:
    if window.seconds / interval_s > MAX_AGGREGATE_BUCKETS:
        raise invalid_parameter(
            "interval",
            f"too fine for this range: more than {MAX_AGGREGATE_BUCKETS} buckets; "
            "use a coarser interval or a shorter range",
        )


def check_aggregated_cost(window: TimeWindow, interval_s: int, settings: ApiSettings) -> None:
    """Range and resolution bounds of ``/data/aggregated`` that follow where buckets come from.

    Intervals under a minute (or not whole minutes) are computed from raw samples: at most
    ``API_MAX_RAW_RANGE_H`` and ``API_MAX_RAW_BUCKETS`` buckets. Minute intervals read agg_1m (at
    most ``API_MAX_MINUTE_RANGE_D``), hourly ones agg_1h (at most ``API_MAX_HOUR_RANGE_D``).
    422 names ``end`` for a range too long, ``interval`` for too many buckets.
    """
    if interval_s % 3600 == 0:
        longest, basis = timedelta(days=settings.api_max_hour_range_d), "hourly buckets"
    elif interval_s % 60 == 0:
        longest, basis = timedelta(days=settings.api_max_minute_range_d), "minute buckets"
    else:
        longest, basis = timedelta(hours=settings.api_max_raw_range_h), "buckets from raw samples"
        if window.seconds / interval_s > settings.api_max_raw_buckets:
            raise invalid_parameter(
                "interval",
                f"too fine for this range: more than {settings.api_max_raw_buckets} buckets "
                "computed from raw samples; use a coarser interval or a shorter range",
            )
    if window.end - window.start > longest:
        raise invalid_parameter(
            "end",
            f"range end - start must be at most {_duration_text(longest)} for {basis}; "
            "use a coarser interval or a shorter range",
        )
    check_bucket_count(window, interval_s)


def _duration_text(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} h" if hours <= 48 else f"{hours / 24:g} d"


def _tables_for(interval_s: int) -> list[AggregateTable]:
    if interval_s % 3600 == 0:
        return ["agg_1h", "agg_1m"]
    if interval_s % 60 == 0:
        return ["agg_1m"]
    return []


async def aggregated_data(
    session: AsyncSession,
    store: TimeSeriesStore,
    loop_id: str,
    window: TimeWindow,
    interval_s: int,
    raw_max_range: timedelta,
) -> dict[str, Any]:
    """Buckets from agg_1h/agg_1m when the database has rows, else computed by the store
    (only over ranges up to ``raw_max_range``: longer ones answer no buckets).

    Stored buckets narrower than ``interval_s`` are combined with the exact pooled roll-up of
    the aggregation (counts add, means are count-weighted, extremes of extremes).
    """
    repository = AggregateRepository(session)
    tables = _tables_for(interval_s)
    for table in tables:
        base = _BASE_WIDTH_S[table]
        if window.seconds / base > 4 * MAX_AGGREGATE_BUCKETS:
            continue  # too many stored rows to combine in one answer; try the next source
        stored = await repository.read(table, [loop_id], window.start, window.end)
        if len(stored):
            buckets = stored if interval_s == base else rollup(stored, interval_s * 1_000_000_000)
            return _aggregated_body(loop_id, interval_s, table, buckets.bucket_ns, buckets)
    if tables and window.end - window.start > raw_max_range:
        # nothing stored, and too long to aggregate raw samples per request: an empty answer
        return _aggregated_body(loop_id, interval_s, tables[0], _NO_BUCKETS, BucketTable.empty())
    aggregate = await store.aggregate(loop_id, window.start, window.end, interval_s)
    return _aggregated_body(loop_id, interval_s, "raw", aggregate.bucket_ns, aggregate)


def _aggregated_body(
    loop_id: str,
    interval_s: int,
    source: str,
    bucket_ns: npt.NDArray[np.int64],
    buckets: BucketTable | IntervalAggregate,
) -> dict[str, Any]:
    stats = buckets.stats
    return {
        "loop_id": loop_id,
        "ts": iso_times(bucket_ns),
        "pv": float_values(stats["pv_mean"]),
        "op": float_values(stats["op_mean"]),
        "sp": float_values(stats["sp_mean"]),
        "pv_count": count_values(stats["pv_count"]),
        "pv_min": float_values(stats["pv_min"]),
        "pv_max": float_values(stats["pv_max"]),
        "op_min": float_values(stats["op_min"]),
        "op_max": float_values(stats["op_max"]),
        "sp_min": float_values(stats["sp_min"]),
        "sp_max": float_values(stats["sp_max"]),
        "count": int(bucket_ns.size),
        "interval": interval_text(interval_s),
        "interval_s": interval_s,
        "source": source,
    }


async def realtime_data(
    store: TimeSeriesStore, loop_id: str, fields: Sequence[str], now: datetime
) -> dict[str, Any]:
    """The latest value of each field with its time, and the age of the newest one."""
    return realtime_body(loop_id, await store.latest(loop_id, fields), fields, now)


def realtime_body(
    loop_id: str, latest: LatestPoint | None, fields: Sequence[str], now: datetime
) -> dict[str, Any]:
    """A realtime answer of one loop from its latest point (None: no data)."""
    body: dict[str, Any] = {"loop_id": loop_id, "ts": None}
    times: dict[str, str | None] = {}
    newest: datetime | None = None
    # the fields of a sample share its time: each distinct time is formatted once
    texts: dict[datetime | None, str | None] = {None: None}
    for field in fields:
        value = latest.values.get(field) if latest is not None else None
        body[output_name(field)] = value.value if value is not None else None
        moment = value.time if value is not None else None
        if moment not in texts:
            texts[moment] = iso_time(moment)
        times[output_name(field)] = texts[moment]
        if moment is not None and (newest is None or moment > newest):
            newest = moment
    body["ts"] = texts[newest]
    body["age_s"] = None if newest is None else round((now - newest).total_seconds(), 3)
    body["times"] = times
    return body


async def realtime_many(
    session: AsyncSession,
    store: TimeSeriesStore,
    loop_ids: Sequence[str],
    fields: Sequence[str],
    now: datetime,
) -> dict[str, Any]:
    """Realtime answers of many loops from one batched store query (``latest_many``).

    Loops neither registered nor with data, and deleted loops, are listed under ``unknown``
    instead of failing the whole request.
    """
    flags = await LoopRepository(session).deleted_flags(loop_ids)
    wanted = [loop_id for loop_id in loop_ids if not flags.get(loop_id, False)]
    latest = await latest_of_many(store, wanted)
    answered = [loop_id for loop_id in wanted if loop_id in latest or loop_id in flags]
    found = set(answered)
    unknown = [loop_id for loop_id in loop_ids if loop_id not in found]
    return {
        "generated_at": iso_time(now),
        "count": len(answered),
        "loops": [realtime_body(i, latest.get(i), fields, now) for i in answered],
        "unknown": unknown,
    }


def _span(start: datetime, end: datetime) -> dict[str, str | None]:
    return {"start": iso_time(start), "end": iso_time(end)}


async def data_range(session: AsyncSession, store: TimeSeriesStore, loop_id: str) -> dict[str, Any]:
    """Earliest/latest of raw data and of each aggregate table; overall the broadest span."""
    found = await store.time_range(loop_id)
    repository = AggregateRepository(session)
    spans = {
        "raw": (found.start, found.end) if found else None,
        "agg_1m": await repository.span("agg_1m", loop_id),
        "agg_1h": await repository.span("agg_1h", loop_id),
    }
    starts = [span[0] for span in spans.values() if span is not None]
    ends = [span[1] for span in spans.values() if span is not None]
    return {
        "loop_id": loop_id,
        "start": iso_time(min(starts)) if starts else None,
        "end": iso_time(max(ends)) if ends else None,
        **{name: _span(*span) if span else None for name, span in spans.items()},
    }
