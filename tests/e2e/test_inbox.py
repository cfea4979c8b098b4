"""End to end: an engineer's alert rule, evaluated by the KPI worker's alert step, reaches a
viewer's inbox: the navigation shows the unread count, the inbox lists the alert with a link
to its loop, and marking it read clears the count."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from clpm_kpi_worker.alerting import AlertCycleStats, evaluate_alerts
from clpm_shared.config import AlertSettings
from clpm_shared.db import create_engine, create_session_factory
from tests.e2e.embedded_suite import DROPOUT_LOOP, Suite, screenshot, sign_in

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 20_000
WINDOW = timedelta(minutes=15)


def _evaluate(suite: Suite, loop_ids: list[str]) -> AlertCycleStats:
    """The KPI worker's alert step on the suite's database (in a thread: the browser's
    event loop must not meet another one)."""

    async def run() -> AlertCycleStats:
        url = f"sqlite+aiosqlite:///{suite.data_dir / 'clpm.db'}"
        engine = create_engine(url)
        now = datetime.now(UTC)
        end = datetime.fromtimestamp(now.timestamp() // 900 * 900, UTC)
        try:
            return await evaluate_alerts(
                create_session_factory(engine), AlertSettings(), loop_ids, end, WINDOW, now
            )
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="module")
def alerted(suite: Suite) -> AlertCycleStats:
    with suite.api("engineer") as api:
        created = api.post(
            "/alerts/rules",
            json={
                "name": "Silent transmitter",
                "scope": "loop",
                "scope_value": DROPOUT_LOOP,
                "condition": "stale_data",
                "threshold": 1,
                "channels": ["inbox"],
                "recipients": ["viewer"],
            },
        )
        assert created.status_code == 201, created.text
    return _evaluate(suite, [DROPOUT_LOOP])


@pytest.fixture(scope="module")
def viewer(browser: Browser, suite: Suite, alerted: AlertCycleStats) -> Iterator[Page]:
    page = sign_in(browser, suite, "viewer")
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.context.close()


def test_an_alert_reaches_the_viewers_inbox_and_is_marked_read(
    viewer: Page, suite: Suite, alerted: AlertCycleStats
) -> None:
    assert (alerted.opened, alerted.inbox) == (1, 1)
    link = viewer.get_by_role("link", name="Inbox, 1 unread")
    expect(link).to_be_visible(timeout=TIMEOUT_MS)
    link.click()
    viewer.wait_for_url(f"{suite.url}/notifications")
    expect(viewer.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(viewer.get_by_text("1 unread notification")).to_be_visible()
    entry = viewer.get_by_role("listitem").filter(has_text=DROPOUT_LOOP)
    expect(entry).to_contain_text(re.compile(rf"{DROPOUT_LOOP}: no data .*Silent transmitter"))
    expect(entry.get_by_role("link", name=f"Open loop {DROPOUT_LOOP}")).to_be_visible()
    screenshot(viewer, "inbox")
    entry.get_by_role("button", name=re.compile("Mark read")).click()
    expect(viewer.get_by_text("0 unread notifications")).to_be_visible()
    expect(viewer.get_by_role("link", name="Inbox", exact=True)).to_be_visible()
    # a viewer sees the rules but cannot change them
    viewer.get_by_role("link", name="Alert rules").click()
    expect(viewer.get_by_role("row", name=re.compile("Silent transmitter"))).to_be_visible()
    expect(viewer.get_by_role("button", name=re.compile("Delete"))).to_have_count(0)
