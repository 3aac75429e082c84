"""The console's census, in Debian's Chromium against a real ``teleicu demo``: whole-tile states, band chips, table mode.

One demo serves every test of this file: one ward of six simulated beds, so
that every scenario of the demo mix is there once (a ward of four, as in
test_console_alarm_queue.py, never has a silent monitor), and an alarm policy
whose ``no_data_s`` is 10 s (the packaged default is 30 s) so the silent
monitor is declared silent soon. Each test checks what a clinician would see:

- the silent monitor's tile turns into the whole-tile NO DATA state: every
  value dimmed and struck through, NIBP and temperature included (their ages
  alone would still call them current), said in words; it sorts above every
  bed known to be low risk or only incompletely scored;
- a band chip filters the census to that band, says so, and gives every bed
  back when pressed again (by keyboard);
- the compact table shows one row per bed with the hub's values, sorts by a
  column, is remembered across a reload, and Enter on a row opens its bed page;
- axe-core finds no serious or critical violation in table mode;
- with the feed stalled (messages dropped in the page), ages keep counting second by second, a value's tooltip
  names its age when pointed at, and the heart rate turns STALE past its limit by the clock alone (the 1 s tick
  rewrites only what the clock changed, so this is its own path).
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from browser_support import AXE, AXE_RUN, Console, launched_chromium, running_demo, screenshot
from config_support import default_raw
from support import wait_until

pytestmark = pytest.mark.integration

BEDS = 6
NO_DATA_S = 10
TILES = "#grid article[data-bed]"
ROWS = "#census-table tbody tr[data-bed]"
RANK = {"HIGH": 6, "MEDIUM": 5, "LOW-MED": 4, "UNKNOWN": 3, "INCOMPLETE": 2, "LOW": 1}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("census")
    policy = default_raw("alarms.yaml")
    policy["defaults"]["technical"]["no_data_s"] = NO_DATA_S
    alarms = tmp / "alarms.yaml"
    alarms.write_text(yaml.safe_dump(policy), encoding="utf-8")
    with running_demo(tmp, beds=BEDS, ward_size=BEDS, duration=600, extra=["--alarms", str(alarms)]) as (base, accounts):
        sidecar = tmp / "demo-data" / "edge-A.yaml.scenarios.json"  # the simulator's {bed: scenario}, written before its edge config
        wait_until(lambda: (tmp / "demo-data" / "edge-A.yaml").exists(), "the simulator's edge config", timeout=30, interval=0.2)
        scenarios = json.loads(sidecar.read_text())
        yield base, accounts, scenarios


@pytest.fixture(scope="module")
def browser(demo):
    with launched_chromium() as b:
        yield b


def open_console(browser, demo) -> Console:
    c = Console(browser, demo[:2])
    c.page.wait_for_function(f"() => document.querySelectorAll('{TILES}').length === {BEDS}", timeout=30_000)
    return c


def bed_of(demo, scenario: str) -> str:
    return next(bed for bed, s in demo[2].items() if s == scenario)


def test_a_silent_monitor_turns_into_the_whole_tile_no_data_state(browser, demo) -> None:
    silent = bed_of(demo, "silent")
    c = open_console(browser, demo)
    page = c.page
    tile = f"#grid article[data-bed='{silent}']"
    try:
        # the hub's "no data" alarm for the bed opens, and the tile says so (a tile can say it before the alarm, when
        # the console has never heard from the bed: so the hub is asked first)
        wait_until(lambda: any(a["bed"] == silent and a["kind"] == "technical:no_data" for a in c.api("/api/alerts?state=open")["alerts"]),
                   "the hub's no-data alarm for the silent bed", timeout=90, interval=0.5)  # fmt: skip
        page.wait_for_selector(f"{tile}[data-tile-state='no-data']", timeout=30_000)
        # in words, not colour alone
        assert page.inner_text(f"{tile} .tile-status").startswith("NO DATA · last data ")
        assert "NO DATA" in page.get_attribute(tile, "aria-label")
        assert page.inner_text(f"{tile} .news2-band") == "UNKNOWN"
        # every value shown is dimmed and struck through: NIBP and temperature too, though their ages alone would pass
        cells = page.eval_on_selector_all(
            f"{tile} .vital",
            """els => els.map(e => { const v = e.querySelector('.v'), s = getComputedStyle(v);
                 return {param: e.dataset.param, text: v.textContent, line: s.textDecorationLine, color: s.color,
                         stale: e.dataset.stale}; })""",
        )
        shown = [x for x in cells if x["text"] != "—"]
        assert {"nibp", "temp"} <= {x["param"] for x in shown}, cells
        assert all(x["line"] == "line-through" for x in shown), cells
        assert [x for x in cells if x["param"] == "nibp"][0]["stale"] == "false", "NIBP aged out: the test no longer shows the whole-tile state"
        live = page.eval_on_selector_all(f"{TILES}:not([data-tile-state]) .vital-nibp .v",
                                         "els => els.map(e => [getComputedStyle(e).textDecorationLine, getComputedStyle(e).color])")  # fmt: skip
        assert live and all(line == "none" for line, _ in live), live
        assert {x["color"] for x in shown}.isdisjoint({color for _, color in live}), (cells, live)  # dimmed, unlike a live tile's

        # acuity: the silent bed (unknown) sorts above every bed known to be low risk or only incompletely scored
        def in_order() -> list:
            order = page.eval_on_selector_all(TILES, "els => els.map(e => [e.dataset.bed, e.querySelector('.news2-band').textContent])")
            ranks = [RANK[b] for _, b in order]
            return order if ranks == sorted(ranks, reverse=True) else []

        order = wait_until(in_order, "the census in risk order", timeout=10, interval=0.5)
        at = [b for b, _ in order].index(silent)
        assert all(RANK[band] <= RANK["UNKNOWN"] for _, band in order[at:]), order
        # an incomplete score says so, with its partial sum
        for bed, band in order:
            if band == "INCOMPLETE":
                assert re.fullmatch(r"partial \d+", page.inner_text(f"#grid article[data-bed='{bed}'] .news2-inc")), bed

        # the NO DATA chip counts it, and filters the census to it
        page.click("#summary button[data-band='no-data']")
        page.wait_for_function(f"() => [...document.querySelectorAll('{TILES}')].map(e => e.dataset.bed).join() === '{silent}'", timeout=10_000)
        assert page.inner_text("#summary button[data-band='no-data']") == "NO DATA 1"
        screenshot(page, "console-no-data-filter")
    finally:
        c.close()


def test_a_band_chip_filters_the_census_to_that_band_and_back(browser, demo) -> None:
    c = open_console(browser, demo)
    page = c.page
    try:
        # a band some but not all beds are in
        band = wait_until(
            lambda: next((b for b in page.eval_on_selector_all(f"{TILES} .news2", "els => els.map(e => e.dataset.news2Band)")
                          if 0 < page.locator(f"{TILES} .news2[data-news2-band='{b}']").count() < BEDS), None),
            "a band that some beds are in", timeout=30, interval=0.5)  # fmt: skip
        chip = f"#summary button[data-band='{band}']"
        assert page.get_attribute(chip, "aria-pressed") == "false"
        page.click(chip)
        page.wait_for_function(
            f"""() => {{ const tiles = [...document.querySelectorAll('{TILES}')];
                 const n = parseInt(document.querySelector("{chip}").textContent.split(' ').pop());
                 return tiles.length > 0 && tiles.length < {BEDS} && tiles.length === n
                   && tiles.every(t => t.querySelector('.news2').dataset.news2Band === '{band}'); }}""",
            timeout=10_000,
        )
        assert page.get_attribute(chip, "aria-pressed") == "true"
        note = page.inner_text("#filter-note")
        assert re.search(r"Showing [A-Z-]+ beds only: \d of 6\.", note) and "Show all beds" in note, note
        # the same chip, pressed again from the keyboard, gives every bed back
        page.focus(chip)
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => document.querySelectorAll('{TILES}').length === {BEDS}", timeout=10_000)
        assert page.get_attribute(chip, "aria-pressed") == "false"
        assert page.is_hidden("#filter-note")
    finally:
        c.close()


def table_rows(page) -> list[dict]:
    return page.eval_on_selector_all(ROWS, """rows => rows.map(r => Object.fromEntries(
        [...r.cells].map(c => [c.dataset.col, c.textContent.trim()]).concat([['state', r.dataset.tileState || '']])))""")


def mismatches(rows: list[dict], beds: list[dict]) -> list:
    """Where the table disagrees with GET /api/beds (values move at 1 Hz: a small tolerance for the fast ones)."""
    api = {b["bed"]: b for b in beds}
    out = []
    for r in rows:
        b = api[r["bed"]]
        v = {k: x["value"] for k, x in b["vitals"].items() if not x.get("flags")}
        if r["ward"] != b["ward"] or not r["patient"].startswith(b["patient"]["name"]):
            out.append((r["bed"], "ward/patient", r, b["patient"]))
        if r["state"]:
            continue  # a silent monitor's last values: shown struck through, checked in the tiles' test
        for col, key, tol in (("hr", "hr", 8), ("spo2", "spo2", 3), ("rr", "rr", 4)):
            if key in v and (not r[col].isdigit() or abs(int(r[col]) - v[key]) > tol):
                out.append((r["bed"], col, r[col], v[key]))
        if "nibp_sys" in v and not r["nibp"].startswith(f"{round(v['nibp_sys'])}/{round(v['nibp_dia'])}"):
            out.append((r["bed"], "nibp", r["nibp"], v["nibp_sys"], v["nibp_dia"]))
        if "temp" in v and abs(float(r["temp"].split()[0]) - v["temp"]) > 0.25:
            out.append((r["bed"], "temp", r["temp"], v["temp"]))
        n = b["news2"]
        if not n["incomplete"] and not r["news2"].startswith(str(n["total"])):
            out.append((r["bed"], "news2", r["news2"], n["total"]))
    return out


def test_the_compact_table_shows_one_row_per_bed_as_the_hub_has_it_and_a_row_opens_its_bed(browser, demo) -> None:
    c = open_console(browser, demo)
    page = c.page
    try:
        assert page.get_attribute("#view-toggle", "aria-pressed") == "false"
        page.click("#view-toggle")
        page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === {BEDS}", timeout=10_000)
        assert page.get_attribute("#view-toggle", "aria-pressed") == "true"
        assert page.is_hidden("#grid") and page.locator(TILES).count() == 0
        headers = page.eval_on_selector_all("#census-table thead th", "els => els.map(e => e.dataset.col)")
        assert headers == ["bed", "ward", "patient", "hr", "spo2", "rr", "nibp", "temp", "news2", "alarm"], headers
        assert "mmHg" in page.inner_text("#census-table thead th[data-col='nibp']")  # units from the hub's vocabulary
        assert "°C" in page.inner_text("#census-table thead th[data-col='temp']")

        # one row per bed, each as the hub has it
        beds = c.api("/api/beds")["beds"]
        assert sorted(r["bed"] for r in table_rows(page)) == sorted(b["bed"] for b in beds)
        wait_until(lambda: not mismatches(table_rows(page), c.api("/api/beds")["beds"]), "the table to agree with GET /api/beds",
                   timeout=20, interval=1)  # fmt: skip

        # sortable: by bed id, ascending, and said so
        page.click("#census-table thead th[data-col='bed'] button")
        page.wait_for_function(f"""() => [...document.querySelectorAll('{ROWS}')].map(r => r.dataset.bed).join()
                                   === {json.dumps(",".join(sorted(b["bed"] for b in beds)))}""", timeout=10_000)  # fmt: skip
        assert page.get_attribute("#census-table thead th[data-col='bed']", "aria-sort") == "ascending"
        screenshot(page, "console-table-1600x1000")

        # remembered: a reload brings the table back
        page.reload()
        page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === {BEDS}", timeout=30_000)
        assert page.get_attribute("#view-toggle", "aria-pressed") == "true"

        # a row is reached by keyboard and Enter opens its bed's page
        bed = page.get_attribute(f"{ROWS} >> nth=2", "data-bed")
        page.focus(f"#census-table tbody tr[data-bed='{bed}']")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/bed/{bed}", timeout=10_000)
    finally:
        c.close()


def test_table_mode_passes_axe(browser, demo) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (scripts/test.sh does)")
    c = open_console(browser, demo)
    page = c.page
    try:
        page.click("#view-toggle")
        page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === {BEDS}", timeout=10_000)
        page.click("#summary button[data-band='low']")  # a chip pressed, its note shown: axe sees those too
        page.wait_for_selector("#filter-note:not([hidden])", timeout=10_000)
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        violations = page.evaluate(AXE_RUN)
        assert not violations, f"axe-core in table mode: serious or critical violations: {violations}"
        assert page.eval_on_selector_all(ROWS, "els => els.every(e => e.tabIndex === 0)")
        tiny = page.evaluate("""() => [...document.querySelectorAll('#summary button, #census-table button, #filter-note button, #view-toggle')]
            .filter(e => e.getClientRects().length).map(e => [e.id || e.className, e.getBoundingClientRect()])
            .filter(([, r]) => r.width < 44 || r.height < 44).map(([n, r]) => `${n} ${r.width}x${r.height}`).slice(0, 5)""")
        assert not tiny, f"touch targets under 44 px: {tiny}"
    finally:
        c.close()


# Drops every feed message once window.__hold is set: the console sees a stalled hub.
HOLD = """
window.__hold = false;
const add = WebSocket.prototype.addEventListener;
WebSocket.prototype.addEventListener = function (type, fn, opts) {
  if (type !== 'message') return add.call(this, type, fn, opts);
  return add.call(this, type, (ev) => { if (!window.__hold) fn(ev); }, opts);
};
"""


def test_with_the_feed_stalled_ages_keep_counting_and_a_value_turns_stale_by_the_clock(browser, demo) -> None:
    c = Console(browser, demo[:2], init_script=HOLD)
    page = c.page
    try:
        page.wait_for_function(f"() => document.querySelectorAll('{TILES}').length === {BEDS}", timeout=30_000)
        live_hr = f"{TILES}:not([data-tile-state]) .vital-hr[data-stale='false']"
        bed = wait_until(lambda: page.evaluate(f"""() => {{ const c = [...document.querySelectorAll("{live_hr}")]
            .find(e => /^\\d+$/.test(e.querySelector('.v').textContent)); return c ? c.closest('article').dataset.bed : null; }}"""),
            "a live tile with a current heart rate", timeout=30, interval=0.5)  # fmt: skip
        page.evaluate("() => { window.__hold = true; }")
        hr = f"#grid article[data-bed='{bed}'] .vital-hr"
        shown = page.inner_text(f"{hr} .v")
        # no message arrives, yet the age advances
        page.wait_for_function(f"""() => /^([5-9]|[1-5]\\d)s$/.test(document.querySelector("{hr} .age").textContent)""", timeout=15_000)
        # the tooltip, written when pointed at, names the age now
        page.hover(hr)
        assert re.fullmatch(r"measured ([5-9]|[1-5]\d)s ago(; NEWS2 subscore \d)?", page.get_attribute(hr, "title") or ""), page.get_attribute(hr, "title")
        # past the limit (30 s for HR) the last value is struck through and said STALE; its NEWS2 points no longer count
        page.wait_for_selector(f"{hr}[data-stale='true']", timeout=45_000)
        assert page.inner_text(f"{hr} .tag") == "STALE"
        assert page.inner_text(f"{hr} .v") == shown
        assert page.evaluate(f"() => getComputedStyle(document.querySelector(\"{hr} .v\")).textDecorationLine") == "line-through"
        assert page.get_attribute(f"#grid article[data-bed='{bed}'] .news2", "data-incomplete") == "true"
        page.hover(hr)
        assert "STALE, not current" in (page.get_attribute(hr, "title") or "")
        assert not c.errors, c.errors
    finally:
        c.close()
