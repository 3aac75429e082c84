"""Benchmark: sample-to-console latency and ingest rate at 50, 200 and 500 simulated beds.

Each size is one headless ``teleicu demo`` run (real hub, simulator and edge
processes on loopback and ptys). Reports, per size: observations and frames
ingested per second, p50/p99 sample-to-console latency (hub arrival -> console
receipt) and the hub's own arrival -> push-queued percentiles.

    .venv/bin/python bench/ingest_latency.py [--beds 50 200 500] [--duration 60] [--waveforms N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def run(beds: int, duration: float, waveforms: int | None, seed: int) -> dict:
    cmd = [sys.executable, "-m", "teleicu", "demo", "--beds", str(beds), "--duration", str(duration),
           "--seed", str(seed), "--port", "0", "--json"]  # fmt: skip
    if waveforms is not None:
        cmd += ["--waveforms", str(waveforms)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out[out.index("{") :])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beds", type=int, nargs="+", default=[50, 200, 500])
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--waveforms", type=int, default=None, help="ECG beds per ward (default: all)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print("| beds | obs/s stored | frames/s | wave chunks/s | sample→console p50 ms | p99 ms | hub push p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.beds:
        s = run(n, args.duration, args.waveforms, args.seed)
        el = s["live_s"]
        lat, hub = s["sample_to_console_ms"], s["hub_push_ms"]
        print(
            f"| {n} | {s['observations_stored'] / el:.0f} | {s['frames_ingested'] / el:.0f} | "
            f"{s['wave_chunks_stored'] / el:.0f} | {lat['p50']} | {lat['p99']} | {hub['p50']} | {hub['p99']} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
