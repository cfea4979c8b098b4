"""The embedded default: SQLite relational store + embedded time-series store, and the CLI.

Also the command line as the local run uses it: ``python -m clpm_aggregation once`` and
``run`` (stopped with SIGTERM) as real processes on the embedded files.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from clpm_aggregation.service import AggregationService
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.timeseries.base import to_ns
from clpm_shared.timeseries.embedded import EmbeddedStore
from services.aggregation.tests.conftest import (
    BASE,
    TestClock,
    aggregation_settings,
    assert_matches,
    plant_points,
    reference_buckets,
)
from tests.harness.servers import REPO_ROOT, migrate

MINUTE = timedelta(minutes=1)


@dataclass
class Embedded:
    directory: Path
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    store: EmbeddedStore

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """Test instrumentation: read the SQLite database directly."""
        with sqlite3.connect(self.directory / "clpm.db") as connection:
            return connection.execute(sql).fetchall()


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Embedded]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'clpm.db'}"
    migrate(url)
    engine = create_engine(url)
    store = EmbeddedStore(tmp_path / "timeseries.db")
    yield Embedded(tmp_path, url, engine, create_session_factory(engine), store)
    await store.close()
    await engine.dispose()


def service_on(embedded: Embedded, clock: TestClock, **settings: object) -> AggregationService:
    return AggregationService(
        aggregation_settings(**settings),
        embedded.store,
        embedded.sessions,
        instance_id="local:1",
        clock=clock,
    )


def stored_minutes(embedded: Embedded) -> dict[tuple[str, datetime], dict[str, float]]:
    columns = [f"{f}_{s}" for f in ("pv", "sp", "op") for s in ("count", "mean", "min", "max")]
    columns += [f"{f}_{s}" for f in ("pv", "sp", "op") for s in ("std", "first", "last")]
    rows = embedded.query(f"SELECT loop_id, bucket_start, {', '.join(columns)} FROM agg_1m")
    out: dict[tuple[str, datetime], dict[str, float]] = {}
    for loop_id, start, *values in rows:
        moment = datetime.fromisoformat(str(start)).replace(tzinfo=UTC)
        out[(str(loop_id), moment)] = {
            name: np.nan if value is None else float(value)  # type: ignore[arg-type]
            for name, value in zip(columns, values, strict=True)
        }
    return out


async def test_embedded_stores_give_the_same_minutes_and_hours(
    embedded: Embedded, clock: TestClock
) -> None:
    loops = ["LIC1", "LIC2"]
    points = plant_points(loops, BASE, 3600 + 4 * 60, seed=11)
    await embedded.store.write(points)
    clock.set(BASE + timedelta(hours=1, minutes=5))
    report = await service_on(embedded, clock).run_cycle()
    assert report.samples == len(points)
    rows = stored_minutes(embedded)
    expected = reference_buckets(points)
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert_matches(rows[key], want)
    hours = embedded.query("SELECT loop_id, bucket_start, pv_count FROM agg_1h ORDER BY loop_id")
    first_hour = reference_buckets(points, timedelta(hours=1))
    assert [(h[0], h[2]) for h in hours] == [
        (loop, int(first_hour[(loop, BASE)]["pv_count"])) for loop in loops
    ]
    assert embedded.query("SELECT loop_id FROM loops ORDER BY loop_id") == [(x,) for x in loops]


async def test_history_gets_a_head_start_and_still_every_minute_and_hour_exactly_once(
    embedded: Embedded, clock: TestClock
) -> None:
    """Two hours of history: the newest minutes are written ahead of the watermark, the
    catch-up then writes every minute in order (the head start's minutes again), and the
    hours are rolled up from complete minutes only."""
    loops = ["LIC1", "LIC2"]
    points = plant_points(loops, BASE, 2 * 3600 + 4 * 60, seed=12)
    await embedded.store.write(points)
    now = BASE + timedelta(hours=2, minutes=4, seconds=30)
    clock.set(now)
    service = service_on(embedded, clock)
    report = await service.run_cycle()
    newest = BASE + timedelta(hours=2, minutes=4)
    assert service.ahead_until == dict.fromkeys(loops, newest)  # the head start ran
    assert report.head_start_buckets == 2 * 10  # the newest 10 minutes of each loop
    assert report.samples == len(points)  # and the catch-up aggregated every sample
    rows = stored_minutes(embedded)
    expected = reference_buckets(points)
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert_matches(rows[key], want)
    hours = embedded.query("SELECT loop_id, bucket_start, pv_count FROM agg_1h")
    expected_hours = reference_buckets(points, timedelta(hours=1))
    assert sorted((str(h[0]), int(h[2])) for h in hours) == sorted(
        (loop, int(expected_hours[(loop, start)]["pv_count"]))
        for loop in loops
        for start in (BASE, BASE + timedelta(hours=1))
    )
    marks = embedded.query("SELECT watermark FROM loop_watermarks")
    assert [datetime.fromisoformat(str(m[0])).replace(tzinfo=UTC) for m in marks] == [newest] * 2


async def test_an_infinite_value_written_by_another_program_is_counted_and_skipped(
    embedded: Embedded, clock: TestClock, caplog: pytest.LogCaptureFixture
) -> None:
    loops = ["FIC7", "FIC8"]
    points = plant_points(loops, BASE, 180, seed=12)
    await embedded.store.write(points)
    bad_ns = to_ns(BASE + timedelta(seconds=61.5))  # between two samples of minute 1
    with sqlite3.connect(embedded.directory / "timeseries.db") as connection:  # bypasses checks
        connection.execute(
            "INSERT INTO samples (loop_id, t_ns, pv, sp, op, mode) VALUES (?, ?, ?, ?, ?, ?)",
            ("FIC7", bad_ns, float("inf"), 50.0, 1e400, "AUT"),
        )
    clock.set(BASE + timedelta(minutes=3, seconds=5))
    with caplog.at_level(logging.WARNING):
        report = await service_on(embedded, clock).run_cycle()
    assert report.malformed_values == 2
    assert report.malformed_examples == ["FIC7"]
    [warning] = [r for r in caplog.records if r.getMessage() == "skipped malformed values"]
    assert warning.malformed == {"pv": 1, "sp": 0, "op": 1}  # type: ignore[attr-defined]
    rows = stored_minutes(embedded)
    expected = reference_buckets(points)
    for key, want in expected.items():
        if key == ("FIC7", BASE + MINUTE):
            assert rows[key]["sp_count"] == want["sp_count"] + 1
            assert rows[key]["pv_count"] == want["pv_count"]
            assert rows[key]["pv_max"] == want["pv_max"]
        else:
            assert_matches(rows[key], want)


def cli_environment(embedded: Embedded, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),  # noqa: TID251 - the child's environment
        "DATABASE_URL": embedded.url,
        "TIMESERIES_BACKEND": "embedded",
        "EMBEDDED_TSDB_PATH": str(embedded.directory / "timeseries.db"),
        "POLLING_INTERVAL": "200",
        "AGG_LATENESS_S": "0",
        "LOG_LEVEL": "info",
        **extra,
    }


async def test_cli_once_aggregates_the_embedded_files(embedded: Embedded) -> None:
    now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=4)
    points = plant_points(["TIC9"], start, 180, seed=13)
    await embedded.store.write(points)
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "clpm_aggregation", "once"],
        env=cli_environment(embedded),
        cwd=embedded.directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"event": "cycle"' in result.stdout
    assert embedded.query("SELECT count(*) FROM work_leases") == [(0,)]  # released on exit
    rows = stored_minutes(embedded)
    expected = reference_buckets(points)
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert_matches(rows[key], want)


async def test_cli_run_stops_cleanly_on_sigterm_and_releases_its_leases(embedded: Embedded) -> None:
    now = datetime.now(UTC)
    points = plant_points(["TIC10"], now - timedelta(minutes=3), 120, seed=14)
    await embedded.store.write(points)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clpm_aggregation",
        "run",
        env=cli_environment(embedded),
        cwd=embedded.directory,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        deadline = asyncio.get_running_loop().time() + 60
        for table in ("work_leases", "agg_1m"):
            while not embedded.query(f"SELECT count(*) FROM {table}")[0][0]:
                assert process.returncode is None
                assert asyncio.get_running_loop().time() < deadline, table
                await asyncio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        stdout, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = stdout.decode()
    assert process.returncode == 0, output
    assert '"event": "aggregation stopped"' in output
    assert embedded.query("SELECT count(*) FROM work_leases") == [(0,)]
    assert embedded.query("SELECT count(*) FROM worker_heartbeats") == [(0,)]


def test_cli_help_and_argument_errors() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "clpm_aggregation", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    ).stdout
    for word in ("run", "once", "backfill", "POLLING_INTERVAL", "AGG_LATENESS_S"):
        assert word in help_text
    bad = subprocess.run(
        [sys.executable, "-m", "clpm_aggregation", "backfill", "--hours", "-3"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert bad.returncode == 2
    assert "--hours must be > 0" in bad.stderr


def test_cli_names_an_invalid_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clpm_aggregation", "once"],
        env={"PATH": os.environ.get("PATH", ""), "AGG_LEASE_S": "-5"},  # noqa: TID251
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "AGG_LEASE_S" in result.stderr
    assert "Traceback" not in result.stderr
