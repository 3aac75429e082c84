"""A discharge with a follow-up, end to end and exactly once: hub, EHR, health locker, OPD queue and records bridge as
processes. Patients are admitted and discharged (most asking for a follow-up visit) while the OPD queue is
SIGKILLed, then the locker, then the bridge, each started again on the same port.

Counted afterwards in the services' own databases: each discharge's summary is in the patient's locker once
(FHIR Bundle and PDF), each follow-up is booked once in the OPD queue, on the day it is due, with gapless token
numbers, and its token is in the locker once as an OPDToken record; the bridge parked nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import yaml
from support import PASSWORD, HubProcess, feed_news2_alarm, free_port, get_json, post_json, teleicu, token, wait_until
from test_records_exactly_once import Service

import pytest

pytestmark = pytest.mark.integration

IST = ZoneInfo("Asia/Kolkata")
PATIENTS = 6  # every one discharged; all but the last two ask for a follow-up in medicine


def cursor_of(state: Path, sink: str) -> int:
    if not state.exists():
        return 0
    with contextlib.closing(sqlite3.connect(state)) as db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'cursors'").fetchone() is None:
            return 0
        row = db.execute("SELECT last_id FROM cursors WHERE sink = ?", (sink,)).fetchone()
    return 0 if row is None else row[0]


def as_staff(hub: HubProcess, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(hub.base, user)}"}


def test_a_follow_up_is_booked_and_filed_once_across_kills_of_the_queue_the_locker_and_the_bridge(hub: HubProcess, tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("ehr", "locker", "queue")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    dbs = {name: tmp_path / f"{name}.sqlite3" for name in ports}
    secret_file = tmp_path / "ehr-bridge.secret"
    made = teleicu("ehr", "clients", "add", "bridge", "--role", "writer", "--db", str(dbs["ehr"]), "--secret-file", str(secret_file))
    assert made.returncode == 0, made.stdout + made.stderr
    (tmp_path / "share.secret").write_text("s" * 48 + "\n")
    services = {
        "ehr": Service("ehr", ["ehr", "serve", "--db", str(dbs["ehr"]), "--port", str(ports["ehr"])], tmp_path),
        "locker": Service("locker", ["locker", "serve", "--db", str(dbs["locker"]), "--port", str(ports["locker"]), "--hub", hub.base,
                                     "--sms-log", str(tmp_path / "locker-sms.jsonl"), "--share-secret-file", str(tmp_path / "share.secret")],
                          tmp_path),
        "queue": Service("queue", ["queue", "serve", "--db", str(dbs["queue"]), "--port", str(ports["queue"]), "--hub", hub.base,
                                   "--sms-log", str(tmp_path / "queue-sms.jsonl")], tmp_path),
    }  # fmt: skip
    (tmp_path / "bridge.password").write_text(PASSWORD + "\n")
    config = {"hub": {"url": hub.base, "user": "records-bridge", "password_file": "bridge.password"},
              "ehr": {"url": f"{urls['ehr']}/fhir", "secret_file": secret_file.name},
              "hospital": {"mrn_system": "https://hospital.example/mrn", "facility_name": "District Hospital Jaipur"},
              "locker": {"url": urls["locker"], "facility": "DH-JAIPUR"},
              "queue": {"url": urls["queue"], "queues": {"MED": "med"}},
              "state": "bridge-state.sqlite3"}  # fmt: skip
    (tmp_path / "bridge.yaml").write_text(yaml.safe_dump(config))
    bridge = Service("bridge", ["bridge", "--config", str(tmp_path / "bridge.yaml"), "--log-level", "info"], tmp_path)
    state = tmp_path / "bridge-state.sqlite3"

    def up(name: str) -> None:
        services[name].start()
        wait_until(lambda: get_json(f"{urls[name]}/healthz", as_=None), f"the {name} service", timeout=30)

    def follow_ups_booked() -> int:
        with contextlib.closing(sqlite3.connect(dbs["queue"])) as db:
            return db.execute("SELECT count(*) FROM queue_tokens WHERE booking_id LIKE 'follow-up-%'").fetchone()[0]

    discharged: list[tuple[str, str, bool]] = []  # (encounter, discharge day, follow-up asked)
    try:
        for name in services:
            up(name)
        admin = as_staff(hub, "admin")
        for path, body in (("/api/facilities/dh-jaipur", {"name": "District Hospital Jaipur"}),
                           ("/api/facilities/dh-jaipur/departments/med", {"name": "Medicine"}),
                           ("/api/departments/med/queues/med", {"name": "Medicine OPD", "prefix": "MED"})):  # fmt: skip
            status, answer = post_json(urls["queue"] + path, body, method="PUT", as_=None, headers=admin)
            assert status in (200, 201), (path, status, answer)
        bridge.start()
        for i in range(PATIENTS):
            bed = f"A-{i + 1:02d}"
            feed_news2_alarm(hub, "A", bed, agent=f"edge-{bed}")
            patient = {"mrn": f"MRN-{i:04d}", "name": f"Patient Number {i}", **({"abha": "91-1234-5678-9012"} if i == 0 else {})}
            status, body = post_json(f"{hub.base}/api/admissions", {"patient": patient, "bed": bed})
            assert status == 201, body
            enc = body["encounter"]["encounter_id"]
            follow = i < PATIENTS - 2
            discharge = {"outcome": "discharged", **({"follow_up": {"department": "MED", "after_days": 7}} if follow else {})}
            status, body = post_json(f"{hub.base}/api/encounters/{enc}/discharge", discharge, timeout=30)
            assert status == 200, body
            discharged.append((enc, dt.datetime.fromtimestamp(body["encounter"]["end"] / 1000, IST).date().isoformat(), follow))
            if i == 1:  # the queue goes down hard with the first follow-ups waiting for it
                wait_until(lambda: follow_ups_booked() >= 1, "the first follow-up booked", timeout=60)
                services["queue"].kill()
            if i == 2:
                up("queue")
                services["locker"].kill()  # then the locker
            if i == 3:
                up("locker")
                wait_until(lambda: cursor_of(state, "opd") > 0, "the follow-up sink to move", timeout=60)
                bridge.kill()  # and the bridge, mid-way (kill waits for it to be gone)
                bridge.start()
        last = get_json(f"{hub.base}/api/events?limit=1", as_="records-bridge")["last_id"]
        for sink in ("locker", "opd"):
            wait_until(lambda s=sink: cursor_of(state, s) >= last, f"the {sink} sink to reach event {last}", timeout=120, interval=0.5)
    finally:
        bridge.stop()
        for s in services.values():
            s.stop()

    follow_ups = [(enc, day) for enc, day, follow in discharged if follow]
    queue = sa.create_engine(f"sqlite:///{dbs['queue']}")
    locker = sa.create_engine(f"sqlite:///{dbs['locker']}")
    try:
        with queue.connect() as c:
            booked = c.execute(sa.text("SELECT booking_id, day, number, category FROM queue_tokens WHERE booking_id IS NOT NULL")).all()
        with locker.connect() as c:
            filed = c.execute(sa.text("SELECT record_id, type FROM locker_records")).all()
            contents = c.execute(sa.text("SELECT type, bundle IS NOT NULL, length(pdf) FROM locker_records")).all()
    finally:
        queue.dispose()
        locker.dispose()
    due = {enc: (dt.date.fromisoformat(day) + dt.timedelta(days=7)).isoformat() for enc, day in follow_ups}
    assert sorted(b.booking_id for b in booked) == sorted(f"follow-up-{enc}" for enc in due)  # each once, none extra
    assert all(b.day == due[b.booking_id.removeprefix("follow-up-")] and b.category == "booked" for b in booked)
    for day in {b.day for b in booked}:  # gapless numbers on each day
        assert sorted(b.number for b in booked if b.day == day) == list(range(1, sum(b.day == day for b in booked) + 1))
    want = {(f"discharge-{enc}", "DischargeSummary") for enc, _d, _f in discharged} | {(f"opd-token-{enc}", "OPDToken") for enc in due}
    assert sorted(filed) == sorted(want), f"missing {want - set(filed)}, extra {set(filed) - want}"
    assert all(has_bundle and (pdf or 0) > 1000 for kind, has_bundle, pdf in contents if kind == "DischargeSummary"), contents  # FHIR + PDF
    assert all(has_bundle for kind, has_bundle, _pdf in contents if kind == "OPDToken"), contents
    parked = teleicu("bridge", "--config", str(tmp_path / "bridge.yaml"), "--parked")
    assert parked.returncode == 0 and parked.stdout.strip() == "", parked.stdout
