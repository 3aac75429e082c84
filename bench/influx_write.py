"""Benchmark: sustained points/s from the hub's InfluxDB writer into a local influxd, and trend-query latency.

    .venv/bin/python bench/influx_write.py [--points 1000000] [--other-beds 4] [--queries 200] [--json]

Starts its own influxd (Debian's 1.x, like the integration tests: free ports,
temp data dir), then:

1. write: ``InfluxSampleStore.submit`` of edge-frame-sized batches (500 observations,
   default 5,000-line gzip requests) as fast as the store takes them, until every
   batch's future completed (durable in InfluxDB, sequence marks in SQLite).
   Points/s = points / wall time from first submit to last durable.
2. trend: pre-loads 24 h of 1 Hz data (hr, spo2, rr, temp) for bed B-0000 and
   ``--other-beds`` more beds, waits for the 1-minute aggregates, then times
   ``InfluxSampleStore.trend`` (one HTTP round trip, JSON parsed) for 24 h (1-minute
   means), 6 h and 1 h (raw) on that bed: p50/p99 over ``--queries`` calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

import numpy as np
from influx_support import Influxd, start_influxd

from ingest.stores import open_stores
from ingest.stores.base import Batch
from ingest.stores.influx_samples import InfluxSampleStore
from wire.messages import Observation

PARAMS = (("hr", 60.0, 40.0), ("spo2", 90.0, 10.0), ("rr", 10.0, 15.0), ("temp", 36.0, 2.0))
FRAME_OBS = 500
HOUR = 3_600_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def frames_of(beds: list[str], t_start: int, seconds: int, agent: str, rng: np.random.Generator) -> list[Batch]:
    """1 Hz numerics of ``PARAMS`` for ``beds``, in time order, packed FRAME_OBS to a batch."""
    obs: list[Observation] = []
    batches: list[Batch] = []
    seq = 0
    noise = rng.random(len(PARAMS) * len(beds) * seconds)
    i = 0
    for s in range(seconds):
        t = t_start + s * 1000
        for bed in beds:
            for key, base, span in PARAMS:
                obs.append(Observation(bed, key, round(base + span * float(noise[i]), 1), t, t + 30, f"mon-{bed}"))
                i += 1
                if len(obs) == FRAME_OBS:
                    seq += 1
                    batches.append(Batch(agent, 1, seq, obs=obs))
                    obs = []
    if obs:
        batches.append(Batch(agent, 1, seq + 1, obs=obs))
    return batches


async def write_all(store: InfluxSampleStore, batches: list[Batch]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) from the first submit until every batch is durable."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    futs = [await store.submit(b) for b in batches]
    await asyncio.gather(*futs)
    return time.perf_counter() - t0, time.process_time() - cpu0


async def bench(influx: Influxd, tmp: Path, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(7)
    url = influx.store_url("bench", state=tmp / "state.sqlite3")
    stores = open_stores(url)
    store = stores.samples
    assert isinstance(store, InfluxSampleStore)
    await stores.start()
    try:
        # 1. sustained writes: recent data (what a live hub writes), many beds
        beds_w = [f"W-{i:04d}" for i in range(250)]
        seconds = max(1, args.points // (len(beds_w) * len(PARAMS)))
        live = frames_of(beds_w, now_ms() - seconds * 1000 - 60_000, seconds, "bench-live", rng)
        points = sum(len(b.obs) for b in live)
        wall, cpu = await write_all(store, live)
        stats_w = store.stats()

        # 2. trend queries over 24 h of 1 Hz data on one bed (plus neighbours in the same measurement)
        beds_t = ["B-0000"] + [f"B-{i:04d}" for i in range(1, args.other_beds + 1)]
        until = now_ms()
        day = frames_of(beds_t, until - 24 * HOUR, 24 * 3600, "bench-day", rng)
        preload_points = sum(len(b.obs) for b in day)
        preload_wall, _ = await write_all(store, day)
        t_wait = time.monotonic() + 600
        while store._late is not None and time.monotonic() < t_wait:  # the backfill runs after the last write
            await asyncio.sleep(0.1)
            if not store._buffer and store._late is not None:
                await store._backfill()
        trends: dict[str, dict] = {}
        for label, span in (("24h", 24 * HOUR), ("6h", 6 * HOUR), ("1h", HOUR)):
            lat = []
            n = 0
            for _ in range(args.queries):
                q0 = time.perf_counter()
                pts = await store.trend("B-0000", "hr", until - span, until, 200_000)
                lat.append((time.perf_counter() - q0) * 1000)
                n = len(pts)
            arr = np.array(lat)
            trends[label] = {"points": n, "p50_ms": round(float(np.percentile(arr, 50)), 2), "p99_ms": round(float(np.percentile(arr, 99)), 2)}
    finally:
        await stores.stop()
    return {
        "write": {
            "points": points,
            "seconds": round(wall, 2),
            "points_per_s": round(points / wall),
            "writer_cpu_s": round(cpu, 2),
            "requests": stats_w["writes"],
            "gzip_ratio": round(stats_w["bytes_raw"] / max(1, stats_w["bytes_sent"]), 1),
            "retried": stats_w["retried"],
            "dropped": stats_w["dropped"],
        },
        "preload_24h": {"beds": len(beds_t), "points": preload_points, "seconds": round(preload_wall, 2), "points_per_s": round(preload_points / preload_wall)},
        "trend": trends,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000, help="points in the sustained-write phase")
    ap.add_argument("--other-beds", type=int, default=4, help="beds pre-loaded with 24 h besides the one queried")
    ap.add_argument("--queries", type=int, default=200, help="trend queries timed per range")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="influx-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        influx = start_influxd(tmp)
        try:
            result = asyncio.run(bench(influx, tmp, args))
        finally:
            influx.stop()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    w, p = result["write"], result["preload_24h"]
    print(f"sustained write: {w['points']:,} points in {w['seconds']} s = {w['points_per_s']:,} points/s "
          f"({w['requests']} requests, gzip {w['gzip_ratio']}x, writer CPU {w['writer_cpu_s']} s, retried {w['retried']}, dropped {w['dropped']})")
    print(f"24 h pre-load:   {p['points']:,} points ({p['beds']} beds) in {p['seconds']} s = {p['points_per_s']:,} points/s")
    for label, t in result["trend"].items():
        print(f"trend {label:>3} on one bed: {t['points']:>6} points   p50 {t['p50_ms']:7.2f} ms   p99 {t['p99_ms']:7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
