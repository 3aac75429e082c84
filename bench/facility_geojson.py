"""Facility registry: p50/p99 latency of GeoJSON queries (``GET /api/facilities.geojson``) over 10,000 facilities,
over real HTTP, on SQLite and on PostgreSQL.

    python bench/facility_geojson.py [--db sqlite|postgresql|both|<URL>] [--facilities 10000] [--queries 300] [--json out.json]

A real hub (``teleicu hub``, the tests' users) signs a viewer in; the registry is ``teleicu facility serve`` in its
own process (one uvicorn worker). Setup goes through the store (one import transaction): ``--facilities`` spread
over 200 districts across India (50 each, within half a degree of the district's centre), each with ICU and general
capacity; 60 % have a fresh ICU occupancy (free 0 to 5), 20 % a stale one, 20 % none. One client asks in turn, after
a warm-up; the query shapes:

- ``district``: every facility of a district, by LGD code (about 50 features);
- ``radius_50km``: ``near`` a random point by a district's centre, ``radius_km=50``, nearest first;
- ``nearest_free_icu``: ``near`` a random point, ``min_free_icu=1``, ``limit=5`` (the map's search: no radius);
- ``first_500``: no filter, the first 500 by name (the largest answer the page asks for by default).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from records_db_support import records_database  # noqa: E402
from support import free_port, start_hub, token, wait_until  # noqa: E402

from records_bridge.services.db import make_engine  # noqa: E402
from records_bridge.services.facility import fields  # noqa: E402
from records_bridge.services.facility.store import Store, migrate  # noqa: E402

DISTRICTS = 200
TYPES = ("district_hospital", "chc", "phc", "medical_college", "private_hospital")


def setup(url: str, n: int, rng: random.Random) -> list[tuple[float, float]]:
    """The facilities and their occupancy through the store; the districts' centres."""
    engine = make_engine(url)
    migrate(engine)
    now = int(time.time() * 1000)
    store = Store(engine, lambda: now)
    centres = [(rng.uniform(10.0, 31.0), rng.uniform(70.5, 92.0)) for _ in range(DISTRICTS)]
    rows = []
    for i in range(n):
        d = i % DISTRICTS
        lat, lon = centres[d][0] + rng.uniform(-0.5, 0.5), centres[d][1] + rng.uniform(-0.5, 0.5)
        icu = rng.randint(0, 30)
        body = {"name": f"Facility {i:05d}", "type": TYPES[i % len(TYPES)], "ownership": "government", "state": "Bench",
                "state_lgd": 1 + d % 36, "district": f"District {d}", "district_lgd": 100 + d, "pincode": f"{110001 + d}",
                "lat": lat, "lon": lon, "services": ["icu", "tele_icu"] if icu else ["emergency"], "status": "operational",
                "capacity": {"icu": {"licensed": icu, "staffed": icu // 2}, "general": {"licensed": 100, "staffed": 80}}}  # fmt: skip
        rows.append((f"IN{1000000000 + i:010d}", fields.facility(body)))
    store.import_rows(rows, "bench")
    for fid, _ in rows:
        kind = rng.random()
        if kind < 0.8:
            free = rng.randint(0, 5)
            as_of = now - (10_000 if kind < 0.6 else 3_600_000)
            occ = {"as_of": as_of, "icu_beds": 10, "occupied": 10 - free, "free": free, "news2_high": 1, "monitors_offline": 0, "source": "bench"}
            store.put_occupancy(fid, fields.occupancy(occ, now, 0), "bench")
    engine.dispose()
    return centres


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def run(kind: str, url: str, args: argparse.Namespace, hub_base: str) -> dict[str, Any]:
    rng = random.Random(17)
    t0 = time.perf_counter()
    centres = setup(url, args.facilities, rng)
    setup_s = time.perf_counter() - t0
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "teleicu", "facility", "serve", "--db", url, "--port", str(port), "--hub", hub_base,
                             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    shapes = {
        "district": lambda: f"district={100 + rng.randrange(DISTRICTS)}",
        "radius_50km": lambda: "near={:.4f},{:.4f}&radius_km=50".format(*_jitter(rng, rng.choice(centres))),
        "nearest_free_icu": lambda: "near={:.4f},{:.4f}&min_free_icu=1&limit=5".format(*_jitter(rng, rng.choice(centres))),
        "first_500": lambda: "limit=500",
    }
    out: dict[str, Any] = {"db": kind, "facilities": args.facilities, "setup_s": round(setup_s, 1)}
    try:
        wait_until(lambda: httpx.get(base + "/healthz").status_code == 200, "the registry to start", timeout=60)
        headers = {"Authorization": f"Bearer {token(hub_base, 'viewer')}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            for name, make in shapes.items():
                for _ in range(20):  # warm-up: connection, the hub's answer cached, the database's pages
                    http.get(f"/api/facilities.geojson?{make()}").raise_for_status()
                lat, counts = [], []
                for _ in range(args.queries):
                    q = make()
                    t = time.perf_counter()
                    r = http.get(f"/api/facilities.geojson?{q}")
                    lat.append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
                    counts.append(len(r.json()["features"]))
                out[name] = {"p50_ms": round(statistics.median(lat), 2), "p99_ms": round(percentile(lat, 0.99), 2),
                             "features_median": statistics.median(counts)}  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(15)
    return out


def _jitter(rng: random.Random, c: tuple[float, float]) -> tuple[float, float]:
    return c[0] + rng.uniform(-0.3, 0.3), c[1] + rng.uniform(-0.3, 0.3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="both", help="sqlite, postgresql, both, or a database URL")
    ap.add_argument("--facilities", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=300, help="measured queries per shape")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = []
    with tempfile.TemporaryDirectory(prefix="facility-bench-") as d:
        tmp = Path(d)
        hub = start_hub(tmp)
        try:
            for kind in kinds:
                if kind in ("sqlite", "postgresql"):
                    with records_database(kind, tmp, prefix="facility_bench") as url:
                        results.append(run(kind, url, args, hub.base))
                else:
                    results.append(run("url", kind, args, hub.base))
                print(json.dumps(results[-1]), flush=True)
        finally:
            hub.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
