"""Benchmark: live latency while a 5-minute outage's backlog drains (50 beds).

A real hub, one simulated ward (numerics on every bed, ECG on ``--waveforms``
beds) and its edge agent. A console client measures, per pushed bed update,
device time of the newest vital -> console receipt ("device->console") and hub
arrival -> console receipt (during the drain, only updates carrying live values,
measured after the edge agent reconnected). Phases: baseline; the hub SIGKILLed for
``--outage`` seconds (the edge spools); the hub restarted on the same store,
while the backlog drains behind live data. Reports percentiles per phase and
how long the backlog took to drain, then counts: every observation and ECG
chunk the edge recorded (``--record``) is looked up in the store (exit status 1
if one is missing).

    .venv/bin/python bench/backfill.py [--beds 50] [--outage 300] [--baseline 60] [--after 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect

from access import bearer, signed_in_console

from teleicu.demo import SignedIn
from teleicu.demo_accounts import register_simulated_ward
from wire.sample_record import read_record, samples_digest

RUN = [sys.executable, "-m", "teleicu"]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def watch(url: str, client: SignedIn, phase: list, out: dict[str, dict[str, list[float]]], stop: asyncio.Event) -> None:
    """``phase`` is [name, t_min]: only bed updates whose newest vital was measured at or after t_min
    (device time, ms) count, so old backlog values shown as a bed's latest are not taken for live ones."""
    while not stop.is_set():
        try:
            async with connect(url, max_size=2**26, additional_headers=await asyncio.to_thread(bearer, client)) as ws:
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.5)
                    except TimeoutError:
                        continue
                    now = time.time_ns() / 1e6
                    msg = json.loads(raw)
                    if msg["type"] == "alert":
                        await ws.send(json.dumps({"type": "delivered", "alerts": [msg["alert"]["id"]]}))
                    if msg["type"] != "beds":
                        continue
                    rec = out.setdefault(phase[0], {"device": [], "hub": []})
                    for bed in msg["beds"]:
                        if "rx_hub" in bed:
                            rec["hub"].append(now - bed["rx_hub"])
                            newest = max((v["t"] for k, v in bed["vitals"].items() if k in ("hr", "spo2", "rr")), default=0)
                            if newest and newest >= phase[1]:
                                rec["device"].append(now - newest)
        except OSError:
            await asyncio.sleep(0.5)  # the hub is down: reconnect like a console does
        except Exception:  # noqa: BLE001 - connection dropped by the hub's death
            await asyncio.sleep(0.5)


def pct(xs: list[float]) -> str:
    if not xs:
        return "n=0"
    a = np.array(xs)
    return f"p50 {np.percentile(a, 50):.0f} ms, p99 {np.percentile(a, 99):.0f} ms (n={len(a)})"


async def main_async(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="teleicu-backfill-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp / "store.sqlite3"
    base = f"http://127.0.0.1:{port}"

    def start_hub() -> subprocess.Popen:
        p = subprocess.Popen([*RUN, "hub", "--port", str(port), "--db", str(db)], stdout=subprocess.DEVNULL)
        wait_http(base + "/healthz")
        return p

    hub = start_hub()
    cfg = tmp / "edge.yaml"
    sim = subprocess.Popen([*RUN, "sim", "--ward", "A", "--beds", str(args.beds), "--edge-config", str(cfg), "--hub",
                            f"ws://127.0.0.1:{port}/ws/edge", "--waveforms", str(args.waveforms)], stderr=subprocess.DEVNULL)  # fmt: skip
    while not cfg.exists():
        await asyncio.sleep(0.1)
    register_simulated_ward(db, cfg)
    client = signed_in_console(db, base, tmp)
    stats_file = tmp / "edge.stats.json"
    record = tmp / "record.jsonl"
    edge = subprocess.Popen([*RUN, "edge", "--config", str(cfg), "--stats-file", str(stats_file), "--record", str(record)],
                            stderr=subprocess.DEVNULL)  # fmt: skip
    phase: list = ["warmup", 0]
    out: dict[str, dict[str, list[float]]] = {}
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(f"ws://127.0.0.1:{port}/ws/console", client, phase, out, stop))
    await asyncio.sleep(10)
    phase[0] = "baseline"
    await asyncio.sleep(args.baseline)
    phase[0] = "outage"
    hub.send_signal(signal.SIGKILL)
    hub.wait()
    t_down = time.monotonic()
    await asyncio.sleep(args.outage)
    phase[1] = 2**62  # nothing counts until the edge agent is back
    hub = start_hub()
    t_up = time.monotonic()
    phase[0] = "backfill"
    while not client.get("/api/stats")["agents_online"]:
        await asyncio.sleep(0.05)
    phase[1] = time.time_ns() // 1_000_000  # live samples: measured after the agent reconnected
    t_reconnect = time.monotonic()
    spool = Path(str(cfg.parent / "edge-A.spool.sqlite3"))
    drained_at = None
    while time.monotonic() - t_up < args.after:
        await asyncio.sleep(1)
        with sqlite3.connect(spool) as con:
            left = con.execute("SELECT count(*) FROM frames").fetchone()[0]
        if drained_at is None and left < 50:
            drained_at = time.monotonic()
    stop.set()
    await watcher
    sim.send_signal(signal.SIGTERM)
    sim.wait(30)
    deadline = time.monotonic() + 300  # let the edge deliver everything it recorded, then stop it and the hub
    while time.monotonic() < deadline and not _counts(record, db)["complete"]:
        await asyncio.sleep(1)
    for p in (edge, hub):
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    counts = _counts(record, db)
    print(f"{args.beds} beds ({args.waveforms} with ECG); hub down {t_up - t_down:.0f} s; edge back {t_reconnect - t_up:.1f} s after the hub")
    for name in ("baseline", "backfill"):
        rec = out.get(name, {"device": [], "hub": []})
        print(f"  {name:<9} device->console {pct(rec['device'])}; hub arrival->console {pct(rec['hub'])}")
    print(f"  backlog drained {'in %.0f s' % (drained_at - t_up) if drained_at else 'NOT within the window'} after the restart")
    print(f"  counted: {counts['numerics']} numerics recorded by the edge, {counts['numerics_missing']} not in the store; "
          f"{counts['waves']} ECG chunks recorded, {counts['waves_missing']} not in the store, {counts['waves_differ']} with other samples")
    return 0 if counts["complete"] else 1


def _counts(record: Path, db: Path) -> dict:
    """What the edge recorded (once spooled) against what the hub's store holds, sample by sample and chunk by chunk."""
    rec = read_record(record)
    with sqlite3.connect(db) as con:
        numerics = {(b, p, t) for b, p, t in con.execute("SELECT bed, param, t FROM numerics")}
        waves = {(b, lead, t): (n, samples_digest(blob)) for b, lead, t, n, blob in con.execute("SELECT bed, lead, t, n, samples FROM waves")}
    missing_n = len(set(rec.numerics) - numerics)
    missing_w = len(set(rec.waves) - set(waves))
    differ = sum(1 for k, v in rec.waves.items() if k in waves and waves[k] != v)
    return {"numerics": len(rec.numerics), "numerics_missing": missing_n, "waves": len(rec.waves), "waves_missing": missing_w,
            "waves_differ": differ, "complete": missing_n == missing_w == differ == 0}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beds", type=int, default=50)
    ap.add_argument("--waveforms", type=int, default=10)
    ap.add_argument("--outage", type=float, default=300)
    ap.add_argument("--baseline", type=float, default=60)
    ap.add_argument("--after", type=float, default=150)
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
