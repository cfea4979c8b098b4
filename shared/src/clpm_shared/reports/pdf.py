"""The fleet report as a PDF (ReportLab platypus: flowing tables and images, A4).

ReportLab is the long-maintained PDF library of the Python world (BSD licence, pure Python
with a C accelerator): platypus flows paragraphs, tables that split across pages with their
header repeated, and images, without a browser or a TeX installation. The plots are
matplotlib PNGs (:mod:`clpm_shared.reports.plots`). A PDF is read, not filtered: it lists the
worst ``top`` loops, status changes and work items; the workbook lists them all.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Image,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from clpm_shared.analytics.ranking import STATUSES
from clpm_shared.reports.content import FleetReport
from clpm_shared.reports.plots import health_trend_png, status_counts_png

DEFAULT_TOP = 50
_TABLE_STYLE = TableStyle(
    [
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTSIZE", (0, 0), (-1, -1), 7.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDE3EA")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F5F7FA")]),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
)


def _text(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}"


def _count_change(report: FleetReport, status: str) -> str:
    change = report.status_counts.get(status, 0) - report.previous_status_counts.get(status, 0)
    return f"{change:+d}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    table = Table([list(header), *[list(row) for row in rows]], repeatRows=1, hAlign="LEFT")
    table.setStyle(_TABLE_STYLE)
    return table


def _image(png: bytes, width_mm: float) -> Image:
    image = Image(io.BytesIO(png))
    scale = width_mm * mm / image.imageWidth
    image.drawWidth = image.imageWidth * scale
    image.drawHeight = image.imageHeight * scale
    return image


def render_pdf(report: FleetReport, top: int = DEFAULT_TOP) -> bytes:
    """The report on A4 pages: summary, plots, the ``top`` worst loops, status changes,
    findings, KPIs against the previous period and work items."""
    styles = getSampleStyleSheet()
    heading = styles["Heading2"]
    body = styles["BodyText"]
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=report.title,
        author="CLPM",
        subject=report.period_label,
    )
    story: list[Any] = [
        Paragraph(report.title, styles["Title"]),
        Paragraph(f"Period: {report.period_label}", body),
        Paragraph(
            f"Generated {report.generated_at.strftime('%Y-%m-%d %H:%M')} UTC · "
            f"{report.loops_total} loops, {report.loops_rated} ranked",
            body,
        ),
        Spacer(1, 4 * mm),
        _table(
            ["", "this period", "previous period", "change"],
            [
                [
                    "fleet health",
                    _text(report.health_score),
                    _text(report.previous_health_score),
                    _signed(report.health_change),
                ],
                *(
                    [
                        f"loops {status.replace('_', ' ')}",
                        report.status_counts.get(status, 0),
                        report.previous_status_counts.get(status, 0),
                        _count_change(report, status),
                    ]
                    for status in STATUSES
                ),
                [
                    "work items opened / closed / open",
                    f"{report.work_items.opened} / {report.work_items.closed} / "
                    f"{report.work_items.open_now}",
                    "",
                    "",
                ],
            ],
        ),
        Spacer(1, 4 * mm),
        _image(health_trend_png(report), 175),
        _image(status_counts_png(report), 175),
    ]

    actors = report.bad_actors[:top]
    story.append(Paragraph(f"Bad actors (worst {len(actors)} of {report.loops_rated})", heading))
    if actors:
        story.append(
            _table(
                ["#", "loop", "unit", "crit.", "status", "health", "prev.", "change", "problem"],
                [
                    [
                        row.rank,
                        row.loop_id,
                        _text(row.unit),
                        row.criticality,
                        row.status,
                        _text(row.health_score),
                        _text(row.previous_health_score),
                        _signed(row.health_change),
                        _text(row.main_problem),
                    ]
                    for row in actors
                ],
            )
        )
    else:
        story.append(Paragraph("No loop has a rating over this period.", body))

    worse = [c for c in report.status_changes if c.direction == "worse"]
    better = [c for c in report.status_changes if c.direction == "better"]
    story.append(Paragraph(f"Status changes ({len(worse)} worse, {len(better)} better)", heading))
    if report.status_changes:
        story.append(
            _table(
                ["loop", "before", "after", "health change"],
                [
                    [c.loop_id, c.before, c.after, _signed(c.health_change)]
                    for c in report.status_changes[:top]
                ],
            )
        )

    story.append(Paragraph(f"Findings ({len(report.findings)} categories)", heading))
    if report.findings:
        story.append(
            _table(
                ["category", "loops", "mean persistence", "mean severity", "worst loop"],
                [
                    [
                        f.category,
                        f.loops,
                        _text(f.mean_persistence, 2),
                        _text(f.mean_severity, 2),
                        f.worst_loop_id,
                    ]
                    for f in report.findings
                ],
            )
        )

    if report.kpis:
        story.append(Paragraph("KPIs against the previous period (fleet means)", heading))
        story.append(
            _table(
                ["KPI", "this period", "previous period", "change"],
                [
                    [k.kpi, _text(k.current, 3), _text(k.previous, 3), _text(k.change, 3)]
                    for k in report.kpis
                ],
            )
        )

    items = report.work_items.items[:top]
    story.append(
        Paragraph(
            f"Work items ({report.work_items.opened} opened, {report.work_items.closed} "
            f"closed, {report.work_items.open_now} open)",
            heading,
        )
    )
    if items:
        story.append(
            _table(
                ["id", "loop", "kind", "state", "assignee", "due", "work order"],
                [
                    [
                        i.item_id,
                        i.loop_id,
                        i.kind,
                        i.state,
                        _text(i.assignee),
                        i.due_date.isoformat() if i.due_date else "–",
                        _text(i.work_order),
                    ]
                    for i in items
                ],
            )
        )
    document.build(story)
    return buffer.getvalue()
