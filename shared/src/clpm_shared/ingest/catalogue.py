"""The loops of an import in the catalogue: created or updated, marked as imported.

The tag map's catalogue fields go through the loop list's own validation
(:class:`clpm_shared.loop_catalogue.LoopEntry`), so an import and ``POST /loops/catalogue``
store the same thing. A loop already in the catalogue keeps its name (and its description
when the tag map gives none); ``data_source`` becomes ``"import"`` and ``data_source_detail``
the imported file names.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.repositories import LoopConfigRepository, LoopRepository
from clpm_shared.ingest.tag_map import TagMap
from clpm_shared.loop_catalogue import LoopEntry

DATA_SOURCE = "import"
DETAIL_LENGTH = 1000


def import_detail(file_names: Iterable[str]) -> str:
    """The ``data_source_detail`` of an import: its file names, comma-separated (shortened)."""
    text = ", ".join(file_names)
    return text if len(text) <= DETAIL_LENGTH else text[: DETAIL_LENGTH - 3] + "..."


async def register_imported_loops(
    session: AsyncSession, tag_map: TagMap, loop_ids: Iterable[str], detail: str
) -> int:
    """Upsert the tag map's loops named in ``loop_ids`` (those that received samples) in the
    caller's transaction; the number of loops."""
    wanted = set(loop_ids)
    loops = LoopRepository(session)
    configs = LoopConfigRepository(session)
    count = 0
    for tags in tag_map.loops:
        if tags.loop_id not in wanted:
            continue
        entry = LoopEntry(
            loop_id=tags.loop_id,
            description=tags.description,
            unit=tags.unit,
            area=tags.area,
            engineering_units=tags.units,
            loop_type=tags.loop_type,
            pv_lo=tags.pv_lo,
            pv_hi=tags.pv_hi,
        )
        values = entry.loop_values()
        existing = await loops.get(tags.loop_id, include_deleted=True)
        if existing is not None:
            values.pop("name")
            if tags.description is None:
                values.pop("description")
            values = {k: v for k, v in values.items() if v is not None}
        values |= {"data_source": DATA_SOURCE, "data_source_detail": detail}
        await loops.save(tags.loop_id, values)
        config = entry.config_values()
        if config:
            await configs.save(tags.loop_id, config)
        count += 1
    return count
