"""End to end: the web front in Debian's headless Chromium against the real suite (embedded).

Sign in through the local issuer's form (code flow + PKCE) -> the fleet lists the simulated
loops with their statuses -> open the worst loop -> its trend has samples and the diagnosis
shows findings -> an engineer changes a configuration value and it persists -> a viewer can
neither change it in the page nor through the API. Every page is photographed to
``test-results/e2e/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.embedded_suite import (
    APC_LOOP,
    DROPOUT_LOOP,
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


def _fleet_rows(page: Page) -> dict[str, str]:
    """Loop id -> status text of every row of the bad-actor table."""
    table = page.get_by_role("table", name=re.compile("bad-actor score"))
    rows = table.locator("tbody tr")
    return {
        rows.nth(index).get_attribute("data-loop") or "": rows.nth(index)
        .locator(".status")
        .inner_text()
        for index in range(rows.count())
    }


def test_fleet_lists_the_simulated_loops_with_their_status(engineer: Page, suite: Suite) -> None:
    engineer.goto(f"{suite.url}/fleet?period=window")  # each loop's latest KPI window
    engineer.get_by_role("table", name=re.compile("bad-actor score")).locator(
        "tbody tr"
    ).first.wait_for()
    expect(engineer.get_by_text("Service factor").first).to_be_visible()
    # the KPI columns arrive per loop: wait until none is pending
    expect(engineer.locator("tbody td", has_text="…")).to_have_count(0)
    statuses = _fleet_rows(engineer)
    assert sorted(statuses) == sorted(suite.loops)
    # live PV / SP / OP · mode of the rows on screen, from one batched realtime request
    expect(engineer.get_by_test_id(f"live-{suite.loops[0]}")).to_have_text(
        re.compile(r"\d\.\d\d / ")
    )
    assert set(statuses.values()) <= {"Good", "Fair", "Poor", "Offline", "Not assessed"}
    assert "Poor" in statuses.values(), statuses  # the simulated plant has sick loops
    assert statuses[DROPOUT_LOOP] == "Not assessed"  # its last window holds a third of its data
    counts = {
        name: int(engineer.get_by_test_id(f"count-{name}").inner_text())
        for name in ("good", "fair", "poor", "not_assessed", "offline")
    }
    assert sum(counts.values()) == len(suite.loops)
    assert counts["poor"] == list(statuses.values()).count("Poor")
    expect(engineer.get_by_role("heading", name="Roll-up per unit")).to_be_visible()
    expect(engineer.get_by_role("button", name="U208 reactor")).to_be_visible()
    # keyboard: from the top of the page, the first Tab reaches the skip link
    engineer.evaluate("() => document.activeElement?.blur()")
    engineer.keyboard.press("Tab")
    expect(engineer.get_by_role("link", name="Skip to content")).to_be_focused()
    engineer.get_by_role("button", name="Area", exact=True).click()
    expect(engineer.get_by_role("button", name="Plant 208")).to_be_visible()
    assert unlabelled_controls(engineer) == []
    screenshot(engineer, "01-fleet")


def test_worst_loop_has_a_trend_and_a_diagnosis(engineer: Page, suite: Suite) -> None:
    engineer.goto(f"{suite.url}/fleet?period=window")
    table = engineer.get_by_role("table", name=re.compile("bad-actor score"))
    first = table.locator("tbody tr").first
    expect(first.locator("td").first).to_have_text("1")
    worst = first.get_attribute("data-loop")
    assert worst
    first.get_by_role("link", name=worst).click()
    engineer.wait_for_url(f"**/fleet/loops/{worst}?period=window")
    expect(engineer.get_by_role("heading", level=1)).to_contain_text(worst)
    summary = engineer.get_by_test_id("trend-summary")
    expect(summary).to_contain_text(re.compile(r"[1-9][\d,]* samples \(raw samples\)"))
    expect(engineer.locator(".trend-frame canvas").first).to_be_visible()
    expect(
        engineer.get_by_text(re.compile(r"Automatic \(AUT\)|Cascade \(CAS\)|Manual"))
    ).to_be_visible()
    findings = engineer.get_by_test_id("findings").get_by_role("article")
    expect(findings.first).to_be_visible()
    expect(findings.first.locator(".recommendation")).to_contain_text("Recommendation")
    expect(engineer.get_by_role("heading", name="PV – OP plot")).to_be_visible()
    expect(engineer.locator(".kpi-card")).to_have_count(8)
    assert unlabelled_controls(engineer) == []
    screenshot(engineer, "02-loop-detail")

    # zoom out past the raw span: the trend switches to aggregates
    engineer.get_by_role("button", name="All").click()
    engineer.get_by_role("button", name="Zoom out").click()
    engineer.get_by_role("button", name="Zoom out").click()
    expect(summary).to_contain_text("means with min–max band")


def test_engineer_changes_the_configuration_and_it_persists(engineer: Page, suite: Suite) -> None:
    loop_id = suite.loops[0]
    engineer.goto(f"{suite.url}/fleet/loops/{loop_id}/config")
    criticality = engineer.get_by_label("Criticality")
    expect(criticality).to_be_enabled()
    criticality.select_option("5")
    engineer.get_by_label("Deadband").fill("0.4")
    engineer.get_by_role("button", name="Save configuration").click()
    expect(engineer.get_by_role("status")).to_contain_text("Configuration saved")
    assert unlabelled_controls(engineer) == []
    screenshot(engineer, "03-config-saved")

    engineer.reload()
    expect(engineer.get_by_label("Criticality")).to_have_value("5")
    expect(engineer.get_by_label("Deadband")).to_have_value("0.4")
    expect(engineer.get_by_text(re.compile("Last changed .* by engineer"))).to_be_visible()
    with suite.api("viewer") as api:
        stored = api.get(f"/loops/{loop_id}/config").json()
    assert (stored["criticality"], stored["deadband"], stored["updated_by"]) == (5, 0.4, "engineer")


def test_viewer_cannot_change_the_configuration(browser: Browser, suite: Suite) -> None:
    page = sign_in(browser, suite, "viewer")
    page.set_default_timeout(TIMEOUT_MS)
    loop_id = suite.loops[0]
    page.goto(f"{suite.url}/fleet/loops/{loop_id}/config")
    expect(page.get_by_role("note")).to_contain_text("read-only")
    expect(page.get_by_label("Criticality")).to_be_disabled()
    expect(page.get_by_role("button", name="Save configuration")).to_have_count(0)
    expect(page.get_by_role("link", name="Loops admin")).to_have_count(0)
    screenshot(page, "04-config-viewer")

    # the gateway refuses too, with the viewer's own token from this browser session
    stored = page.evaluate(
        "() => Object.keys(sessionStorage).filter(k => k.startsWith('oidc.user:'))"
        ".map(k => sessionStorage.getItem(k))[0]"
    )
    token = json.loads(stored)["access_token"]
    answer = page.request.put(
        f"{suite.url}/api/v1/loops/{loop_id}/config",
        data={"criticality": 1},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status == 403
    page.context.close()


def test_session_renews_with_the_refresh_token_and_signs_out(engineer: Page, suite: Suite) -> None:
    # expire the stored session: the app renews it with the refresh token, without the form
    engineer.evaluate(
        """() => {
          const key = Object.keys(sessionStorage).find(k => k.startsWith('oidc.user:'));
          const user = JSON.parse(sessionStorage.getItem(key));
          window.__oldToken = user.access_token;
          user.expires_at = Math.floor(Date.now() / 1000) - 60;
          sessionStorage.setItem(key, JSON.stringify(user));
        }"""
    )
    engineer.goto(f"{suite.url}/apc")
    expect(engineer.get_by_role("heading", name="APC attainment")).to_be_visible()
    renewed = engineer.evaluate(
        "() => JSON.parse(sessionStorage.getItem(Object.keys(sessionStorage)"
        ".find(k => k.startsWith('oidc.user:')))).expires_at"
    )
    assert renewed > 0
    expect(engineer.get_by_role("link", name=APC_LOOP)).to_be_visible()
    screenshot(engineer, "05-apc")

    engineer.goto(f"{suite.url}/clusters")
    expect(engineer.get_by_role("heading", name="Oscillation clusters", level=1)).to_be_visible()
    expect(
        engineer.get_by_text(re.compile(r"\d+ loops analysed, [1-9]\d* oscillating"))
    ).to_be_visible()
    expect(
        engineer.get_by_role("heading", name=re.compile(r"Cluster 1: \d+ loops"))
    ).to_be_visible()
    screenshot(engineer, "06-clusters")

    engineer.get_by_role("button", name="Sign out").click()
    engineer.wait_for_url(f"{suite.url}/")  # back from the issuer's logout endpoint
    expect(engineer.get_by_role("button", name="Sign in")).to_be_visible()
    engineer.goto(f"{suite.url}/fleet")
    expect(engineer.get_by_role("button", name="Sign in")).to_be_visible()


def test_admin_pages_and_tablet_width(browser: Browser, suite: Suite) -> None:
    page = sign_in(browser, suite, "admin", width=820)
    page.set_default_timeout(TIMEOUT_MS)
    page.get_by_role("table", name=re.compile("bad-actor score")).locator(
        "tbody tr"
    ).first.wait_for()
    expect(page.locator("tbody td", has_text="…")).to_have_count(0)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 820, f"the fleet page scrolls sideways at tablet width ({width} px)"
    screenshot(page, "07-fleet-tablet")
    page.get_by_role("link", name="Loops admin").click()
    expect(page.get_by_role("button", name=f"Edit {suite.loops[0]}")).to_be_visible()
    screenshot(page, "08-loops-admin")
    page.context.close()
