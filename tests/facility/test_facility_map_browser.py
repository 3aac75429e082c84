"""The map page in Chromium with every request off the machine blocked (only the registry is let through; the hub is
reached by the registry, never by the browser): it draws the state outlines and the markers, sends no request
elsewhere, opens a facility's panel on a click and from the keyboard list, finds the nearest free ICU bed from a
point clicked on the map (a stale facility nearer with more "free" beds is passed over), passes axe-core, and is
photographed for the docs (docs/screenshots/facility-map-1400x1000.png)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from browser_support import AXE, AXE_RUN, REPO, launched_chromium
from facility_support import T0, facility_body, occupancy_body, serve_facility
from records_db_support import records_database
from support import PASSWORD, start_hub

pytestmark = pytest.mark.integration

SCREENSHOT = REPO / "docs" / "screenshots" / "facility-map-1400x1000.png"
# id, name, lat, lon, district, LGD, occupancy: (free, as_of age in s) or None
FACILITIES = [
    ("IN0810000011", "SMS Medical College, Jaipur", 26.905, 75.815, "Jaipur", 110, (0, 30)),
    ("IN0810000012", "CHC Chomu", 27.17, 75.72, "Jaipur", 110, (2, 30)),
    ("IN0810000013", "District Hospital Alwar", 27.56, 76.60, "Alwar", 114, (6, 900)),  # stale: 15 minutes old
    ("IN0810000014", "MDM Hospital, Jodhpur", 26.27, 73.02, "Jodhpur", 115, (4, 30)),
    ("IN0810000015", "Medical College, Kota", 25.18, 75.83, "Kota", 113, None),  # never reported
    ("IN3210000016", "Government Medical College, Ernakulam", 9.98, 76.28, "Ernakulam", 307, (5, 30)),
]
PICK = (28.6, 77.6)  # north-east of Alwar: Alwar (stale, 6 "free") is 150 km away, Chomu (2 free) 240 km


def mercator_px(lat: float, lon: float, zoom: float) -> tuple[float, float]:
    scale = 256 * 2**zoom
    y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
    return scale * (lon + 180) / 360, scale * (0.5 - y / (2 * math.pi))


def test_the_map_offline(tmp_path: Path) -> None:
    hub = start_hub(tmp_path)
    try:
        with records_database("sqlite", tmp_path) as url, serve_facility(url, hub.base) as s:
            s.clock.now = T0
            admin, records = s.auth("admin"), s.auth("records-bridge")
            for fid, name, lat, lon, district, lgd, occ in FACILITIES:
                body = facility_body(name, lat=lat, lon=lon, district=district, district_lgd=lgd)
                if fid.startswith("IN32"):
                    body |= {"state": "Kerala", "state_lgd": 32, "subdistrict": None, "subdistrict_lgd": None, "pincode": "682041"}
                assert s.http.put(f"/api/facilities/{fid}", json=body, headers=admin).status_code == 201
                if occ is not None:
                    r = s.http.put(f"/api/facilities/{fid}/occupancy", json=occupancy_body(T0 - occ[1] * 1000, free=occ[0]), headers=records)
                    assert r.status_code == 200, r.text
            s.http.post("/api/facilities/IN3210000016/verify", json={"verified": True}, headers=admin)

            with launched_chromium() as browser:
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                blocked: list[str] = []
                requested: list[str] = []

                def gate(route) -> None:  # type: ignore[no-untyped-def]
                    if route.request.url.startswith(s.base + "/"):
                        route.continue_()
                    else:
                        blocked.append(route.request.url)
                        route.abort()

                ctx.route("**/*", gate)
                page = ctx.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("request", lambda r: requested.append(r.url))
                page.goto(s.base + "/map")
                page.wait_for_selector("#signin:not([hidden])", timeout=15_000)
                page.fill("#username", "intensivist")
                page.fill("#password", PASSWORD)
                page.click("#signin-button")
                page.wait_for_selector("#list li", timeout=15_000)

                # outlines and markers: every facility is a marker or inside a cluster's count
                page.wait_for_function("() => document.getElementById('map').dataset.outlines === '36'", timeout=10_000)
                assert page.locator("#map svg path").count() >= 36
                assert page.locator("#list li").count() == len(FACILITIES)
                singles = page.locator(".fac-marker").count()
                clustered = sum(int(t) for t in page.locator(".marker-cluster span").all_inner_texts())
                assert singles + clustered == len(FACILITIES) and clustered >= 2, (singles, clustered)
                alwar = page.locator("#list li[data-facility='IN0810000013']").inner_text()
                assert "stale since" in alwar and "6 free" not in alwar
                assert "no figures received" in page.locator("#list li[data-facility='IN0810000015']").inner_text()
                assert "0 of 10 ICU beds free" in page.locator("#list li[data-facility='IN0810000011']").inner_text()

                # a click on a marker opens its panel
                page.click(".fac-marker[data-facility='IN3210000016']")
                page.wait_for_selector("#panel[data-facility='IN3210000016']:not([hidden])", timeout=5_000)
                assert page.inner_text("#panel-title") == "Government Medical College, Ernakulam"
                assert "5 of 10 ICU beds free" in page.inner_text("#panel-occupancy")
                assert page.inner_text("#panel-capacity tr[data-bed-type='icu'] td:nth-of-type(1)") == "20"
                assert page.inner_text("#panel-capacity tr[data-bed-type='icu'] td:nth-of-type(2)") == "12"
                assert "by admin" in page.inner_text("#panel-capacity tr[data-bed-type='icu']")
                assert page.inner_text("#panel-details").count("yes, by admin") == 1
                assert page.evaluate("() => document.activeElement.id") == "panel"
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)  # every facility, a cluster, a stale one, a panel

                # the list works from the keyboard
                page.locator("#list li[data-facility='IN0810000014'] button").focus()
                page.keyboard.press("Enter")
                page.wait_for_selector("#panel[data-facility='IN0810000014']", timeout=5_000)

                # nearest free ICU bed from a clicked point (the map's view: centre 22.5 N 80 E, zoom 5)
                page.evaluate("() => document.getElementById('panel').hidden = true")
                box = page.locator("#map").bounding_box()
                cx, cy = mercator_px(22.5, 80.0, 5)
                px, py = mercator_px(*PICK, 5)
                page.mouse.click(box["x"] + box["width"] / 2 + (px - cx), box["y"] + box["height"] / 2 + (py - cy))
                lat, lon = (float(v) for v in page.input_value("#n-point").split(","))
                assert abs(lat - PICK[0]) < 0.1 and abs(lon - PICK[1]) < 0.1, (lat, lon)
                page.click("#find-nearest")
                page.wait_for_selector("#nearest-result[data-facility]", timeout=10_000)
                assert page.get_attribute("#nearest-result", "data-facility") == "IN0810000012"
                assert page.inner_text("#nearest-result").startswith("Nearest free ICU bed: CHC Chomu")
                assert page.locator("#list li").first.get_attribute("data-facility") == "IN0810000012"
                assert page.locator("#list li[data-facility='IN0810000013']").count() == 0  # stale: never a free bed

                page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
                assert page.evaluate(AXE_RUN) == []

                assert blocked == [], f"requests leaving the machine: {blocked}"
                assert requested and all(u.startswith(s.base + "/") for u in requested), requested
                assert not errors, errors
                ctx.close()
    finally:
        hub.stop()
