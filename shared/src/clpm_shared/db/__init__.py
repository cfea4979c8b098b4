"""Relational schema (SQLAlchemy 2), async engine factory and repositories."""

from clpm_shared.db.engine import create_engine, create_session_factory
from clpm_shared.db.models import (
    Agg1h,
    Agg1m,
    ApcAttainment,
    Base,
    DiagnosticResult,
    KpiResult,
    Loop,
    LoopAssessment,
    LoopConfig,
    LoopWatermark,
    WorkerHeartbeat,
    WorkLease,
    metadata,
)

__all__ = [
    "Agg1h",
    "Agg1m",
    "ApcAttainment",
    "Base",
    "DiagnosticResult",
    "KpiResult",
    "Loop",
    "LoopAssessment",
    "LoopConfig",
    "LoopWatermark",
    "WorkLease",
    "WorkerHeartbeat",
    "create_engine",
    "create_session_factory",
    "metadata",
]
