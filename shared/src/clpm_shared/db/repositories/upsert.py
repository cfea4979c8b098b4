"""Idempotent ``INSERT ... ON CONFLICT DO UPDATE`` for PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

# SQLite allows at most 32766 bound parameters per statement; PostgreSQL 65535.
_MAX_PARAMETERS = 32_000


async def upsert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key_columns: Sequence[str],
) -> int:
    """Insert ``rows`` or overwrite the non-key columns of rows with the same key.

    Returns the number of rows sent. Batches stay under the driver's parameter limit.
    """
    if not rows:
        return 0
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    columns = list(rows[0].keys())
    # columns with a Python-side default are sent as parameters too, so count the table's
    per_row = max(len(columns), len(table.columns))
    batch = max(1, _MAX_PARAMETERS // per_row)
    for offset in range(0, len(rows), batch):
        chunk = rows[offset : offset + batch]
        statement = insert(table).values(list(chunk))
        updates = {name: statement.excluded[name] for name in columns if name not in key_columns}
        if updates:
            statement = statement.on_conflict_do_update(index_elements=key_columns, set_=updates)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=key_columns)
        await session.execute(statement)
    return len(rows)
