"""InfluxQL store over InfluxDB's v1 HTTP API (``/write``, ``/query``) with httpx.

Works with InfluxDB 1.x (no auth, or user/password) and with InfluxDB 2.x/3.x through their v1
compatibility API (``Authorization: Token <INFLUXDB_TOKEN>``; the database is the bucket's DBRP
mapping, the retention policy is optional). One pooled ``httpx.AsyncClient`` with timeouts;
transport errors and 429/5xx answers are retried with exponential backoff, then reported as
:class:`StoreUnavailableError` with ``retry_after_s``.

Reads ask for ``epoch=ns`` and chunked answers (so a server-side ``max-row-limit`` never
truncates one), in MessagePack by default (``INFLUXDB_ANSWER_FORMAT``; influxd 1.6 spends about
a fifth less CPU encoding it than JSON, which a server that does not know it sends instead).
``query_raw_many`` reads batches of loops per statement with a few requests in flight and
parses with the garbage collector paused: the aggregation reads 300,000 lines per cycle this
way.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgpack
import numpy as np
import orjson
from httpx_aiohttp import AiohttpTransport

from clpm_shared.config import InfluxSettings
from clpm_shared.timeseries import influxql_text as text
from clpm_shared.timeseries.backoff import RetryPolicy
from clpm_shared.timeseries.base import (
    AGGREGATE_STATISTICS,
    FIELDS,
    LOOP_ID_PATTERN,
    LOOP_TAG,
    MODE_TAG,
    NOT_COUNTED,
    FloatArray,
    IntervalAggregate,
    LatestPoint,
    LatestValue,
    MinuteCounts,
    Point,
    RawPage,
    RawSeries,
    SampleTotals,
    StoreUnavailableError,
    TimeRange,
    TimeSeriesError,
    from_ns,
    validate_interval,
    validate_limit,
    validate_loop_id,
    validate_window,
)
from clpm_shared.timeseries.circuit_breaker import CircuitBreaker
from clpm_shared.timeseries.cursor import decode_cursor, page_of
from clpm_shared.timeseries.line_protocol import encode_rows, encode_series_chunks
from clpm_shared.timeseries.points import SampleRow, sample_rows
from clpm_shared.timeseries.raw_columns import (
    float_fields,
    requested_columns,
    series_from_columns,
)

logger = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_DROPPED = re.compile(r"dropped=(\d+)")
# How InfluxDB 1.x marks an answer that is not chunked and hit max-row-limit. Field values are
# numbers and tag values JSON-escaped, so the text cannot occur inside the data.
_TRUNCATED = b'"partial":true'
# The same mark in MessagePack: the key "partial" (a 7-byte fixstr) followed by true.
_TRUNCATED_MSGPACK = b"\xa7partial\xc3"
_MSGPACK = "application/x-msgpack"
_RETENTION_TTL_S = 600.0
"""How long :meth:`InfluxQLStore.retention_period` trusts its last answer."""
_PLAIN_ANSWER_MAX_NS = 300 * 1_000_000_000
"""Batched raw reads of windows shorter than this ask for a plain (not chunked) answer."""


@dataclass
class SeriesBlock:
    """Rows of one series of one statement (chunks of a chunked answer joined)."""

    columns: list[str]
    tags: dict[str, str]
    values: list[list[Any]] = field(default_factory=list)

    def column(self, name: str) -> list[Any]:
        if name not in self.columns:
            return [None] * len(self.values)
        index = self.columns.index(name)
        return [row[index] for row in self.values]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Parsing builds millions of small objects; collections in between only cost time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class QueryAnswer:
    """The body of a ``/query`` answer and whether it is MessagePack (else JSON)."""

    body: bytes
    msgpack: bool = False

    @property
    def truncated(self) -> bool:
        """Cut by the server's ``max-row-limit`` (only answers that are not chunked are)."""
        return (_TRUNCATED_MSGPACK if self.msgpack else _TRUNCATED) in self.body


def _error_text(answer: QueryAnswer) -> str:
    """The ``error`` of a failed answer, else the start of its body."""
    try:
        [first, *_] = _answer_objects(answer)
        return str(first.get("error", first))[:300]
    except (TimeSeriesError, ValueError):
        return repr(answer.body[:300])


