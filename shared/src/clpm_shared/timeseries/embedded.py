"""Embedded time-series store: one SQLite file in WAL mode, for the one-command local run.

Several processes share the file: the simulator writes while the gateway, the aggregation and the
KPI worker read (WAL lets readers proceed during a write; writers wait on ``busy_timeout``).
Calls run on small thread pools so the event loop never blocks: one writer thread with its own
connection and two reader threads with read-only connections.

Table ``samples`` holds one row per ``(loop_id, t_ns)``; writing the same time again merges the
non-missing values (as InfluxDB overwrites fields of a point). Table ``loop_spans`` keeps each
loop's first and last sample time so discovery does not scan the samples.

Retention (``retention_s``, ``EMBEDDED_RETENTION_DAYS``): at most once per ``prune_interval_s``
(an hour) a write also deletes the samples older than the retention, loop by loop, on the
writer thread (:meth:`EmbeddedStore.prune`); samples written with older times are deleted then
too. Aggregates in the relational database are not touched.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from clpm_shared.private_files import create_private_file
from clpm_shared.timeseries.base import (
    LOOP_ID_PATTERN,
    MODE_TAG,
    FloatArray,
    IntervalAggregate,
    LatestPoint,
    LatestValue,
    MinuteCounts,
    Point,
    RawPage,
    RawSeries,
    StoreUnavailableError,
    TimeRange,
    from_ns,
    to_ns,
    validate_interval,
    validate_limit,
    validate_loop_id,
    validate_window,
)
from clpm_shared.timeseries.cursor import decode_cursor, page_of
from clpm_shared.timeseries.points import SampleRow, sample_rows
from clpm_shared.timeseries.raw_columns import (
    float_fields,
    requested_columns,
    series_from_rows,
)

T = TypeVar("T")
logger = logging.getLogger(__name__)
PRUNE_INTERVAL_S = 3600.0
WRITE_CACHE_MB = 64
"""Page cache of the writer connection (SQLite's default is 2 MB): a bulk write touches the
index pages of every loop it writes, and with them cached it runs about 1.6 times as fast."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS samples (
        loop_id TEXT NOT NULL,
        t_ns INTEGER NOT NULL,
        pv REAL,
        sp REAL,
        op REAL,
        mode TEXT,
        PRIMARY KEY (loop_id, t_ns)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS loop_spans (
        loop_id TEXT PRIMARY KEY,
        first_ns INTEGER NOT NULL,
        last_ns INTEGER NOT NULL
    ) WITHOUT ROWID""",
)

_UPSERT_SAMPLE = """
INSERT INTO samples (loop_id, t_ns, pv, sp, op, mode) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (loop_id, t_ns) DO UPDATE SET
    pv = coalesce(excluded.pv, samples.pv),
    sp = coalesce(excluded.sp, samples.sp),
    op = coalesce(excluded.op, samples.op),
    mode = coalesce(excluded.mode, samples.mode)
"""

_UPSERT_SPAN = """
INSERT INTO loop_spans (loop_id, first_ns, last_ns) VALUES (?, ?, ?)
ON CONFLICT (loop_id) DO UPDATE SET
    first_ns = min(loop_spans.first_ns, excluded.first_ns),
    last_ns = max(loop_spans.last_ns, excluded.last_ns)
"""

_COLUMN = {"PV": "pv", "SP": "sp", "OP": "op", MODE_TAG: "mode"}
"""Stored field name to SQL column; the only names that ever reach SQL text."""

_IN_BATCH = 500
"""Loop ids per ``IN (...)`` query of ``query_raw_many``."""
_MINUTE_NS = 60_000_000_000
_LATEST_BATCH = 1000
"""Loop ids per statement of ``latest_many`` (the gateway asks for at most 1,000 at once)."""


def _present_condition(fields: Sequence[str]) -> str:
    return "(" + " OR ".join(f"{_COLUMN[name]} IS NOT NULL" for name in fields) + ")"


class EmbeddedStore:
    """:class:`~clpm_shared.timeseries.base.TimeSeriesStore` on a SQLite file (WAL)."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = 30.0,
        batch_size: int = 5000,
        retention_s: float | None = None,
        prune_interval_s: float = PRUNE_INTERVAL_S,
        write_cache_mb: int = WRITE_CACHE_MB,
    ) -> None:
        self.path = Path(path)
        self.write_cache_mb = write_cache_mb
        self.batch_size = batch_size
        self.retention_s = retention_s or None  # 0: keep everything
        self.prune_interval_s = prune_interval_s
        self._pruned_at: float | None = None  # monotonic time of the last prune
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="tsdb-write")
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="tsdb-read")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ connections

    def _connect(self, *, read_only: bool) -> sqlite3.Connection:
        create_private_file(self.path)  # 0600, not the umask's mode; -wal/-shm follow it
        connection = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            connection.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            for statement in _SCHEMA:
                connection.execute(statement)
            if read_only:
                connection.execute("PRAGMA query_only = 1")
            else:
                connection.execute(f"PRAGMA cache_size = -{int(self.write_cache_mb) * 1024}")
        except sqlite3.Error:
            connection.close()
            raise
        with self._lock:
            self._connections.append(connection)
        return connection

    def _connection(self, *, read_only: bool) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect(read_only=read_only)
            self._local.connection = connection
        return connection

    async def _run(self, function: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        if self._closed:
            raise StoreUnavailableError("embedded time-series store is closed", retry_after_s=5.0)

        def call() -> T:
            return function(self._connection(read_only=not write))

        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._writer if write else self._readers, call
            )
        except sqlite3.DatabaseError as exc:  # locked past busy_timeout, I/O error, corrupt file
            raise StoreUnavailableError(
                f"embedded time-series store {self.path}: {exc}", retry_after_s=1.0
            ) from exc

    # ------------------------------------------------------------------ writing

    async def write(self, points: Sequence[Point]) -> int:
        rows = sample_rows(points)
        if not rows:
            return 0
        for offset in range(0, len(rows), self.batch_size):
            await self._run(
                functools.partial(_write_rows, rows[offset : offset + self.batch_size]), write=True
            )
        if self.retention_s is not None and (
            self._pruned_at is None or time.monotonic() - self._pruned_at >= self.prune_interval_s
        ):
            self._pruned_at = time.monotonic()
            await self.prune(datetime.now(UTC) - timedelta(seconds=self.retention_s))
        return len(rows)

    async def write_series(self, series: Sequence[RawSeries]) -> int:
        """Write columnar samples (NaN = field missing, mode None = unknown) in one transaction;
        the number of samples. Same merge semantics as :meth:`write`; for bulk imports."""
        blocks = [block for block in series if len(block)]
        for block in blocks:
            validate_loop_id(block.loop_id)
        if not blocks:
            return 0
        await self._run(functools.partial(_write_series, blocks), write=True)
        return sum(len(block) for block in blocks)

    async def prune(self, before: datetime) -> int:
        """Delete every sample older than ``before``; the number deleted.

        Loop by loop (one short write transaction each, so readers and other writers are not
        held up); each loop's span starts at its oldest remaining sample, or is removed.
        """
        before_ns = to_ns(before)
        loop_ids: list[str] = await self._run(
            lambda db: [
                row[0]
                for row in db.execute(
                    "SELECT loop_id FROM loop_spans WHERE first_ns < ?", (before_ns,)
                )
            ]
        )
        deleted = 0
        for loop_id in loop_ids:
            deleted += await self._run(
                functools.partial(_prune_loop, loop_id, before_ns), write=True
            )
        if deleted:
            logger.info(
                "embedded store: deleted samples older than the retention",
                extra={"deleted": deleted, "loops": len(loop_ids), "before": before.isoformat()},
            )
        return deleted

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
        low = position.t_ns if position else start_ns
        skip = position.skip if position else 0
        sql = (
            "SELECT t_ns, pv, sp, op, mode FROM samples "  # noqa: S608 - columns from _COLUMN
            "WHERE loop_id = ? AND t_ns >= ? AND t_ns < ? AND "
            f"{_present_condition(float_fields(chosen))} "
            "ORDER BY t_ns LIMIT ? OFFSET ?"
        )
        fetch = -1 if limit is None else limit + 1
        rows: list[tuple[Any, ...]] = await self._run(
            lambda db: db.execute(sql, (loop_id, low, end_ns, fetch, skip)).fetchall()
        )
        return page_of(series_from_rows(loop_id, rows), limit, chosen, position)

    async def query_raw_many(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, RawSeries]:
        wanted = list(dict.fromkeys(validate_loop_id(i, "loop_ids") for i in loop_ids))
        start_ns, end_ns = validate_window(start, end)
        result: dict[str, RawSeries] = {}
        for offset in range(0, len(wanted), _IN_BATCH):
            batch = wanted[offset : offset + _IN_BATCH]
            grouped = await self._run(functools.partial(_read_many, batch, start_ns, end_ns))
            for loop_id in batch:
                result[loop_id] = series_from_rows(loop_id, grouped.get(loop_id, []))
        return result

    async def latest(self, loop_id: str, fields: Sequence[str] | None = None) -> LatestPoint | None:
        validate_loop_id(loop_id)
        chosen = requested_columns(fields)

        def read(db: sqlite3.Connection) -> dict[str, tuple[Any, int] | None]:
            found: dict[str, tuple[Any, int] | None] = {}
            for name in chosen:
                column = _COLUMN[name]
                row = db.execute(
                    f"SELECT {column}, t_ns FROM samples "  # noqa: S608 - column from _COLUMN
                    f"WHERE loop_id = ? AND {column} IS NOT NULL ORDER BY t_ns DESC LIMIT 1",
                    (loop_id,),
                ).fetchone()
                found[name] = (row[0], row[1]) if row else None
            return found

        found = await self._run(read)
        if all(value is None for value in found.values()):
            return None
        values = {
            name: LatestValue(hit[0], from_ns(hit[1])) if hit else LatestValue(None, None)
            for name, hit in found.items()
        }
        return LatestPoint(loop_id, values)

    async def latest_many(self, loop_ids: Sequence[str]) -> dict[str, LatestPoint]:
        """:meth:`latest` of many loops: one index probe per loop for its newest sample, one
        per column more for the loops whose newest sample lacks a column."""
        wanted = list(dict.fromkeys(validate_loop_id(i, "loop_ids") for i in loop_ids))
        result: dict[str, LatestPoint] = {}
        for offset in range(0, len(wanted), _LATEST_BATCH):
            batch = wanted[offset : offset + _LATEST_BATCH]
            rows = await self._run(functools.partial(_latest_many, batch))
            for row in rows:
                values: dict[str, LatestValue] = {}
                for k, name in enumerate(_COLUMN):
                    value, t_ns = row[1 + 2 * k], row[2 + 2 * k]
                    values[name] = (
                        LatestValue(None, None)
                        if t_ns is None
                        else LatestValue(value, from_ns(t_ns))
                    )
                if any(value.time is not None for value in values.values()):
                    result[row[0]] = LatestPoint(row[0], values)
        return result

    async def minute_counts(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, MinuteCounts]:
        """Samples per minute carrying PV, SP, OP, counted by SQLite (``GROUP BY`` minute)."""
        wanted = list(dict.fromkeys(validate_loop_id(i, "loop_ids") for i in loop_ids))
        start_ns, end_ns = validate_window(start, end)
        result = {loop_id: MinuteCounts.empty(loop_id) for loop_id in wanted}
        for offset in range(0, len(wanted), _IN_BATCH):
            batch = wanted[offset : offset + _IN_BATCH]
            rows = await self._run(functools.partial(_minute_counts, batch, start_ns, end_ns))
            grouped: dict[str, list[tuple[int, int, int, int]]] = {}
            for loop_id, *counts in rows:
                grouped.setdefault(loop_id, []).append(tuple(counts))
            for loop_id, members in grouped.items():
                table = np.asarray(members, dtype=np.int64)
                result[loop_id] = MinuteCounts(
                    loop_id, table[:, 0] * _MINUTE_NS, table[:, 1], table[:, 2], table[:, 3]
                )
        return result

    async def time_range(self, loop_id: str) -> TimeRange | None:
        validate_loop_id(loop_id)
        row = await self._run(
            lambda db: db.execute(
                "SELECT (SELECT min(t_ns) FROM samples WHERE loop_id = ?), "
                "(SELECT max(t_ns) FROM samples WHERE loop_id = ?)",
                (loop_id, loop_id),
            ).fetchone()
        )
        if row is None or row[0] is None:
            return None
        return TimeRange(from_ns(row[0]), from_ns(row[1]))

    async def discover_loops(self) -> list[str]:
        rows = await self._run(
            lambda db: db.execute("SELECT loop_id FROM loop_spans ORDER BY loop_id").fetchall()
        )
        return [row[0] for row in rows if LOOP_ID_PATTERN.fullmatch(row[0])]

    async def aggregate(
        self, loop_id: str, start: datetime, end: datetime, interval_s: int
    ) -> IntervalAggregate:
        validate_loop_id(loop_id)
        start_ns, end_ns = validate_window(start, end)
        validate_interval(interval_s, start_ns, end_ns)
        return await self._run(functools.partial(_aggregate, loop_id, start_ns, end_ns, interval_s))

    async def ping(self) -> bool:
        try:
            return bool(await self._run(lambda db: db.execute("SELECT 1").fetchone()[0] == 1))
        except StoreUnavailableError:
            return False

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


