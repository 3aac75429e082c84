"""The patient's locker page in Chromium: sign in with the code read from the SMS log, see the records, grant a
clinician's consent (whose fetch then works) and revoke it (whose fetch is then refused), make and revoke a share link
with its QR code, read the access log; axe-core finds no serious or critical violation; every control is reachable by
keyboard and at least 44 px; screenshots at 1600x1000 and at phone size (390x844)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from browser_support import AXE, AXE_RUN, launched_chromium, screenshot
from conftest import Clock
from locker_support import ABHA, MOBILE, record_body, running_locker
from records_db_support import records_database
from support import HubProcess, token, wait_until

pytestmark = pytest.mark.integration

CONTROLS_TOO_SMALL = """() => [...document.querySelectorAll('button, a[href], input, summary')]
  .filter(e => e.offsetParent !== null)
  .map(e => { const r = e.getBoundingClientRect(); return {id: e.id || e.textContent.trim().slice(0, 30), w: r.width, h: r.height}; })
  .filter(s => s.w < 44 || s.h < 44)"""


def test_patient_signs_in_grants_revokes_and_reads_the_log(hub: HubProcess, tmp_path: Path, chromium: Path) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (scripts/test.sh does)")
    clock = Clock(int(datetime.now(UTC).timestamp() * 1000))
    staff = {"records": {"Authorization": f"Bearer {token(hub.base, 'records-bridge')}"},
             "dr": {"Authorization": f"Bearer {token(hub.base, 'intensivist')}"}}  # fmt: skip
    with records_database("sqlite", tmp_path) as url, running_locker(url, hub.base, tmp_path, clock) as locker, \
            httpx.Client(timeout=10) as http, launched_chromium() as browser:  # fmt: skip
        for rid, kind, date in (("enc-1-discharge", "DischargeSummary", "2024-04-20"), ("opd-7-rx", "Prescription", "2024-05-02")):
            assert http.put(f"{locker.base}/api/records/{rid}", json=record_body(rid, type_=kind, date=date),
                            headers=staff["records"]).status_code == 201  # fmt: skip
        expires = (datetime.now(UTC) + timedelta(days=7)).isoformat()
        cid = http.post(f"{locker.base}/api/consents", headers=staff["dr"], json={
            "patient": {"abha": ABHA}, "purpose": "CAREMGT", "types": ["DischargeSummary"], "date_from": "2024-01-01",
            "date_to": "2024-12-31", "mode": "VIEW", "expires_at": expires}).json()["consent_id"]  # fmt: skip
        fetch = f"{locker.base}/api/records/enc-1-discharge?consent={cid}"

        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(locker.base + "/")
        page.fill("#mobile", MOBILE[3:])
        page.click("#send-code")
        page.wait_for_selector("#session-form:not([hidden])")
        code = wait_until(lambda: locker.codes_sent() and locker.codes_sent()[-1], "the code in the SMS log")
        page.fill("#code", code)
        page.keyboard.press("Enter")
        page.wait_for_selector("#records li[data-record='enc-1-discharge']")
        assert page.locator("#records li").count() == 2
        assert "ABHA " + ABHA in page.inner_text("#who")

        page.click(f"#consents li[data-consent='{cid}'] button:has-text('Grant')")
        page.wait_for_selector(f"#consents li[data-consent='{cid}'][data-state='GRANTED']")
        assert http.get(fetch, headers=staff["dr"]).status_code == 200

        page.click("#records li[data-record='enc-1-discharge'] button:has-text('Open')")
        page.wait_for_selector("#viewer:not([hidden])")
        assert "SMS Hospital" in page.inner_text("#viewer-details")
        page.click("#records li[data-record='enc-1-discharge'] button:has-text('Share')")
        page.wait_for_selector("#links li[data-state='active'] img.qr")
        page.wait_for_function("() => document.querySelector('#links img.qr').naturalWidth > 0")
        share_url = page.inner_text("#links li .url")
        assert httpx.get(share_url, timeout=10).status_code == 200
        page.click("#viewer-close")
        page.wait_for_selector("#viewer", state="hidden")
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        violations = page.evaluate(AXE_RUN)
        assert not violations, f"axe-core: serious or critical violations: {violations}"
        assert not page.evaluate(CONTROLS_TOO_SMALL)
        screenshot(page, "locker-1600x1000")

        page.click("#links li[data-state='active'] button:has-text('Revoke link')")
        page.wait_for_selector("#links li[data-state='revoked']")
        assert httpx.get(share_url, timeout=10).status_code == 403
        page.click(f"#consents li[data-consent='{cid}'] button:has-text('Revoke')")
        page.wait_for_selector(f"#consents li[data-consent='{cid}'][data-state='REVOKED']")
        assert http.get(fetch, headers=staff["dr"]).json()["code"] == "revoked"
        page.reload()  # the session cookie keeps the patient signed in
        page.wait_for_function("() => [...document.querySelectorAll('#log td.refused')].some(td => td.textContent.includes('revoked'))")
        log_text = page.inner_text("#log")
        assert "granted consent" in log_text and "revoked consent" in log_text and "opened a share link" in log_text

        # keyboard: Tab reaches every button, in order, and shows where focus is
        reached = set()
        for _ in range(60):
            page.keyboard.press("Tab")
            reached.add(page.evaluate("() => document.activeElement.textContent.trim().slice(0, 20)"))
        assert {"Open", "Share", "Sign out"} <= reached

        page.set_viewport_size({"width": 390, "height": 844})
        page.evaluate("() => window.scrollTo(0, 0)")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        assert not page.evaluate(CONTROLS_TOO_SMALL)
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        assert not page.evaluate(AXE_RUN)
        screenshot(page, "locker-phone")
        context.close()
        assert not errors, f"JavaScript errors on the locker page: {errors}"
