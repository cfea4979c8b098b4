"""End to end: an engineer opens Reports from the navigation, downloads the daily PDF (read
back with poppler: pages rendered, the title and period in its text) and the weekly XLSX
(every loop of the suite in its loop sheet), and subscribes and unsubscribes by e-mail.

Against the seeded suite (:mod:`tests.e2e.embedded_suite`): its hour of KPI windows is too
little for a day or week rating, so every loop is listed unranked, with its reason.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.embedded_suite import Suite, screenshot, sign_in, unlabelled_controls

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def engineer(browser: Browser, suite: Suite) -> Iterator[Page]:
    page = sign_in(browser, suite, "engineer")
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.context.close()


def test_the_daily_pdf_and_weekly_workbook_download(
    engineer: Page, suite: Suite, tmp_path: Path
) -> None:
    engineer.get_by_role("link", name="Reports").click()
    expect(engineer.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    assert unlabelled_controls(engineer) == []

    with engineer.expect_download() as pdf_download:
        engineer.get_by_role("button", name=re.compile(r"Daily report \(PDF\)")).click()
    assert re.fullmatch(r"clpm-fleet-day-\d{8}T\d{4}Z\.pdf", pdf_download.value.suggested_filename)
    pdf = tmp_path / "daily.pdf"
    pdf_download.value.save_as(pdf)
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "p")], check=True)
    assert len(list(tmp_path.glob("p-*.png"))) >= 1
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "Daily fleet report" in text
    assert re.search(r"Period: \d{4}-\d\d-\d\d \d\d:\d\d – \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert f"{len(suite.loops)} loops, 0 ranked" in text

    with engineer.expect_download() as xlsx_download:
        engineer.get_by_role("button", name=re.compile(r"Weekly report \(XLSX\)")).click()
    assert xlsx_download.value.suggested_filename.startswith("clpm-fleet-week-")
    xlsx = tmp_path / "weekly.xlsx"  # openpyxl goes by the extension
    xlsx_download.value.save_as(xlsx)
    book = openpyxl.load_workbook(xlsx, read_only=True)
    rows = list(book["Bad actors"].iter_rows(values_only=True))
    assert rows[0][:2] == ("rank", "loop_id")
    assert sorted(row[1] for row in rows[1:]) == sorted(suite.loops)
    assert all(row[0] is None and row[-1] for row in rows[1:])  # unranked, with the reason
    screenshot(engineer, "30-reports")


def test_an_engineer_subscribes_and_unsubscribes(engineer: Page, suite: Suite) -> None:
    engineer.goto(f"{suite.url}/fleet-reports")
    expect(engineer.get_by_text("You have no report subscriptions.")).to_be_visible()
    form = engineer.get_by_role("form", name="New subscription")
    form.get_by_label("E-mail").fill("engineer@plant.example")
    form.get_by_label("Report").select_option("week")
    form.get_by_label("Format").select_option("both")
    form.get_by_role("button", name="Subscribe").click()
    row = engineer.get_by_test_id("subscriptions").locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Weekly")
    expect(row).to_contain_text("PDF and XLSX")
    expect(row).to_contain_text("engineer@plant.example")
    engineer.reload()  # stored, not only shown
    expect(row).to_have_count(1)
    row.get_by_role("button", name="Remove").click()
    expect(engineer.get_by_text("You have no report subscriptions.")).to_be_visible()
