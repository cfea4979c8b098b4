"""The fleet report: known answers of the assembly on a small fleet, and what the PDF (read
back with poppler's pdftotext / pdftoppm) and the workbook (read back with openpyxl) show."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest

from clpm_shared.reports import (
    AssessedLoop,
    TrendPoint,
    WorkItemEntry,
    assemble_fleet_report,
    report_window,
)
from clpm_shared.reports.pdf import render_pdf
from clpm_shared.reports.xlsx import render_xlsx

END = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
START = END - timedelta(hours=24)


def _loop(loop_id: str, criticality: int, status: str, health: float | None, **kw: object):
    values: dict[str, object] = {
        "loop_id": loop_id,
        "name": f"Loop {loop_id}",
        "unit": "U1",
        "area": "A",
        "criticality": criticality,
        "status": status,
        "health_score": health,
        "main_problem": None,
        "period_start": START,
        "period_end": END,
    }
    values.update(kw)
    return AssessedLoop(**values)  # type: ignore[arg-type]


FLEET = [
    _loop(
        "FIC-101",
        5,
        "poor",
        40.0,
        main_problem="valve_stiction",
        previous_status="fair",
        previous_health_score=70.0,
        findings=[{"category": "valve_stiction", "persistence": 0.8, "mean_severity": 0.6}],
    ),
    _loop(
        "TIC-202",
        1,
        "poor",
        30.0,
        previous_status="poor",
        previous_health_score=35.0,
        findings=[{"category": "valve_stiction", "persistence": 0.5, "mean_severity": 0.4}],
    ),
    _loop("LIC-303", 3, "good", 90.0, previous_status="fair", previous_health_score=60.0),
    _loop("PIC-404", 3, "offline", None, period_start=None, period_end=None),
]


def _item(item_id: int, state: str, created: datetime, updated: datetime) -> WorkItemEntry:
    return WorkItemEntry(
        item_id=item_id,
        loop_id="FIC-101",
        kind="assignment",
        state=state,
        category=None,
        assignee="alice",
        due_date=date(2026, 12, 10),
        work_order=f"WO-{item_id}",
        text="check the valve",
        created_by="bob",
        created_at=created,
        updated_at=updated,
    )


WORK_ITEMS = [
    _item(1, "open", START + timedelta(hours=2), START + timedelta(hours=2)),
    _item(2, "done", START - timedelta(days=3), START + timedelta(hours=5)),
    _item(3, "wont_fix", START - timedelta(days=9), START - timedelta(days=2)),
]


def _report(loops: list[AssessedLoop] = FLEET):
    trend = [
        TrendPoint(START - timedelta(hours=12), 96, 62.0, {"poor": 0.25}),
        TrendPoint(START + timedelta(hours=12), 96, 55.0, {"poor": 0.5}),
    ]
    return assemble_fleet_report(
        period="day",
        start=START,
        end=END,
        generated_at=END + timedelta(minutes=5),
        loops=loops,
        trend=trend,
        kpi_means={"health_score": 55.0, "saturation": 0.1},
        previous_kpi_means={"health_score": 60.0, "saturation": 0.05},
        work_items=WORK_ITEMS,
    )


def test_bad_actors_are_ranked_by_health_deficit_times_criticality() -> None:
    report = _report()
    # (100 - 40) * 5 = 300, (100 - 30) * 1 = 70, (100 - 90) * 3 = 30
    assert [(r.rank, r.loop_id, r.bad_actor_score) for r in report.bad_actors] == [
        (1, "FIC-101", 300.0),
        (2, "TIC-202", 70.0),
        (3, "LIC-303", 30.0),
    ]
    assert report.loops[-1].loop_id == "PIC-404"
    assert report.loops[-1].rank is None
    assert report.loops[-1].reason == "no rating yet"
    assert report.bad_actors[0].health_change == -30.0


def test_fleet_health_and_status_counts_against_the_previous_period() -> None:
    report = _report()
    # (5*40 + 1*30 + 3*90) / 9 = 55.56; before (5*70 + 1*35 + 3*60) / 9 = 62.78
    assert report.health_score == pytest.approx(55.56)
    assert report.previous_health_score == pytest.approx(62.78)
    assert report.health_change == pytest.approx(-7.22)
    assert report.status_counts == {
        "good": 1,
        "fair": 0,
        "poor": 2,
        "offline": 1,
        "not_assessed": 0,
    }
    assert report.previous_status_counts == {
        "good": 0,
        "fair": 2,
        "poor": 1,
        "offline": 1,
        "not_assessed": 0,
    }
    assert (report.loops_total, report.loops_rated) == (4, 3)


def test_status_changes_list_the_worse_first() -> None:
    changes = _report().status_changes
    assert [(c.loop_id, c.before, c.after, c.direction) for c in changes] == [
        ("FIC-101", "fair", "poor", "worse"),
        ("LIC-303", "fair", "good", "better"),
    ]


def test_findings_are_summed_per_category() -> None:
    (stiction,) = _report().findings
    assert stiction.category == "valve_stiction"
    assert stiction.loops == 2
    assert stiction.mean_persistence == pytest.approx(0.65)
    assert stiction.mean_severity == pytest.approx(0.5)
    assert stiction.worst_loop_id == "FIC-101"


def test_work_items_opened_and_closed_in_the_period() -> None:
    items = _report().work_items
    # item 3 was closed before the period: neither closed in it nor open
    assert (items.opened, items.closed, items.open_now) == (1, 1, 1)
    assert [i.item_id for i in items.items] == [1, 3, 2]


def test_trend_and_kpis_are_split_into_this_and_the_previous_period() -> None:
    report = _report()
    assert [p.health_score for p in report.trend] == [55.0]
    assert [p.health_score for p in report.previous_trend] == [62.0]
    kpis = {k.kpi: k for k in report.kpis}
    assert kpis["health_score"].change == -5.0
    assert kpis["saturation"].change == pytest.approx(0.05)


def test_an_unchanged_fleet_reports_no_status_change() -> None:
    steady = [
        replace(loop, previous_status=loop.status, previous_health_score=loop.health_score)
        for loop in FLEET
    ]
    report = _report(steady)
    assert report.status_changes == ()
    assert report.health_change == 0.0


def test_the_window_is_the_newest_stored_rating() -> None:
    assert report_window(FLEET, timedelta(hours=24), END + timedelta(hours=3)) == (START, END)
    later = END + timedelta(hours=3)
    assert report_window([], timedelta(hours=24), later) == (later - timedelta(hours=24), later)


def _pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def test_pdf_pages_show_the_worst_loop_and_the_period(tmp_path: Path) -> None:
    assert shutil.which("pdftoppm"), "poppler-utils is installed by tests/run.sh"
    pdf = render_pdf(_report())
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 1
    assert all(page.stat().st_size > 1000 for page in pages)
    text = _pdftotext(pdf, tmp_path)
    assert "Daily fleet report" in text
    assert "2026-12-04 06:00 – 2026-12-05 06:00 UTC" in text
    first_actor_line = next(line for line in text.splitlines() if "valve_stiction" in line)
    assert "FIC-101" in first_actor_line
    assert text.index("FIC-101") < text.index("TIC-202") < text.index("LIC-303")
    assert "WO-1" in text


def test_pdf_lists_only_the_top_loops(tmp_path: Path) -> None:
    text = _pdftotext(render_pdf(_report(), top=1), tmp_path)
    assert "Bad actors (worst 1 of 3)" in text
    bad_actor_part = text[text.index("Bad actors") : text.index("Status changes")]
    assert "FIC-101" in bad_actor_part
    assert "LIC-303" not in bad_actor_part


def test_workbook_has_every_sheet_and_the_worst_loop_first() -> None:
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(_report())), read_only=True)
    assert book.sheetnames == [
        "Summary",
        "Bad actors",
        "Status changes",
        "Findings",
        "KPIs",
        "Trend",
        "Work items",
    ]
    rows = list(book["Bad actors"].iter_rows(values_only=True))
    header = rows[0]
    assert header[:3] == ("rank", "loop_id", "name")
    worst = dict(zip(header, rows[1], strict=True))
    assert worst["rank"] == 1
    assert worst["loop_id"] == "FIC-101"
    assert worst["health_score"] == 40.0
    assert worst["previous_health_score"] == 70.0
    assert worst["bad_actor_score"] == 300.0
    assert rows[-1][1] == "PIC-404"
    assert len(rows) == 5
    summary = {row[0]: row[1:] for row in book["Summary"].iter_rows(values_only=True) if row}
    assert summary["fleet health"][:2] == (pytest.approx(55.56), pytest.approx(62.78))
    assert summary["period start (UTC)"][0] == START.replace(tzinfo=None)
    work = list(book["Work items"].iter_rows(values_only=True))
    assert [row[0] for row in work[1:]] == [1, 3, 2]