def _write_rows(rows: Sequence[SampleRow], db: sqlite3.Connection) -> None:
    spans: dict[str, tuple[int, int]] = {}
    for row in rows:
        first, last = spans.get(row.loop_id, (row.t_ns, row.t_ns))
        spans[row.loop_id] = (min(first, row.t_ns), max(last, row.t_ns))
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(_UPSERT_SAMPLE, rows)
        db.executemany(_UPSERT_SPAN, [(key, *span) for key, span in spans.items()])
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _write_series(series: Sequence[RawSeries], db: sqlite3.Connection) -> None:
    # SQLite binds NaN as NULL: a missing field leaves the stored one (coalesce) untouched
    db.execute("BEGIN IMMEDIATE")
    try:
        for block in series:
            rows = zip(
                itertools.repeat(block.loop_id, len(block)),
                block.t_ns.tolist(),
                block.pv.tolist(),
                block.sp.tolist(),
                block.op.tolist(),
                block.mode.tolist(),
                strict=True,
            )
            db.executemany(_UPSERT_SAMPLE, rows)
        spans = [(b.loop_id, int(b.t_ns.min()), int(b.t_ns.max())) for b in series]
        db.executemany(_UPSERT_SPAN, spans)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _prune_loop(loop_id: str, before_ns: int, db: sqlite3.Connection) -> int:
    db.execute("BEGIN IMMEDIATE")
    try:
        deleted = db.execute(
            "DELETE FROM samples WHERE loop_id = ? AND t_ns < ?", (loop_id, before_ns)
        ).rowcount
        first = db.execute(
            "SELECT min(t_ns) FROM samples WHERE loop_id = ?", (loop_id,)
        ).fetchone()[0]
        if first is None:
            db.execute("DELETE FROM loop_spans WHERE loop_id = ?", (loop_id,))
        else:
            db.execute("UPDATE loop_spans SET first_ns = ? WHERE loop_id = ?", (first, loop_id))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return int(deleted)


