"""The report's plots as PNG images (matplotlib, Agg canvas, no pyplot).

Figures are built with :class:`matplotlib.figure.Figure` and drawn on an Agg canvas: no
global pyplot state and no display, so reports can be rendered in worker threads.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from clpm_shared.analytics.ranking import STATUSES
from clpm_shared.reports.content import FleetReport, TrendPoint

STATUS_COLOURS = {
    "good": "#2e7d32",
    "fair": "#f9a825",
    "poor": "#c62828",
    "offline": "#757575",
    "not_assessed": "#90a4ae",
}
DPI = 110


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _hours_since(points: tuple[TrendPoint, ...], origin_s: float) -> list[float]:
    return [(p.bucket_start.timestamp() - origin_s) / 3600.0 for p in points]


def health_trend_png(report: FleetReport) -> bytes:
    """Fleet health per trend bucket over the period, and over the previous period shifted
    onto it (hours since the period's start), so the two read against each other."""
    figure = Figure(figsize=(7.0, 2.8))
    axes = figure.add_subplot()
    start_s = report.period_start.timestamp()
    length_s = report.period_end.timestamp() - start_s
    for points, origin, label, style in (
        (report.previous_trend, start_s - length_s, "previous period", "--"),
        (report.trend, start_s, "this period", "-"),
    ):
        kept = tuple(p for p in points if p.health_score is not None)
        if kept:
            axes.plot(
                _hours_since(kept, origin),
                [float(p.health_score or 0.0) for p in kept],
                style,
                marker="o",
                markersize=3,
                label=label,
            )
    axes.set_xlim(0, length_s / 3600.0)
    axes.set_ylim(0, 100)
    axes.set_xlabel("hours since the period's start")
    axes.set_ylabel("fleet health")
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    return _png(figure)


def status_counts_png(report: FleetReport) -> bytes:
    """Loops per status over the period beside the previous period."""
    figure = Figure(figsize=(7.0, 2.4))
    axes = figure.add_subplot()
    positions = range(len(STATUSES))
    width = 0.4
    axes.bar(
        [x - width / 2 for x in positions],
        [report.previous_status_counts.get(s, 0) for s in STATUSES],
        width,
        color="#b0bec5",
        label="previous period",
    )
    axes.bar(
        [x + width / 2 for x in positions],
        [report.status_counts.get(s, 0) for s in STATUSES],
        width,
        color=[STATUS_COLOURS[s] for s in STATUSES],
        label="this period",
    )
    axes.set_xticks(list(positions), [s.replace("_", " ") for s in STATUSES])
    axes.set_ylabel("loops")
    axes.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)
