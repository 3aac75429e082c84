"""EHR latency with 100,000 vital-sign Observations stored: p50/p99 of writes (PUT) and of searches, over real HTTP.

    python bench/ehr_latency.py --db sqlite|postgresql|<URL> [--n 100000] [--http-load 10000] [--writes 2000]
                                [--searches 1000] [--clients 8] [--json out.json]

The Observations are what the bridge writes for ``vitals.hourly``-like data:
200 patients (one encounter each), 8 vital-sign codes, one value per code per
hour, hour after hour (about 2.6 days at 100,000). The first ``n - http_load``
are bulk-loaded through the store layer (``Store.load``, 1,000 a transaction:
the same inserts and index rows as a PUT, without HTTP); the last ``http_load``
go through ``PUT`` with ``--clients`` concurrent clients, as do the measured
writes and searches. The server is ``teleicu ehr serve`` in its own process
(one uvicorn worker). ``sqlite`` is a file in a temporary folder; ``postgresql``
a fresh schema in the local server (``TELEICU_TEST_PG_URL``), dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from records_bridge.fhir.validation import validated
from records_bridge.services.db import make_engine
from records_bridge.services.ehr.clients import add_client
from records_bridge.services.ehr.store import Store, migrate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from records_db_support import records_database  # noqa: E402
PATIENTS = 200
START = datetime(2024, 5, 1, tzinfo=UTC)
VITALS = [  # LOINC code, display, UCUM unit, typical value
    ("8867-4", "Heart rate", "/min", 96), ("59408-5", "Oxygen saturation by pulse oximetry", "%", 95),
    ("9279-1", "Respiratory rate", "/min", 20), ("8310-5", "Body temperature", "Cel", 37.4),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 118), ("8462-4", "Diastolic blood pressure", "mm[Hg]", 70),
    ("8478-0", "Mean blood pressure", "mm[Hg]", 86), ("2708-6", "Oxygen saturation in Arterial blood", "%", 96),
]  # fmt: skip


def observation(i: int) -> dict[str, Any]:
    """The ``i``-th Observation: patients turn fastest, then codes, then hours."""
    p, rest = i % PATIENTS, i // PATIENTS
    code, unit_code = VITALS[rest % len(VITALS)][0], VITALS[rest % len(VITALS)]
    hour = rest // len(VITALS)
    _, display, unit, typical = unit_code
    when = (START + timedelta(hours=hour, minutes=p % 60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "resourceType": "Observation",
        "id": f"bench-{p:03}-{code}-{hour:05}",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/bench-patient-{p:03}"},
        "encounter": {"reference": f"Encounter/bench-encounter-{p:03}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": round(typical * (1 + ((i * 7919) % 21 - 10) / 100), 1), "unit": unit,
                          "system": "http://unitsofmeasure.org", "code": unit},
        "device": {"display": f"MICU-{p % 20:02} monitor"},
    }  # fmt: skip


@contextmanager
def server(url: str, port: int) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "teleicu", "ehr", "serve", "--db", url, "--port", str(port), "--log-level", "warning"])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("teleicu ehr serve did not come up")
        yield f"{base}/fhir"
    finally:
        proc.terminate()
        proc.wait(10)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_concurrently(clients: int, jobs: list[Any], call: Callable[[httpx.Client, Any], None]) -> tuple[list[float], float]:
    """Each job through one of ``clients`` keep-alive connections; the latency of each (s) and the wall time."""
    latencies: list[float] = []
    lock = threading.Lock()
    chunks = [jobs[k::clients] for k in range(clients)]

    def worker(chunk: list[Any]) -> None:
        mine = []
        with httpx.Client(timeout=60) as http:
            for job in chunk:
                t0 = time.perf_counter()
                call(http, job)
                mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, chunks))
    return latencies, time.perf_counter() - t0


def summary(name: str, lat: list[float], wall: float) -> dict[str, Any]:
    ordered = sorted(lat)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"operation": name, "n": len(lat), "p50_ms": round(pick(0.50), 2), "p99_ms": round(pick(0.99), 2),
            "mean_ms": round(statistics.fmean(lat) * 1000, 2), "per_s": round(len(lat) / wall, 1)}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="sqlite", help="sqlite, postgresql, or a database URL")
    ap.add_argument("--n", type=int, default=100_000, help="Observations stored before measuring")
    ap.add_argument("--http-load", type=int, default=10_000, help="how many of those go through HTTP (the rest: Store.load)")
    ap.add_argument("--writes", type=int, default=2_000, help="measured PUTs")
    ap.add_argument("--searches", type=int, default=1_000, help="measured searches of each kind")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, records_database(args.db, Path(tmp), prefix="ehr_bench") as url:
        engine = make_engine(url)
        migrate(engine)
        secret = add_client(engine, "bench", "writer")
        store = Store(engine)
        validated(observation(0))  # the bulk-loaded ones are built the same way: check one as the API would
        bulk = max(0, args.n - args.http_load)
        t0 = time.perf_counter()
        for start in range(0, bulk, 1000):
            store.load([observation(i) for i in range(start, min(bulk, start + 1000))])
        bulk_s = time.perf_counter() - t0
        engine.dispose()
        print(f"bulk-loaded {bulk} Observations through the store in {bulk_s:.1f} s", file=sys.stderr)
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/fhir+json"}

        with server(url, free_port()) as base:

            def put(http: httpx.Client, i: int) -> None:
                r = http.put(f"{base}/Observation/{observation(i)['id']}", json=observation(i), headers=headers)
                if r.status_code not in (200, 201):
                    raise RuntimeError(f"PUT answered {r.status_code}: {r.text[:300]}")

            lat, wall = run_concurrently(args.clients, list(range(bulk, args.n)), put)
            if lat:
                rows.append(summary(f"PUT (loading {bulk}→{args.n})", lat, wall))
            lat, wall = run_concurrently(args.clients, list(range(args.n, args.n + args.writes)), put)
            rows.append(summary(f"PUT new Observation ({args.n} stored)", lat, wall))
            hours = (args.n // PATIENTS) // len(VITALS)

            def search(http: httpx.Client, params: dict[str, str]) -> None:
                r = http.get(f"{base}/Observation", params=params, headers=headers)
                if r.status_code != 200 or "entry" not in r.json():
                    raise RuntimeError(f"search answered {r.status_code}: {r.text[:300]}")

            by_code = [{"patient": f"bench-patient-{k * 37 % PATIENTS:03}", "code": f"http://loinc.org|{VITALS[k % 8][0]}", "_count": "50"}
                       for k in range(args.searches)]  # fmt: skip
            lat, wall = run_concurrently(args.clients, by_code, search)
            rows.append(summary("search patient+code, _count=50", lat, wall))

            def day(k: int) -> dict[str, str]:
                lo = START + timedelta(hours=(k * 13) % max(1, hours - 24))
                return {"patient": f"bench-patient-{k * 53 % PATIENTS:03}", "date": [f"ge{lo:%Y-%m-%dT%H:%M:%SZ}",  # type: ignore[dict-item]
                        f"lt{lo + timedelta(hours=24):%Y-%m-%dT%H:%M:%SZ}"], "_count": "50"}  # fmt: skip

            lat, wall = run_concurrently(args.clients, [day(k) for k in range(args.searches)], search)
            rows.append(summary("search patient+24 h date range, _count=50", lat, wall))

    result = {"db": args.db if args.db in ("sqlite", "postgresql") else "url", "stored": args.n, "bulk_loaded": bulk,
              "bulk_load_s": round(bulk_s, 1), "clients": args.clients, "results": rows}  # fmt: skip
    print(f"\nEHR latency, {args.db}, {args.n} Observations stored ({bulk} bulk-loaded), {args.clients} concurrent clients\n")
    print("| operation | n | p50 ms | p99 ms | mean ms | per s |\n|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['operation']} | {r['n']} | {r['p50_ms']} | {r['p99_ms']} | {r['mean_ms']} | {r['per_s']} |")
    print("\n" + json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