_FLOAT_COLUMNS = ("pv", "sp", "op")


def _bucket_statistics_sql() -> str:
    per_field = []
    edges = []
    for c in _FLOAT_COLUMNS:
        per_field.append(
            f"count({c}) AS {c}_n, sum({c} - :{c}_k) AS {c}_s, "
            f"sum(({c} - :{c}_k) * ({c} - :{c}_k)) AS {c}_q, min({c}) AS {c}_lo, "
            f"max({c}) AS {c}_hi, min(CASE WHEN {c} IS NOT NULL THEN t_ns END) AS {c}_t0, "
            f"max(CASE WHEN {c} IS NOT NULL THEN t_ns END) AS {c}_t1"
        )
        edges.append(
            f"m.{c}_n, m.{c}_s, m.{c}_q, m.{c}_lo, m.{c}_hi, "  # noqa: S608 - _FLOAT_COLUMNS
            f"(SELECT {c} FROM samples WHERE loop_id = :loop_id AND t_ns = m.{c}_t0), "
            f"(SELECT {c} FROM samples WHERE loop_id = :loop_id AND t_ns = m.{c}_t1)"
        )
    return (
        "WITH m AS (SELECT t_ns / :interval_ns AS b, "  # noqa: S608 - names from _FLOAT_COLUMNS
        + ", ".join(per_field)
        + " FROM samples WHERE loop_id = :loop_id AND t_ns >= :start_ns AND t_ns < :end_ns"
        " GROUP BY b) SELECT m.b, " + ", ".join(edges) + " FROM m ORDER BY m.b"
    )


