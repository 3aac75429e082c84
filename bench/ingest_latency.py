"""Benchmark: sample-to-console latency, ingest rate and hub CPU at 50, 200 and 500 simulated beds.

Each size is one headless ``teleicu demo`` run (real hub, simulator and edge
processes on loopback and ptys). Reports, per size: observations and frames
ingested per second, p50/p99 sample-to-console latency (hub arrival -> console
receipt), the hub's own arrival -> push-queued percentiles, and the hub's CPU
(user + system, % of one core) over the live run, read from /proc.

``--baseline REV`` runs the same sizes, interleaved, on an earlier revision of
the repository as well (installed from a git worktree into its own virtualenv
under /tmp, once), so a design change is measured side by side in one run.

    .venv/bin/python bench/ingest_latency.py [--beds 50 200 500] [--duration 60] [--waveforms N] [--baseline e6659a2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from proc_usage import cpu_s, demo_processes

REPO = Path(__file__).resolve().parent.parent


def baseline_python(rev: str) -> Path:
    """A Python with ``rev`` of this repository installed (not editable) in its own virtualenv; made once per rev."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", rev], capture_output=True, text=True, check=True).stdout.strip()
    home = Path(tempfile.gettempdir()) / f"teleicu-baseline-{sha}"
    python = home / "venv" / "bin" / "python"
    if not python.exists():
        if not (home / "src").exists():
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(home / "src"), sha], check=True)
        subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"{home / 'src'}[all]"], check=True)
    return python


def run(python: str, beds: int, duration: float, waveforms: int | None, seed: int) -> dict:
    """One demo run; its JSON summary plus ``hub_cpu_pct`` over the live run (from the line that says it is live)."""
    data = Path(tempfile.mkdtemp(prefix="teleicu-bench-"))
    cmd = [python, "-m", "teleicu", "demo", "--beds", str(beds), "--duration", str(duration),
           "--seed", str(seed), "--port", "0", "--data-dir", str(data), "--json"]  # fmt: skip
    if waveforms is not None:
        cmd += ["--waveforms", str(waveforms)]
    demo = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=data)  # cwd: the installed code, not a checkout
    assert demo.stdout is not None
    out: list[str] = []
    cpu = float("nan")
    for line in demo.stdout:
        out.append(line)
        if "console at" in line:  # the demo is live: every bed registered
            hub = next(pid for pid, role in demo_processes(str(data)).items() if role == "hub")
            c0, t0 = cpu_s(hub), time.monotonic()
            time.sleep(duration - 1)
            cpu = 100 * (cpu_s(hub) - c0) / (time.monotonic() - t0)
    if demo.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed; logs in {data}")
    text = "".join(out)
    return json.loads(text[text.index("{") :]) | {"hub_cpu_pct": cpu}


def row(name: str, n: int, s: dict) -> str:
    el = s["live_s"]
    lat, hub = s["sample_to_console_ms"], s["hub_push_ms"]
    return (f"| {name} | {n} | {s['observations_stored'] / el:.0f} | {s['frames_ingested'] / el:.0f} | "
            f"{s['wave_chunks_stored'] / el:.0f} | {lat['p50']} | {lat['p99']} | {hub['p50']} | {hub['p99']} | {s['hub_cpu_pct']:.0f} |")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beds", type=int, nargs="+", default=[50, 200, 500])
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--waveforms", type=int, default=None, help="ECG beds per ward (default: all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--baseline", default=None, help="also run this git revision (e.g. the commit before a change)")
    args = ap.parse_args()
    versions = [("this checkout", sys.executable)]
    if args.baseline:
        versions.insert(0, (args.baseline, str(baseline_python(args.baseline))))
    print("| version | beds | obs/s stored | frames/s | wave chunks/s | sample→console p50 ms | p99 ms | hub push p50 ms | p99 ms | hub CPU % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.beds:
        for name, python in versions:
            print(row(name, n, run(python, n, args.duration, args.waveforms, args.seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
