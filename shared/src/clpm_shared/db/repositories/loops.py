"""Loops and their configuration: all SQL on ``loops`` and ``loop_config``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import Loop, LoopConfig
from clpm_shared.db.repositories.upsert import upsert_rows


class LoopRepository:
    """Queries and changes of the ``loops`` table (soft delete through ``deleted_at``)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, loop_id: str, *, include_deleted: bool = False) -> Loop | None:
        statement = select(Loop).where(Loop.loop_id == loop_id)
        if not include_deleted:
            statement = statement.where(Loop.deleted_at.is_(None))
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_many(
        self, loop_ids: Iterable[str], *, include_deleted: bool = False
    ) -> dict[str, Loop]:
        """The loops among ``loop_ids`` that exist, by id, as stored now (rows already in the
        session are refreshed)."""
        ids = list(loop_ids)
        found: dict[str, Loop] = {}
        for offset in range(0, len(ids), 1000):
            statement = (
                select(Loop)
                .where(Loop.loop_id.in_(ids[offset : offset + 1000]))
                .execution_options(populate_existing=True)
            )
            if not include_deleted:
                statement = statement.where(Loop.deleted_at.is_(None))
            found.update(
                {loop.loop_id: loop for loop in (await self.session.execute(statement)).scalars()}
            )
        return found

    async def list_page(
        self,
        *,
        unit: str | None = None,
        area: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[Sequence[Loop], int]:
        """Active loops ordered by id, and the total count matching the filter."""
        condition: list[ColumnElement[bool]] = [Loop.deleted_at.is_(None)]
        if unit is not None:
            condition.append(Loop.unit == unit)
        if area is not None:
            condition.append(Loop.area == area)
        total = (
            await self.session.execute(select(func.count()).select_from(Loop).where(*condition))
        ).scalar_one()
        rows = (
            await self.session.execute(
                select(Loop).where(*condition).order_by(Loop.loop_id).offset(offset).limit(limit)
            )
        ).scalars()
        return list(rows), int(total)

    async def all_ids(self) -> list[str]:
        statement = select(Loop.loop_id).where(Loop.deleted_at.is_(None)).order_by(Loop.loop_id)
        return list((await self.session.execute(statement)).scalars())

    async def deleted_flags(self, loop_ids: Iterable[str]) -> dict[str, bool]:
        """Which of ``loop_ids`` are registered: loop id -> whether it is deleted."""
        ids = list(loop_ids)
        flags: dict[str, bool] = {}
        for offset in range(0, len(ids), 1000):
            statement = select(Loop.loop_id, Loop.deleted_at).where(
                Loop.loop_id.in_(ids[offset : offset + 1000])
            )
            for loop_id, deleted_at in (await self.session.execute(statement)).all():
                flags[loop_id] = deleted_at is not None
        return flags

    async def places(self, loop_ids: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
        """Unit and area of each of ``loop_ids`` that is a loop."""
        ids = list(loop_ids)
        places: dict[str, tuple[str | None, str | None]] = {}
        for offset in range(0, len(ids), 1000):
            statement = select(Loop.loop_id, Loop.unit, Loop.area).where(
                Loop.loop_id.in_(ids[offset : offset + 1000])
            )
            for loop_id, unit, area in (await self.session.execute(statement)).all():
                places[loop_id] = (unit, area)
        return places

    async def register_discovered(self, loop_ids: Iterable[str]) -> int:
        """Insert loops first seen in the raw data; existing rows (renamed, soft-deleted) are left
        untouched (``ON CONFLICT DO NOTHING``)."""
        rows = [{"loop_id": loop_id, "name": loop_id} for loop_id in sorted(set(loop_ids))]
        if not rows:
            return 0
        connection = await self.session.connection()
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        batch = max(1, 30_000 // len(Loop.__table__.columns))  # defaults are parameters too
        for offset in range(0, len(rows), batch):
            statement = insert(Loop).values(rows[offset : offset + batch])
            await self.session.execute(statement.on_conflict_do_nothing(index_elements=["loop_id"]))
        return len(rows)

    async def save(self, loop_id: str, values: dict[str, Any]) -> Loop:
        """Create or update a loop; re-creating a soft-deleted loop revives it."""
        row = {"loop_id": loop_id, **values, "deleted_at": None, "updated_at": datetime.now(UTC)}
        await upsert_rows(self.session, Loop.__table__, [row], ["loop_id"])  # type: ignore[arg-type]
        loop = await self.get(loop_id)
        assert loop is not None
        await self.session.refresh(loop)
        return loop

    async def soft_delete(self, loop_id: str) -> bool:
        result = await self.session.execute(
            update(Loop)
            .where(Loop.loop_id == loop_id, Loop.deleted_at.is_(None))
            .values(deleted_at=datetime.now(UTC))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class LoopConfigRepository:
    """Per-loop analysis settings; a missing row means all defaults."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, loop_id: str) -> LoopConfig | None:
        statement = select(LoopConfig).where(LoopConfig.loop_id == loop_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_many(self, loop_ids: Iterable[str]) -> dict[str, LoopConfig]:
        ids = list(loop_ids)
        found: dict[str, LoopConfig] = {}
        for offset in range(0, len(ids), 1000):
            statement = (
                select(LoopConfig)
                .where(LoopConfig.loop_id.in_(ids[offset : offset + 1000]))
                .execution_options(populate_existing=True)
            )
            found.update(
                {row.loop_id: row for row in (await self.session.execute(statement)).scalars()}
            )
        return found

    async def save(self, loop_id: str, values: dict[str, Any]) -> LoopConfig:
        row = {"loop_id": loop_id, **values, "updated_at": datetime.now(UTC)}
        await upsert_rows(self.session, LoopConfig.__table__, [row], ["loop_id"])  # type: ignore[arg-type]
        config = await self.get(loop_id)
        assert config is not None
        await self.session.refresh(config)
        return config

    async def delete(self, loop_id: str) -> bool:
        """Drop a loop's settings (back to all defaults); False when it had none."""
        result = await self.session.execute(delete(LoopConfig).where(LoopConfig.loop_id == loop_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]