def _answer_objects(answer: QueryAnswer) -> Iterator[dict[str, Any]]:
    """The JSON objects of an answer: one per line of JSON, one per MessagePack object."""
    if answer.msgpack:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=0)
        unpacker.feed(answer.body)
        try:
            for item in unpacker:
                if not isinstance(item, dict):
                    raise TimeSeriesError(f"influxdb answered a MessagePack {type(item).__name__}")
                yield item
        except (ValueError, msgpack.UnpackException) as exc:
            raise TimeSeriesError(
                f"influxdb answered something that is not MessagePack: {answer.body[:120]!r}"
            ) from exc
        return
    for line in answer.body.split(b"\n"):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise TimeSeriesError(
                f"influxdb answered something that is not JSON: {line[:120]!r}"
            ) from exc
        yield item


def parse_chunked_answer(body: bytes | QueryAnswer, statements: int) -> list[list[SeriesBlock]]:
    """Series of each statement from a (chunked) ``/query`` answer; errors raise.

    ``body``: JSON text, or a :class:`QueryAnswer` that says its format. A statement error
    ``database not found`` means the store is misconfigured or not created yet:
    :class:`StoreUnavailableError`. Any other statement error is a :class:`TimeSeriesError`.
    """
    answer_ = body if isinstance(body, QueryAnswer) else QueryAnswer(body)
    results: list[dict[tuple[str, tuple[tuple[str, str], ...]], SeriesBlock]] = [
        {} for _ in range(statements)
    ]
    with _gc_paused():
        for answer in _answer_objects(answer_):
            if "error" in answer:
                raise TimeSeriesError(f"influxdb: {answer['error']}")
            for result in answer.get("results", []):
                error = result.get("error")
                if error:
                    if "database not found" in error:
                        raise StoreUnavailableError(f"influxdb: {error}", retry_after_s=30.0)
                    raise TimeSeriesError(f"influxdb: {error}")
                index = int(result.get("statement_id", 0))
                for series in result.get("series", []):
                    tags = series.get("tags") or {}
                    key = (series.get("name", ""), tuple(sorted(tags.items())))
                    block = results[index].get(key)
                    if block is None:
                        block = SeriesBlock(list(series["columns"]), dict(tags))
                        results[index][key] = block
                    block.values.extend(series.get("values", []))
    return [list(blocks.values()) for blocks in results]


_RAW_COLUMNS = ("time", "PV", "SP", "OP", MODE_TAG)


def _block_series(loop_id: str, block: SeriesBlock) -> RawSeries:
    """A block's columns in one transposition; a column missing from the answer comes from the
    series' tags (``Mode`` when grouped by it) or is all missing."""
    n = len(block.values)
    transposed = list(zip(*block.values, strict=True)) if n else []
    index = {name: i for i, name in enumerate(block.columns)}
    columns: list[Sequence[Any]] = [
        transposed[index[name]] if name in index and n else [block.tags.get(name)] * n
        for name in _RAW_COLUMNS
    ]
    return series_from_columns(loop_id, *columns)


def _series_of(loop_id: str, blocks: Sequence[SeriesBlock]) -> RawSeries:
    """One loop's rows (one block, or several merged by time) as a RawSeries."""
    if not blocks:
        return RawSeries.empty(loop_id)
    with _gc_paused():
        parts = [_block_series(loop_id, block) for block in blocks]
    return _merged(loop_id, parts)


def _series_by_loop(blocks: Sequence[SeriesBlock]) -> dict[str, RawSeries]:
    """Every loop's rows of one answer (series grouped by ``loop_id``) as RawSeries.

    Blocks that carry all raw columns are converted in groups of about
    :data:`_ROWS_PER_CONVERSION` rows (one transposition and one array per column per group,
    then a slice per series): a 30-s poll has ~30 rows per loop, so converting block by block
    would cost more per loop than per row, while transposing a whole hour of 100 loops at once
    runs out of the CPU caches (2.5x slower per row). A group with a value of the wrong type
    goes through :func:`_block_series`, which names the loop in its warning.
    """
    parts: dict[str, list[RawSeries]] = {}
    group: list[SeriesBlock] = []
    rows_in_group = 0
    for block in blocks:
        if not block.values:
            continue
        if tuple(block.columns) != _RAW_COLUMNS:
            _convert_block(block, parts)
            continue
        group.append(block)
        rows_in_group += len(block.values)
        if rows_in_group >= _ROWS_PER_CONVERSION:
            _convert_group(group, parts)
            group, rows_in_group = [], 0
    if group:
        _convert_group(group, parts)
    return {loop_id: _merged(loop_id, pieces) for loop_id, pieces in parts.items()}


_ROWS_PER_CONVERSION = 4096


