"""Benchmark: the census console's main-thread time per update cycle at 500 beds at 1 Hz, in Debian's Chromium.

Run by hand (not part of the suite). One ``teleicu demo`` (real hub, simulators and edge agents; no waveforms)
feeds the beds; Chromium opens the console as the intensivist (every ward), first as tiles, then as the table.
An init script times, with ``performance.now()``, every WebSocket message handler (parse + apply), every
animation-frame callback (the console's one batched DOM flush) and every interval callback (the 1 s age tick), and a PerformanceObserver counts long tasks
(> 50 ms). An update cycle is one second: the hub pushes every bed about once a second; its main-thread time is
the sum of those times in that second (style, layout and paint after them are not included: the long-task
count shows when they add up). Prints p50/p95/p99/max per mode, and the JS heap at the
start and end of each mode. Chromium's own counters (CDP ``Performance.getMetrics``) give, beside it, the renderer's
whole main-thread task time per second and its style + layout share, which the handlers' times leave out.

``--profile S`` records S seconds of each mode with the CPU profiler and prints where the time goes (self time by
function). ``--memory-minutes M`` then leaves the census in tile mode for M minutes with the probe recording
nothing, and prints the JS heap after a forced garbage collection at the start and at the end.

    .venv/bin/python bench/console_browser.py [--beds 500] [--seconds 60] [--profile 10] [--memory-minutes 10]
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
window.__bench = {msgs: [], frames: [], timers: [], longtasks: [], off: false};
const B = window.__bench;
const every = window.setInterval.bind(window);
window.setInterval = (cb, ms, ...a) => every(() => { const t0 = performance.now(); cb(...a);
  if (!B.off) B.timers.push([t0, performance.now() - t0]); }, ms);
const raf = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = (cb) => raf((ts) => { const t0 = performance.now(); cb(ts);
  if (!B.off) B.frames.push([t0, performance.now() - t0]); });
const add = WebSocket.prototype.addEventListener;
WebSocket.prototype.addEventListener = function (type, fn, opts) {
  if (type !== 'message') return add.call(this, type, fn, opts);
  return add.call(this, type, (ev) => { const t0 = performance.now(); fn(ev);
    if (!B.off) B.msgs.push([t0, performance.now() - t0]); }, opts);
};
new PerformanceObserver((l) => { if (!B.off) for (const e of l.getEntries()) B.longtasks.push([e.startTime, e.duration]); })
  .observe({type: 'longtask', buffered: true});
"""
# Chromium's cumulative main-thread counters (seconds), from CDP Performance.getMetrics.
METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def metrics(cdp) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] in METRICS}


