"""Idempotent ``INSERT ... ON CONFLICT DO UPDATE`` for PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def upsert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key_columns: Sequence[str],
) -> int:
    """Insert ``rows`` or overwrite the non-key columns of rows with the same key.

    Every row has the same columns. One statement, compiled once (and cached), executed for all
    rows at once (the driver's ``executemany``: asyncpg pipelines it on one prepared statement);
    a multi-row ``VALUES`` list instead costs SQLAlchemy ~45 us of compilation per bound value.
    Returns the number of rows sent.
    """
    if not rows:
        return 0
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    updates = {name: statement.excluded[name] for name in rows[0] if name not in key_columns}
    if updates:
        statement = statement.on_conflict_do_update(index_elements=key_columns, set_=updates)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=key_columns)
    await session.execute(statement, list(rows))
    return len(rows)


async def insert_missing(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key_columns: Sequence[str],
) -> int:
    """Insert ``rows``, leaving any existing row with the same key as it is
    (``ON CONFLICT DO NOTHING``); returns the number of rows sent."""
    if not rows:
        return 0
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).on_conflict_do_nothing(index_elements=key_columns)
    await session.execute(statement, list(rows))
    return len(rows)