def _convert_group(group: Sequence[SeriesBlock], parts: dict[str, list[RawSeries]]) -> None:
    """Blocks with the raw columns in order, converted together (see :func:`_series_by_loop`)."""
    rows = [row for block in group for row in block.values]
    t_ns, pv, sp, op, mode = zip(*rows, strict=True)
    try:
        times = np.asarray(t_ns, dtype=np.int64)
        values = [np.array(column, dtype=np.float64) for column in (pv, sp, op)]
    except (TypeError, ValueError):
        for block in group:
            _convert_block(block, parts)
        return
    modes = np.array(mode, dtype=object)
    offset = 0
    for block in group:
        loop_id = block.tags.get(LOOP_TAG, "")
        end = offset + len(block.values)
        part = RawSeries(
            loop_id,
            times[offset:end],
            values[0][offset:end],
            values[1][offset:end],
            values[2][offset:end],
            modes[offset:end],
        )
        parts.setdefault(loop_id, []).append(part)
        offset = end


def _convert_block(block: SeriesBlock, parts: dict[str, list[RawSeries]]) -> None:
    """One block on its own (:func:`_block_series`), added to its loop's parts."""
    loop_id = block.tags.get(LOOP_TAG, "")
    parts.setdefault(loop_id, []).append(_block_series(loop_id, block))


def _merged(loop_id: str, parts: Sequence[RawSeries]) -> RawSeries:
    """Several series of one loop (e.g. one per Mode tag value) as one, sorted by time."""
    if len(parts) == 1:
        return parts[0]
    t_ns = np.concatenate([part.t_ns for part in parts])
    order = np.argsort(t_ns, kind="stable")
    return RawSeries(
        loop_id,
        t_ns[order],
        np.concatenate([part.pv for part in parts])[order],
        np.concatenate([part.sp for part in parts])[order],
        np.concatenate([part.op for part in parts])[order],
        np.concatenate([part.mode for part in parts])[order],
    )


_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_DURATION_UNIT_S = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def go_duration(value: str) -> timedelta:
    """A duration as influxd prints it (Go's ``time.Duration``: ``"72h0m0s"``, ``"0s"``)."""
    parts = _GO_DURATION_PART.findall(value)
    if not value or "".join(number + unit for number, unit in parts) != value:
        raise TimeSeriesError(f"influxdb: {value!r} is not a duration")
    return timedelta(
        seconds=sum(float(number) * _GO_DURATION_UNIT_S[unit] for number, unit in parts)
    )


def _minute_counts_of(loop_id: str, block: SeriesBlock) -> MinuteCounts:
    """PV counts of one ``count(PV) ... GROUP BY time(1m)`` series (rows ``[time, pv]``)."""
    time_at, pv_at = block.columns.index("time"), block.columns.index("pv")
    try:  # the usual answer: integers only, converted in one call
        rows = np.asarray(block.values, dtype=np.int64)
        times, pv = rows[:, time_at], rows[:, pv_at]
    except TypeError:  # a null count (no PV in a minute that has samples)
        times = np.asarray([row[time_at] for row in block.values], dtype=np.int64)
        pv = np.asarray([row[pv_at] or 0 for row in block.values], dtype=np.int64)
    uncounted = np.full(times.size, NOT_COUNTED, dtype=np.int64)
    return MinuteCounts(loop_id, times, pv, uncounted, uncounted.copy())


