"""Daily and weekly fleet reports: content assembled without I/O, rendered as PDF and XLSX.

Libraries, and why:

* XLSX: XlsxWriter in ``constant_memory`` mode writes rows as they come (a 10,000-loop sheet
  in well under a second, little memory) and draws native Excel charts; it is maintained
  and writes only, which is all a report needs.
* PDF: ReportLab's platypus lays out paragraphs, page-splitting tables and images on A4
  without a browser or TeX; it is the long-kept PDF library of Python (BSD).
* Plots: matplotlib on an Agg canvas (no pyplot state, safe in worker threads).

``content`` imports neither renderer; ``render_pdf`` / ``render_xlsx`` load them.
"""

from clpm_shared.reports.content import (
    REPORT_PERIODS,
    AssessedLoop,
    FleetReport,
    TrendPoint,
    WorkItemEntry,
    assemble_fleet_report,
    period_length,
    report_window,
)

__all__ = [
    "REPORT_PERIODS",
    "AssessedLoop",
    "FleetReport",
    "TrendPoint",
    "WorkItemEntry",
    "assemble_fleet_report",
    "period_length",
    "report_window",
]