_BUCKET_STATISTICS = _bucket_statistics_sql()
"""One pass over the window: per epoch-aligned bucket and field the count, the sum and sum of
squares of the deviations from a reference value (the window's first value: no cancellation
worth the name), min, max, and the first and last present values (looked up by their time)."""

_REFERENCE = (
    "SELECT {column} FROM samples WHERE loop_id = :loop_id AND t_ns >= :start_ns "
    "AND t_ns < :end_ns AND {column} IS NOT NULL ORDER BY t_ns LIMIT 1"
)


def _aggregate(
    loop_id: str, start_ns: int, end_ns: int, interval_s: int, db: sqlite3.Connection
) -> IntervalAggregate:
    """Per-interval statistics of one loop, computed in SQL: memory does not grow with the
    number of samples (the buckets are bounded by the caller)."""
    parameters: dict[str, Any] = {
        "interval_ns": interval_s * 1_000_000_000,
        "loop_id": loop_id,
        "start_ns": start_ns,
        "end_ns": end_ns,
    }
    for column in _FLOAT_COLUMNS:
        found = db.execute(_REFERENCE.format(column=column), parameters).fetchone()
        parameters[f"{column}_k"] = float(found[0]) if found is not None else 0.0
    rows = db.execute(_BUCKET_STATISTICS, parameters).fetchall()
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 1 + 7 * len(_FLOAT_COLUMNS))
    buckets = np.array([row[0] for row in rows], dtype=np.int64)
    stats: dict[str, FloatArray] = {}
    for index, column in enumerate(_FLOAT_COLUMNS):
        count, total, squares, low, high, first, last = table[:, 1 + 7 * index : 8 + 7 * index].T
        has = count > 0
        mean_offset = np.divide(total, count, out=np.full(count.size, np.nan), where=has)
        several = count > 1
        spread = np.maximum(squares - total * np.where(has, mean_offset, 0.0), 0.0)
        stats[f"{column}_count"] = count
        stats[f"{column}_mean"] = parameters[f"{column}_k"] + mean_offset
        stats[f"{column}_min"] = low
        stats[f"{column}_max"] = high
        stats[f"{column}_first"] = first
        stats[f"{column}_last"] = last
        stats[f"{column}_std"] = np.sqrt(
            np.divide(spread, count - 1, out=np.full(count.size, np.nan), where=several)
        )
    return IntervalAggregate(loop_id, interval_s, buckets * interval_s * 1_000_000_000, stats)


