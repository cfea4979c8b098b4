"""Writes of ``agg_1m`` / ``agg_1h`` (idempotent upserts) and columnar range reads for roll-ups.

PostgreSQL path: rows are streamed with binary ``COPY`` into a per-connection temporary staging
table, then merged with one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` (10,000 rows in about
0.1 s, roughly twice as fast as a multi-row ``INSERT``). The staging table empties itself on
commit, so the whole upsert belongs to the caller's transaction. SQLite uses
``INSERT ... ON CONFLICT DO UPDATE`` through :func:`upsert_rows`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import orjson
from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.aggregation.buckets import STAT_COLUMNS, BucketTable
from clpm_shared.db.models import Agg1h, Agg1m
from clpm_shared.db.repositories.upsert import upsert_rows

AggregateTable = Literal["agg_1m", "agg_1h"]

_MODELS: dict[str, type[Agg1m] | type[Agg1h]] = {"agg_1m": Agg1m, "agg_1h": Agg1h}
BUCKET_WIDTH: dict[str, timedelta] = {"agg_1m": timedelta(minutes=1), "agg_1h": timedelta(hours=1)}
_KEY = ("loop_id", "bucket_start")
_COLUMNS: tuple[str, ...] = (*_KEY, *STAT_COLUMNS, "mode_dominant", "mode_shares")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_READ_BATCH = 1000


def _datetimes(bucket_ns: np.ndarray) -> list[datetime]:
    unique, inverse = np.unique(bucket_ns, return_inverse=True)
    moments = [_EPOCH + timedelta(microseconds=int(ns) // 1000) for ns in unique.tolist()]
    return [moments[i] for i in inverse.tolist()]


def _ns(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _column_values(buckets: BucketTable, name: str) -> list[Any]:
    column = buckets.stats[name]
    if name.endswith("_count"):
        counts: list[Any] = np.nan_to_num(column, nan=0.0).astype(np.int64).tolist()
        return counts
    values: list[Any] = column.tolist()
    return [None if math.isnan(value) else value for value in values]


def bucket_columns(buckets: BucketTable) -> dict[str, list[Any]]:
    """The table's rows as database columns (None for undefined statistics, JSON mode shares)."""
    columns: dict[str, list[Any]] = {
        "loop_id": buckets.loop_ids.tolist(),
        "bucket_start": _datetimes(buckets.bucket_ns),
    }
    for name in STAT_COLUMNS:
        columns[name] = _column_values(buckets, name)
    columns["mode_dominant"] = buckets.mode_dominant.tolist()
    columns["mode_shares"] = buckets.mode_share_maps()
    return columns


