"""Benchmark: the edge agent's CPU and memory serving 8 beds, with waveforms, on this machine.

Starts a real hub, a simulated ward of 8 TSP/1 monitors on pty pairs (1 Hz
numerics and 250 Hz ECG on every bed) and one ``teleicu edge`` process, lets
it warm up, then samples the edge process's CPU time and resident memory from
/proc over the measuring window.

    .venv/bin/python bench/edge_footprint.py [--beds 8] [--seconds 60] [--protocols tsp]
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from access import bearer, signed_in_console
from proc_usage import cpu_s, rss_mib

from teleicu.demo_accounts import register_simulated_ward

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beds", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--protocols", default="tsp")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="teleicu-footprint-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = [sys.executable, "-m", "teleicu"]
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen([*run, "hub", "--port", str(port), "--db", str(tmp / "s.sqlite3")], stdout=subprocess.DEVNULL))
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        cfg = tmp / "edge.yaml"
        procs.append(subprocess.Popen([*run, "sim", "--ward", "A", "--beds", str(args.beds), "--edge-config", str(cfg),
                                       "--hub", f"ws://127.0.0.1:{port}/ws/edge", "--protocols", args.protocols]))  # fmt: skip
        while not cfg.exists():
            time.sleep(0.1)
        register_simulated_ward(tmp / "s.sqlite3", cfg)
        edge = subprocess.Popen([*run, "edge", "--config", str(cfg)])
        procs.append(edge)
        time.sleep(args.warmup)
        c0, t0, rss0 = cpu_s(edge.pid), time.monotonic(), rss_mib(edge.pid)
        time.sleep(args.seconds)
        c1, t1, rss1 = cpu_s(edge.pid), time.monotonic(), rss_mib(edge.pid)
        client = signed_in_console(tmp / "s.sqlite3", f"http://127.0.0.1:{port}", tmp)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/stats", headers=bearer(client))
        stats = urllib.request.urlopen(req, timeout=5).read().decode()
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            p.wait(15)
    share = 100 * (c1 - c0) / (t1 - t0)
    print(f"edge agent, {args.beds} beds ({args.protocols}, numerics 1 Hz + ECG 250 Hz): "
          f"{share:.2f} % of one core over {t1 - t0:.0f} s; RSS {rss0:.1f} -> {rss1:.1f} MiB")  # fmt: skip
    print(f"hub counters: {stats[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
