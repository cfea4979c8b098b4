"""End to end: assessment periods, estimated spans and the on-demand diagnosis in the browser.

Against the seeded suite (:mod:`tests.e2e.embedded_suite`): the period selector of the fleet and
loop pages (default day; the choice travels in the address and to the gateway), percentages of
an estimated PV span labelled as such (with the reason as tooltip) next to a loop whose range
is configured, and "Diagnose the last hour" showing its own result in the diagnosis panel.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.e2e.embedded_suite import (
    DROPOUT_LOOP,
    ESTIMATED_LOOP,
    RANGED_LOOP,
    Suite,
    screenshot,
    sign_in,
    unlabelled_controls,
)

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def engineer(browser: Browser, suite: Suite) -> Iterator[Page]:
    page = sign_in(browser, suite, "engineer")
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.context.close()


def _period_buttons(page: Page) -> dict[str, str | None]:
    group = page.get_by_role("group", name="Assessment period")
    return {
        name: group.get_by_role("button", name=name, exact=True).get_attribute("aria-pressed")
        for name in ("Window", "Shift", "Day", "Week")
    }


def test_fleet_ranks_over_a_day_by_default_and_over_the_period_picked(
    engineer: Page, suite: Suite
) -> None:
    asked: list[str] = []

    def record(request: Request) -> None:
        if "/api/v1/loops?" in request.url or "/api/v1/fleet/summary" in request.url:
            asked.append(request.url)

    engineer.on("request", record)
    engineer.goto(f"{suite.url}/fleet")
    table = engineer.get_by_role("table", name=re.compile("bad-actor score"))
    table.locator("tbody tr").first.wait_for()
    assert _period_buttons(engineer) == {
        "Window": "false",
        "Shift": "false",
        "Day": "true",
        "Week": "false",
    }
    expect(engineer.get_by_text(re.compile("over the last day;"))).to_be_visible()
    assert any("period=day" in url for url in asked), asked
    # an hour of KPI windows is too little to rate a day: every loop is not assessed, and says
    # why (left out of the ranking: no rank)
    badges = table.locator("tbody tr .status")
    expect(badges.first).to_have_text("Not assessed")
    assert set(badges.all_inner_texts()) == {"Not assessed"}
    reason = badges.first.get_attribute("title") or ""
    assert re.fullmatch(r"Not assessed: [1-9]\d* of 96 windows assessed", reason), reason
    assert set(table.locator("tbody tr td:first-child").all_inner_texts()) == {"–"}
    assert int(engineer.get_by_test_id("count-not_assessed").inner_text()) == len(suite.loops)
    screenshot(engineer, "09-fleet-day-not-assessed")

    engineer.get_by_role("group", name="Assessment period").get_by_role(
        "button", name="Shift"
    ).click()
    engineer.wait_for_url("**/fleet?period=shift")
    expect(engineer.get_by_text(re.compile(r"over the last shift \(8 h\)"))).to_be_visible()
    expect(table.locator("tbody tr").first).to_be_visible()
    assert any("/loops?" in url and "period=shift" in url for url in asked), asked
    assert any("/fleet/summary" in url and "period=shift" in url for url in asked), asked
    assert _period_buttons(engineer)["Shift"] == "true"
    assert unlabelled_controls(engineer) == []
    screenshot(engineer, "10-fleet-shift")

    # the period follows the user to the loop page
    first = table.locator("tbody tr").first
    loop_id = first.get_attribute("data-loop")
    first.get_by_role("link", name=loop_id or "").click()
    engineer.wait_for_url(f"**/fleet/loops/{loop_id}?period=shift")
    expect(engineer.get_by_role("heading", level=1)).to_contain_text(loop_id or "")
    assert _period_buttons(engineer)["Shift"] == "true"
    expect(engineer.get_by_text(re.compile(r"Status over the last shift \(8 h\)"))).to_be_visible()
    panel = engineer.get_by_test_id("assessment")
    expect(panel.get_by_role("heading", name="Shift assessment")).to_be_visible()
    expect(panel).to_contain_text(re.compile(r"[1-9]\d* of 32 windows assessed"))
    expect(panel.get_by_test_id("not-assessed-reason")).to_contain_text(
        re.compile(r"Not assessed: [1-9]\d* of 32 windows assessed")
    )
    shares = panel.get_by_role("table", name="Share of the period in each status")
    expect(shares).to_contain_text("Offline")  # the hours before the first KPI window
    screenshot(engineer, "13-loop-shift-assessment")
    engineer.get_by_role("group", name="Assessment period").get_by_role(
        "button", name="Window"
    ).click()
    engineer.wait_for_url(f"**/fleet/loops/{loop_id}?period=window")
    expect(engineer.get_by_text(re.compile("Status over the latest KPI window"))).to_be_visible()
    expect(engineer.get_by_test_id("assessment")).to_have_count(0)
    engineer.remove_listener("request", record)


def test_a_window_with_too_little_data_is_not_assessed_with_its_reason(
    engineer: Page, suite: Suite
) -> None:
    engineer.goto(f"{suite.url}/fleet?period=window")
    row = engineer.locator(f'tbody tr[data-loop="{DROPOUT_LOOP}"]')
    badge = row.locator(".status")
    expect(badge).to_have_text("Not assessed")
    expect(badge).to_have_attribute("title", re.compile(r"^Not assessed: data \d+ % complete"))
    expect(row.locator("td").first).to_have_text("–")  # not ranked
    engineer.goto(f"{suite.url}/fleet/loops/{DROPOUT_LOOP}?period=window")
    expect(engineer.get_by_test_id("headline-not-assessed")).to_contain_text(
        re.compile(r"Not assessed: data (2\d|3\d|4\d) % complete")
    )
    screenshot(engineer, "14-loop-not-assessed")


def test_percentages_of_an_estimated_span_say_so(engineer: Page, suite: Suite) -> None:
    engineer.goto(f"{suite.url}/fleet/loops/{ESTIMATED_LOOP}?period=window")
    value = engineer.locator(".kpi-card", has_text="Control error σ").locator(".kpi-value span")
    expect(value).to_have_text(re.compile(r"^\d+\.\d\d % of est\. span$"))
    expect(value).to_have_class("span-estimated")
    card_help = engineer.locator(".kpi-card", has_text="Control error σ").get_attribute("title")
    assert card_help is not None
    assert "no PV range (pv_lo/pv_hi) is configured" in card_help
    note = engineer.get_by_test_id("span-estimated-note")
    expect(note).to_contain_text("% of est. span")
    expect(note.get_by_role("link", name="Set the PV range")).to_have_attribute(
        "href", f"/fleet/loops/{ESTIMATED_LOOP}/config"
    )
    # a healthy loop's control error is a small share of its estimated span (the window's own
    # range made it ~16 %)
    shown = float(value.inner_text().split()[0])
    assert shown < 1.0, shown
    screenshot(engineer, "11-estimated-span")

    engineer.goto(f"{suite.url}/fleet/loops/{RANGED_LOOP}?period=window")
    ranged = engineer.locator(".kpi-card", has_text="Control error σ").locator(".kpi-value span")
    expect(ranged).to_have_text(re.compile(r"^\d+\.\d\d % of span$"))
    expect(engineer.get_by_test_id("span-estimated-note")).to_have_count(0)

    with suite.api("viewer") as api:
        estimated = api.get(f"/loops/{ESTIMATED_LOOP}/kpis/latest").json()
        configured = api.get(f"/loops/{RANGED_LOOP}/kpis/latest").json()
        csv = api.get(f"/loops/{ESTIMATED_LOOP}/kpis", params={"format": "csv"}).text
    assert (estimated["span_source"], configured["span_source"]) == ("estimated", "configured")
    header = csv.splitlines()[0].split(",")
    assert header[header.index("error_std_pct") + 1] == "span_source"
    assert {line.split(",")[header.index("span_source")] for line in csv.splitlines()[1:]} == {
        "estimated"
    }


def test_on_demand_diagnosis_shows_where_it_was_asked(engineer: Page, suite: Suite) -> None:
    engineer.goto(f"{suite.url}/fleet?period=window")
    worst = (
        engineer.get_by_role("table", name=re.compile("bad-actor score"))
        .locator("tbody tr")
        .first.get_attribute("data-loop")
    )
    engineer.goto(f"{suite.url}/fleet/loops/{worst}?period=window")
    stored = engineer.get_by_test_id("findings").get_by_role("article")
    expect(stored.first).to_be_visible()  # the worst loop's stored (scheduled) findings
    stored_window = stored.first.locator("p.small").inner_text()
    engineer.get_by_role("button", name="Diagnose the last hour").click()
    result = engineer.get_by_test_id("on-demand-diagnosis")
    expect(result).to_be_visible(timeout=60_000)
    status = result.get_by_role("status")
    expect(status).to_contain_text("On-demand diagnosis of")
    expect(status).to_contain_text(re.compile(r"run at .*\d{2}:\d{2}:\d{2}"))
    expect(status).to_contain_text(re.compile(r"[1-9][\d,]* samples"))
    # the worst loop's last hour has findings: the run's own (trigger on_demand, its window),
    # and the stored ones are no longer shown
    findings = result.get_by_role("article")
    expect(findings.first).to_be_visible()
    expect(findings.first).to_contain_text("on_demand")
    assert findings.first.locator("p.small").inner_text() != stored_window
    assert engineer.get_by_text(stored_window).count() == 0
    screenshot(engineer, "12-on-demand-diagnosis")
    result.get_by_role("button", name="Back to the stored findings").click()
    expect(engineer.get_by_test_id("on-demand-diagnosis")).to_have_count(0)
    expect(engineer.get_by_test_id("findings").get_by_role("article").first).to_be_visible()


def test_fleet_csv_is_one_request_for_the_whole_fleet(engineer: Page, suite: Suite) -> None:
    engineer.goto(f"{suite.url}/fleet?period=window")
    engineer.get_by_role("table", name=re.compile("bad-actor score")).locator(
        "tbody tr"
    ).first.wait_for()
    asked: list[str] = []
    engineer.on("request", lambda request: asked.append(request.url))
    with engineer.expect_download() as download:
        engineer.get_by_role("button", name=re.compile("Export fleet CSV")).click()
    text = download.value.path().read_text()
    assert [url for url in asked if "/api/v1/" in url] == [
        f"{suite.url}/api/v1/fleet/ranking?period=window&format=csv"
    ]
    lines = text.splitlines()
    assert lines[0].split(",")[:3] == ["rank", "loop_id", "name"]
    assert sorted(line.split(",")[1] for line in lines[1:]) == sorted(suite.loops)