class InfluxQLStore:
    """:class:`~clpm_shared.timeseries.base.TimeSeriesStore` over the InfluxDB v1 HTTP API."""

    def __init__(
        self,
        settings: InfluxSettings,
        *,
        batch_size: int = 5000,
        loops_per_query: int = 100,
        latest_loops_per_query: int = 500,
        max_in_flight: int = 3,
        backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.measurement = settings.influxdb_measurement
        self.database = settings.database
        self.retention_policy = settings.influxdb_retention_policy or None
        self.batch_size = batch_size
        self.loops_per_query = loops_per_query
        self.latest_loops_per_query = latest_loops_per_query
        self.retry = RetryPolicy(settings.influxdb_max_retries, backoff_s, max_backoff_s)
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self.breaker = CircuitBreaker(
            f"influxdb at {settings.influxdb_url}",
            failures=settings.influxdb_breaker_failures,
            open_s=settings.influxdb_breaker_open_s,
        )
        self._target = text.source(self.measurement, self.retention_policy)
        self._retention: tuple[float, timedelta | None] | None = None
        """(monotonic time asked, :meth:`retention_period`'s answer)"""
        msgpack_answers = settings.influxdb_answer_format == "msgpack"
        self._accept = {"Accept": _MSGPACK if msgpack_answers else "application/json"}
        headers = {"User-Agent": "clpm-timeseries"}
        auth: httpx.BasicAuth | None = None
        if settings.influxdb_username:
            password = (
                settings.influxdb_password.get_secret_value() if settings.influxdb_password else ""
            )
            auth = httpx.BasicAuth(settings.influxdb_username, password)
        elif settings.influxdb_token.get_secret_value():
            headers["Authorization"] = f"Token {settings.influxdb_token.get_secret_value()}"
        # Compressing answers costs the server more than it saves on a loopback link.
        host = urlsplit(settings.influxdb_url).hostname or ""
        headers["Accept-Encoding"] = "identity" if host in _LOOPBACK else "gzip"
        timeout = settings.influxdb_timeout_s
        limits = httpx.Limits(max_connections=max_in_flight + 4, max_keepalive_connections=8)
        if transport is None and settings.influxdb_http_client == "aiohttp":
            transport = AiohttpTransport(limits=limits)
        self._client = httpx.AsyncClient(
            base_url=settings.influxdb_url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=limits,
            transport=transport,
        )

    # ------------------------------------------------------------------ HTTP

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        slot: bool = True,
    ) -> httpx.Response:
        """Send with retries; return the response of any non-retryable status.

        At most ``max_in_flight`` queries (``slot``) are on the wire at once; a slot is held for
        one attempt, never during the backoff between two. The circuit breaker fails requests at
        once while the server is known to be down (:mod:`~clpm_shared.timeseries.circuit_breaker`).
        """
        problem = ""
        for attempt in range(self.retry.attempts):
            self.breaker.admit()
            response: httpx.Response | None = None
            try:
                async with self._in_flight if slot else nullcontext():
                    self.breaker.check_open()
                    response = await self._client.request(
                        method, path, params=params, content=content, data=data, headers=headers
                    )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in _RETRY_STATUS:
                    self.breaker.record_success()
                    return response
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
            self.breaker.record_failure()
            if attempt < self.retry.max_retries:
                retry_after = response.headers.get("Retry-After") if response else None
                delay = self.retry.delay(attempt, retry_after)
                logger.warning(
                    "influxdb request failed; retrying",
                    extra={
                        "path": path,
                        "attempt": attempt + 1,
                        "delay_s": delay,
                        "error": problem,
                    },
                )
                await self.breaker.pause(delay)
        raise StoreUnavailableError(
            f"influxdb at {self._client.base_url} unavailable after "
            f"{self.retry.attempts} attempts: {problem}",
            retry_after_s=self.retry.retry_after_s(),
        )

    def _check_auth(self, response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            raise StoreUnavailableError(
                f"influxdb refused the credentials (HTTP {response.status_code}); "
                "check INFLUXDB_TOKEN or INFLUXDB_USERNAME/INFLUXDB_PASSWORD",
                retry_after_s=60.0,
            )

    async def _query(self, statements: Sequence[str]) -> list[list[SeriesBlock]]:
        return parse_chunked_answer(await self._query_answer(statements), len(statements))

    async def _plain_query(self, statements: Sequence[str]) -> list[list[SeriesBlock]]:
        """:meth:`_query` asking for a plain answer: a few rows per series cost the client one
        HTTP chunk per series when chunked (1,000 loops: 0.1 s of the gateway's time per
        statement). Asked again chunked when ``max-row-limit`` cut it."""
        answer = await self._query_answer(statements, chunked=False)
        if answer.truncated:
            answer = await self._query_answer(statements)
        return parse_chunked_answer(answer, len(statements))

    async def _query_answer(
        self, statements: Sequence[str], *, chunked: bool = True
    ) -> QueryAnswer:
        """The answer to ``statements`` as the server sent it; HTTP and auth failures raise.

        Chunked answers are never truncated by the server's ``max-row-limit``; an answer that is
        not chunked costs less to produce and to receive (one HTTP chunk per series otherwise)
        but is cut at that limit, marked ``"partial":true``.
        """
        params = {"db": self.database, "epoch": "ns"}
        if chunked:
            params.update({"chunked": "true", "chunk_size": "20000"})
        if self.retention_policy:
            params["rp"] = self.retention_policy
        response = await self._request(
            "POST",
            "/query",
            params=params,
            data={"q": "; ".join(statements)},
            headers=self._accept,
        )
        answer = QueryAnswer(
            response.content, response.headers.get("content-type", "").startswith(_MSGPACK)
        )
        self._check_auth(response)
        if response.status_code == 404:
            raise StoreUnavailableError(
                f"influxdb has no /query endpoint at {self._client.base_url}", retry_after_s=60.0
            )
        if response.status_code != 200:
            raise TimeSeriesError(
                f"influxdb query failed (HTTP {response.status_code}): {_error_text(answer)}"
            )
        return answer

    async def create_database(self) -> None:
        """``CREATE DATABASE`` (InfluxDB 1.x; idempotent). 2.x uses a bucket and DBRP mapping."""
        await self._query([text.create_database(self.database)])

    # ------------------------------------------------------------------ writing

    async def write(self, points: Sequence[Point]) -> int:
        rows = sample_rows(points)
        accepted = 0
        for offset in range(0, len(rows), self.batch_size):
            accepted += await self._write_rows(rows[offset : offset + self.batch_size])
        return accepted

    async def _write_rows(self, rows: Sequence[SampleRow]) -> int:
        """One request of valid rows; the number of lines influxd accepted."""
        return await self._write_lines(encode_rows(self.measurement, rows))

    async def write_series(
        self, series: Sequence[RawSeries], lines_per_request: int = 50_000
    ) -> int:
        """Write columnar samples (NaN = field missing) as line protocol built with Arrow, in
        requests of about ``lines_per_request`` lines; the number of lines accepted."""
        accepted = 0
        body: list[memoryview] = []
        blocks: list[RawSeries] = []
        pending = 0
        for block in series:
            validate_loop_id(block.loop_id)
            chunks, count = encode_series_chunks(self.measurement, block)
            body += chunks
            blocks.append(block)
            pending += count
            if pending >= lines_per_request:
                accepted += await self._write_encoded(blocks, b"".join(body), pending)
                body, blocks, pending = [], [], 0
        if pending:
            accepted += await self._write_encoded(blocks, b"".join(body), pending)
        return accepted

    async def _write_encoded(self, blocks: Sequence[RawSeries], body: bytes, count: int) -> int:
        """One request of the lines of ``blocks`` (``count`` of them); the number accepted."""
        return await self._write_body(body, count, compress=False)

    async def _write_lines(self, lines: Sequence[str]) -> int:
        return await self._write_body("\n".join(lines).encode(), len(lines), compress=True)

    async def _write_body(self, body: bytes, count: int, *, compress: bool) -> int:
        params = {"db": self.database, "precision": "ns"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if compress and len(body) > 4096:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        response = await self._request(
            "POST", "/write", params=params, content=body, headers=headers, slot=False
        )
        self._check_auth(response)
        if response.status_code == 204:
            return count
        message = response.text[:500]
        if response.status_code == 404:
            raise StoreUnavailableError(f"influxdb write: {message}", retry_after_s=30.0)
        dropped = _DROPPED.search(message)
        if response.status_code == 400 and dropped:
            logger.warning(
                "influxdb dropped points",
                extra={"dropped": int(dropped.group(1)), "error": message},
            )
            return max(0, count - int(dropped.group(1)))
        logger.error("influxdb refused a write batch", extra={"lines": count, "error": message})
        return 0

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
        columns = [*float_fields(chosen)]
        if MODE_TAG in chosen:
            columns.append(MODE_TAG)
        statement = text.select_raw(
            self._target,
            loop_id,
            position.t_ns if position else start_ns,
            end_ns,
            columns,
            limit=None if limit is None else limit + 1,
            offset=position.skip if position else 0,
        )
        [blocks] = await self._query([statement])
        return page_of(_series_of(loop_id, blocks), limit, chosen, position)

    async def query_raw_many(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, RawSeries]:
        wanted = list(dict.fromkeys(validate_loop_id(i, "loop_ids") for i in loop_ids))
        start_ns, end_ns = validate_window(start, end)
        found: dict[str, RawSeries] = {}
        if end_ns <= start_ns or not wanted:
            return {loop_id: RawSeries.empty(loop_id) for loop_id in wanted}

        async def read(batch: Sequence[str]) -> None:
            statement = text.select_raw_many(self._target, batch, start_ns, end_ns)
            answer = await self._query_answer([statement], chunked=not short_window)
            if short_window and answer.truncated:  # max-row-limit cut it: ask again, chunked
                answer = await self._query_answer([statement])
            # The parsed rows are garbage once in numpy: drop them before the collector runs
            # again, or its next young-generation pass walks all of them (~0.1 us per line).
            with _gc_paused():
                [blocks] = parse_chunked_answer(answer, 1)
                found.update(_series_by_loop(blocks))
                del blocks

        # Measured on influxd 1.6: a chunked answer costs the client one HTTP chunk per series,
        # which dominates for a few rows per series (30-s poll: plain answers 0.5 us per line
        # cheaper for influxd and 0.8 us for the client), while for long series influxd builds
        # a plain answer in memory first (hour of 1-Hz samples: 3.1 vs 2.1 us per line).
        short_window = end_ns - start_ns < _PLAIN_ANSWER_MAX_NS
        size = self.loops_per_query
        await asyncio.gather(*(read(wanted[i : i + size]) for i in range(0, len(wanted), size)))
        return {
            loop_id: found[loop_id] if loop_id in found else RawSeries.empty(loop_id)
            for loop_id in wanted
        }

    async def latest(self, loop_id: str, fields: Sequence[str] | None = None) -> LatestPoint | None:
        validate_loop_id(loop_id)
        chosen = requested_columns(fields)
        statements = [
            text.select_latest_mode(self._target, loop_id)
            if name == MODE_TAG
            else text.select_latest_field(self._target, loop_id, name)
            for name in chosen
        ]
        answers = await self._query(statements)
        values: dict[str, LatestValue] = {}
        for name, blocks in zip(chosen, answers, strict=True):
            row = next((block for block in blocks if block.values), None)
            if row is None:
                values[name] = LatestValue(None, None)
                continue
            column = MODE_TAG if name == MODE_TAG else "last"
            value = row.column(column)[0]
            time_ns = int(row.values[0][0])
            values[name] = LatestValue(
                value if name == MODE_TAG or value is None else float(value), from_ns(time_ns)
            )
        if all(value.time is None for value in values.values()):
            return None
        return LatestPoint(loop_id, values)

    async def latest_many(self, loop_ids: Sequence[str]) -> dict[str, LatestPoint]:
        """:meth:`latest` of many loops: the newest sample of each loop in one statement, then
        ``last()`` of a field (or the newest sample with a Mode) only for the loops whose newest
        sample lacks it.

        Samples are mostly written whole, so the first statement usually settles every field:
        influxd then opens each loop's series once instead of once per field (measured 2.5x
        less of its time for 1,000 loops). Loops are read ``latest_loops_per_query`` per
        statement, the statements in flight together (influxd runs each on one core).
        """
        wanted = list(dict.fromkeys(validate_loop_id(i, "loop_ids") for i in loop_ids))
        found: dict[str, dict[str, LatestValue]] = {}
        known = set(wanted)
        names = (*FIELDS, MODE_TAG)

        async def newest(batch: Sequence[str]) -> None:
            statement = text.select_newest_sample_many(self._target, batch)
            [blocks] = await self._plain_query([statement])
            for block in blocks:
                loop_id = block.tags.get(LOOP_TAG, "")
                if not block.values or loop_id not in known:
                    continue
                row = block.values[0]
                moment = from_ns(int(row[0]))
                values = found.setdefault(loop_id, {})
                for name in names:
                    value = row[block.columns.index(name)] if name in block.columns else None
                    if value is not None and value != "":
                        values[name] = LatestValue(
                            value if name == MODE_TAG else float(value), moment
                        )

        size = self.latest_loops_per_query
        await asyncio.gather(*(newest(wanted[i : i + size]) for i in range(0, len(wanted), size)))
        lacking = {
            name: [loop_id for loop_id, values in found.items() if name not in values]
            for name in names
        }
        await self._read_older_values(found, lacking)
        empty = LatestValue(None, None)
        return {
            loop_id: LatestPoint(loop_id, {name: found[loop_id].get(name, empty) for name in names})
            for loop_id in wanted
            if loop_id in found
        }

    async def _read_older_values(
        self, found: dict[str, dict[str, LatestValue]], lacking: Mapping[str, Sequence[str]]
    ) -> None:
        """Add to ``found`` the newest value of each field of ``lacking`` (field -> loops of
        ``found``): ``last()`` of a float field, the newest sample with a Mode; a field the loop
        never had stays out of ``found``. One request, a statement per field."""
        older = [(name, loops) for name, loops in lacking.items() if loops]
        if older:
            answers = await self._plain_query(
                [
                    text.select_latest_mode_many(self._target, loops)
                    if name == MODE_TAG
                    else text.select_latest_field_many(self._target, loops, name)
                    for name, loops in older
                ]
            )
            for (name, _), blocks in zip(older, answers, strict=True):
                column = MODE_TAG if name == MODE_TAG else "last"
                for block in blocks:
                    loop_id = block.tags.get(LOOP_TAG, "")
                    if not block.values or loop_id not in found:
                        continue
                    value = block.column(column)[0]
                    if value is None or value == "":
                        continue
                    found[loop_id][name] = LatestValue(
                        value if name == MODE_TAG else float(value),
                        from_ns(int(block.values[0][0])),
                    )

    async def minute_counts(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, MinuteCounts]:
        """Samples per minute carrying PV (``count(PV) GROUP BY time(1m), loop_id``): the server
        counts, one row per loop and minute travels. SP and OP are not counted
        (:data:`NOT_COUNTED`): each counted field costs influxd as much again."""
        wanted = list(dict.fromkeys(validate_loop_id(i, "loop_ids") for i in loop_ids))
        start_ns, end_ns = validate_window(start, end)
        result: dict[str, MinuteCounts] = {}
        if end_ns <= start_ns or not wanted:
            return {loop_id: MinuteCounts.empty(loop_id) for loop_id in wanted}
        asked = set(wanted)

        async def read(batch: Sequence[str]) -> None:
            # a few rows per series: a plain answer (a chunked one costs the client one HTTP
            # chunk per series), asked again chunked if the server's max-row-limit cut it
            statement = text.select_minute_counts(self._target, batch, start_ns, end_ns)
            answer = await self._query_answer([statement], chunked=False)
            if answer.truncated:
                answer = await self._query_answer([statement])
            with _gc_paused():
                [blocks] = parse_chunked_answer(answer, 1)
            for block in blocks:
                loop_id = block.tags.get(LOOP_TAG, "")
                if loop_id not in asked or not block.values:
                    continue
                result[loop_id] = _minute_counts_of(loop_id, block)

        size = self.loops_per_query
        await asyncio.gather(*(read(wanted[i : i + size]) for i in range(0, len(wanted), size)))
        return {loop_id: result.get(loop_id) or MinuteCounts.empty(loop_id) for loop_id in wanted}

    async def sample_totals(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, SampleTotals]:
        """Samples carrying PV over the window (``count(PV) GROUP BY loop_id``): one row per
        loop travels. SP and OP are not counted, as in :meth:`minute_counts`."""
        wanted = list(dict.fromkeys(validate_loop_id(i, "loop_ids") for i in loop_ids))
        start_ns, end_ns = validate_window(start, end)
        totals: dict[str, SampleTotals] = {}
        if end_ns <= start_ns or not wanted:
            return totals
        asked = set(wanted)

        async def read(batch: Sequence[str]) -> None:
            statement = text.select_sample_totals(self._target, batch, start_ns, end_ns)
            [blocks] = await self._plain_query([statement])
            for block in blocks:
                loop_id = block.tags.get(LOOP_TAG, "")
                if loop_id not in asked or not block.values:
                    continue
                pv = block.values[0][block.columns.index("pv")] or 0
                totals[loop_id] = (int(pv), NOT_COUNTED, NOT_COUNTED)

        size = self.latest_loops_per_query
        await asyncio.gather(*(read(wanted[i : i + size]) for i in range(0, len(wanted), size)))
        return totals

    async def retention_period(self) -> timedelta | None:
        """The duration of the retention policy the store reads (``INFLUXDB_RETENTION_POLICY``,
        else the database's default) from ``SHOW RETENTION POLICIES``; None when it keeps
        samples for ever (``0s``). Asked again at most every :data:`_RETENTION_TTL_S`."""
        cached = self._retention
        if cached is not None and time.monotonic() - cached[0] < _RETENTION_TTL_S:
            return cached[1]
        [blocks] = await self._query([text.show_retention_policies(self.database)])
        policies = [
            dict(zip(block.columns, row, strict=True)) for block in blocks for row in block.values
        ]
        if self.retention_policy:
            chosen = [policy for policy in policies if policy.get("name") == self.retention_policy]
        else:
            chosen = [policy for policy in policies if policy.get("default") is True]
        if not chosen:
            raise TimeSeriesError(
                f"influxdb: no retention policy {self.retention_policy or '(default)'} "
                f"on database {self.database}"
            )
        period = go_duration(str(chosen[0].get("duration", "")))
        kept = None if period == timedelta(0) else period
        self._retention = (time.monotonic(), kept)
        return kept

    async def time_range(self, loop_id: str) -> TimeRange | None:
        validate_loop_id(loop_id)
        first, last = await self._query(
            [
                text.select_edge(self._target, loop_id, newest=False),
                text.select_edge(self._target, loop_id, newest=True),
            ]
        )
        first_times = [int(block.values[0][0]) for block in first if block.values]
        last_times = [int(block.values[0][0]) for block in last if block.values]
        if not first_times or not last_times:
            return None
        return TimeRange(from_ns(min(first_times)), from_ns(max(last_times)))

    async def discover_loops(self) -> list[str]:
        [blocks] = await self._query([text.show_loops(self.measurement)])
        found = {str(value) for block in blocks for value in block.column("value")}
        return sorted(loop_id for loop_id in found if LOOP_ID_PATTERN.fullmatch(loop_id))

    async def aggregate(
        self, loop_id: str, start: datetime, end: datetime, interval_s: int
    ) -> IntervalAggregate:
        validate_loop_id(loop_id)
        start_ns, end_ns = validate_window(start, end)
        validate_interval(interval_s, start_ns, end_ns)
        empty = IntervalAggregate(
            loop_id,
            interval_s,
            np.empty(0, dtype=np.int64),
            {
                f"{name.lower()}_{stat}": np.empty(0)
                for name in FIELDS
                for stat in AGGREGATE_STATISTICS
            },
        )
        if end_ns <= start_ns:
            return empty
        [blocks] = await self._query(
            [text.select_aggregate(self._target, loop_id, start_ns, end_ns, interval_s)]
        )
        block = next((b for b in blocks if b.values), None)
        if block is None:
            return empty
        stats: dict[str, FloatArray] = {}
        for key in empty.stats:
            column = np.array(block.column(key), dtype=np.float64)
            if key.endswith("_count"):
                column = np.nan_to_num(column, nan=0.0)
            stats[key] = column
        return IntervalAggregate(
            loop_id, interval_s, np.asarray(block.column("time"), dtype=np.int64), stats
        )

    async def aggregate_many(
        self, loop_ids: Sequence[str], start: datetime, end: datetime, interval_s: int
    ) -> dict[str, IntervalAggregate]:
        """:meth:`aggregate` of several loops: ``GROUP BY time(interval), loop_id`` on the server.

        Batched like :meth:`query_raw_many` (``loops_per_query`` loops per statement, a few
        requests in flight). Not part of the protocol: the aggregation benchmark compares this
        server-side path with reading raw samples and aggregating them in numpy.
        """
        wanted = list(dict.fromkeys(validate_loop_id(i, "loop_ids") for i in loop_ids))
        start_ns, end_ns = validate_window(start, end)
        validate_interval(interval_s, start_ns, end_ns)
        keys = [f"{name.lower()}_{stat}" for name in FIELDS for stat in AGGREGATE_STATISTICS]
        nothing = np.empty(0, dtype=np.int64)
        result = {
            loop_id: IntervalAggregate(
                loop_id, interval_s, nothing, {key: np.empty(0) for key in keys}
            )
            for loop_id in wanted
        }
        if end_ns <= start_ns or not wanted:
            return result

        async def read(batch: Sequence[str]) -> None:
            statement = text.select_aggregate_many(
                self._target, batch, start_ns, end_ns, interval_s
            )
            [blocks] = await self._query([statement])
            for block in blocks:
                loop_id = block.tags.get(LOOP_TAG, "")
                if loop_id not in result or not block.values:
                    continue
                stats: dict[str, FloatArray] = {}
                for key in keys:
                    column = np.array(block.column(key), dtype=np.float64)
                    stats[key] = (
                        np.nan_to_num(column, nan=0.0) if key.endswith("_count") else column
                    )
                times = np.asarray(block.column("time"), dtype=np.int64)
                result[loop_id] = IntervalAggregate(loop_id, interval_s, times, stats)

        size = self.loops_per_query
        await asyncio.gather(*(read(wanted[i : i + size]) for i in range(0, len(wanted), size)))
        return result

    async def ping(self) -> bool:
        try:
            response = await self._client.get("/ping", timeout=5.0)
        except httpx.HTTPError:
            return False
        if response.status_code in (200, 204):
            self.breaker.record_success()  # it answers again: no need to wait for a probe
            return True
        return False

    async def close(self) -> None:
        await self._client.aclose()
