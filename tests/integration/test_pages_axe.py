"""The pages a user meets before and beside the console (sign-in, the API's own page) pass axe-core in Chromium; the
console, bed and KPI pages are checked in their own tests."""

from __future__ import annotations

import pytest
from browser_support import AXE, AXE_RUN, launched_chromium
from support import HubProcess

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("path, ready", [("/login", "#username"), ("/docs", "#routes > *")])
def test_the_page_has_no_serious_accessibility_violations(hub: HubProcess, path: str, ready: str) -> None:
    with launched_chromium() as browser:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(hub.base + path)
        page.wait_for_selector(ready, timeout=15_000)
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        assert not page.evaluate(AXE_RUN), path