def measure(page, cdp, seconds: float) -> dict:  # type: ignore[no-untyped-def]
    page.evaluate("() => { window.__bench.msgs = []; window.__bench.frames = []; window.__bench.timers = []; window.__bench.longtasks = []; }")
    heap0 = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : null")
    m0 = metrics(cdp)
    start = page.evaluate("() => performance.now()")
    page.wait_for_function(f"() => performance.now() - {start} >= {seconds * 1000}", timeout=(seconds + 30) * 1000, polling=1000)
    m1 = metrics(cdp)
    b = page.evaluate("() => window.__bench")
    heap1 = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : null")
    per_sec = {k: 1000 * (m1.get(k, 0.0) - m0.get(k, 0.0)) / seconds for k in METRICS}
    per_s: dict[int, float] = {}
    for t, d in b["msgs"] + b["frames"] + b["timers"]:
        per_s[int((t - start) // 1000)] = per_s.get(int((t - start) // 1000), 0.0) + d
    cycles = [per_s.get(i, 0.0) for i in range(int(seconds))]
    return {
        "cycle_p50": pct(cycles, 50), "cycle_p95": pct(cycles, 95), "cycle_p99": pct(cycles, 99), "cycle_max": max(cycles, default=float("nan")),
        "msg_p50": pct([d for _, d in b["msgs"]], 50), "msg_p99": pct([d for _, d in b["msgs"]], 99), "msgs": len(b["msgs"]),
        "flush_p50": pct([d for _, d in b["frames"]], 50), "flush_p99": pct([d for _, d in b["frames"]], 99),
        "frames": len(b["frames"]), "longtasks": len(b["longtasks"]),
        "tick_p50": pct([d for _, d in b["timers"]], 50), "tick_p99": pct([d for _, d in b["timers"]], 99),
        "busy_pct": 100 * statistics.fmean(cycles) / 1000 if cycles else float("nan"),
        "heap_mb": (heap0 / 1e6 if heap0 else float("nan"), heap1 / 1e6 if heap1 else float("nan")),
        "task_ms_s": per_sec["TaskDuration"], "script_ms_s": per_sec["ScriptDuration"],
        "style_layout_ms_s": per_sec["LayoutDuration"] + per_sec["RecalcStyleDuration"],
    }  # fmt: skip


def profile(cdp, page, seconds: float, top: int = 25) -> list[tuple[float, str]]:  # type: ignore[no-untyped-def]
    """Self time (ms) by function over `seconds`, from the CDP CPU profiler (1 ms sampling)."""
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 1000})
    cdp.send("Profiler.start")
    start = page.evaluate("() => performance.now()")
    page.wait_for_function(f"() => performance.now() - {start} >= {seconds * 1000}", timeout=(seconds + 30) * 1000, polling=1000)
    prof = cdp.send("Profiler.stop")["profile"]
    cdp.send("Profiler.disable")
    nodes = {n["id"]: n for n in prof["nodes"]}
    self_ms: dict[int, float] = {}
    for sid, dt in zip(prof["samples"], prof["timeDeltas"][1:] + [0], strict=False):
        self_ms[sid] = self_ms.get(sid, 0.0) + dt / 1000
    by_fn: dict[str, float] = {}
    for nid, ms in self_ms.items():
        f = nodes[nid]["callFrame"]
        name = f"{f['functionName'] or '(anonymous)'} {Path(f['url']).name}:{f['lineNumber'] + 1}" if f["url"] else f["functionName"]
        if name in ("(idle)", "(program)"):
            continue
        by_fn[name] = by_fn.get(name, 0.0) + ms
    return sorted(((ms / seconds, name) for name, ms in by_fn.items()), reverse=True)[:top]


