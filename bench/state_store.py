"""The hub's state writer on SQLite and on PostgreSQL: alarm saves per second, and their commit latency (p50, p99).

    python bench/state_store.py [--alarms 5000] [--concurrency 200] [--calls 500] [--kinds sqlite,postgresql] [--json out.json]

What a busy hub writes to its state: ``--alarms`` alarm changes (``save_alert``:
the alarm row, its audit row and an outbox event in one statement list), kept
``--concurrency`` in flight as the hub's tick and API handlers do, then
``--calls`` audit-chain appends (``append_audit``: a read of the chain's head
and an insert, in the writer's transaction) one at a time, as sign-ins are.
Both databases run the same code (``ingest.stores.group_commit``) in this
process: SQLite a file in a temporary folder (``synchronous=FULL``); PostgreSQL
a fresh schema in the local server (``TELEICU_TEST_PG_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``), dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from ingest.auth.audit_log import AuditEntry
from ingest.stores import open_stores
from ingest.stores.base import Stores
from wire.outbox_events import AlarmEvent

PG_URL = os.environ.get("TELEICU_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test").replace("+psycopg", "")


def _alarm(i: int) -> tuple[dict, AlarmEvent]:
    body = {"id": f"a{i:06d}", "state": "active", "kind": "news2", "bed": f"B-{i % 500:03d}", "priority": "high",
            "category": "physiological", "title": "NEWS2 7", "detail": "", "raised_at": 1_800_000_000_000 + i}  # fmt: skip
    event = AlarmEvent(type="alarm.raised", encounter_id=f"e{i % 500}", patient_id=f"p{i % 500}", bed=body["bed"], alarm_id=body["id"],
                       kind="news2", priority="high", category="physiological", detail="", t=body["raised_at"], raised=body["raised_at"])
    return body, event


def _pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100)[int(q) - 1] if len(xs) >= 2 else xs[0]


async def _run(stores: Stores, alarms: int, concurrency: int, calls: int) -> dict[str, float]:
    await stores.start()
    try:
        slots = asyncio.Semaphore(concurrency)
        lat: list[float] = []

        async def save(i: int) -> None:
            body, event = _alarm(i)
            async with slots:
                t = time.perf_counter()
                await stores.state.save_alert(body, "raised", None, body["raised_at"], outbox_event=event)
                lat.append((time.perf_counter() - t) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(save(i) for i in range(alarms)))
        alarm_s = time.perf_counter() - t0
        call_lat = []
        for i in range(calls):
            t = time.perf_counter()
            await stores.state.append_audit([AuditEntry(1_800_000_000_000 + i, "bench", "auth.sign_in", f"user:u{i}")])
            call_lat.append((time.perf_counter() - t) * 1000)
        stored = await stores.state.count("alert_audit")  # type: ignore[attr-defined]
        assert stored == alarms, f"{stored} audit rows for {alarms} alarm saves"
        return {"alarms_per_s": alarms / alarm_s, "alarm_p50_ms": _pct(lat, 50), "alarm_p99_ms": _pct(lat, 99),
                "audit_append_p50_ms": _pct(call_lat, 50), "audit_append_p99_ms": _pct(call_lat, 99)}  # fmt: skip
    finally:
        await stores.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alarms", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--kinds", default="sqlite,postgresql", help="which databases (SQLite only runs on older commits too)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    kinds = a.kinds.split(",")
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite" in kinds:
            out["sqlite"] = asyncio.run(_run(open_stores(str(Path(tmp) / "s.sqlite3")), a.alarms, a.concurrency, a.calls))
        if "postgresql" in kinds:
            schema = f"bench_state_{secrets.token_hex(4)}"
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute(f"CREATE SCHEMA {schema}")
                try:
                    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
                    stores = open_stores(str(Path(tmp) / "p.sqlite3"), Path(tmp), url)
                    out["postgresql"] = asyncio.run(_run(stores, a.alarms, a.concurrency, a.calls))
                finally:
                    admin.execute(f"DROP SCHEMA {schema} CASCADE")
    _report(out, a.json)


def _report(out: dict[str, dict[str, float]], path: Path | None) -> None:
    print(f"{'':12} {'alarm saves/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'audit p50':>10} {'audit p99':>10}")
    for kind, r in out.items():
        print(f"{kind:12} {r['alarms_per_s']:14.0f} {r['alarm_p50_ms']:8.1f} {r['alarm_p99_ms']:8.1f} "
              f"{r['audit_append_p50_ms']:10.2f} {r['audit_append_p99_ms']:10.2f}")  # fmt: skip
    if path:
        path.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
