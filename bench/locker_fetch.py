"""Locker: p50/p99 latency of a consent-checked record fetch (``GET /api/records/{id}?consent=...``) over real HTTP.

    python bench/locker_fetch.py [--db sqlite|postgresql|both|<URL>] [--patients 200] [--records 5] [--fetches 4000]
                                 [--clients 8] [--json out.json]

A real hub (``teleicu hub``, the tests' users) signs the clinician in; the
locker is ``teleicu locker serve`` in its own process (one uvicorn worker).
Setup goes through the store layer: ``--patients`` lockers with ``--records``
discharge summaries each (a FHIR document Bundle and a 40 kB PDF), one consent
per patient requested by the intensivist and granted. Each measured fetch
names a random record and its patient's consent, so every one runs the whole
check (consent read, coverage decision, access-log append) and returns the
record's JSON with its Bundle. ``sqlite`` is a file in a temporary folder;
``postgresql`` a fresh schema in the local server (``TELEICU_TEST_PG_URL``).
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "locker"))

from locker_support import document_bundle  # noqa: E402
from records_db_support import records_database  # noqa: E402
from support import free_port, start_hub, token, wait_until  # noqa: E402

from records_bridge.services.db import make_engine  # noqa: E402
from records_bridge.services.locker.bodies import digest_of  # noqa: E402
from records_bridge.services.locker.consent_machine import Role  # noqa: E402
from records_bridge.services.locker.store import ConsentIn, PatientKey, RecordIn, Store, migrate  # noqa: E402

PDF = b"%PDF-1.4\n" + bytes(random.Random(1).getrandbits(8) for _ in range(40_000))
DAY = 86_400_000


def setup(url: str, patients: int, per_patient: int) -> list[tuple[str, str]]:
    """Lockers, records and granted consents through the store; the (record id, consent id) pairs to fetch."""
    engine = make_engine(url)
    migrate(engine)
    store = Store(engine, otp_key=b"b" * 32)
    now = int(time.time() * 1000)
    pairs = []
    for p in range(patients):
        key = PatientKey(abha=f"91{p:012d}")
        pid, _ = store.register_patient(key, f"+9198{p:08d}", f"Patient {p}", now)
        ids = []
        for r in range(per_patient):
            rid = f"enc-{p}-{r}"
            bundle = json.dumps(document_bundle(rid))
            store.put_record(rid, key, None, None, RecordIn("DischargeSummary", f"2024-0{1 + r % 9}-1{r % 10}", "SMS Hospital, Jaipur",
                                                            "Discharge summary", bundle, PDF, digest_of(rid)), now)  # fmt: skip
            ids.append(rid)
        c = store.request_consent(pid, ConsentIn("staff", "intensivist", "Test intensivist", "intensivist", "CAREMGT",
                                                 ("DischargeSummary",), "2024-01-01", "2024-12-31", "VIEW", now + 30 * DAY), now)  # fmt: skip
        store.act(c["consent_id"], "grant", Role.PATIENT, "patient", now, pid)
        pairs += [(rid, c["consent_id"]) for rid in ids]
    engine.dispose()
    return pairs


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def run(kind: str, url: str, args: argparse.Namespace, tmp: Path, hub_base: str) -> dict[str, Any]:
    pairs = setup(url, args.patients, args.records)
    secret = tmp / f"share-{kind}.secret"
    secret.write_text("s" * 64)
    port = free_port()
    log = (tmp / f"locker-{kind}.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "teleicu", "locker", "serve", "--db", url, "--port", str(port), "--hub", hub_base,
                             "--sms-log", str(tmp / "sms.jsonl"), "--share-secret-file", str(secret), "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{base}/healthz", timeout=1).status_code == 200, "the locker to answer")
        headers = {"Authorization": f"Bearer {token(hub_base, 'intensivist')}"}
        rng = random.Random(7)
        plan = [rng.choice(pairs) for _ in range(args.fetches)]
        with httpx.Client(timeout=30, headers=headers, limits=httpx.Limits(max_connections=args.clients)) as http:
            for rid, cid in plan[:200]:  # warm-up: connections, the hub's answer cached
                assert http.get(f"{base}/api/records/{rid}", params={"consent": cid}).status_code == 200

            def one(pair: tuple[str, str]) -> float:
                t0 = time.perf_counter()
                r = http.get(f"{base}/api/records/{pair[0]}", params={"consent": pair[1]})
                took = time.perf_counter() - t0
                assert r.status_code == 200, r.text
                return took * 1000

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                lat = list(pool.map(one, plan))
            wall = time.perf_counter() - t0
        return {"db": kind, "records": len(pairs), "fetches": len(lat), "clients": args.clients,
                "p50_ms": round(statistics.median(lat), 2), "p99_ms": round(percentile(lat, 0.99), 2),
                "max_ms": round(max(lat), 2), "per_s": round(len(lat) / wall, 1)}  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="both", help="sqlite, postgresql, both, or a database URL")
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--records", type=int, default=5)
    ap.add_argument("--fetches", type=int, default=4000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = []
    with tempfile.TemporaryDirectory(prefix="locker-bench-") as d:
        tmp = Path(d)
        hub = start_hub(tmp)
        try:
            for kind in kinds:
                if kind in ("sqlite", "postgresql"):
                    with records_database(kind, tmp, prefix="locker_bench") as url:
                        results.append(run(kind, url, args, tmp, hub.base))
                else:
                    results.append(run("url", kind, args, tmp, hub.base))
                print(json.dumps(results[-1]), flush=True)
        finally:
            hub.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
