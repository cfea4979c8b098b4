"""Migrations: upgrade/downgrade on PostgreSQL and SQLite, and no drift from the models."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from clpm_shared.db import create_engine, metadata
from tests.harness.servers import REPO_ROOT, PostgresServer

T = TypeVar("T")

EXPECTED_TABLES = {
    "loops",
    "loop_config",
    "agg_1m",
    "agg_1h",
    "kpi_results",
    "diagnostic_results",
    "apc_attainment",
    "loop_watermarks",
    "work_leases",
    "worker_heartbeats",
    "loop_assessments",
    "oscillation_cluster_runs",
    "work_items",
    "audit_log",
    "alert_rules",
    "alert_events",
    "notification_outbox",
    "inbox_entries",
    "report_subscriptions",
    "report_deliveries",
}


def _alembic(url: str) -> Config:
    config = Config(str(REPO_ROOT / "migrations" / "alembic.ini"))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Async URL of an empty database on the real PostgreSQL server, or of a new SQLite file."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'clpm.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database("migr", migrated=False)
    yield server.url(name)
    server.drop_database(name)


def test_upgrade_head_creates_every_table_and_downgrade_base_removes_them(
    database_url: str,
) -> None:
    url = database_url
    command.upgrade(_alembic(url), "head")
    assert _inspect_tables(url) == EXPECTED_TABLES
    command.downgrade(_alembic(url), "base")
    assert _inspect_tables(url) == set()
    command.upgrade(_alembic(url), "head")  # and up again: downgrade left nothing behind
    assert _inspect_tables(url) == EXPECTED_TABLES


def test_autogenerate_finds_no_difference_between_migrations_and_models(
    database_url: str,
) -> None:
    url = database_url
    command.upgrade(_alembic(url), "head")
    differences = _run(
        url,
        lambda conn: compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        ),
    )
    assert differences == []


def _inspect_tables(url: str) -> set[str]:
    return _run(url, lambda conn: set(inspect(conn).get_table_names()) - {"alembic_version"})


def _run(url: str, work: Callable[[Connection], T]) -> T:
    async def go() -> T:
        engine = create_engine(url)
        async with engine.connect() as connection:
            result = await connection.run_sync(work)
        await engine.dispose()
        return result

    return asyncio.run(go())
