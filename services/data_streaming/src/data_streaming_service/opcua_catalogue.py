"""Loops named by a tag map, created or updated in the loop catalogue (``loops``/``loop_config``).

The same upsert as the catalogue import (``python -m clpm_shared.loop_catalogue``,
``POST /loops/catalogue``): name, description, unit, area, engineering units, loop type and the
transmitter range (``pv_lo``/``pv_hi``) of each loop, in one transaction.
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.db.repositories import LoopRepository
from clpm_shared.ingest.tag_map import LoopTags, TagMap
from clpm_shared.loop_catalogue import CatalogueError, LoopEntry, RowProblem, save_catalogue


def catalogue_entry(loop: LoopTags) -> LoopEntry:
    """The catalogue row of one tag-map loop (raises pydantic's ValidationError)."""
    return LoopEntry.model_validate(
        {
            "loop_id": loop.loop_id,
            "description": loop.description,
            "unit": loop.unit,
            "area": loop.area,
            "engineering_units": loop.units,
            "loop_type": loop.loop_type.lower() if loop.loop_type else None,
            "pv_lo": loop.pv_lo,
            "pv_hi": loop.pv_hi,
        }
    )


def catalogue_entries(tag_map: TagMap) -> list[LoopEntry]:
    """Catalogue rows of every loop; :class:`CatalogueError` names each invalid one."""
    entries: list[LoopEntry] = []
    problems: list[RowProblem] = []
    for number, loop in enumerate(tag_map.loops, start=1):
        try:
            entries.append(catalogue_entry(loop))
        except ValidationError as exc:
            for error in exc.errors():
                column = ".".join(str(part) for part in error["loc"]) or loop.loop_id
                problems.append(RowProblem(number, column, str(error["msg"])))
    if problems:
        raise CatalogueError(problems)
    return entries


DATA_SOURCE = "opcua"


async def save_tag_map_loops(
    sessions: async_sessionmaker[AsyncSession], tag_map: TagMap, endpoint: str | None = None
) -> int:
    """Upsert every loop of ``tag_map`` into the catalogue in one transaction, marked
    ``data_source = "opcua"`` with the endpoint and node ids as detail; return the count."""
    entries = catalogue_entries(tag_map)
    async with sessions() as session, session.begin():
        count = await save_catalogue(session, entries)
        loops = LoopRepository(session)
        for tags in tag_map.loops:
            nodes = ", ".join(n for n in (tags.pv, tags.sp, tags.op, tags.mode) if n)
            detail = f"{endpoint or 'OPC UA'}: {nodes}"[:1000]
            await loops.save(
                tags.loop_id, {"data_source": DATA_SOURCE, "data_source_detail": detail}
            )
        return count
