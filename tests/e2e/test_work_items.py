"""End to end: an engineer acknowledges a loop on its page, the fleet table shows it, and the
admin's audit page lists that change with who made it and what it became.

Against the seeded suite (:mod:`tests.e2e.embedded_suite`, SQLite: the audit trail's
append-only triggers of the embedded default are in play).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.embedded_suite import (
    ESTIMATED_LOOP,
    Suite,
    screenshot,
    sign_in,
    unlabelled_controls,
)

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)
NOTE = "Valve on order, acknowledged until the repair"


@pytest.fixture(scope="module")
def engineer(browser: Browser, suite: Suite) -> Iterator[Page]:
    page = sign_in(browser, suite, "engineer")
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def admin(browser: Browser, suite: Suite) -> Iterator[Page]:
    page = sign_in(browser, suite, "admin")
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.context.close()


def test_an_engineer_acknowledges_a_loop_and_the_fleet_shows_it(
    engineer: Page, suite: Suite
) -> None:
    engineer.goto(f"{suite.url}/fleet/loops/{ESTIMATED_LOOP}")
    panel = engineer.get_by_test_id("history-panel")
    expect(panel.get_by_text("No acknowledgements, notes or assignments yet.")).to_be_visible()
    panel.get_by_role("button", name="Acknowledge").click()
    panel.get_by_label("Until (empty: until it changes)").fill("2099-01-01")
    panel.get_by_label("Comment").fill(NOTE)
    assert unlabelled_controls(engineer) == []
    panel.get_by_role("button", name="Save").click()
    entry = panel.locator("li[data-kind=acknowledgement]")
    expect(entry).to_contain_text("Acknowledged loop until 2099-01-01")
    expect(entry).to_contain_text(NOTE)
    expect(entry).to_contain_text("engineer")
    screenshot(engineer, "20-loop-acknowledged")

    engineer.reload()  # stored, not only shown
    expect(panel.locator("li[data-kind=acknowledgement]")).to_contain_text(NOTE)

    engineer.goto(f"{suite.url}/fleet")
    row = engineer.locator(f"tr[data-loop='{ESTIMATED_LOOP}']")
    expect(row.get_by_test_id("work-cell")).to_have_text("Acknowledged")
    others = engineer.locator(
        f"tbody tr:not([data-loop='{ESTIMATED_LOOP}']) [data-testid=work-cell]"
    )
    assert set(others.all_inner_texts()) <= {"–"}
    screenshot(engineer, "21-fleet-acknowledged")


def test_the_audit_page_shows_the_acknowledgement(admin: Page, suite: Suite) -> None:
    admin.goto(f"{suite.url}/fleet")
    admin.get_by_role("link", name="Audit trail").click()
    expect(admin.get_by_role("heading", name="Audit trail")).to_be_visible()
    admin.get_by_label("What").select_option("work_item")
    admin.get_by_label("Who").fill("engineer")
    admin.get_by_role("button", name="Apply").click()
    rows = admin.locator("tbody tr")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_contain_text("acknowledge")
    expect(row).to_contain_text("engineer")
    expect(row).to_contain_text(re.compile(r"work_item \d+"))
    expect(row).to_contain_text("created")
    assert unlabelled_controls(admin) == []
    screenshot(admin, "22-audit-trail")

    admin.get_by_label("Who").fill("nobody")
    admin.get_by_role("button", name="Apply").click()
    expect(admin.get_by_text("No recorded change matches.")).to_be_visible()


def test_engineers_do_not_see_the_audit_trail(engineer: Page, suite: Suite) -> None:
    engineer.goto(f"{suite.url}/fleet")
    expect(engineer.get_by_role("link", name="My items")).to_be_visible()
    expect(engineer.get_by_role("link", name="Audit trail")).to_have_count(0)
