"""Benchmark: CPU time of one analysed window per lead (``alerts.waveforms.quality``), and so per bed.

The hub analyses the last 10 s of each ECG and each pleth every 2 s
(``WINDOW_S``, ``CADENCE_S``). This times ``analyse_ecg`` (250 Hz, 2,500 samples)
and ``analyse_pleth`` (125 Hz, 1,250 samples) with ``time.process_time`` (CPU,
this process) on windows from the labelled episodes of ``simulators.episodes``,
every kind (clean, artefact and true event), so noisy windows count as much as
clean ones. Prints p50/p95/p99 per window and the CPU share of one core per
ECG bed and per pleth bed at the cadence (p50 x 1 / CADENCE_S), and the beds
one core could carry at that rate.

    .venv/bin/python bench/waveform_quality.py [--episodes 24] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from alerts.waveforms.quality import CADENCE_S, WINDOW_S, analyse_ecg, analyse_pleth
from simulators.episodes import evaluation_set, generate_episode


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=24, help="labelled episodes to draw windows from (every kind in turn)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    times: dict[str, list[float]] = {"ecg": [], "pleth": []}
    for kind, seed in evaluation_set(args.episodes, args.seed):
        e = generate_episode(kind, seed)
        for end_s in np.arange(WINDOW_S, e.duration_s + 1e-9, CADENCE_S):
            t_end = e.t0_ms + int(end_s * 1000)
            for name, x, fs, analyse in (("ecg", e.ecg, e.ecg_fs, analyse_ecg), ("pleth", e.pleth, e.pleth_fs, analyse_pleth)):
                window = x[int((end_s - WINDOW_S) * fs) : int(end_s * fs)]
                t0 = time.process_time()
                analyse(window, fs, t_end)
                times[name].append(time.process_time() - t0)
    print(f"# waveform quality: {args.episodes} episodes, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"window {WINDOW_S:g} s every {CADENCE_S:g} s\n")  # fmt: skip
    print("| lead | windows | p50 ms | p95 ms | p99 ms | CPU per bed (% of a core) | beds per core |")
    print("|---|---|---|---|---|---|---|")
    for name, ts in times.items():
        ms = np.array(ts) * 1000.0
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        share = p50 / 1000.0 / CADENCE_S
        print(f"| {name} | {len(ms)} | {p50:.2f} | {p95:.2f} | {p99:.2f} | {100 * share:.2f} | {int(1 / share)} |")


if __name__ == "__main__":
    main()
