"""Benchmark: sample-to-console latency, ingest rate and hub CPU at 50, 200 and 500 simulated beds.

Each size is one headless ``teleicu demo`` run (real hub, simulator and edge
processes on loopback and ptys). Reports, per size: observations and frames
ingested per second, p50/p99 sample-to-console latency (hub arrival -> console
receipt), the hub's own arrival -> push-queued percentiles, and the hub's CPU
(user + system, % of one core) over the live run, read from /proc.

``--baseline REV`` runs the same sizes, interleaved, on an earlier revision of
the repository as well (installed from a git worktree into its own virtualenv
under /tmp, once), so a design change is measured side by side in one run.
``--waveform-analysis-off`` runs each size a second time, interleaved, with the
hub's waveform analysis switched off (``waveform_analysis: false``), and reports
the analysis's own CPU per ECG and per pleth bed from the hub's counters.

    .venv/bin/python bench/ingest_latency.py [--beds 50 200 500] [--duration 60] [--waveforms N] [--baseline e6659a2]
                                             [--waveform-analysis-off]
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


def run(python: str, beds: int, duration: float, waveforms: int | None, seed: int, hub_file: Path | None = None) -> dict:
    """One demo run; its JSON summary plus ``hub_cpu_pct`` over the live run (from the line that says it is live)."""
    data = Path(tempfile.mkdtemp(prefix="teleicu-bench-"))
    cmd = [python, "-m", "teleicu", "demo", "--beds", str(beds), "--duration", str(duration),
           "--seed", str(seed), "--port", "0", "--data-dir", str(data), "--json"]  # fmt: skip
    if waveforms is not None:
        cmd += ["--waveforms", str(waveforms)]
    if hub_file is not None:
        cmd += ["--config", str(hub_file)]
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
            f"{s['wave_chunks_stored'] / el:.0f} | {lat['p50']} | {lat['p99']} | {hub['p50']} | {hub['p99']} | {s['hub_cpu_pct']:.0f} |"
            f" {analysis_cost(s)} |")  # fmt: skip


def analysis_cost(s: dict) -> str:
    """The waveform analysis's CPU per ECG bed and per pleth bed (% of one core), from the hub's counters."""
    w = s.get("waveform_analysis") or {}
    if not w.get("windows"):
        return "off"
    per_window = {sig: w.get(f"cpu_us_{sig}", 0) / 1e6 for sig in ("ecg", "pleth")}
    leads = w.get("leads", 0)
    total_cpu = sum(per_window.values())
    return (f"{100 * total_cpu / s['live_s']:.1f} % of a core for {leads} leads; per lead "
            f"{100 * total_cpu / s['live_s'] / max(leads, 1):.2f} %, {w.get('rounds_late', 0)} rounds late")


def hub_file_without_analysis() -> Path:
    """The packaged hub.yaml with ``waveform_analysis: false``."""
    from teleicu.config_files import HUB_FILE, default_file

    text = default_file(HUB_FILE).read_text().replace("waveform_analysis: true", "waveform_analysis: false")
    assert "waveform_analysis: false" in text
    path = Path(tempfile.mkdtemp(prefix="teleicu-bench-hub-")) / "hub.yaml"
    path.write_text(text)
    return path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beds", type=int, nargs="+", default=[50, 200, 500])
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--waveforms", type=int, default=None, help="ECG beds per ward (default: all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--baseline", default=None, help="also run this git revision (e.g. the commit before a change)")
    ap.add_argument("--waveform-analysis-off", action="store_true", help="also run each size with the waveform analysis off")
    args = ap.parse_args()
    versions: list[tuple[str, str, Path | None]] = [("this checkout", sys.executable, None)]
    if args.baseline:
        versions.insert(0, (args.baseline, str(baseline_python(args.baseline)), None))
    if args.waveform_analysis_off:
        versions.insert(0, ("analysis off", sys.executable, hub_file_without_analysis()))
    print("| version | beds | obs/s stored | frames/s | wave chunks/s | sample→console p50 ms | p99 ms | hub push p50 ms | p99 ms | hub CPU % "
          "| waveform analysis |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.beds:
        for name, python, hub_file in versions:
            print(row(name, n, run(python, n, args.duration, args.waveforms, args.seed, hub_file)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
