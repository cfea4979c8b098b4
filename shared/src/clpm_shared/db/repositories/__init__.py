"""Repositories: every SQL statement of CLPM lives in this package."""

from clpm_shared.db.repositories.loops import LoopConfigRepository, LoopRepository
from clpm_shared.db.repositories.upsert import upsert_rows

__all__ = ["LoopConfigRepository", "LoopRepository", "upsert_rows"]