def _read_many(
    loop_ids: Sequence[str], start_ns: int, end_ns: int, db: sqlite3.Connection
) -> dict[str, list[tuple[Any, ...]]]:
    marks = ", ".join("?" * len(loop_ids))
    cursor = db.execute(
        "SELECT loop_id, t_ns, pv, sp, op, mode FROM samples "  # noqa: S608 - placeholders only
        f"WHERE loop_id IN ({marks}) AND t_ns >= ? AND t_ns < ? ORDER BY loop_id, t_ns",
        (*loop_ids, start_ns, end_ns),
    )
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for row in cursor:
        grouped.setdefault(row[0], []).append(row[1:])
    return grouped


def _latest_many(loop_ids: Sequence[str], db: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """``(loop_id, pv, t, sp, t, op, t, mode, t)`` of each loop with data.

    The newest sample (at ``loop_spans.last_ns``: one index probe per loop) settles the loops
    in which it carries every column; only the others are probed once per column.
    """
    marks = ", ".join("?" * len(loop_ids))
    rows: list[tuple[Any, ...]] = []
    settled: set[str] = set()
    for loop_id, t_ns, *values in db.execute(
        "SELECT s.loop_id, s.t_ns, s.pv, s.sp, s.op, s.mode FROM loop_spans l "  # noqa: S608
        "JOIN samples s ON s.loop_id = l.loop_id AND s.t_ns = l.last_ns "
        f"WHERE l.loop_id IN ({marks})",
        tuple(loop_ids),
    ):
        if all(value is not None for value in values):
            rows.append((loop_id, *itertools.chain.from_iterable((v, t_ns) for v in values)))
            settled.add(loop_id)
    unsettled = [loop_id for loop_id in loop_ids if loop_id not in settled]
    if unsettled:
        rows.extend(_latest_of_each_column(unsettled, db))
    return rows


def _latest_of_each_column(
    loop_ids: Sequence[str], db: sqlite3.Connection
) -> list[tuple[Any, ...]]:
    newest = "FROM samples s WHERE s.loop_id = l.loop_id AND {0} IS NOT NULL ORDER BY t_ns DESC"
    probes = ", ".join(
        f"(SELECT {column} {newest.format(column)} LIMIT 1), "  # column names from _COLUMN
        f"(SELECT t_ns {newest.format(column)} LIMIT 1)"
        for column in _COLUMN.values()
    )
    marks = ", ".join("?" * len(loop_ids))
    return db.execute(
        f"SELECT l.loop_id, {probes} FROM loop_spans l "  # noqa: S608 - columns from _COLUMN
        f"WHERE l.loop_id IN ({marks})",
        tuple(loop_ids),
    ).fetchall()


def _minute_counts(
    loop_ids: Sequence[str], start_ns: int, end_ns: int, db: sqlite3.Connection
) -> list[tuple[Any, ...]]:
    marks = ", ".join("?" * len(loop_ids))
    return db.execute(
        f"SELECT loop_id, t_ns / {_MINUTE_NS} AS minute, count(pv), count(sp), count(op) "  # noqa: S608
        f"FROM samples WHERE loop_id IN ({marks}) AND t_ns >= ? AND t_ns < ? "
        "GROUP BY loop_id, minute ORDER BY loop_id, minute",
        (*loop_ids, start_ns, end_ns),
    ).fetchall()
