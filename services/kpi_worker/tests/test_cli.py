"""``python -m clpm_kpi_worker run-once`` on the embedded default (SQLite + embedded store)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clpm_shared.timeseries import Point
from clpm_shared.timeseries.embedded import EmbeddedStore
from tests.harness.servers import REPO_ROOT, migrate

START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)  # noqa: TID251 - the child process gets its configuration this way
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'clpm.db'}",
        TIMESERIES_BACKEND="embedded",
        EMBEDDED_TSDB_PATH=str(tmp_path / "ts.db"),
        DIAG_SERVICE_URL="http://127.0.0.1:9",
    )
    return env


async def _write_raw(path: Path) -> None:
    store = EmbeddedStore(path)
    await store.write(
        [
            Point("TIC1", START + timedelta(seconds=k), 100 + (k % 7) * 0.1, 100.0, 30.0, "AUT")
            for k in range(30 * 60)
        ]
    )
    await store.close()


def test_run_once_backfills_every_window_with_progress(tmp_path: Path) -> None:
    migrate(f"sqlite+aiosqlite:///{tmp_path / 'clpm.db'}")
    asyncio.run(_write_raw(tmp_path / "ts.db"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "clpm_kpi_worker",
            "run-once",
            "--loop",
            "TIC1",
            "--start",
            START.isoformat(),
            "--end",
            (START + timedelta(minutes=30)).isoformat(),
        ],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "2/2" in result.stderr  # the progress bar reached the end
    with sqlite3.connect(tmp_path / "clpm.db") as connection:
        rows = connection.execute(
            "SELECT loop_id, source, samples FROM kpi_results ORDER BY window_start"
        ).fetchall()
    assert rows == [("TIC1", "raw", 900), ("TIC1", "raw", 900)]


def test_run_once_rejects_a_time_without_zone(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "clpm_kpi_worker",
            "run-once",
            "--start",
            "2025-03-01T08:00:00",
            "--end",
            "2025-03-01T09:00:00Z",
        ],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--start" in result.stderr
    assert "timezone" in result.stderr
