"""Benchmark: the alarm engine's pass with artefact-aware alarming and headline grouping, against the same pass without lead qualities.

500 beds (``--beds``), ``--wave-share`` of them (10%) with ECG and pleth
qualities reported every 2 s, half of those poor; a tenth of all beds beyond an
HR or SpO2 limit, so holds, suppressions, technical "poor signal" alarms and
headline groups all happen. Each run ticks the real ``AlarmEngine`` once a
second of simulated time for ``--seconds`` and times every ``evaluate``.
Prints the p50/p95/p99 of one pass, with and without qualities, side by side.

    .venv/bin/python bench/artefact_alarming.py [--beds 500] [--wave-share 0.1] [--seconds 300] [--seed 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from alerts.engine import AlarmEngine
from alerts.lead_quality import LeadQuality
from alerts.lifecycle import AlarmBook
from alerts.scoring import score_beds
from alerts.technical import TechnicalView
from teleicu import config_files
from wire.vocabulary import COLUMN, PARAMETERS

T0 = 1_800_000_000_000
NORMAL = {"hr": 80, "pr": 80, "spo2": 97, "rr": 16, "nibp_sys": 120, "temp": 37.0, "o2": 0, "acvpu": 0}


def run(n: int, wave_share: float, seconds: int, seed: int, qualities: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    policy, tables = config_files.alarm_policy(), config_files.score_tables()
    engine = AlarmEngine(policy, AlarmBook(), tables)
    beds, wards = [f"B{i:04d}" for i in range(n)], ["A" if i % 2 else "B" for i in range(n)]
    values = np.full((n, len(PARAMETERS)), np.nan)
    for k, v in NORMAL.items():
        values[:, COLUMN[k]] = v
    waved = rng.choice(n, int(n * wave_share), replace=False)
    poor = set(waved[: len(waved) // 2].tolist())
    flags = np.zeros((n, len(PARAMETERS)), dtype=np.int16)
    times = []
    for s in range(seconds):
        now = T0 + s * 1000
        if s % 20 == 0:  # a tenth of the beds wander beyond HR or SpO2 limits for a while
            values[:, COLUMN["hr"]] = 80
            values[:, COLUMN["spo2"]] = 97
            out = rng.choice(n, n // 10, replace=False)
            values[out[: len(out) // 2], COLUMN["hr"]] = rng.choice([30, 160], len(out) // 2)
            values[out[len(out) // 2 :], COLUMN["spo2"]] = 84
        if qualities and s % 2 == 0:
            for i in waved.tolist():
                good = i not in poor
                for sig in ("ecg", "pleth"):
                    engine.set_lead_quality(beds[i], LeadQuality(sig, now, 10.0, good, 0.9 if good else 0.2, 80.0, {}, "" if good else "noisy"))
        view = TechnicalView(now=now, beds=beds, wards=wards, agents=["e1"] * n, last_rx=np.full(n, now), watched_since=np.full(n, T0),
                             flags=flags, agents_offline={}, store_error=None)  # fmt: skip
        sc = score_beds(values.copy(), np.zeros(n, dtype=bool), tables)
        t = time.perf_counter()
        engine.evaluate(now, beds, wards, sc, view)
        times.append(time.perf_counter() - t)
    stats = engine.artefact_stats()
    print(f"  {'with' if qualities else 'without'} qualities: holds {stats}")
    return np.array(times[10:]) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beds", type=int, default=500)
    ap.add_argument("--wave-share", type=float, default=0.1)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rows = [(q, run(a.beds, a.wave_share, a.seconds, a.seed, q)) for q in (False, True)]
    print(f"\n{a.beds} beds, {a.wave_share:.0%} with waveforms, {a.seconds} passes; ms per engine pass\n")
    print("| lead qualities | p50 | p95 | p99 |\n|---|---|---|---|")
    for q, ms in rows:
        print(f"| {'reported' if q else 'none'} | {np.percentile(ms, 50):.2f} | {np.percentile(ms, 95):.2f} | {np.percentile(ms, 99):.2f} |")


if __name__ == "__main__":
    main()
