"""Support for the KPI tests: outbox events built as the hub writes them, the hand-worked scenario (``scenario``), and
the KPI router in a small FastAPI app under uvicorn on a real socket, staff signed in through a real hub.

The scenario (all times IST, the window is 2 May 2024; hub ``hub-1``, ward A -> facility F1 with 4 staffed ICU beds,
ward B -> F2 with 2, ward C unmapped; the arithmetic is in ``tests/facility_kpi/test_kpi_figures.py``):

- E1 P1 (MRN M1) A-01 1 May 20:00 -> 2 May 08:00 discharged (a discharge without an admission in the window);
  E2: M1 again, as a new hub patient, 4 May 07:00 (47 h later: a readmission), open;
- E3 P2 (M2) A-02 2 May 10:00, moved to A-05 at 12:00, discharged 14:00; E4: M2 again 4 May 15:00 (49 h: not one);
- E5 P3 A-03 2 May 22:00, open (its data runs over midnight, and over the UTC hour cut by IST midnight);
- E6 P4 A-04 2 May 02:00, admission cancelled (with an alarm and samples that must count nowhere);
- E7 P5 A-04 2 May 12:00 -> 18:00 died; no hourly data at all (a bed with no data);
- E8 P6 B-01 1 May 10:00, open: facility F2's only bed, no data;
- E9 P7 C-01 2 May 09:00 -> 11:00 in an unmapped ward (no facility): counts nowhere; an alarm of an encounter never seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from support import serving, token

from ingest.security_headers import SecurityHeaders
from records_bridge.services.db import make_engine
from records_bridge.services.facility.kpi.facilities import FacilityRef, fixed
from records_bridge.services.facility.kpi.routes import kpi_router
from records_bridge.services.facility.kpi.settings import KpiSettings
from records_bridge.services.facility.kpi.store import migrate
from records_bridge.services.hub_identity import HubIdentity

IST = ZoneInfo("Asia/Kolkata")
HOUR = 3_600_000
MIN = 60_000
HUB = "hub-1"
WARD_FACILITY = {"A": "F1", "B": "F2"}
REFS = [
    FacilityRef("F1", "District Hospital Ajmer", "Rajasthan", "Ajmer", 4),
    FacilityRef("F2", "CHC Kishangarh", "Rajasthan", "Ajmer", 2),
    FacilityRef("G1", "Civil Hospital Ahmedabad", "Gujarat", "Ahmedabad", 10),
]


def ist(d: int, h: int = 0, mi: int = 0, month: int = 5) -> int:
    return int(datetime(2024, month, d, h, mi, tzinfo=IST).timestamp() * 1000)


@dataclass
class Clock:
    now: int = field(default_factory=lambda: ist(5, 12))

    def __call__(self) -> int:
        return self.now


class Stream:
    """Outbox events of one hub, numbered in order as the hub numbers them, with the bridge's facility mapping."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.encounters: dict[str, dict[str, Any]] = {}
        self.patients: dict[str, dict[str, Any]] = {}

    def _add(self, at: int, data: dict[str, Any], ward: str | None = None) -> None:
        fac = WARD_FACILITY.get(ward) if ward else None
        self.items.append({"event": {"id": len(self.items) + 1, "at": at, "data": data}, "facility_id": fac})

    def admit(self, eid: str, pid: str, mrn: str, bed: str, start: int, abha: str | None = None) -> None:
        self.patients[eid] = {"patient_id": pid, "mrn": mrn, "abha": abha, "name": f"Patient {pid}"}
        self.encounters[eid] = {"encounter_id": eid, "patient_id": pid, "bed": bed, "ward": bed[0], "start": start}
        self._add(start, {"type": "patient.admitted", "patient": self.patients[eid], "encounter": self.encounters[eid], "by": "adt"}, bed[0])

    def transfer(self, eid: str, bed: str, at: int) -> None:
        old = self.encounters[eid]["bed"]
        self.encounters[eid] |= {"bed": bed, "ward": bed[0]}
        self._add(at, {"type": "patient.transferred", "encounter": self.encounters[eid], "from_bed": old, "by": "adt"}, bed[0])

    def discharge(self, eid: str, end: int, outcome: str = "discharged") -> None:
        enc = self.encounters[eid] | {"end": end, "outcome": outcome}
        summary = {"news2": [], "last_vitals": [], "alarms": [], "charted": 0}
        self._add(end, {"type": "patient.discharged", "patient": self.patients[eid], "encounter": enc, "summary": summary, "by": "adt"},
                  enc["ward"])  # fmt: skip

    def cancel_admission(self, eid: str, at: int) -> None:
        self._add(at, {"type": "admission.cancelled", "encounter": self.encounters[eid], "by": "adt"}, self.encounters[eid]["ward"])

    def band(self, eid: str, t: int, band: str, total: int | None) -> None:
        enc = self.encounters[eid]
        self._add(t, {"type": "score.band_changed", "encounter_id": eid, "patient_id": enc["patient_id"], "bed": enc["bed"], "t": t,
                      "total": total, "partial": total or 0, "band": band, "subscores": {}, "missing": [] if total is not None else ["rr"]})  # fmt: skip

    def alarm(self, eid: str, aid: str, kind: str, category: str, raised: int, acked: int | None = None, resolved: int | None = None,
              priority: str = "medium") -> None:  # fmt: skip
        enc = self.encounters.get(eid, {"patient_id": "nobody", "bed": "X-01"})
        base = {"encounter_id": eid, "patient_id": enc["patient_id"], "bed": enc["bed"], "alarm_id": aid, "kind": kind,
                "priority": priority, "category": category, "detail": kind, "raised": raised}  # fmt: skip
        self._add(raised, base | {"type": "alarm.raised", "t": raised})
        if acked is not None:
            self._add(acked, base | {"type": "alarm.acknowledged", "t": acked, "by": "dr-meena", "acknowledged": acked})
        if resolved is not None:
            extra = {"by": "dr-meena", "acknowledged": acked} if acked is not None else {}
            self._add(resolved, base | {"type": "alarm.resolved", "t": resolved} | extra)

    def hourly(self, eid: str, hour_utc: int, counts: dict[str, int]) -> None:
        enc = self.encounters[eid]
        values = [{"param": p, "median": 80.0, "unit": "/min", "n": n, "first": hour_utc, "last": hour_utc + HOUR - 1} for p, n in counts.items()]
        self._add(hour_utc + HOUR, {"type": "vitals.hourly", "encounter_id": eid, "patient_id": enc["patient_id"], "bed": enc["bed"],
                                    "hour": hour_utc, "values": values})  # fmt: skip

    def sorted_items(self) -> list[dict[str, Any]]:
        """The events in time order, renumbered: the hub writes and numbers them as they happen."""
        out = sorted(self.items, key=lambda i: i["event"]["at"])
        return [i | {"event": i["event"] | {"id": n}} for n, i in enumerate(out, 1)]


