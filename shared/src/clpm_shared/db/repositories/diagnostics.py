"""Writes of ``diagnostic_results``: the findings of one loop and window replace the old ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.db.models import DiagnosticResult
from clpm_shared.db.repositories.upsert import insert_missing, upsert_rows

TRIGGERS = ("on_demand", "kpi_cycle")
"""Why a diagnosis ran: asked for (gateway, API) or the KPI worker's diagnosis of every loop
on each window."""
KEY = ["loop_id", "window_start", "category"]


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
        explained = finding.get("explained")
        if explained:
            # findings the root cause explains: kept as its evidence, not as problems
            rows[category]["evidence"]["explained"] = list(explained)
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
        """Make ``findings`` the only findings of ``loop_id`` for the window
        ``[window_start, window_end)``.

        A repeated diagnosis of the same window overwrites the earlier one, including
        removing categories that no longer apply; a loop found healthy keeps no rows.
        A diagnosis asked for (``on_demand``) also replaces the KPI cycle's findings of a
        window starting at the same time (the table's key has no window end): the newest
        answer to what the user asked is what is read back.
        Returns the number of rows written. The caller commits.
        """
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger: must be one of {TRIGGERS}, got {trigger!r}")
        rows = finding_rows(loop_id, window_start, window_end, findings, trigger)
        await self.session.execute(
            delete(DiagnosticResult).where(
                DiagnosticResult.loop_id == loop_id,
                DiagnosticResult.window_start == window_start,
                or_(
                    DiagnosticResult.window_end == window_end,
                    DiagnosticResult.trigger == "kpi_cycle",
                ),
            )
        )
        return await upsert_rows(
            self.session,
            DiagnosticResult.__table__,  # type: ignore[arg-type]
            rows,
            KEY,
        )

    async def replace_cycle_findings(
        self,
        window_start: datetime,
        window_end: datetime,
        findings: Mapping[str, Sequence[Mapping[str, Any]]],
    ) -> int:
        """Make ``findings[loop_id]`` the KPI cycle's findings of each loop for the window.

        The window's previous ``kpi_cycle`` rows of these loops are deleted first (a loop
        found healthy keeps none). A finding whose key is held by an on-demand diagnosis of a
        window starting at the same time is not written: the user's own run stays.
        Returns the number of rows sent. The caller commits.
        """
        loop_ids = sorted(findings)
        for offset in range(0, len(loop_ids), 1000):
            await self.session.execute(
                delete(DiagnosticResult).where(
                    and_(
                        DiagnosticResult.loop_id.in_(loop_ids[offset : offset + 1000]),
                        DiagnosticResult.window_start == window_start,
                        DiagnosticResult.trigger == "kpi_cycle",
                    )
                )
            )
        rows = [
            row
            for loop_id in loop_ids
            for row in finding_rows(
                loop_id, window_start, window_end, findings[loop_id], "kpi_cycle"
            )
        ]
        return await insert_missing(
            self.session,
            DiagnosticResult.__table__,  # type: ignore[arg-type]
            rows,
            KEY,
        )
