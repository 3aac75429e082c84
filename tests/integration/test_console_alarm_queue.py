"""The console's alarm queue, ward view, sound and accessibility, in Debian's Chromium against a real ``teleicu demo``.

One demo (hub, two wards of four simulated beds, edge agents: real processes)
serves every test of this file; each test opens its own browser page and checks
what a clinician would see, and the hub's API for what the hub recorded:

- a bed's alarms group under it, the most severe first, and "acknowledge all"
  acknowledges each on the hub, under the signed-in user's name;
- one headline per bed (the hub's grouping), its most urgent alarm shown and the
  other parts behind a button that the keyboard reaches and that says whether it is open;
- a NEWS2 alarm's title shows the bed's NEWS2 now, not the band edge;
- silencing takes a reason and a duration: the alarm shows as silenced and the
  hub holds the reason;
- ``/?ward=A`` shows ward A's tiles and alarms only (ward B has alarms at the
  hub); at phone size the first alarm is on the first screen;
- with sound turned on, a high-priority alarm starts Web Audio oscillators;
- axe-core (from npm, installed by scripts/test.sh) finds no serious or
  critical violation; the skip link, keyboard tiles, text sizes and touch
  targets are checked directly, and the live region announces high alarms.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import AXE, AXE_RUN, REPO, Console, launched_chromium, running_demo, screenshot
from support import wait_until

pytestmark = pytest.mark.integration

ACTIVE_ROW = "#alert-list li[data-alert-id][data-state='active']"
INTENSIVIST = "Dr Asha Rao (intensivist)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    with running_demo(tmp_path_factory.mktemp("demo"), beds=8, duration=600) as running:
        yield running


@pytest.fixture(scope="module")
def browser(demo):
    with launched_chromium() as b:
        yield b


def open_alarm(console: Console, alert_id: str) -> dict | None:
    return next((a for a in console.api("/api/alerts?state=open")["alerts"] if a["id"] == alert_id), None)


OSCILLATOR_PROBE = """
window.__oscillators = [];
const made = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  const osc = made.call(this);
  const start = osc.start.bind(osc);
  osc.start = (...args) => { window.__oscillators.push(osc.frequency.value); return start(...args); };
  return osc;
};
"""


def test_with_sound_on_a_high_priority_alarm_starts_a_tone(browser, demo) -> None:
    # first in the file: the later tests acknowledge and silence alarms, and a silenced one stays silent for minutes
    c = Console(browser, demo, init_script=OSCILLATOR_PROBE)
    page = c.page
    try:
        page.wait_for_selector(f"{ACTIVE_ROW}[data-priority='high'][data-silenced='false']", timeout=120_000)
        assert page.get_attribute("#sound-toggle", "aria-pressed") == "false"
        assert page.evaluate("() => window.__oscillators.length") == 0, "sound played before the user turned it on"
        page.click("#sound-toggle")
        assert page.get_attribute("#sound-toggle", "aria-pressed") == "true"
        assert "Sound on" in page.inner_text("#sound-toggle")
        # the high-priority burst: ten pulses (IEC 60601-1-8: 3 + 2, pause, 3 + 2)
        page.wait_for_function("() => window.__oscillators.length >= 10", timeout=10_000)
        page.click("#sound-toggle")
        assert page.get_attribute("#sound-toggle", "aria-pressed") == "false"
        assert "muted" in page.inner_text("#sound-toggle")
    finally:
        c.close()


def test_a_beds_alarms_group_under_it_and_acknowledge_all_reaches_the_hub(browser, demo) -> None:
    c = Console(browser, demo)
    page = c.page
    try:
        # a bed with two or more active alarms: they sit in one group headed by the most severe
        page.wait_for_function(
            "() => [...document.querySelectorAll('#alert-list li.bed-group')].some(g => g.querySelectorAll(\"li[data-state='active']\").length >= 2)",
            timeout=90_000,
        )
        groups = page.eval_on_selector_all(
            "#alert-list li.bed-group",
            """gs => gs.map(g => ({bed: g.dataset.groupBed, head: g.dataset.headAlert,
                 alarms: [...g.querySelectorAll('li[data-alert-id]')].map(li => ({id: li.dataset.alertId, bed: li.dataset.alertBed,
                   priority: li.dataset.priority, state: li.dataset.state}))}))""",
        )
        rank = {"high": 3, "medium": 2, "low": 1}
        beds_seen = [g["bed"] for g in groups]
        assert len(beds_seen) == len(set(beds_seen)), f"a bed has two groups: {beds_seen}"
        for g in groups:
            assert all(a["bed"] == g["bed"] for a in g["alarms"] if a["bed"]), g
            assert g["head"] == g["alarms"][0]["id"], g
            first = g["alarms"][0]
            assert all(rank[first["priority"]] >= rank[a["priority"]] for a in g["alarms"] if a["state"] == first["state"]), g

        # the NEWS2 alarm's title shows the bed's NEWS2 now (the tile's badge), not only the band edge
        page.wait_for_function(
            """() => [...document.querySelectorAll('#alert-list li.bed-group')].some(g => {
                 const tile = document.querySelector(`#grid article[data-bed="${g.dataset.groupBed}"] .news2-num`);
                 const titles = [...g.querySelectorAll('li[data-alert-id] .a-title')].map(t => t.textContent);
                 return tile && /^\\d+$/.test(tile.textContent) && titles.some(t => t.startsWith(`NEWS2 ${tile.textContent} · `));
               })""",
            timeout=30_000,
        )

        # acknowledge all of one bed's alarms: each is acknowledged on the hub, by this user
        group = page.locator("#alert-list li.bed-group:has(button.ack-all:visible)").first
        bed = group.get_attribute("data-group-bed")
        ids = group.locator("li[data-alert-id][data-state='active']").evaluate_all("els => els.map(e => e.dataset.alertId)")
        assert len(ids) >= 2, (bed, ids)
        group.locator("button.ack-all").click()
        for alert_id in ids:
            page.wait_for_selector(f"#alert-list li[data-alert-id='{alert_id}'][data-state='acknowledged'], "
                                   f"#alert-list:not(:has(li[data-alert-id='{alert_id}']))", timeout=15_000, state="attached")  # fmt: skip
            events = c.api(f"/api/alerts/{alert_id}/history")["events"]
            assert any(e["event"] == "acknowledged" and e["by"] == INTENSIVIST for e in events), (bed, alert_id, events)
        assert "Acknowledged by Dr Asha Rao" in page.locator(f"#alert-list li[data-alert-id='{ids[0]}'] .a-who").inner_text()
    finally:
        c.close()


def test_one_headline_per_bed_with_its_other_alarms_behind_a_keyboard_toggle(browser, demo) -> None:
    c = Console(browser, demo)
    page = c.page
    try:
        page.wait_for_function(
            "() => [...document.querySelectorAll('#alert-list li.bed-group')].some(g => g.querySelectorAll('li[data-alert-id]').length >= 2)",
            timeout=90_000,
        )
        group = page.locator("#alert-list li.bed-group:has(li[data-alert-id] ~ li[data-alert-id])").first
        bed = group.get_attribute("data-group-bed")
        assert page.locator(f"#alert-list li.bed-group[data-group-bed='{bed}']").count() == 1  # one block, one headline per bed
        # the headline is the hub's: the grouping the engine wrote on the bed's physiological alarms
        hub = [a for a in c.api("/api/alerts?state=open")["alerts"] if a["bed"] == bed]
        physio = {a["headline"] for a in hub if a["category"] == "physiological"}
        shown = group.locator(".group-headline").inner_text()
        assert shown and (shown in physio if physio else shown in {a["headline"] for a in hub}), (shown, physio)
        # collapsed: only the most urgent part shows; the toggle says how many more, and is reachable by keyboard
        rows = group.locator("li[data-alert-id]")
        n = rows.count()
        toggle = group.locator("button.parts-toggle")
        assert toggle.get_attribute("aria-expanded") == "false" and toggle.inner_text() == f"Show {n - 1} other alarm{'s' if n > 2 else ''}"
        assert [rows.nth(i).is_visible() for i in range(n)] == [True] + [False] * (n - 1)
        controls = toggle.get_attribute("aria-controls")
        assert controls and group.locator(f"ol#{controls}").count() == 1
        toggle.focus()
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => document.querySelector(\"#alert-list li.bed-group[data-group-bed='{bed}'] button.parts-toggle\")"
                               ".getAttribute('aria-expanded') === 'true'", timeout=5_000)  # fmt: skip
        wait_until(lambda: all(rows.nth(i).is_visible() for i in range(rows.count())), "every part of the bed shown", 5)
        assert toggle.inner_text().startswith("Hide ")
        page.keyboard.press("Enter")  # and back
        page.wait_for_function(f"() => document.querySelector(\"#alert-list li.bed-group[data-group-bed='{bed}'] button.parts-toggle\")"
                               ".getAttribute('aria-expanded') === 'false'", timeout=5_000)  # fmt: skip
    finally:
        c.close()


def test_silence_takes_a_reason_and_shows_as_silenced(browser, demo) -> None:
    c = Console(browser, demo)
    page = c.page
    reason = "Procedure in progress (browser test)"
    try:
        page.wait_for_selector(ACTIVE_ROW, timeout=90_000)
        row = page.locator(f"{ACTIVE_ROW}[data-silenced='false']").first
        alert_id = row.get_attribute("data-alert-id")
        row.locator("button.silence").click()
        form = row.locator("form.silence-form")
        form.locator("input[name='reason']").fill(reason)
        form.locator("select[name='seconds']").select_option("300")
        form.locator("button.silence-go").click()
        page.wait_for_selector(f"#alert-list li[data-alert-id='{alert_id}'][data-silenced='true']", timeout=10_000)
        shown = page.locator(f"#alert-list li[data-alert-id='{alert_id}']")
        assert "SILENCED" in shown.locator(".chip[data-chip='silenced']").inner_text()  # in words, not by colour alone
        assert reason in shown.locator(".a-meta").inner_text()
        on_hub = open_alarm(c, alert_id)
        assert on_hub is not None, "the silenced alarm resolved at once: pick a longer-lasting one"
        assert on_hub["silence_reason"] == reason and on_hub["silenced_by"] == INTENSIVIST, on_hub
        assert 240_000 < on_hub["silenced_until"] - on_hub["updated"] <= 300_000, on_hub
    finally:
        c.close()


def test_ward_view_shows_only_that_ward_and_alarms_come_first_on_a_phone(browser, demo, tmp_path: Path) -> None:
    c = Console(browser, demo, path="/?ward=A")
    page = c.page
    try:
        # ward B has active alarms at the hub: the view must leave them out
        wait_until(lambda: [a for a in c.api("/api/alerts?ward=B")["alerts"] if a["state"] == "active"], "an active alarm in ward B", 90)
        page.wait_for_function("() => document.querySelectorAll('#grid article[data-bed]').length === 4", timeout=30_000)
        page.wait_for_selector(ACTIVE_ROW, timeout=90_000)
        tiles = page.eval_on_selector_all("#grid article[data-bed]", "els => els.map(e => e.dataset.bed)")
        assert sorted(tiles) == ["A-01", "A-02", "A-03", "A-04"], tiles
        alarm_beds = page.eval_on_selector_all("#alert-list li[data-alert-id]", "els => els.map(e => e.dataset.alertBed)")
        assert alarm_beds and all(b.startswith("A-") for b in alarm_beds), alarm_beds
        assert page.input_value("#ward-filter") == "A"

        # phone size: the first alarm is on the first screen, above the tiles, with a full-size acknowledge button
        page.set_viewport_size({"width": 390, "height": 844})
        page.evaluate("() => window.scrollTo(0, 0)")
        first = page.locator("#alert-list li[data-alert-id]").first.bounding_box()
        assert first is not None and first["y"] + 80 <= 844, first
        tile = page.locator("#grid article[data-bed]").first.bounding_box()
        assert tile["y"] > first["y"], (tile, first)
        ack = page.locator(f"{ACTIVE_ROW} button.ack").first.bounding_box()
        assert ack["height"] >= 44 and ack["width"] >= 44, ack
        assert float(page.eval_on_selector(f"{ACTIVE_ROW} .a-title", "e => parseFloat(getComputedStyle(e).fontSize)")) >= 18
        screenshot(page, "console-ward-A-phone")

        # choosing "All wards" brings ward B back, and the address says so
        page.set_viewport_size({"width": 1600, "height": 1000})
        page.select_option("#ward-filter", "")
        page.wait_for_function("() => document.querySelectorAll('#grid article[data-bed]').length === 8", timeout=30_000)
        assert "ward=" not in page.url
    finally:
        c.close()


def test_a_ward_nurse_gets_her_ward_and_another_ward_in_the_address_is_ignored(browser, demo) -> None:
    c = Console(browser, demo, user="nurse-a", path="/?ward=B")
    try:
        c.page.wait_for_function("() => document.querySelectorAll('#grid article[data-bed]').length === 4", timeout=30_000)
        tiles = c.page.eval_on_selector_all("#grid article[data-bed]", "els => els.map(e => e.dataset.bed)")
        assert all(t.startswith("A-") for t in tiles), tiles
        assert c.page.input_value("#ward-filter") == "A"
    finally:
        c.close()


def test_census_and_alarms_pass_axe_and_basic_keyboard_and_size_checks(browser, demo, tmp_path: Path) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` in {REPO} (scripts/test.sh does)")
    c = Console(browser, demo)
    page = c.page
    try:
        page.wait_for_function("() => document.querySelectorAll('#grid article[data-bed]').length === 8", timeout=30_000)
        page.wait_for_selector(f"{ACTIVE_ROW}[data-priority='high']", timeout=120_000)
        # the live region named the high-priority alarm for screen readers
        page.wait_for_function("() => /high-priority alarm/i.test(document.getElementById('alarm-announcer').textContent)", timeout=10_000)
        assert page.get_attribute("#alarm-announcer", "aria-live") == "assertive"
        screenshot(page, "console-1600x1000")

        # axe-core, run in the page (given to it through DevTools: the page's own policy allows only the hub's scripts)
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        violations = page.evaluate(AXE_RUN)
        assert not violations, f"axe-core: serious or critical violations: {violations}"

        # keyboard: the first Tab reaches the skip link, which leads past the tiles to the alarms; tiles take focus
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.classList.contains('skip-link')")
        page.keyboard.press("Enter")
        page.wait_for_function("() => location.hash === '#alarms'", timeout=5_000)
        assert page.eval_on_selector_all("#grid article[data-bed]", "els => els.every(e => e.tabIndex === 0)")

        # no visible text under 12 px in the census and the alarm list; touch targets 44 px or more
        small = page.evaluate("""() => [...document.querySelectorAll('#grid *, #alarms *')]
            .filter(e => e.childNodes.length && [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())
                    && e.getClientRects().length && parseFloat(getComputedStyle(e).fontSize) < 12)
            .map(e => `${e.className}: ${getComputedStyle(e).fontSize}`).slice(0, 5)""")
        assert not small, f"text under 12 px: {small}"
        tiny = page.evaluate("""() => [...document.querySelectorAll('#alarms button, #alarms select, .controls select, .controls button')]
            .filter(e => e.getClientRects().length).map(e => [e.id || e.className, e.getBoundingClientRect()])
            .filter(([, r]) => r.width < 44 || r.height < 44).map(([n, r]) => `${n} ${r.width}x${r.height}`).slice(0, 5)""")
        assert not tiny, f"touch targets under 44 px: {tiny}"
        # risk in words as well as colour: every NEWS2 badge names its band
        bands = page.eval_on_selector_all("#grid [data-news2-band] .news2-band", "els => els.map(e => e.textContent.trim())")
        assert len(bands) == 8 and all(b in ("HIGH", "MEDIUM", "LOW-MED", "LOW", "UNKNOWN", "INCOMPLETE") for b in bands), bands

        # a tile opens its bed's detail page by keyboard; that page passes axe too
        bed = page.locator("#alert-list li.bed-group").first.get_attribute("data-group-bed")
        page.focus(f"#grid article[data-bed='{bed}']")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/bed/{bed}", timeout=10_000)
        page.wait_for_function("() => document.body.dataset.trendsLoaded", timeout=15_000)
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        violations = page.evaluate(AXE_RUN)
        assert not violations, f"axe-core on the bed detail page: serious or critical violations: {violations}"
        page.set_viewport_size({"width": 390, "height": 844})
        screenshot(page, "bed-detail-phone")
    finally:
        c.close()


def test_escalated_alarms_are_labelled_and_the_filter_keeps_those_with_my_role(browser, demo) -> None:
    c = Console(browser, demo, user="teleicu-nurse")
    page = c.page
    try:
        # nobody acknowledged a high-priority alarm within its minute: the hub hands it to the tele-ICU nurse
        escalated = wait_until(lambda: [a for a in c.api("/api/alerts?state=active")["alerts"] if a["tier_role"] == "teleicu_nurse"],
                               "an alarm escalated to the tele-ICU nurse", timeout=150, interval=1)  # fmt: skip
        alert_id = escalated[0]["id"]
        row = f"#alert-list li[data-alert-id='{alert_id}']"
        page.wait_for_selector(f"{row}[data-escalated='true']", timeout=15_000, state="attached")  # perhaps a part not shown
        assert "ESCALATED to tele-ICU nurse" in page.inner_text(f"{row} .chip[data-chip='escalated']")
        page.check("#f-mine")
        page.wait_for_function(
            """() => { const rows = [...document.querySelectorAll('#alert-list li[data-alert-id]')];
                       return rows.length > 0 && rows.every(r => r.dataset.tier === 'teleicu_nurse' && r.dataset.escalated === 'true'); }""",
            timeout=5_000,
        )
        assert page.locator(row).count() == 1
        assert "hidden by filters" in page.inner_text("#alert-count") or c.api("/api/alerts")["alerts"] == escalated
    finally:
        c.close()
