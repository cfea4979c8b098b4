"""Per-loop watermarks of the aggregation service: how far each loop's raw data is aggregated.

A watermark is the end (exclusive) of the last minute written for the loop. Advancing it is
a compare-and-set: the new value is written only where the stored one is still the value the
writer started from, so two writers can never both commit the same minutes; the caller rolls
its transaction back when fewer rows than expected were advanced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, any_, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import LoopWatermark

_BATCH = 1000


class WatermarkRepository:
    """All SQL on ``loop_watermarks``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _postgres(self) -> bool:
        return self.session.bind is not None and self.session.bind.dialect.name == "postgresql"

    def _batches(self, loop_ids: Sequence[str]) -> list[Sequence[str]]:
        """``loop_ids`` in one piece on PostgreSQL (one array parameter: one prepared statement
        whatever the count), else in IN-list batches."""
        if self._postgres:
            return [loop_ids] if loop_ids else []
        return [loop_ids[offset : offset + _BATCH] for offset in range(0, len(loop_ids), _BATCH)]

    def _among(self, loop_ids: Sequence[str]) -> Any:
        """The loop is one of ``loop_ids`` (a batch of :meth:`_batches`)."""
        if self._postgres:
            return LoopWatermark.loop_id == any_(
                literal(list(loop_ids), type_=postgresql.ARRAY(String))
            )
        return LoopWatermark.loop_id.in_(loop_ids)

    async def get(self, loop_ids: Sequence[str]) -> dict[str, datetime]:
        """Watermarks of the loops that have one."""
        wanted = sorted(set(loop_ids))
        found: dict[str, datetime] = {}
        for batch in self._batches(wanted):
            rows = await self.session.execute(
                select(LoopWatermark.loop_id, LoopWatermark.watermark).where(self._among(batch))
            )
            found.update({loop_id: mark for loop_id, mark in rows})
        return found

    async def initialize(self, marks: Mapping[str, datetime]) -> int:
        """Create watermarks for loops that have none; existing ones are kept."""
        rows = [{"loop_id": loop_id, "watermark": mark} for loop_id, mark in marks.items()]
        if not rows:
            return 0
        connection = await self.session.connection()
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        for offset in range(0, len(rows), _BATCH):
            statement = insert(LoopWatermark).values(rows[offset : offset + _BATCH])
            await self.session.execute(statement.on_conflict_do_nothing(index_elements=["loop_id"]))
        return len(rows)

    async def advance(self, expected: Mapping[str, datetime], new: datetime) -> int:
        """Set the watermark of each loop to ``new`` where it still equals ``expected[loop]``.

        Returns how many rows moved; fewer than ``len(expected)`` means another writer got there
        first and the caller must roll back.
        """
        by_value: dict[datetime, list[str]] = defaultdict(list)
        for loop_id, mark in expected.items():
            by_value[mark].append(loop_id)
        moved = 0
        now = datetime.now(UTC)
        for mark, loop_ids in by_value.items():
            for batch in self._batches(loop_ids):
                result = await self.session.execute(
                    update(LoopWatermark)
                    .where(self._among(batch), LoopWatermark.watermark == mark)
                    .values(watermark=new, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                moved += int(result.rowcount)  # type: ignore[attr-defined]
        return moved

    async def advance_within(
        self, loop_ids: Sequence[str], not_before: datetime, new: datetime
    ) -> int:
        """Move watermarks forward to ``new`` only where they lie in ``[not_before, new)``.

        For a recomputation of ``[not_before, new)``: a loop whose watermark is older than
        ``not_before`` keeps it (moving it would skip the minutes in between).
        """
        moved = 0
        now = datetime.now(UTC)
        wanted = sorted(set(loop_ids))
        for batch in self._batches(wanted):
            result = await self.session.execute(
                update(LoopWatermark)
                .where(
                    self._among(batch),
                    LoopWatermark.watermark >= not_before,
                    LoopWatermark.watermark < new,
                )
                .values(watermark=new, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            moved += int(result.rowcount)  # type: ignore[attr-defined]
        return moved
