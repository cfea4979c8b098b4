"""Fixtures of the aggregation service tests: real influxd + PostgreSQL per test, a test clock.

Every test gets its own InfluxDB database and its own migrated PostgreSQL database, so loops,
watermarks and leases never leak between tests. The service's clock is a :class:`TestClock`
(the one stand-in: minutes must pass for the service to act, and tests cannot wait for them);
the raw samples carry timestamps in the clock's past, as they would in a plant.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from clpm_aggregation.service import AggregationService
from clpm_shared.config import AggregationSettings, InfluxSettings, TimeSeriesBackend
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.repositories.aggregates import AggregateRepository
from clpm_shared.timeseries.base import Point, TimeSeriesStore
from clpm_shared.timeseries.influxql import InfluxQLStore
from tests.harness.servers import InfluxServer, PostgresServer

BASE = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
FIELDS = ("pv", "sp", "op")
STATS = ("count", "mean", "min", "max", "std", "first", "last")
_names = itertools.count(1)


class TestClock:
    """A settable UTC clock for the service (minutes pass when the test says so)."""

    __test__ = False

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.calls = 0
        self.on_call: Callable[[int], None] | None = None

    def __call__(self) -> datetime:
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now


@dataclass
class Database:
    """A migrated PostgreSQL database of one test: its name, engine and sessions."""

    name: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    server: PostgresServer

    def sql(self, statement: str) -> str:
        """Test instrumentation only (triggers, counts) through psql."""
        return self.server.psql(statement, database=self.name)

    def install_write_counter(self) -> None:
        """Count every committed INSERT or UPDATE of an agg_1m row per (loop, minute)."""
        self.sql(
            """
            CREATE TABLE agg_1m_writes (loop_id text, bucket_start timestamptz, writes int,
                                        PRIMARY KEY (loop_id, bucket_start));
            CREATE FUNCTION count_agg_1m_write() RETURNS trigger AS $$
            BEGIN
              INSERT INTO agg_1m_writes VALUES (NEW.loop_id, NEW.bucket_start, 1)
              ON CONFLICT (loop_id, bucket_start)
              DO UPDATE SET writes = agg_1m_writes.writes + 1;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER agg_1m_write_counter AFTER INSERT OR UPDATE ON agg_1m
              FOR EACH ROW EXECUTE FUNCTION count_agg_1m_write();
            """
        )

    def write_counts(self) -> dict[tuple[str, int], int]:
        """(loop, minute epoch seconds) -> committed writes, from the write counter."""
        out = self.sql(
            "SELECT loop_id, extract(epoch from bucket_start)::bigint, writes FROM agg_1m_writes"
        )
        counts: dict[tuple[str, int], int] = {}
        for line in out.splitlines():
            loop_id, epoch, writes = line.split("|")
            counts[(loop_id, int(epoch))] = int(writes)
        return counts

    def row_count(self, table: str = "agg_1m") -> int:
        return int(self.sql(f"SELECT count(*) FROM {table}"))


@pytest.fixture
async def database(postgres_server: PostgresServer) -> AsyncIterator[Database]:
    name = postgres_server.create_database("agg")
    engine = create_engine(postgres_server.url(name))
    yield Database(name, engine, create_session_factory(engine), postgres_server)
    await engine.dispose()
    if postgres_server.running:
        postgres_server.drop_database(name)


def influx_settings(server: InfluxServer, database: str, **overrides: Any) -> InfluxSettings:
    return InfluxSettings(
        timeseries_backend=TimeSeriesBackend.INFLUXQL,
        influxdb_url=server.url,
        influxdb_bucket=database,
        influxdb_max_retries=overrides.pop("influxdb_max_retries", 1),
        **overrides,
    )


@pytest.fixture
async def influx(influx_server: InfluxServer) -> AsyncIterator[InfluxQLStore]:
    """An InfluxQL store on a fresh database of the real influxd."""
    name = influx_server.create_database(f"agg_{next(_names)}")
    store = InfluxQLStore(influx_settings(influx_server, name), backoff_s=0.05)
    yield store
    await store.close()
    if influx_server.running:
        influx_server.drop_database(name)


@pytest.fixture
def clock() -> TestClock:
    return TestClock(BASE + timedelta(hours=1))


def aggregation_settings(**overrides: Any) -> AggregationSettings:
    values: dict[str, Any] = {
        "polling_interval": 200,
        "agg_lateness_s": 0.0,
        "agg_backfill_hours": None,
        "agg_chunk_minutes": 60,
        "agg_loops_per_query": 100,
        "agg_lease_s": 30.0,
    }
    values.update(overrides)
    return AggregationSettings(**values)


def make_service(
    store: TimeSeriesStore,
    database: Database,
    clock: TestClock,
    instance_id: str = "test-host:1",
    **settings: Any,
) -> AggregationService:
    return AggregationService(
        aggregation_settings(**settings),
        store,
        database.sessions,
        instance_id=instance_id,
        clock=clock,
    )


def plant_points(
    loop_ids: Sequence[str],
    start: datetime,
    seconds: int,
    *,
    seed: int = 1,
    step_s: float = 1.0,
) -> list[Point]:
    """1 Hz-ish samples: noisy PV, SP steps, OP ramps, a few missing fields, modes switching."""
    rng = np.random.default_rng(seed)
    points: list[Point] = []
    for k, loop_id in enumerate(loop_ids):
        jitter = rng.uniform(0.0, 0.4, int(seconds / step_s))
        for i, offset in enumerate(jitter):
            t = start + timedelta(seconds=i * step_s + float(offset))
            pv = 50.0 + 5.0 * math.sin(i / 11.0 + k) + float(rng.normal(0, 0.5))
            sp = 50.0 if (i // 200) % 2 == 0 else 52.5
            op = 30.0 + 0.01 * i + float(rng.normal(0, 1.0))
            mode = "AUT" if (i // 90) % 3 else ("MAN" if k % 2 else "CAS")
            points.append(
                Point(
                    loop_id,
                    t,
                    pv=None if i % 37 == 5 else pv,
                    sp=None if i % 53 == 7 else sp,
                    op=op,
                    mode=mode,
                )
            )
    return points


def reference_buckets(
    points: Sequence[Point], width: timedelta = timedelta(minutes=1)
) -> dict[tuple[str, datetime], dict[str, float]]:
    """Statistics per (loop, bucket start) computed directly from the points, one by one."""
    grouped: dict[tuple[str, datetime], list[Point]] = {}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for point in sorted(points, key=lambda p: (p.loop_id, p.time)):
        start = epoch + ((point.time - epoch) // width) * width
        grouped.setdefault((point.loop_id, start), []).append(point)
    out: dict[tuple[str, datetime], dict[str, float]] = {}
    for key, members in grouped.items():
        entry: dict[str, float] = {}
        for name in FIELDS:
            values = np.array([getattr(p, name) for p in members if getattr(p, name) is not None])
            entry[f"{name}_count"] = float(values.size)
            entry[f"{name}_mean"] = float(values.mean()) if values.size else math.nan
            entry[f"{name}_min"] = float(values.min()) if values.size else math.nan
            entry[f"{name}_max"] = float(values.max()) if values.size else math.nan
            entry[f"{name}_std"] = float(values.std(ddof=1)) if values.size > 1 else math.nan
            entry[f"{name}_first"] = float(values[0]) if values.size else math.nan
            entry[f"{name}_last"] = float(values[-1]) if values.size else math.nan
        modes = [p.mode for p in members if p.mode]
        entry["modes"] = {m: modes.count(m) / len(modes) for m in set(modes)}  # type: ignore[assignment]
        out[key] = entry
    return out


async def stored_rows(
    database: Database, table: str, loop_ids: Sequence[str], start: datetime, end: datetime
) -> dict[tuple[str, datetime], dict[str, Any]]:
    """Rows of agg_1m / agg_1h as {(loop, bucket start): {column: value}}."""
    async with database.sessions() as session:
        stored = await AggregateRepository(session).read(table, loop_ids, start, end)  # type: ignore[arg-type]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rows: dict[tuple[str, datetime], dict[str, Any]] = {}
    shares = stored.mode_share_maps()
    for i in range(len(stored)):
        moment = epoch + timedelta(microseconds=int(stored.bucket_ns[i]) // 1000)
        row: dict[str, Any] = {name: float(col[i]) for name, col in stored.stats.items()}
        row["modes"] = shares[i]
        rows[(str(stored.loop_ids[i]), moment)] = row
    return rows


def assert_matches(
    got: dict[str, Any], want: dict[str, float], *, std_rtol: float = 1e-9, rtol: float = 1e-12
) -> None:
    for name in FIELDS:
        for stat in STATS:
            key = f"{name}_{stat}"
            if stat in ("count", "min", "max", "first", "last"):
                np.testing.assert_array_equal(got[key], want[key], err_msg=key)
            else:
                tolerance = std_rtol if stat == "std" else rtol
                np.testing.assert_allclose(got[key], want[key], rtol=tolerance, err_msg=key)


@pytest.fixture
def loop_ids() -> list[str]:
    number = next(_names)
    return [f"FIC{number:03d}.{k}" for k in range(4)]
