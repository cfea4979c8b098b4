"""The fleet report as an Excel workbook (XlsxWriter in ``constant_memory`` mode).

XlsxWriter writes each row to a temporary file as soon as the next row starts
(``constant_memory``), so a 10,000-loop sheet costs neither memory nor a second pass; it only
writes (openpyxl, which reads as well, keeps every cell in memory and is several times slower
at writing). The trend sheet carries a native Excel line chart of the fleet health.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import xlsxwriter

from clpm_shared.analytics.ranking import STATUSES
from clpm_shared.reports.content import FleetReport

LOOP_COLUMNS = (
    "rank",
    "loop_id",
    "name",
    "unit",
    "area",
    "criticality",
    "status",
    "health_score",
    "previous_status",
    "previous_health_score",
    "health_change",
    "bad_actor_score",
    "main_problem",
    "reason",
)
WORK_ITEM_COLUMNS = (
    "id",
    "loop_id",
    "kind",
    "state",
    "category",
    "assignee",
    "due_date",
    "work_order",
    "created_by",
    "created_at",
    "updated_at",
    "text",
)


def _naive(moment: datetime) -> datetime:
    """Excel has no time zones: UTC wall time (the header says UTC)."""
    return moment.replace(tzinfo=None)


class _Sheet:
    """Rows written in order (what constant_memory requires)."""

    def __init__(self, book: Any, name: str, formats: dict[str, Any]) -> None:
        self.sheet = book.add_worksheet(name)
        self.formats = formats
        self.row = 0

    def write(self, values: Sequence[Any], style: str | None = None) -> None:
        for column, value in enumerate(values):
            if isinstance(value, datetime):
                self.sheet.write_datetime(self.row, column, _naive(value), self.formats["time"])
            elif value is None:
                continue
            elif style is not None:
                self.sheet.write(self.row, column, value, self.formats[style])
            else:
                self.sheet.write(self.row, column, value)
        self.row += 1


def render_xlsx(report: FleetReport) -> bytes:
    """The workbook: Summary, Bad actors (every loop), Status changes, Findings, KPIs,
    Trend (with a chart) and Work items."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"constant_memory": True, "in_memory": False})
    formats = {
        "bold": book.add_format({"bold": True}),
        "header": book.add_format({"bold": True, "bg_color": "#DDE3EA", "bottom": 1}),
        "time": book.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
        "title": book.add_format({"bold": True, "font_size": 14}),
    }

    summary = _Sheet(book, "Summary", formats)
    summary.sheet.set_column(0, 0, 28)
    summary.sheet.set_column(1, 2, 18)
    summary.write([report.title], "title")
    summary.write(["period", report.period_label])
    summary.write(["period start (UTC)", report.period_start])
    summary.write(["period end (UTC)", report.period_end])
    summary.write(["generated (UTC)", report.generated_at])
    summary.write(["loops", report.loops_total])
    summary.write(["loops ranked", report.loops_rated])
    summary.write([])
    summary.write(["", "this period", "previous period"], "header")
    summary.write(["fleet health", report.health_score, report.previous_health_score])
    summary.write(["health change", report.health_change])
    for status in STATUSES:
        summary.write(
            [
                f"loops {status}",
                report.status_counts.get(status, 0),
                report.previous_status_counts.get(status, 0),
            ]
        )
    summary.write([])
    summary.write(["work items opened", report.work_items.opened])
    summary.write(["work items closed", report.work_items.closed])
    summary.write(["work items open", report.work_items.open_now])

    loops = _Sheet(book, "Bad actors", formats)
    loops.sheet.set_column(1, 2, 22)
    loops.sheet.freeze_panes(1, 0)
    loops.write(LOOP_COLUMNS, "header")
    for row in report.loops:
        loops.write([getattr(row, name) for name in LOOP_COLUMNS])
    if report.loops:
        loops.sheet.autofilter(0, 0, len(report.loops), len(LOOP_COLUMNS) - 1)

    changes = _Sheet(book, "Status changes", formats)
    changes.write(("loop_id", "name", "before", "after", "direction", "health_change"), "header")
    for change in report.status_changes:
        changes.write(
            [
                change.loop_id,
                change.name,
                change.before,
                change.after,
                change.direction,
                change.health_change,
            ]
        )

    findings = _Sheet(book, "Findings", formats)
    findings.write(
        ("category", "loops", "mean_persistence", "mean_severity", "worst_loop_id"), "header"
    )
    for finding in report.findings:
        findings.write(
            [
                finding.category,
                finding.loops,
                finding.mean_persistence,
                finding.mean_severity,
                finding.worst_loop_id,
            ]
        )

    kpis = _Sheet(book, "KPIs", formats)
    kpis.write(("kpi", "this period", "previous period", "change"), "header")
    for kpi in report.kpis:
        kpis.write([kpi.kpi, kpi.current, kpi.previous, kpi.change])

    trend = _Sheet(book, "Trend", formats)
    trend.sheet.set_column(1, 1, 18)
    trend.write(("period", "bucket start (UTC)", "windows", "health", *STATUSES), "header")
    points = [("previous", p) for p in report.previous_trend] + [("this", p) for p in report.trend]
    for which, point in points:
        trend.write(
            [
                which,
                point.bucket_start,
                point.windows,
                point.health_score,
                *(point.status_shares.get(status) for status in STATUSES),
            ]
        )
    if points:
        chart = book.add_chart({"type": "line"})
        chart.add_series(
            {
                "name": "fleet health",
                "categories": ["Trend", 1, 1, len(points), 1],
                "values": ["Trend", 1, 3, len(points), 3],
            }
        )
        chart.set_y_axis({"min": 0, "max": 100, "name": "health"})
        chart.set_title({"name": "Fleet health, previous and this period"})
        trend.sheet.insert_chart(1, len(STATUSES) + 5, chart)

    items = _Sheet(book, "Work items", formats)
    items.write(WORK_ITEM_COLUMNS, "header")
    for item in report.work_items.items:
        items.write(
            [
                item.item_id,
                item.loop_id,
                item.kind,
                item.state,
                item.category,
                item.assignee,
                item.due_date.isoformat() if item.due_date else None,
                item.work_order,
                item.created_by,
                item.created_at,
                item.updated_at,
                item.text,
            ]
        )
    book.close()
    return buffer.getvalue()