def utc_hour(d: int, h: int, month: int = 5) -> int:
    """The UTC clock hour ``h`` of ``d`` May (the hub's hourly summaries are UTC-aligned)."""
    from datetime import UTC

    return int(datetime(2024, month, d, h, tzinfo=UTC).timestamp() * 1000)


def scenario() -> list[dict[str, Any]]:
    """The hand-worked event stream (see the module docstring), as the bridge posts it."""
    s = Stream()
    three = ("hr", "spo2", "rr")
    # E1: 1 May 20:00 -> 2 May 08:00 (= 1 May 14:30Z -> 2 May 02:30Z)
    s.admit("E1", "P1", "M1", "A-01", ist(1, 20))
    s.alarm("E1", "a6", "limit:spo2_low", "physiological", ist(1, 23), ist(1, 23, 1))  # before the window
    s.band("E1", ist(1, 23, 30), "medium", 5)  # an episode before the window
    s.band("E1", ist(2, 0, 30), "low", 1)
    s.hourly("E1", utc_hour(1, 18), {p: 3600 for p in three})  # 23:30-00:30 IST: half in the window
    for h in (19, 20, 21, 22, 23):
        s.hourly("E1", utc_hour(1, h), {"hr": 4000 if h == 20 else 3600, "spo2": 3600, "rr": 1800, "temp": 3600})
    for h in (0, 1):
        s.hourly("E1", utc_hour(2, h), {"hr": 3600, "spo2": 3600, "rr": 1800})
    s.hourly("E1", utc_hour(2, 2), {"hr": 1800, "spo2": 1800, "rr": 900})  # 07:30-08:00 IST
    s.alarm("E1", "a1", "limit:hr_high", "physiological", ist(2, 1), ist(2, 1, 2))
    s.band("E1", ist(2, 3), "medium", 5)
    s.alarm("E1", "a9", "news2", "physiological", ist(2, 3), ist(2, 3, 45), priority="medium")
    s.band("E1", ist(2, 3, 30), "unknown", None)
    s.band("E1", ist(2, 4), "medium", 6)
    s.band("E1", ist(2, 5), "low", 1)
    s.band("E1", ist(2, 6), "medium", 6)
    s.alarm("E1", "a10", "news2", "physiological", ist(2, 6), ist(2, 7, 30))
    s.discharge("E1", ist(2, 8))
    # E6: admitted in error
    s.admit("E6", "P4", "M4", "A-04", ist(2, 2))
    s.alarm("E6", "a5", "limit:hr_low", "physiological", ist(2, 2, 10))
    s.hourly("E6", utc_hour(1, 20, month=5) + 0, {"hr": 3600})  # would count, were the stay real
    s.cancel_admission("E6", ist(2, 2, 30))
    # E9: an unmapped ward; an alarm of an encounter never seen
    s.admit("E9", "P7", "M7", "C-01", ist(2, 9))
    s.alarm("E9", "a11", "limit:hr_high", "physiological", ist(2, 9, 30), ist(2, 9, 31))
    s.discharge("E9", ist(2, 11), "died")
    s.alarm("E-unknown", "a12", "technical:no_data", "technical", ist(2, 9, 40), ist(2, 9, 41))
    # E3: 10:00 -> 14:00 (04:30Z -> 08:30Z), moved at 12:00
    s.admit("E3", "P2", "M2", "A-02", ist(2, 10))
    s.band("E3", ist(2, 10, 25), "medium", 5)
    s.band("E3", ist(2, 10, 30), "high", 7)
    s.alarm("E3", "a7", "news2", "physiological", ist(2, 10, 30), ist(2, 11, 40), priority="high")
    s.alarm("E3", "a2", "technical:no_data", "technical", ist(2, 11), ist(2, 11, 10), ist(2, 11, 15))
    s.band("E3", ist(2, 11, 50), "low", 2)
    s.transfer("E3", "A-05", ist(2, 12))
    s.hourly("E3", utc_hour(2, 4), {p: 1800 for p in three})
    for h in (5, 6, 7):
        s.hourly("E3", utc_hour(2, h), {p: 3600 for p in three})
    s.hourly("E3", utc_hour(2, 8), {p: 1800 for p in three})
    s.discharge("E3", ist(2, 14))
    # E7: 12:00 -> 18:00 died; no hourly data
    s.admit("E7", "P5", "M5", "A-04", ist(2, 12))
    s.band("E7", ist(2, 12, 30), "high", 7)
    s.alarm("E7", "a4", "technical:probe_off", "technical", ist(2, 13), None, ist(2, 13, 5), priority="low")
    s.alarm("E7", "a8", "technical:device_disconnected", "technical", ist(2, 15), ist(2, 15, 20))
    s.discharge("E7", ist(2, 18), "died")
    # E5: 22:00 (16:30Z), open; its hours run over IST midnight (18:30Z)
    s.admit("E5", "P3", "M3", "A-03", ist(2, 22))
    s.band("E5", ist(2, 22, 20), "high", 8)
    s.alarm("E5", "a3", "news2", "physiological", ist(2, 22, 30), ist(2, 22, 34), priority="high")
    s.hourly("E5", utc_hour(2, 16), {p: 1800 for p in three})
    s.hourly("E5", utc_hour(2, 17), {p: 3600 for p in three})
    s.hourly("E5", utc_hour(2, 18), {p: 3600 for p in three})
    # E8: facility F2's one bed, open since 1 May, no data
    s.admit("E8", "P6", "M6", "B-01", ist(1, 10))
    # readmissions: M1 47 h after E1's discharge, M2 49 h after E3's
    s.admit("E2", "P1b", "M1", "A-01", ist(2, 8) + 47 * HOUR)
    s.admit("E4", "P2b", "M2", "A-02", ist(2, 14) + 49 * HOUR)
    return s.sorted_items()


def app_for(db_url: str, hub_base: str, clock: Clock, settings: KpiSettings | None = None, refs: list[FacilityRef] | None = None) -> FastAPI:
    """A small app as the facility service will hold the router: the KPI store migrated, the hub's security headers."""
    engine = make_engine(db_url)
    migrate(engine)
    identity = HubIdentity(hub_base)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(kpi_router(engine, identity, fixed(refs if refs is not None else REFS), settings, clock=clock))
    app.add_middleware(SecurityHeaders)
    app.state.engine = engine
    return app


@dataclass
class Served:
    base: str
    clock: Clock
    app: FastAPI
    http: httpx.Client

    def staff(self, hub_base: str, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(hub_base, user)}"}


@contextmanager
def serve_kpi(db_url: str, hub_base: str, clock: Clock | None = None, **kw: Any) -> Iterator[Served]:
    clock = clock or Clock()
    app = app_for(db_url, hub_base, clock, **kw)
    try:
        with serving(app, "KPI app") as base, httpx.Client(base_url=base, timeout=30) as http:
            yield Served(base, clock, app, http)
    finally:
        app.state.engine.dispose()