def heap_after_gc(cdp) -> float:  # type: ignore[no-untyped-def]
    """The JS heap in use (MB) right after a forced full garbage collection."""
    cdp.send("HeapProfiler.collectGarbage")
    cdp.send("HeapProfiler.collectGarbage")
    return cdp.send("Runtime.getHeapUsage")["usedSize"] / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--beds", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=60, help="measured seconds per mode")
    ap.add_argument("--warmup", type=float, default=20, help="seconds after the census is complete before measuring")
    ap.add_argument("--profile", type=float, default=0, help="seconds of CPU profile per mode (0: none)")
    ap.add_argument("--memory-minutes", type=float, default=0, help="then minutes in tile mode, heap after GC at start and end")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    results, profiles, memory = {}, {}, None
    with tempfile.TemporaryDirectory(prefix="teleicu-console-bench-") as tmp:
        duration = 120 + 2 * (args.seconds + args.warmup + args.profile) + 60 * args.memory_minutes + 120
        with running_demo(Path(tmp), beds=args.beds, ward_size=25, duration=duration, extra=["--waveforms", "0"]) as (base, accounts):
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
                ctx.add_init_script(PROBE)
                page = ctx.new_page()
                cdp = ctx.new_cdp_session(page)
                cdp.send("Performance.enable")
                sign_in_through_the_page(page, base, "intensivist", accounts["intensivist"][0])
                page.wait_for_function(f"() => document.querySelectorAll('#grid article[data-bed]').length >= {args.beds}",
                                       timeout=180_000)  # fmt: skip
                for mode in ("tiles", "table"):
                    if mode == "table":
                        page.click("#view-toggle")
                        page.wait_for_function(f"() => document.querySelectorAll('#census-table tbody tr').length >= {args.beds}")
                    page.wait_for_timeout(args.warmup * 1000)  # a benchmark, not a test: let the page settle
                    results[mode] = measure(page, cdp, args.seconds)
                    if args.profile:
                        profiles[mode] = profile(cdp, page, args.profile)
                if args.memory_minutes:
                    page.click("#view-toggle")
                    page.wait_for_function(f"() => document.querySelectorAll('#grid article[data-bed]').length >= {args.beds}")
                    page.evaluate("() => { const B = window.__bench; B.off = true; B.msgs = []; B.frames = []; B.timers = []; B.longtasks = []; }")
                    page.wait_for_timeout(args.warmup * 1000)
                    h0 = heap_after_gc(cdp)
                    start = page.evaluate("() => performance.now()")
                    m0 = metrics(cdp)
                    page.wait_for_function(f"() => performance.now() - {start} >= {args.memory_minutes * 60_000}",
                                           timeout=(args.memory_minutes * 60 + 60) * 1000, polling=5000)  # fmt: skip
                    m1 = metrics(cdp)
                    h1 = heap_after_gc(cdp)
                    tiles = page.evaluate("() => document.querySelectorAll('#grid article[data-bed]').length")
                    nodes = page.evaluate("() => document.getElementsByTagName('*').length")
                    task = 1000 * (m1["TaskDuration"] - m0["TaskDuration"]) / (args.memory_minutes * 60)
                    memory = (h0, h1, tiles, nodes, task)
                browser.close()
    print(f"\nconsole main-thread time, {args.beds} beds at 1 Hz, {args.seconds:.0f} s per mode (Chromium {CHROMIUM})\n")
    print(f"{'mode':6} {'cycle p50':>10} {'cycle p95':>10} {'cycle p99':>10} {'cycle max':>10} {'busy %':>7} {'msg p50':>8} {'msg p99':>8} "
          f"{'msgs':>6} {'flush p50':>10} {'flush p99':>10} {'frames':>7} {'tick p50':>9} {'tick p99':>9} {'long':>5} {'heap MB':>13}"
          f" {'task ms/s':>10} {'script':>7} {'style+layout':>13}")  # fmt: skip
    for mode, r in results.items():
        print(f"{mode:6} {r['cycle_p50']:10.1f} {r['cycle_p95']:10.1f} {r['cycle_p99']:10.1f} {r['cycle_max']:10.1f} {r['busy_pct']:7.1f} "
              f"{r['msg_p50']:8.2f} {r['msg_p99']:8.2f} {r['msgs']:6d} {r['flush_p50']:10.2f} {r['flush_p99']:10.2f} "
              f"{r['frames']:7d} {r['tick_p50']:9.1f} {r['tick_p99']:9.1f} {r['longtasks']:5d} {r['heap_mb'][0]:6.1f}→{r['heap_mb'][1]:<6.1f}"
              f" {r['task_ms_s']:10.1f} {r['script_ms_s']:7.1f} {r['style_layout_ms_s']:13.1f}")  # fmt: skip
    print("\ncycle: main-thread ms per second (message handlers + frame flushes + the 1 s age tick);\n"
          "msg/flush/tick: ms each; long: tasks > 50 ms; task ms/s: all the renderer's main-thread tasks per second\n"
          "(Chromium's TaskDuration, style, layout and paint included), script and style+layout its parts")
    for mode, top in profiles.items():
        print(f"\nCPU profile, {mode}, self time ms per second (top {len(top)}):")
        for ms, name in top:
            print(f"  {ms:7.2f}  {name}")
    if memory:
        h0, h1, tiles, nodes, task = memory
        print(f"\nmemory, tile mode, {args.memory_minutes:g} min: JS heap after GC {h0:.1f} MB -> {h1:.1f} MB "
              f"({100 * (h1 - h0) / h0:+.1f} %); {tiles} tiles, {nodes} elements; main-thread tasks {task:.1f} ms/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
