"""Fixtures of the end-to-end tests: the seeded suite on the embedded default and Chromium.

See :mod:`tests.e2e.embedded_suite` for what runs and how it is seeded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.e2e.embedded_suite import CHROMIUM, CHROMIUM_ARGS, Suite, running_suite


# one seeded suite for every e2e module; the browser (Playwright's event loop) per module, so
# that no loop outlives the e2e modules and the asyncio tests after them can run
@pytest.fixture(scope="session")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    with running_suite(tmp_path_factory.mktemp("clpm-e2e")) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium not found: apt-get install chromium", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()
