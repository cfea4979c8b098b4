"""Writes of ``diagnostic_results``: the findings of one loop and window replace the old ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import DiagnosticResult
from clpm_shared.db.repositories.upsert import upsert_rows

TRIGGERS = ("on_demand", "kpi_cycle")
"""Why a diagnosis ran: asked for (gateway, API) or after a KPI cycle for unhealthy loops."""


def finding_rows(
    loop_id: str,
    window_start: datetime,
    window_end: datetime,
    findings: Sequence[Mapping[str, Any]],
    trigger: str,
) -> list[dict[str, Any]]:
    """One row per category (the table's key is loop, window, category).

    ``findings`` are dicts with category, severity, confidence, evidence, recommendation,
    most important first. When a category occurs twice (e.g. spikes and noise, both sensor
    faults) the first one is the row and the others ride along in its evidence under
    ``"other_findings"``.
    """
    rows: dict[str, dict[str, Any]] = {}
    for finding in findings:
        category = str(finding["category"])
        if category in rows:
            extra = rows[category]["evidence"].setdefault("other_findings", [])
            extra.append(
                {
                    "severity": finding["severity"],
                    "confidence": finding["confidence"],
                    "evidence": dict(finding["evidence"]),
                    "recommendation": finding["recommendation"],
                }
            )
            continue
        rows[category] = {
            "loop_id": loop_id,
            "window_start": window_start,
            "category": category,
            "window_end": window_end,
            "severity": float(finding["severity"]),
            "confidence": float(finding["confidence"]),
            "evidence": dict(finding["evidence"]),
            "recommendation": str(finding["recommendation"]),
            "trigger": trigger,
        }
    return list(rows.values())


class DiagnosticRepository:
    """Stores diagnoses; reading them is :class:`DiagnosticReadRepository`'s job."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def replace_window(
        self,
        loop_id: str,
        window_start: datetime,
        window_end: datetime,
        findings: Sequence[Mapping[str, Any]],
        trigger: str = "on_demand",
    ) -> int:
        """Make ``findings`` the only findings of ``loop_id`` for the window at ``window_start``.

        A repeated diagnosis of the same window overwrites the earlier one, including
        removing categories that no longer apply; a loop found healthy keeps no rows.
        Returns the number of rows written. The caller commits.
        """
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger: must be one of {TRIGGERS}, got {trigger!r}")
        rows = finding_rows(loop_id, window_start, window_end, findings, trigger)
        await self.session.execute(
            delete(DiagnosticResult).where(
                DiagnosticResult.loop_id == loop_id,
                DiagnosticResult.window_start == window_start,
            )
        )
        return await upsert_rows(
            self.session,
            DiagnosticResult.__table__,  # type: ignore[arg-type]
            rows,
            ["loop_id", "window_start", "category"],
        )
