"""What the gateway records in the audit trail about loops and their configuration.

A route reads the state of the loops it is about to change (:func:`loop_states`), changes them,
and records the change (:func:`record_loop_changes`) before it commits, so the entry and the
change are stored in one transaction or not at all.

Entity ``loop``: the loop's columns plus ``config`` (its analysis settings, None for the
defaults); entity ``loop_config``: the settings alone. Timestamps of the rows are left out:
the entry has its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import Loop, LoopConfig
from clpm_shared.db.repositories.audit import AuditChange, AuditRepository
from clpm_shared.db.repositories.loops import LoopConfigRepository, LoopRepository

LOOP_ENTITY = "loop"
CONFIG_ENTITY = "loop_config"

_LEFT_OUT = {"loop_id", "created_at", "updated_at"}
_LOOP_FIELDS = tuple(c.key for c in Loop.__table__.columns if c.key not in _LEFT_OUT)
_CONFIG_FIELDS = tuple(c.key for c in LoopConfig.__table__.columns if c.key not in _LEFT_OUT)

LoopStates = dict[str, dict[str, Any] | None]


def _config_fields(config: LoopConfig | None) -> dict[str, Any] | None:
    return None if config is None else {name: getattr(config, name) for name in _CONFIG_FIELDS}


async def loop_states(session: AsyncSession, entity: str, loop_ids: Iterable[str]) -> LoopStates:
    """The audited state of each of ``loop_ids`` (None for a loop that does not exist, or for
    ``loop_config``, a loop on the defaults)."""
    ids = list(loop_ids)
    configs = await LoopConfigRepository(session).get_many(ids)
    if entity == CONFIG_ENTITY:
        return {loop_id: _config_fields(configs.get(loop_id)) for loop_id in ids}
    loops = await LoopRepository(session).get_many(ids, include_deleted=True)
    states: LoopStates = {}
    for loop_id in ids:
        loop = loops.get(loop_id)
        if loop is None:
            states[loop_id] = None
            continue
        fields = {name: getattr(loop, name) for name in _LOOP_FIELDS}
        states[loop_id] = {**fields, "config": _config_fields(configs.get(loop_id))}
    return states


async def record_loop_changes(
    session: AsyncSession, actor: str, action: str, entity: str, before: Mapping[str, Any]
) -> None:
    """Record ``actor``'s ``action`` on each loop of ``before`` (from :func:`loop_states`) whose
    state changed, with its state before and now."""
    after = await loop_states(session, entity, before)
    changes = [
        AuditChange(action, entity, loop_id, before[loop_id], after[loop_id])
        for loop_id in before
        if before[loop_id] != after[loop_id]
    ]
    await AuditRepository(session).record_many(actor, changes)
