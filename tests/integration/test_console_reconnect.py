"""The console heals itself: it reconnects and resynchronises after its link or the hub goes away.

Real processes (hub, simulated monitors on ptys, edge agent) and Debian's
Chromium. Two faults, as a clinician would meet them:

1. the console's own network drops while a colleague acknowledges an alarm
   elsewhere: back online, the console shows it acknowledged, by whom;
2. the hub is killed and restarted (an upgrade, a crash): meanwhile the console
   says the connection is lost and the values are old; afterwards it is live
   again, with every bed and exactly the hub's open alarms, and it confirms
   them, so the "alarm not confirmed by any console" alarms raised while it
   was away clear.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from browser_support import CHROMIUM_ARGS, sign_in_through_the_page
from support import DISPLAY, PASSWORD, get_json, post_json, start_hub, wait_alarm_cleared, wait_until
from ward_support import BEDS, Ward

pytestmark = pytest.mark.integration

COLLEAGUE = "teleicu-nurse"  # acknowledges from another console while this one is offline
CONSOLE_ALERT_IDS = "() => [...document.querySelectorAll('#alert-list li[data-alert-id]')].map(li => li.dataset.alertId).sort()"


def hub_open_alert_ids(base: str) -> list[str]:
    return sorted(a["id"] for a in get_json(f"{base}/api/alerts?state=open")["alerts"])


def test_console_reconnects_and_resynchronises(chromium: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    hub = start_hub(tmp_path)
    ward = Ward(tmp_path, hub)
    page_errors: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                page.on("pageerror", lambda e: page_errors.append(str(e)))
                sign_in_through_the_page(page, hub.base, "intensivist", PASSWORD)
                page.wait_for_function(f"() => document.querySelectorAll('#grid article[data-bed]').length === {BEDS}", timeout=30_000)
                page.wait_for_selector("#conn[data-conn='live']", timeout=15_000)

                # -- 1. the console's link drops; a colleague acknowledges an alarm meanwhile --------
                active = wait_until(lambda: [a for a in get_json(f"{hub.base}/api/alerts?state=open")["alerts"] if a["state"] == "active"],
                                    "an active alarm", timeout=120, interval=0.5)  # fmt: skip
                alert_id = active[0]["id"]
                page.wait_for_selector(f"#alert-list li[data-alert-id='{alert_id}'][data-state='active']", timeout=15_000, state="attached")
                context.set_offline(True)
                page.wait_for_selector("#conn[data-conn='reconnecting']", timeout=45_000)
                status, body = post_json(f"{hub.base}/api/alerts/{alert_id}/ack", None, as_=COLLEAGUE)
                assert status == 200, body
                assert page.get_attribute(f"#alert-list li[data-alert-id='{alert_id}']", "data-state") == "active"  # it cannot know yet
                context.set_offline(False)
                page.wait_for_selector("#conn[data-conn='live']", timeout=30_000)
                row = page.wait_for_selector(f"#alert-list li[data-alert-id='{alert_id}'][data-state='acknowledged']", timeout=15_000,
                                             state="attached")  # perhaps one of its bed's parts not shown
                assert f"Acknowledged by {DISPLAY[COLLEAGUE]}" in row.inner_text()

                # -- 2. the hub is killed, then restarted on the same store ------------------------
                hub.proc.send_signal(signal.SIGKILL)
                hub.proc.wait(10)
                page.wait_for_selector("#conn[data-conn='reconnecting']", timeout=30_000)
                banner = page.wait_for_selector("#banner:not([hidden])", timeout=10_000)
                assert "Connection to the hub lost" in banner.inner_text()
                assert page.eval_on_selector_all("#grid article[data-bed]", "els => els.length") == BEDS  # last values stay, marked old
                hr_before = page.evaluate("() => [...document.querySelectorAll('#grid article[data-bed] [data-param=\"hr\"] .v')].map(e => e.textContent)")

                ward.hub = hub = start_hub(tmp_path, port=hub.port, db=hub.db)
                page.wait_for_selector("#conn[data-conn='live']", timeout=30_000)
                assert page.is_hidden("#banner")
                page.wait_for_function(f"() => document.querySelectorAll('#grid article[data-bed]').length === {BEDS}", timeout=15_000)
                page.wait_for_function(  # vitals move again
                    """(before) => [...document.querySelectorAll('#grid article[data-bed] [data-param="hr"] .v')]
                        .some((e, i) => /^\\d+$/.test(e.textContent) && e.textContent !== before[i])""",
                    arg=hr_before, timeout=30_000,
                )  # fmt: skip
                # alarms raised while no console could see them ("not confirmed by any console") clear once
                # the reconnected console has confirmed them; then the page's alarm list is the hub's
                wait_alarm_cleared(hub.base, "technical:undelivered", "the reconnected console to confirm every alarm", timeout=30)
                wait_until(lambda: page.evaluate(CONSOLE_ALERT_IDS) == hub_open_alert_ids(hub.base),
                           "the console's alarm list to equal the hub's open alarms", timeout=20, interval=0.25)  # fmt: skip
                assert alert_id not in hub_open_alert_ids(hub.base) or page.get_attribute(
                    f"#alert-list li[data-alert-id='{alert_id}']", "data-state") == "acknowledged"  # fmt: skip
                page.screenshot(path=str(tmp_path / "console-after-restart.png"), full_page=True)
            finally:
                browser.close()
    finally:
        ward.cleanup()
        ward.hub.stop()
    assert not page_errors, f"JavaScript errors on the console page: {page_errors}"
