"""The KPI page in Debian's Chromium against a real hub: every figure it shows equals /api/kpi's, for a viewer (who
sees KPIs and no patient); the page passes axe-core."""

from __future__ import annotations


import pytest
from browser_support import AXE, AXE_RUN, launched_chromium, screenshot, sign_in_through_the_page
from support import PASSWORD, HubProcess, feed_news2_alarm, get_json, post_json, wait_until

pytestmark = pytest.mark.integration


def test_the_kpi_page_shows_the_apis_figures(hub: HubProcess) -> None:
    for bed in ("A-01", "A-02", "B-01"):
        feed_news2_alarm(hub, bed[0], bed, agent=f"edge-{bed}")
    alarm = wait_until(lambda: next((a for a in get_json(f"{hub.base}/api/alerts")["alerts"] if a["bed"] == "A-01"), None), "an alarm")
    assert post_json(f"{hub.base}/api/alerts/{alarm['id']}/ack", None)[0] == 200
    wait_until(lambda: get_json(f"{hub.base}/api/kpi", as_="viewer")["band_census"], "the first band census", timeout=30)
    with launched_chromium() as browser:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        sign_in_through_the_page(page, hub.base, "viewer", PASSWORD, "/kpi")  # not signed in: the sign-in page, then back
        page.wait_for_function("() => document.body.dataset.kpiLoaded", timeout=15_000)
        shown_at = int(page.evaluate("() => document.body.dataset.kpiLoaded"))
        api = get_json(f"{hub.base}/api/kpi?until={shown_at}", as_="viewer")

        def value(selector: str) -> str | None:
            return page.get_attribute(selector, "data-value")

        for w in api["wards"]:
            cells = page.eval_on_selector_all(f"#ward-rows tr[data-ward='{w['ward']}'] td", "tds => tds.map(td => td.dataset.value)")
            assert [float(c) for c in cells] == [w["beds"], w["gateway_connected"], w["receiving_data"], w["gap_s"], w["completeness"]]
        assert {w["ward"] for w in api["wards"]} == {"A", "B"} and sum(w["beds"] for w in api["wards"]) == 3
        assert float(value("#alarm-total span") or "nan") == api["alarms"]["alarms_per_bed_per_day"]
        ack = api["alarms"]["time_to_ack_s"]
        assert ack is not None and [float(x) for x in (value("#ack-times span") or "").split("/")] == [ack["median"], ack["p90"]]
        for band, n in api["news2_now"]["by_band"].items():
            assert value(f"#band-now tr[data-band='{band}'] td") == str(n)
        for total, n in api["news2_now"]["by_total"].items():
            assert value(f"#news2-dist tr[data-total='{total}'] td") == str(n)
        assert api["news2_now"]["by_total"] == {"11": 3}  # three beds scoring the worked example
        assert value("#news2-dist tr[data-total='incomplete'] td") == str(api["news2_now"]["incomplete"])
        assert page.get_attribute("#band-chart", "data-slots") == str(len(api["band_census"]))
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        assert not page.evaluate(AXE_RUN)
        screenshot(page, "kpi-1600x1000")
        assert not errors, errors