class AggregateRepository:
    """Idempotent writes and columnar reads of the aggregate tables (one session/transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, table: AggregateTable, buckets: BucketTable) -> int:
        """Insert the buckets or overwrite the rows with the same ``(loop_id, bucket_start)``.

        Keys must be unique within ``buckets``. Returns the number of rows written.
        """
        if len(buckets) == 0:
            return 0
        columns = bucket_columns(buckets)
        connection = await self.session.connection()
        if connection.dialect.name == "postgresql":
            await self._copy_upsert(table, columns)
        else:
            rows = [
                dict(zip(columns, values, strict=True))
                for values in zip(*columns.values(), strict=True)
            ]
            model_table: Table = _MODELS[table].__table__  # type: ignore[assignment]
            for row in rows:
                row["updated_at"] = datetime.now(UTC)
            await upsert_rows(self.session, model_table, rows, list(_KEY))
        return len(buckets)

    async def _copy_upsert(self, table: AggregateTable, columns: dict[str, list[Any]]) -> None:
        stage = f"{table}_stage"
        connection = await self.session.connection()
        await connection.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        shares = [orjson.dumps(value).decode() for value in columns["mode_shares"]]
        records = list(zip(*(columns[name] for name in _COLUMNS[:-1]), shares, strict=True))
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(stage, records=records, columns=list(_COLUMNS))
        names = ", ".join(_COLUMNS)
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _COLUMNS[2:])
        await connection.execute(
            text(
                f"INSERT INTO {table} ({names}, updated_at) "  # noqa: S608 - fixed identifiers
                f"SELECT {names}, now() FROM {stage} "
                f"ON CONFLICT (loop_id, bucket_start) DO UPDATE SET {updates}, "
                "updated_at = EXCLUDED.updated_at"
            )
        )
        await connection.exec_driver_sql(f"TRUNCATE {stage}")

    async def span(self, table: AggregateTable, loop_id: str) -> tuple[datetime, datetime] | None:
        """First bucket start and end of the last bucket of a loop; None when it has none."""
        model = _MODELS[table]
        row: Any = (
            await self.session.execute(
                select(func.min(model.bucket_start), func.max(model.bucket_start)).where(
                    model.loop_id == loop_id
                )
            )
        ).one()
        first, last = row
        if first is None or last is None:
            return None
        return first, last + BUCKET_WIDTH[table]

    async def minutes_with_data(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, int]:
        """Number of agg_1m minutes with PV samples per loop in ``[start, end)`` (loops with
        none are absent)."""
        out: dict[str, int] = {}
        wanted = sorted(set(loop_ids))
        for offset in range(0, len(wanted), _READ_BATCH):
            rows = await self.session.execute(
                select(Agg1m.loop_id, func.count())
                .where(
                    Agg1m.loop_id.in_(wanted[offset : offset + _READ_BATCH]),
                    Agg1m.bucket_start >= start,
                    Agg1m.bucket_start < end,
                    Agg1m.pv_count > 0,
                )
                .group_by(Agg1m.loop_id)
            )
            out.update({loop_id: int(count) for loop_id, count in rows})
        return out

    async def sample_totals(
        self, table: AggregateTable, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, tuple[int, int, int]]:
        """Sums of ``pv_count``, ``sp_count`` and ``op_count`` per loop over the rows with
        ``start <= bucket_start < end`` (loops without rows are absent): one row per loop
        travels where :meth:`read` sends one per bucket."""
        model = _MODELS[table]
        out: dict[str, tuple[int, int, int]] = {}
        wanted = sorted(set(loop_ids))
        for offset in range(0, len(wanted), _READ_BATCH):
            rows = await self.session.execute(
                select(
                    model.loop_id,
                    func.sum(model.pv_count),
                    func.sum(model.sp_count),
                    func.sum(model.op_count),
                )
                .where(
                    model.loop_id.in_(wanted[offset : offset + _READ_BATCH]),
                    model.bucket_start >= start,
                    model.bucket_start < end,
                )
                .group_by(model.loop_id)
            )
            out.update({loop_id: (int(pv), int(sp), int(op)) for loop_id, pv, sp, op in rows})
        return out

    async def read(
        self,
        table: AggregateTable,
        loop_ids: Sequence[str],
        start: datetime,
        end: datetime,
        statistics: Sequence[str] = STAT_COLUMNS,
        *,
        mode_shares: bool = True,
    ) -> BucketTable:
        """Rows of ``loop_ids`` with ``start <= bucket_start < end``, by loop then time.

        ``statistics`` (names of :data:`STAT_COLUMNS`) limits the statistic columns read, e.g.
        ``("pv_mean", "sp_mean")`` for a long window of many loops; the table's ``stats`` then
        holds only those. ``mode_shares=False`` skips the mode shares (a JSON document per row;
        the table then has no modes), e.g. for the sample counts of the late-data check.
        """
        unknown = set(statistics) - set(STAT_COLUMNS)
        if unknown:
            raise ValueError(f"statistics: unknown columns {sorted(unknown)}")
        wanted = sorted(set(loop_ids))
        connection = await self.session.connection()
        if connection.dialect.name == "postgresql":
            return await self._read_arrays(
                table, wanted, start, end, tuple(statistics), mode_shares=mode_shares
            )
        model = _MODELS[table]
        columns = [getattr(model, name) for name in (*_KEY, *statistics, "mode_shares")]
        rows: list[Any] = []
        for offset in range(0, len(wanted), _READ_BATCH):
            batch = wanted[offset : offset + _READ_BATCH]
            statement = (
                select(*columns)
                .where(
                    model.loop_id.in_(batch),
                    model.bucket_start >= start,
                    model.bucket_start < end,
                )
                .order_by(model.loop_id, model.bucket_start)
            )
            rows.extend((await self.session.execute(statement)).all())
        if not rows:
            return BucketTable.empty()
        values = list(zip(*rows, strict=True))
        shares_maps: tuple[Any, ...] = values[-1] if mode_shares else ()
        modes = tuple(sorted({mode for shares in shares_maps if shares for mode in shares}))
        shares = np.zeros((len(rows), len(modes)))
        for row, mapping in enumerate(shares_maps):
            for mode, share in (mapping or {}).items():
                shares[row, modes.index(mode)] = share
        return BucketTable(
            np.asarray(values[0], dtype=object),
            np.fromiter((_ns(moment) for moment in values[1]), dtype=np.int64, count=len(rows)),
            {
                name: np.asarray(values[2 + k], dtype=np.float64)
                for k, name in enumerate(statistics)
            },
            modes,
            shares,
        )

    async def _read_arrays(
        self,
        table: AggregateTable,
        loop_ids: list[str],
        start: datetime,
        end: datetime,
        statistics: tuple[str, ...] = STAT_COLUMNS,
        *,
        mode_shares: bool = True,
    ) -> BucketTable:
        """PostgreSQL: each column as one array (``array_agg`` in a single pass), decoded by the
        driver in C; about 20x less CPU than row objects for an hour of 10,000 loops."""
        window = {"ids": loop_ids, "start": start, "end": end}
        where = "loop_id = ANY(:ids) AND bucket_start >= :start AND bucket_start < :end"
        modes: tuple[str, ...] = ()
        if mode_shares:
            found = await self.session.execute(
                text(
                    f"SELECT DISTINCT jsonb_object_keys(mode_shares) FROM {table} "  # noqa: S608
                    f"WHERE {where} AND jsonb_typeof(mode_shares) = 'object'"
                ),
                window,
            )
            modes = tuple(sorted(str(mode) for mode in found.scalars()))
        arrays = [
            "array_agg(loop_id)",
            "array_agg((extract(epoch FROM bucket_start) * 1000000)::bigint)",
            *(f"array_agg({name}::float8)" for name in statistics),
            *(
                f"array_agg(coalesce((mode_shares ->> :mode{k})::float8, 0))"
                for k in range(len(modes))
            ),
        ]
        parameters: dict[str, Any] = {**window, **{f"mode{k}": m for k, m in enumerate(modes)}}
        row = (
            await self.session.execute(
                text(f"SELECT {', '.join(arrays)} FROM {table} WHERE {where}"),  # noqa: S608
                parameters,
            )
        ).one()
        if row[0] is None:
            return BucketTable.empty()
        loop_column = np.asarray(row[0], dtype=object)
        bucket_ns = np.asarray(row[1], dtype=np.int64) * 1000
        order = np.lexsort((bucket_ns, loop_column.astype(str)))
        stats = {
            name: np.asarray(row[2 + k], dtype=np.float64)[order]
            for k, name in enumerate(statistics)
        }
        first_mode = 2 + len(statistics)
        shares = np.zeros((len(order), len(modes)))
        for k in range(len(modes)):
            shares[:, k] = np.asarray(row[first_mode + k], dtype=np.float64)[order]
        return BucketTable(loop_column[order], bucket_ns[order], stats, modes, shares)
