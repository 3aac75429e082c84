"""Benchmark: the census console's main-thread time per update cycle at 500 beds at 1 Hz, in Debian's Chromium.

Run by hand (not part of the suite). One ``teleicu demo`` (real hub, simulators and edge agents; no waveforms)
feeds the beds; Chromium opens the console as the intensivist (every ward), first as tiles, then as the table.
An init script times, with ``performance.now()``, every WebSocket message handler (parse + apply), every
animation-frame callback (the console's one batched DOM flush) and every interval callback (the 1 s age tick), and a PerformanceObserver counts long tasks
(> 50 ms). An update cycle is one second: the hub pushes every bed about once a second; its main-thread time is
the sum of those times in that second (style, layout and paint after them are not included: the long-task
count shows when they add up). Prints p50/p99/max per mode, and the JS heap at the
start and end of each mode.

    .venv/bin/python bench/console_browser.py [--beds 500] [--seconds 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from browser_support import CHROMIUM, CHROMIUM_ARGS, running_demo, sign_in_through_the_page  # noqa: E402

PROBE = """
window.__bench = {msgs: [], frames: [], timers: [], longtasks: []};
const B = window.__bench;
const every = window.setInterval.bind(window);
window.setInterval = (cb, ms, ...a) => every(() => { const t0 = performance.now(); cb(...a);
  B.timers.push([t0, performance.now() - t0]); }, ms);
const raf = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = (cb) => raf((ts) => { const t0 = performance.now(); cb(ts);
  B.frames.push([t0, performance.now() - t0]); });
const add = WebSocket.prototype.addEventListener;
WebSocket.prototype.addEventListener = function (type, fn, opts) {
  if (type !== 'message') return add.call(this, type, fn, opts);
  return add.call(this, type, (ev) => { const t0 = performance.now(); fn(ev); B.msgs.push([t0, performance.now() - t0]); }, opts);
};
new PerformanceObserver((l) => { for (const e of l.getEntries()) B.longtasks.push([e.startTime, e.duration]); })
  .observe({type: 'longtask', buffered: true});
"""


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def measure(page, seconds: float) -> dict:  # type: ignore[no-untyped-def]
    page.evaluate("() => { window.__bench.msgs = []; window.__bench.frames = []; window.__bench.timers = []; window.__bench.longtasks = []; }")
    heap0 = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : null")
    start = page.evaluate("() => performance.now()")
    page.wait_for_function(f"() => performance.now() - {start} >= {seconds * 1000}", timeout=(seconds + 30) * 1000, polling=1000)
    b = page.evaluate("() => window.__bench")
    heap1 = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : null")
    per_s: dict[int, float] = {}
    for t, d in b["msgs"] + b["frames"] + b["timers"]:
        per_s[int((t - start) // 1000)] = per_s.get(int((t - start) // 1000), 0.0) + d
    cycles = [per_s.get(i, 0.0) for i in range(int(seconds))]
    return {
        "cycle_p50": pct(cycles, 50), "cycle_p99": pct(cycles, 99), "cycle_max": max(cycles, default=float("nan")),
        "msg_p50": pct([d for _, d in b["msgs"]], 50), "msg_p99": pct([d for _, d in b["msgs"]], 99), "msgs": len(b["msgs"]),
        "flush_p50": pct([d for _, d in b["frames"]], 50), "flush_p99": pct([d for _, d in b["frames"]], 99),
        "frames": len(b["frames"]), "longtasks": len(b["longtasks"]),
        "tick_p50": pct([d for _, d in b["timers"]], 50), "tick_p99": pct([d for _, d in b["timers"]], 99),
        "busy_pct": 100 * statistics.fmean(cycles) / 1000 if cycles else float("nan"),
        "heap_mb": (heap0 / 1e6 if heap0 else float("nan"), heap1 / 1e6 if heap1 else float("nan")),
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--beds", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=60, help="measured seconds per mode")
    ap.add_argument("--warmup", type=float, default=20, help="seconds after the census is complete before measuring")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    results = {}
    with tempfile.TemporaryDirectory(prefix="teleicu-console-bench-") as tmp:
        duration = 120 + 2 * (args.seconds + args.warmup) + 60
        with running_demo(Path(tmp), beds=args.beds, ward_size=25, duration=duration, extra=["--waveforms", "0"]) as (base, accounts):
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
                ctx.add_init_script(PROBE)
                page = ctx.new_page()
                sign_in_through_the_page(page, base, "intensivist", accounts["intensivist"][0])
                page.wait_for_function(f"() => document.querySelectorAll('#grid article[data-bed]').length >= {args.beds}",
                                       timeout=180_000)  # fmt: skip
                for mode in ("tiles", "table"):
                    if mode == "table":
                        page.click("#view-toggle")
                        page.wait_for_function(f"() => document.querySelectorAll('#census-table tbody tr').length >= {args.beds}")
                    page.wait_for_timeout(args.warmup * 1000)  # a benchmark, not a test: let the page settle
                    results[mode] = measure(page, args.seconds)
                browser.close()
    print(f"\nconsole main-thread time, {args.beds} beds at 1 Hz, {args.seconds:.0f} s per mode (Chromium {CHROMIUM})\n")
    print(f"{'mode':6} {'cycle p50':>10} {'cycle p99':>10} {'cycle max':>10} {'busy %':>7} {'msg p50':>8} {'msg p99':>8} "
          f"{'msgs':>6} {'flush p50':>10} {'flush p99':>10} {'frames':>7} {'tick p50':>9} {'tick p99':>9} {'long':>5} {'heap MB':>13}")  # fmt: skip
    for mode, r in results.items():
        print(f"{mode:6} {r['cycle_p50']:10.1f} {r['cycle_p99']:10.1f} {r['cycle_max']:10.1f} {r['busy_pct']:7.1f} "
              f"{r['msg_p50']:8.2f} {r['msg_p99']:8.2f} {r['msgs']:6d} {r['flush_p50']:10.2f} {r['flush_p99']:10.2f} "
              f"{r['frames']:7d} {r['tick_p50']:9.1f} {r['tick_p99']:9.1f} {r['longtasks']:5d} {r['heap_mb'][0]:6.1f}→{r['heap_mb'][1]:<6.1f}")  # fmt: skip
    print("\ncycle: main-thread ms per second (message handlers + frame flushes + the 1 s age tick);\n"
          "msg/flush/tick: ms each (the tick re-renders every bed so ages advance); long: tasks > 50 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
