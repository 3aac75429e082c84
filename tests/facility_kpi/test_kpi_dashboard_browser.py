"""The KPI dashboard in Chromium with every request blocked except to the app and the hub: sign in on the page, every
figure of the state table and of a facility's page equals the API's (and each KPI's definition is the API's), the
facility is reached by keyboard, the CSV downloads, axe-core finds nothing serious, and both pages are photographed."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from browser_support import AXE, AXE_RUN, launched_chromium, screenshot
from kpi_support import HUB, scenario, serve_kpi
from records_db_support import records_database
from support import PASSWORD, origin, start_hub, token

pytestmark = pytest.mark.integration
QUERY = "from=2024-05-02&to=2024-05-02"


def fmt(kpi: dict) -> str:
    """The page's rule (kpi.js ``fmt``): no value "—"; a count whole; per cent and minutes one decimal; the rest two."""
    v = kpi["value"]
    if v is None:
        return "—"
    if kpi["unit"] == "count":
        return str(round(v))
    if kpi["unit"] == "%":
        return f"{v:.1f} %"
    if kpi["unit"] == "min":
        return f"{v:.1f} min"
    return f"{v:.2f}"


def figures_on(page, selector: str) -> dict[tuple[str, str], tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(facility, kpi) -> (the figure's text, its data-value) for every figure on the page."""
    cells = page.eval_on_selector_all(selector, "els => els.map(e => [e.dataset.facility, e.dataset.kpi, e.textContent, e.dataset.value])")
    return {(f, k): (text, value) for f, k, text, value in cells}


def assert_same(shown: dict, facility: str, kpis: list[dict]) -> None:
    for k in kpis:
        text, value = shown[(facility, k["key"])]
        assert text == fmt(k), (facility, k["key"], text, k["value"])
        assert (value == "") if k["value"] is None else float(value) == k["value"], (facility, k["key"], value, k["value"])


def test_the_dashboards_figures_are_the_apis(tmp_path: Path) -> None:
    hub = start_hub(tmp_path)
    try:
        with records_database("sqlite", tmp_path) as url, serve_kpi(url, hub.base) as s:
            bridge = {"Authorization": f"Bearer {token(hub.base, 'records-bridge')}"}
            assert s.http.post("/api/kpi/events", json={"hub": HUB, "events": scenario()}, headers=bridge).json()["new"] > 0
            viewer = {"Authorization": f"Bearer {token(hub.base, 'viewer')}"}
            state = s.http.get(f"/api/kpi?state=Rajasthan&{QUERY}", headers=viewer).json()
            f1 = s.http.get(f"/api/kpi?facility=F1&{QUERY}", headers=viewer).json()
            allowed = {origin(s.base), origin(hub.base)}
            blocked: list[str] = []

            def only_local(route) -> None:  # type: ignore[no-untyped-def]
                parts = urlsplit(route.request.url)
                if parts.scheme in ("data", "blob") or f"{parts.scheme}://{parts.netloc}" in allowed:
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            with launched_chromium() as browser:
                ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
                ctx.route("**/*", only_local)
                page = ctx.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{s.base}/kpi?state=Rajasthan&{QUERY}")
                page.wait_for_selector("#signin:not([hidden])", timeout=15_000)
                page.fill("#username", "viewer")
                page.fill("#password", PASSWORD)
                page.press("#password", "Enter")
                page.wait_for_selector("body[data-loaded]", timeout=15_000)

                shown = figures_on(page, "#kpi-table [data-kpi]")
                assert len(shown) == 3 * 15
                for f in state["facilities"]:
                    assert_same(shown, f["facility"]["facility_id"], f["kpis"])
                assert_same(shown, "(state total)", state["total"]["kpis"])
                for k in state["total"]["kpis"]:
                    assert page.inner_text(f"dd[data-definition='{k['key']}']") == k["definition"]
                assert page.input_value("#state") == "Rajasthan"

                with page.expect_download() as dl:
                    page.click("#csv")
                lines = Path(dl.value.path()).read_text(encoding="utf-8").splitlines()
                assert len(lines) == 1 + 3 * 15 and dl.value.suggested_filename == "kpi_Rajasthan_2024-05-02_2024-05-02.csv"

                page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
                assert page.evaluate(AXE_RUN) == []
                screenshot(page, "programme-kpi-state-1600x1000")

                for _ in range(40):  # to the facility's link by keyboard
                    page.keyboard.press("Tab")
                    if page.evaluate("() => document.activeElement.textContent") == "District Hospital Ajmer":
                        break
                else:
                    raise AssertionError("the facility's link cannot be reached with Tab")
                page.keyboard.press("Enter")
                page.wait_for_url(f"{s.base}/kpi/facility/F1?*", timeout=15_000)
                page.wait_for_selector("body[data-loaded*='facility=F1']", timeout=15_000)
                assert_same(figures_on(page, "#kpi-cards [data-kpi]"), "F1", f1["kpis"])
                assert page.inner_text("#title") == "District Hospital Ajmer: ICU KPIs"
                page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
                assert page.evaluate(AXE_RUN) == []
                screenshot(page, "programme-kpi-facility-1600x1000")

                page.click("#signout")
                page.wait_for_selector("#signin:not([hidden])", timeout=15_000)
                assert httpx.get(f"{hub.base}/api/auth/me", headers={"Authorization": "Bearer x"}).status_code == 401
                ctx.close()
            assert not errors, errors
            assert not blocked, f"requests that would have left the machine: {blocked}"
    finally:
        hub.stop()
