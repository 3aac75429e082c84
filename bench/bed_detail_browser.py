"""Benchmark: the bed detail page in Debian's Chromium drawing two live waveforms: frame rate, frame time, memory.

    .venv/bin/python bench/bed_detail_browser.py [--seconds 120] [--json out.json]

A real hub (``teleicu hub``) is fed over the edge protocol by this process, as
a gateway would: one bed, ECG lead II and pleth at 250 Hz in 200 ms chunks
(with the occasional chunk held back 600 ms, as a congested uplink does), and
vitals each second. An intensivist's page (``/bed/B-01``, 1600x1000) runs for
``--seconds``; the page's own Performance API reports:

- frames per second (``requestAnimationFrame`` callbacks counted in the page,
  beside the page's own drawing callback);
- the time between frames, p50/p99/max: a main thread busy drawing or
  decoding shows as frames later than 16.7 ms;
- long tasks (over 50 ms, ``PerformanceObserver``);
- JS heap used at the start and at the end (``performance.memory``, Chromium).

The issue's aims: 60 fps, under 50 ms per cycle, no memory growth.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

from teleicu.demo_accounts import create_users, demo_users, register_agent
from wire.codec import decode_hub, encode_edge
from wire.messages import Hello, ObsFrame, Observation, WaveChunk

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--enable-precise-memory-info"]  # fmt: skip

PROBE = """() => {
  window.__bench = { frames: 0, gaps: [], longtasks: 0, last: null };
  const tick = (t) => { const b = window.__bench; b.frames++; if (b.last !== null) b.gaps.push(t - b.last); b.last = t;
    requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  new PerformanceObserver((l) => { window.__bench.longtasks += l.getEntries().length; }).observe({ type: "longtask" });
}"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shape(lead: str, t_ms: float) -> float:
    phase = (t_ms % 800) / 800
    if lead == "ecg_ii":
        return 1.4 * math.exp(-(((phase - 0.3) / 0.012) ** 2)) + 0.25 * math.exp(-(((phase - 0.6) / 0.05) ** 2)) - 0.1
    return 0.5 + 0.45 * math.exp(-(((phase - 0.42) / 0.09) ** 2))  # pleth: a pulse after each beat


def feed(url: str, headers: dict[str, str], stop: threading.Event) -> int:
    """Stream bed B-01 until ``stop``; returns the chunks sent."""
    sent = 0
    with connect(url, additional_headers=headers) as ws:
        ws.send(encode_edge(Hello("bench-edge", 1, "B", ("B-01",))).decode())
        decode_hub(ws.recv(timeout=10))
        seq, t0, k, held = 0, time.time_ns() // 1_000_000, 0, []
        while not stop.is_set():
            t = t0 + k * 200
            for lead, scale in (("ecg_ii", 0.005), ("pleth", 0.001)):
                seq += 1
                chunk = WaveChunk(seq, "B-01", lead, t, 250, scale, tuple(round(shape(lead, t + i * 4) / scale) for i in range(50)))
                if k % 25 == 7:
                    held.append(chunk)  # a congested uplink: these go 600 ms late
                else:
                    ws.send(encode_edge(chunk))
                sent += 1
            if k % 25 == 10:  # the held chunks arrive 600 ms late
                for c in held:
                    ws.send(encode_edge(c))
                held = []
            if k % 5 == 0:
                seq += 1
                obs = tuple(Observation("B-01", p, v, t, t, "mon") for p, v in {"hr": 75, "spo2": 96, "rr": 16}.items())
                ws.send(encode_edge(ObsFrame(seq, obs)).decode())
            k += 1
            while True:
                try:
                    decode_hub(ws.recv(timeout=0))
                except TimeoutError:
                    break
            stop.wait(max(0.0, (t0 + k * 200 - time.time_ns() // 1_000_000) / 1000))
    return sent


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="teleicu-bed-bench-"))
    db = tmp / "s.sqlite3"
    users = demo_users("B")
    create_users(db, users, tmp / "credentials.txt")
    intensivist = next(u for u in users if u.role == "intensivist")
    register_agent(db, "bench-edge", "B", ("B-01",), tmp / "bench-edge.secret")
    secret = (tmp / "bench-edge.secret").read_text().strip()
    port = free_port()
    hub = subprocess.Popen([sys.executable, "-m", "teleicu", "hub", "--port", str(port), "--db", str(db)], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        import base64

        auth = {"Authorization": "Basic " + base64.b64encode(f"bench-edge:{secret}".encode()).decode()}
        feeder = threading.Thread(target=feed, args=(f"ws://127.0.0.1:{port}/ws/edge", auth, stop), daemon=True)
        feeder.start()
        time.sleep(2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(base + "/bed/B-01")
            page.wait_for_url("**/login?next=*")
            page.fill("#username", intensivist.username)
            page.fill("#password", intensivist.password)
            page.click("#signin-button")
            page.wait_for_url(base + "/bed/B-01")
            page.wait_for_selector("#wave-pleth", timeout=20_000)
            page.evaluate(PROBE)
            heap0 = page.evaluate("() => performance.memory.usedJSHeapSize")
            t0 = time.monotonic()
            time.sleep(a.seconds)
            got = page.evaluate("() => ({frames: window.__bench.frames, gaps: window.__bench.gaps, longtasks: window.__bench.longtasks,"
                                " heap: performance.memory.usedJSHeapSize})")  # fmt: skip
            elapsed = time.monotonic() - t0
            browser.close()
    finally:
        stop.set()
        hub.terminate()
        hub.wait(15)
    gaps = got["gaps"]
    q = statistics.quantiles(gaps, n=100)
    out = {"seconds": round(elapsed, 1), "fps": round(got["frames"] / elapsed, 1), "frame_interval_ms_p50": round(q[49], 2),
           "frame_interval_ms_p99": round(q[98], 2), "frame_interval_ms_max": round(max(gaps), 2), "long_tasks": got["longtasks"],
           "heap_mb_start": round(heap0 / 2**20, 2), "heap_mb_end": round(got["heap"] / 2**20, 2)}  # fmt: skip
    print(json.dumps(out, indent=2))
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
