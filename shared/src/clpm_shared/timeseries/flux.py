"""Flux store for InfluxDB 2 native APIs, through influxdb-client's async client.

Queries are Flux text from :mod:`flux_text`; answers are read as annotated CSV
(``query_raw``) and parsed by :mod:`flux_csv` into columnar series. Writes send line protocol
(:mod:`line_protocol`) through the async write API at nanosecond precision. Transport errors
and 429/5xx answers are retried with exponential backoff, then reported as
:class:`StoreUnavailableError`; refused credentials and a missing bucket are reported at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import aiohttp
import numpy as np
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from clpm_shared.config import InfluxSettings
from clpm_shared.timeseries import flux_text
from clpm_shared.timeseries.backoff import RetryPolicy
from clpm_shared.timeseries.base import (
    AGGREGATE_STATISTICS,
    FIELDS,
    LOOP_ID_PATTERN,
    LOOP_TAG,
    MODE_TAG,
    FloatArray,
    IntArray,
    IntervalAggregate,
    LatestPoint,
    LatestValue,
    Point,
    RawPage,
    RawSeries,
    StoreUnavailableError,
    TimeRange,
    TimeSeriesError,
    from_ns,
    validate_interval,
    validate_limit,
    validate_loop_id,
    validate_window,
)
from clpm_shared.timeseries.cursor import decode_cursor, page_of
from clpm_shared.timeseries.flux_csv import FluxTable, parse_annotated_csv
from clpm_shared.timeseries.line_protocol import encode_rows
from clpm_shared.timeseries.points import sample_rows
from clpm_shared.timeseries.raw_columns import float_fields, requested_columns

logger = logging.getLogger(__name__)
T = TypeVar("T")

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_DROPPED = re.compile(r"dropped[= ](\d+)")


def series_of_tables(loop_id: str, tables: Sequence[FluxTable]) -> RawSeries:
    """Pivoted rows (``_time``, PV, SP, OP, Mode) of one loop, merged by time."""
    parts = [table for table in tables if len(table)]
    if not parts:
        return RawSeries.empty(loop_id)
    t_ns = np.concatenate([table.times_ns("_time") for table in parts])
    order = np.argsort(t_ns, kind="stable")

    def column(name: str) -> FloatArray:
        return np.concatenate([table.floats(name) for table in parts])[order]

    modes = np.array([m or None for table in parts for m in table.raw(MODE_TAG)], dtype=object)
    return RawSeries(loop_id, t_ns[order], column("PV"), column("SP"), column("OP"), modes[order])


def latest_of_tables(
    loop_id: str, tables: Sequence[FluxTable], chosen: Sequence[str]
) -> LatestPoint | None:
    """Newest value per field over the ``last()`` tables of every series (one per Mode)."""
    newest: dict[str, tuple[int, Any]] = {}
    for table in tables:
        for row in range(len(table)):
            name = table.value("_field", row)
            time_ns = table.value("_time", row)
            candidates = [(name, table.value("_value", row))]
            mode = table.value(MODE_TAG, row) if table.has(MODE_TAG) else None
            if mode:
                candidates.append((MODE_TAG, mode))
            for key, value in candidates:
                if key in chosen and (key not in newest or time_ns > newest[key][0]):
                    newest[key] = (time_ns, value)
    if not newest:
        return None
    values = {
        name: LatestValue(
            newest[name][1] if name == MODE_TAG else float(newest[name][1]),
            from_ns(newest[name][0]),
        )
        if name in newest
        else LatestValue(None, None)
        for name in chosen
    }
    return LatestPoint(loop_id, values)


def aggregate_of_tables(
    loop_id: str, tables: Sequence[FluxTable], interval_s: int
) -> IntervalAggregate:
    """Per-window statistics from the yields of :func:`flux_text.aggregate_query`."""
    interval_ns = interval_s * 1_000_000_000
    found: list[tuple[str, IntArray, FloatArray]] = []
    for table in tables:
        if not len(table) or table.result not in flux_text.AGGREGATE_FUNCTIONS:
            continue
        name = str(table.value("_field"))
        if name not in FIELDS:
            continue
        buckets = (table.times_ns("_time") // interval_ns) * interval_ns
        found.append((f"{name.lower()}_{table.result}", buckets, table.floats("_value")))
    bucket_ns = (
        np.unique(np.concatenate([buckets for _, buckets, _ in found]))
        if found
        else np.empty(0, dtype=np.int64)
    )
    stats: dict[str, FloatArray] = {
        f"{name.lower()}_{stat}": np.full(bucket_ns.size, 0.0 if stat == "count" else np.nan)
        for name in FIELDS
        for stat in AGGREGATE_STATISTICS
    }
    for key, buckets, values in found:
        stats[key][np.searchsorted(bucket_ns, buckets)] = values
    return IntervalAggregate(loop_id, interval_s, bucket_ns.astype(np.int64), stats)


class FluxStore:
    """:class:`~clpm_shared.timeseries.base.TimeSeriesStore` over InfluxDB 2 (Flux, v2 write)."""

    def __init__(
        self,
        settings: InfluxSettings,
        *,
        batch_size: int = 5000,
        loops_per_query: int = 100,
        max_in_flight: int = 3,
        backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.url = settings.influxdb_url
        self.bucket = settings.influxdb_bucket
        self.org = settings.influxdb_org
        self.measurement = settings.influxdb_measurement
        self.batch_size = batch_size
        self.loops_per_query = loops_per_query
        self.retry = RetryPolicy(settings.influxdb_max_retries, backoff_s, max_backoff_s)
        self._token = settings.influxdb_token.get_secret_value()
        self._timeout_ms = int(settings.influxdb_timeout_s * 1000)
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._client: InfluxDBClientAsync | None = None

    def _api(self) -> InfluxDBClientAsync:
        # The async client must be created inside a running event loop.
        if self._client is None:
            self._client = InfluxDBClientAsync(
                url=self.url,
                token=self._token,
                org=self.org,
                timeout=self._timeout_ms,
                enable_gzip=True,
            )
        return self._client

    async def _call(self, what: str, make_call: Callable[[], Awaitable[T]]) -> T:
        problem = ""
        for attempt in range(self.retry.attempts):
            retry_after: str | None = None
            try:
                return await make_call()
            except ApiException as exc:
                status = int(exc.status or 0)
                message = str(exc.message or exc.body or exc.reason)[:300]
                if status in (401, 403):
                    raise StoreUnavailableError(
                        f"influxdb refused the credentials (HTTP {status}); check INFLUXDB_TOKEN "
                        "and INFLUXDB_ORG",
                        retry_after_s=60.0,
                    ) from exc
                if status == 404:
                    raise StoreUnavailableError(
                        f"influxdb {what}: {message} (check INFLUXDB_BUCKET and INFLUXDB_ORG)",
                        retry_after_s=30.0,
                    ) from exc
                if status not in _RETRY_STATUS:
                    raise TimeSeriesError(
                        f"influxdb {what} failed (HTTP {status}): {message}"
                    ) from exc
                problem, retry_after = f"HTTP {status}: {message}", exc.retry_after
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            except InfluxDBError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < self.retry.max_retries:
                delay = self.retry.delay(attempt, retry_after)
                logger.warning(
                    "influxdb request failed; retrying",
                    extra={
                        "what": what,
                        "attempt": attempt + 1,
                        "delay_s": delay,
                        "error": problem,
                    },
                )
                await asyncio.sleep(delay)
        raise StoreUnavailableError(
            f"influxdb at {self.url} unavailable after {self.retry.attempts} attempts: {problem}",
            retry_after_s=self.retry.retry_after_s(),
        )

    async def _query(self, query: str) -> list[FluxTable]:
        async with self._in_flight:
            text = await self._call(
                "query", lambda: self._api().query_api().query_raw(query, org=self.org)
            )
        return parse_annotated_csv(str(text))

    # ------------------------------------------------------------------ writing

    async def _write_lines(self, lines: list[str]) -> bool:
        result = (
            await self._api()
            .write_api()
            .write(
                bucket=self.bucket,
                org=self.org,
                record=lines,
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]  # a str constant
            )
        )
        return bool(result)

    async def write(self, points: Sequence[Point]) -> int:
        rows = sample_rows(points)
        accepted = 0
        for offset in range(0, len(rows), self.batch_size):
            lines = encode_rows(self.measurement, rows[offset : offset + self.batch_size])
            try:
                await self._call("write", functools.partial(self._write_lines, lines))
            except StoreUnavailableError:
                raise
            except TimeSeriesError as exc:
                dropped = _DROPPED.search(str(exc))
                kept = max(0, len(lines) - int(dropped.group(1))) if dropped else 0
                logger.warning(
                    "influxdb refused points",
                    extra={"lines": len(lines), "kept": kept, "error": str(exc)},
                )
                accepted += kept
                continue
            accepted += len(lines)
        return accepted

    # ------------------------------------------------------------------ reading

    async def query_raw(
        self,
        loop_id: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> RawPage:
        validate_loop_id(loop_id)
        start_ns, end_ns = validate_window(start, end)
        chosen = requested_columns(fields)
        limit = validate_limit(limit)
        position = decode_cursor(cursor, loop_id, start_ns, end_ns) if cursor else None
        if end_ns <= start_ns:
            return RawPage(RawSeries.empty(loop_id), None)
        query = flux_text.raw_query(
            self.bucket,
            self.measurement,
            loop_id,
            position.t_ns if position else start_ns,
            end_ns,
            float_fields(chosen),
            limit=None if limit is None else limit + 1,
            offset=position.skip if position else 0,
        )
        series = series_of_tables(loop_id, await self._query(query))
        return page_of(series, limit, chosen, position)

    async def query_raw_many(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, RawSeries]:
        wanted = list(dict.fromkeys(validate_loop_id(i, "loop_ids") for i in loop_ids))
        start_ns, end_ns = validate_window(start, end)
        result = {loop_id: RawSeries.empty(loop_id) for loop_id in wanted}
        if end_ns <= start_ns or not wanted:
            return result

        async def read(batch: Sequence[str]) -> None:
            query = flux_text.raw_many_query(self.bucket, self.measurement, batch, start_ns, end_ns)
            grouped: dict[str, list[FluxTable]] = {}
            for table in await self._query(query):
                if len(table):
                    grouped.setdefault(str(table.value(LOOP_TAG)), []).append(table)
            for loop_id in batch:
                if loop_id in grouped:
                    result[loop_id] = series_of_tables(loop_id, grouped[loop_id])

        size = self.loops_per_query
        await asyncio.gather(*(read(wanted[i : i + size]) for i in range(0, len(wanted), size)))
        return result

    async def latest(self, loop_id: str, fields: Sequence[str] | None = None) -> LatestPoint | None:
        validate_loop_id(loop_id)
        chosen = requested_columns(fields)
        query = flux_text.latest_query(self.bucket, self.measurement, loop_id, float_fields(chosen))
        return latest_of_tables(loop_id, await self._query(query), chosen)

    async def time_range(self, loop_id: str) -> TimeRange | None:
        validate_loop_id(loop_id)
        tables = await self._query(
            flux_text.time_range_query(self.bucket, self.measurement, loop_id)
        )
        edges = {table.result: table.value("_time") for table in tables if len(table)}
        if "first" not in edges or "last" not in edges:
            return None
        return TimeRange(from_ns(edges["first"]), from_ns(edges["last"]))

    async def discover_loops(self) -> list[str]:
        tables = await self._query(flux_text.discover_query(self.bucket, self.measurement))
        found = {str(value) for table in tables for value in table.raw("_value") if value}
        return sorted(loop_id for loop_id in found if LOOP_ID_PATTERN.fullmatch(loop_id))

    async def aggregate(
        self, loop_id: str, start: datetime, end: datetime, interval_s: int
    ) -> IntervalAggregate:
        validate_loop_id(loop_id)
        start_ns, end_ns = validate_window(start, end)
        validate_interval(interval_s, start_ns, end_ns)
        if end_ns <= start_ns:
            return aggregate_of_tables(loop_id, [], interval_s)
        query = flux_text.aggregate_query(
            self.bucket, self.measurement, loop_id, start_ns, end_ns, interval_s
        )
        return aggregate_of_tables(loop_id, await self._query(query), interval_s)

    async def ping(self) -> bool:
        try:
            return bool(await self._api().ping())
        except (InfluxDBError, aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
