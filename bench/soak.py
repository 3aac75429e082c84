"""Soak: 200 beds for 10 minutes; resident memory of the hub and edge agents at start and end, and latency.

Runs ``teleicu demo`` headless (real hub, simulators and edge agents) and
samples the resident set size of the hub and every edge agent from /proc a
minute into the run and again at its end. The demo's own summary gives the
sample-to-console latency percentiles for the whole run.

    .venv/bin/python bench/soak.py [--beds 200] [--minutes 10] [--waveforms 4]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from proc_usage import demo_processes, rss_mib

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beds", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--waveforms", type=int, default=4, help="ECG beds per ward")
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="teleicu-soak-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = subprocess.Popen(
        [sys.executable, "-m", "teleicu", "demo", "--beds", str(args.beds), "--duration", str(args.minutes * 60),
         "--port", str(port), "--waveforms", str(args.waveforms), "--data-dir", str(data), "--json"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            if json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=2).read())["beds"] >= args.beds:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or demo.poll() is not None:
            raise SystemExit("the demo did not come up")
        time.sleep(1)
    time.sleep(60)  # a minute in: buffers and caches have reached their working size
    procs = demo_processes(str(data))
    start = {pid: rss_mib(pid) for pid in procs}
    time.sleep(max(0.0, args.minutes * 60 - 75))
    end = {pid: rss_mib(pid) for pid in procs if Path(f"/proc/{pid}").exists()}
    out, _ = demo.communicate(timeout=300)
    summary = json.loads(out[out.index("{") :])
    print(f"soak: {args.beds} beds, {args.minutes:g} min, ECG on {args.waveforms} beds per ward")
    for pid, role in sorted(procs.items(), key=lambda kv: kv[1]):
        a, b = start[pid], end.get(pid, float("nan"))
        print(f"  {role:<8} RSS {a:7.1f} MiB at 1 min -> {b:7.1f} MiB at the end ({100 * (b - a) / a:+.1f} %)")
    lat = summary["sample_to_console_ms"]
    print(f"  sample->console p50 {lat['p50']} ms, p99 {lat['p99']} ms (n={lat['n']}); "
          f"frames {summary['frames_ingested']}, rejected {summary['frames_rejected']}, failed processes {summary['failed_processes']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
