"""The KPI dashboard's computation time: a state of 50 hospitals over 30 days, on SQLite and on PostgreSQL.

    python bench/kpi_dashboard.py [--db sqlite|postgresql|both|<URL>] [--hospitals 50] [--beds 10] [--days 30]
                                  [--runs 20] [--keep DIR] [--json out.json]

The synthetic state is built through the KPI store's own ingest (``store.take``, batches of 1,000 events, as the
records bridge posts them): every bed of every hospital has back-to-back ICU stays (length of stay exponential,
mean 3 days; 10 % die; 5 % of patients come back; 10 % of stays move bed once), an hourly vitals event per
occupied bed-hour (hr, spo2, rr, temp; 3 % of hours missing), about 4 alarms per occupied bed-day (85 %
acknowledged, minutes log-normal), and about 3 NEWS2 band changes per occupied bed-day (entering medium or high raises a NEWS2 alarm, 80 % acknowledged,
median 15 minutes). Then the dashboard's work
is timed: a state's page (``report.state_report``: the eight KPI queries for all 50 hospitals, and the arithmetic)
and a facility's page (``report.facility_report``), ``--runs`` times each; p50 and p99 are printed.
``--keep DIR`` keeps (and reuses) the SQLite file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine

from records_bridge.services.db import make_engine
from records_bridge.services.facility.kpi import report, store
from records_bridge.services.facility.kpi.facilities import FacilityRef
from records_bridge.services.facility.kpi.settings import KpiSettings

PG_URL = os.environ.get("TELEICU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
HOUR, DAY, MIN = 3_600_000, 86_400_000, 60_000
IST = ZoneInfo("Asia/Kolkata")
FIRST = date(2024, 4, 1)
HUB = "hub-bench"
PHYSIOLOGICAL = ("limit:hr_high", "limit:spo2_low", "limit:rr_high", "news2", "trend:news2_rise")
TECHNICAL = ("technical:no_data", "technical:probe_off", "technical:leads_off", "technical:device_disconnected")
BANDS = ("low", "low-medium", "medium", "high", "unknown")


@contextmanager
def database(kind: str, keep: Path | None) -> Iterator[str]:
    if kind == "sqlite":
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            yield f"sqlite+pysqlite:///{keep / 'kpi_bench.sqlite3'}"
            return
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite+pysqlite:///{Path(tmp) / 'kpi_bench.sqlite3'}"
        return
    if kind != "postgresql":
        yield kind
        return
    schema = f"kpi_bench_{secrets.token_hex(4)}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=IST).timestamp() * 1000)


class Synthetic:
    """The events of one hub serving every hospital, in time order per bed (ids are given once all are made)."""

    def __init__(self, hospitals: int, beds: int, days: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.start, self.end = midnight(FIRST) - 2 * DAY, midnight(FIRST + timedelta(days=days))  # stays begin before the window
        self.refs = [FacilityRef(f"IN08{h:06d}", f"District Hospital {h:02d}", "Rajasthan", f"District {h % 33:02d}", beds)
                     for h in range(1, hospitals + 1)]  # fmt: skip
        self.beds = beds
        self.events: list[tuple[int, dict[str, Any], str | None]] = []  # (at, data, facility)
        self.recent: list[tuple[str, str]] = []  # (mrn, patient id) of recent discharges, for readmissions
        self.n = 0

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n:09d}"

    def build(self) -> list[dict[str, Any]]:
        for ref in self.refs:
            ward = f"W-{ref.facility_id}"
            for b in range(1, self.beds + 1):
                self._bed(ward, f"{ward}-{b:02d}", ref.facility_id)
        self.events.sort(key=lambda e: e[0])
        return [{"event": {"id": i, "at": at, "data": data}, "facility_id": fac} for i, (at, data, fac) in enumerate(self.events, 1)]

    def _bed(self, ward: str, bed: str, fac: str) -> None:
        rng = self.rng
        t = self.start + int(rng.uniform(0, 2 * DAY))
        while t < self.end:
            stay = max(int(rng.expovariate(1 / (3 * DAY))), 4 * HOUR)
            end = t + stay
            self._stay(ward, bed, fac, t, end if end < self.end else None)
            t = end + int(rng.uniform(0.5, 12) * HOUR)

    def _stay(self, ward: str, bed: str, fac: str, start: int, end: int | None) -> None:
        rng = self.rng
        if self.recent and rng.random() < 0.05:
            mrn, _pid = self.recent.pop(rng.randrange(len(self.recent)))
        else:
            mrn = self._id("MRN")
        pid, eid = self._id("P"), self._id("E")
        patient = {"patient_id": pid, "mrn": mrn, "name": f"Patient {pid}"}
        enc = {"encounter_id": eid, "patient_id": pid, "bed": bed, "ward": ward, "start": start}
        self.events.append((start, {"type": "patient.admitted", "patient": patient, "encounter": enc, "by": "adt"}, fac))
        stop = end if end is not None else self.end
        if rng.random() < 0.1:
            at = start + (stop - start) // 3
            enc = enc | {"bed": f"{bed}x"}
            self.events.append((at, {"type": "patient.transferred", "encounter": enc, "from_bed": bed, "by": "adt"}, fac))
        ref = {"encounter_id": eid, "patient_id": pid, "bed": enc["bed"]}
        hour = start // HOUR * HOUR
        while hour < stop:
            if rng.random() > 0.03:
                frac = (min(hour + HOUR, stop) - max(hour, start)) / HOUR
                values = [{"param": p, "median": 80.0, "unit": "/min", "n": int(3600 * frac * rng.uniform(0.85, 1.0)), "first": hour,
                           "last": hour + HOUR - 1} for p in ("hr", "spo2", "rr", "temp")]  # fmt: skip
                self.events.append((hour + HOUR, {"type": "vitals.hourly", **ref, "hour": hour, "values": values}, None))
            hour += HOUR
        days = (stop - start) / DAY
        for _ in range(self._poisson(4 * days)):
            raised = start + int(rng.uniform(0, stop - start))
            technical = rng.random() < 0.35
            kind = rng.choice(TECHNICAL if technical else PHYSIOLOGICAL)
            alarm = {**ref, "alarm_id": self._id("A"), "kind": kind, "priority": "medium", "category": "technical" if technical else "physiological",
                     "detail": kind, "raised": raised}  # fmt: skip
            self.events.append((raised, {"type": "alarm.raised", **alarm, "t": raised}, None))
            ack = raised + int(rng.lognormvariate(math.log(3), 1.0) * MIN) if rng.random() < 0.85 else None
            if ack is not None:
                self.events.append((ack, {"type": "alarm.acknowledged", **alarm, "t": ack, "by": "dr", "acknowledged": ack}, None))
            resolved = (ack or raised) + int(rng.uniform(1, 30) * MIN)
            self.events.append((resolved, {"type": "alarm.resolved", **alarm, "t": resolved, "by": "dr" if ack else None, "acknowledged": ack}, None))
        for _ in range(self._poisson(3 * days)):
            t = start + int(rng.uniform(0, stop - start))
            band = rng.choice(BANDS)
            total = None if band == "unknown" else {"low": 1, "low-medium": 3, "medium": 5, "high": 8}[band]
            self.events.append((t, {"type": "score.band_changed", **ref, "t": t, "total": total, "partial": total or 0, "band": band,
                                    "subscores": {}, "missing": []}, None))  # fmt: skip
            if band in ("medium", "high"):  # the NEWS2 alarm; 80 % acknowledged, median 15 min
                alarm = {**ref, "alarm_id": self._id("A"), "kind": "news2", "priority": "high" if band == "high" else "medium",
                         "category": "physiological", "detail": "NEWS2", "raised": t}  # fmt: skip
                self.events.append((t, {"type": "alarm.raised", **alarm, "t": t}, None))
                if rng.random() < 0.8:
                    ack = t + int(rng.lognormvariate(math.log(15), 0.8) * MIN)
                    self.events.append((ack, {"type": "alarm.acknowledged", **alarm, "t": ack, "by": "dr", "acknowledged": ack}, None))
        if end is not None:
            outcome = "died" if rng.random() < 0.1 else "discharged"
            summary = {"news2": [], "last_vitals": [], "alarms": [], "charted": 0}
            self.events.append((end, {"type": "patient.discharged", "patient": patient, "encounter": enc | {"end": end, "outcome": outcome},
                                      "summary": summary, "by": "adt"}, fac))  # fmt: skip
            if outcome != "died":
                self.recent = [*self.recent[-200:], (mrn, pid)]

    def _poisson(self, lam: float) -> int:
        n, p, limit = 0, 1.0, math.exp(-lam)
        while True:
            p *= self.rng.random()
            if p <= limit:
                return n
            n += 1


def pct(xs: list[float], p: float) -> float:
    return report.percentile(sorted(xs), p) or 0.0


def run(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    with database(kind, args.keep if kind == "sqlite" else None) as url:
        engine = make_engine(url)
        store.migrate(engine)
        syn = Synthetic(args.hospitals, args.beds, args.days)
        with engine.connect() as conn:
            have = conn.exec_driver_sql("SELECT COUNT(*) FROM kpi_events").scalar()
        built: dict[str, Any] = {}
        if have:
            syn.build()  # the facility list (the events are in the kept file already)
            print(f"[{kind}] reusing {have:,} stored events", flush=True)
        else:
            t0 = time.perf_counter()
            items = syn.build()
            t1 = time.perf_counter()
            for i in range(0, len(items), 1000):
                store.take(engine, HUB, [store.Item.model_validate(x) for x in items[i:i + 1000]], 0)
            t2 = time.perf_counter()
            built = {"events": len(items), "generate_s": round(t1 - t0, 1), "ingest_s": round(t2 - t1, 1),
                     "ingest_events_per_s": round(len(items) / (t2 - t1))}  # fmt: skip
            print(f"[{kind}] {len(items):,} events generated in {t1 - t0:.1f} s, stored in {t2 - t1:.1f} s "
                  f"({len(items) / (t2 - t1):,.0f} events/s)", flush=True)  # fmt: skip
        if kind != "sqlite":  # what autovacuum does after a bulk load, at once
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        with engine.connect() as conn:
            rows = {t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar()
                    for t in ("kpi_encounters", "kpi_alarms", "kpi_alarm_acks", "kpi_news2", "kpi_hourly", "kpi_transfers")}  # fmt: skip
        print(f"[{kind}] rows: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()), flush=True)
        cfg = KpiSettings()
        last = FIRST + timedelta(days=args.days - 1)
        now = midnight(last + timedelta(days=1)) + HOUR
        w = report.window(FIRST, last, now, cfg)
        state_s, facility_s = [], []
        with engine.connect() as conn:
            report.state_report(conn, "Rajasthan", syn.refs, w, now, cfg)  # warm the caches once
            for _ in range(args.runs):
                t = time.perf_counter()
                out = report.state_report(conn, "Rajasthan", syn.refs, w, now, cfg)
                state_s.append(time.perf_counter() - t)
            rng = random.Random(1)
            for _ in range(args.runs * 2):
                ref = rng.choice(syn.refs)
                t = time.perf_counter()
                report.facility_report(conn, ref, w, now, cfg)
                facility_s.append(time.perf_counter() - t)
        total = {k["key"]: k["value"] for k in out["total"]["kpis"]}
        engine.dispose()
        res = {"db": kind, **built, "rows": rows, "window_days": args.days, "hospitals": args.hospitals, "beds": args.beds,
               "state_ms": {"p50": round(pct(state_s, 0.5) * 1000, 1), "p99": round(pct(state_s, 0.99) * 1000, 1), "runs": len(state_s)},
               "facility_ms": {"p50": round(pct(facility_s, 0.5) * 1000, 1), "p99": round(pct(facility_s, 0.99) * 1000, 1),
                               "runs": len(facility_s)},
               "state_figures": {k: round(v, 3) if isinstance(v, float) else v for k, v in total.items()}}  # fmt: skip
        print(f"[{kind}] state page ({args.hospitals} hospitals, {args.days} days): p50 {res['state_ms']['p50']} ms, "
              f"p99 {res['state_ms']['p99']} ms; facility page: p50 {res['facility_ms']['p50']} ms, p99 {res['facility_ms']['p99']} ms", flush=True)  # fmt: skip
        print(f"[{kind}] state figures: " + ", ".join(f"{k} {v}" for k, v in res["state_figures"].items()), flush=True)
        return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="sqlite", help="sqlite, postgresql, both, or a SQLAlchemy URL")
    ap.add_argument("--hospitals", type=int, default=50)
    ap.add_argument("--beds", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the SQLite database in this directory")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = [run(k, args) for k in kinds]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
