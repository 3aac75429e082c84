"""Exactly once into the EHR, across kills: hub, EHR service and records bridge as processes; the EHR SIGKILLed for
12 s, then the bridge, while patients are admitted, charted, transferred and discharged and alarms are raised and
acknowledged. Afterwards every outbox event is counted in the EHR's own database (SQLite, and the real local
PostgreSQL in a schema of its own).

What "exactly once" means here, counted directly: once the bridge has stopped
at its cursor, the EHR holds exactly the resources the outbox's events up to it
map to (none missing, none extra; of the event in flight at the stop, any first
writes); each holds the content of the last write that touched it; each has as
many versions, in its history too, as there were changes of content in the
writes that touched it in outbox order; and its search index rows are those of
that content. A lost write shows as a missing resource or stale content, a
replay applied twice as an extra version. Everything stored validates with
fhir.resources, and the bridge parked nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from records_db_support import KINDS, records_database
from support import PASSWORD, HubProcess, feed_news2_alarm, free_port, get_json, post_json, teleicu, wait_until

from records_bridge.fhir import FhirWrite, MappingContext, writes_for
from records_bridge.fhir.validation import validated
from records_bridge.services.ehr.search import index_entries
from wire.outbox_events import Event

pytestmark = pytest.mark.integration

CTX = MappingContext(mrn_system="https://hospital.example/mrn", facility_name="District Hospital Jaipur", facility_id="")
EHR_DOWN_S = 12  # several of the bridge's backoff retries (0.5, 1, 2, 4, 8 s)


@pytest.fixture(params=KINDS)
def ehr_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with records_database(request.param, tmp_path, "exactly_once") as url:
        yield url


class Service:
    """``teleicu <args>`` as a child process that can be SIGKILLed and started again on the same port."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name, self.args, self.log = name, args, log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "teleicu", *self.args], stdout=out, stderr=subprocess.STDOUT,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1"))  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, f"{self.name} died by itself: {self.log.read_text()[-3000:]}"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def bridge_cursor(state: Path) -> int:
    if not state.exists():
        return 0
    with contextlib.closing(sqlite3.connect(state)) as db:
        row = db.execute("SELECT last_id FROM cursors WHERE sink = 'ehr'").fetchone() if _has_cursors(db) else None
    return 0 if row is None else row[0]


def _has_cursors(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'cursors'").fetchone() is not None


def all_events(hub: HubProcess) -> list[Event]:
    out: list[Event] = []
    while True:
        page = get_json(f"{hub.base}/api/events?after={out[-1].id if out else 0}&limit=5000", timeout=30, as_="records-bridge")
        out += [Event.model_validate(e) for e in page["events"]]
        if not page["events"]:
            return out


def without_server_meta(resource: dict) -> dict:
    r = dict(resource)
    meta = {k: v for k, v in r.pop("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    return r | ({"meta": meta} if meta else {})


State = dict[tuple[str, str], tuple[dict, int]]


def replayed(writes: list[FhirWrite]) -> State:
    """(type, id) -> (its last content, its number of content changes), from writes applied in order."""
    state: State = {}
    for w in writes:
        key = (w.resource["resourceType"], w.resource["id"])
        content = without_server_meta(w.resource)
        old = state.get(key)
        state[key] = (content, 1 if old is None else old[1] + (old[0] != content))
    return state


def possible_states(events: list[Event], cursor: int) -> list[State]:
    """What the EHR may hold once the bridge has stopped at ``cursor``: every event up to it applied, and of the
    next one (in flight when the bridge stopped) any first k of its writes."""
    done = [w for e in events if e.id <= cursor for w in writes_for(e, CTX)]
    following = next((writes_for(e, CTX) for e in events if e.id == cursor + 1), [])
    return [replayed(done + following[:k]) for k in range(len(following) + 1)]


def workload(hub: HubProcess, stop_at: float, done: threading.Event, errors: list[str]) -> None:
    """Admissions, alarms, charting, acknowledgements, transfers and discharges, spread until ``stop_at``."""
    try:
        i = 0
        while time.monotonic() < stop_at:
            bed, spare = f"A-{2 * i + 1:02d}", f"A-{2 * i + 2:02d}"
            feed_news2_alarm(hub, "A", bed, agent=f"edge-{bed}")  # the bed on the census, scoring 11: alarm and band change
            feed_news2_alarm(hub, "A", spare, agent=f"edge-{spare}")
            patient = {"mrn": f"MRN-{i:04d}", "name": f"Patient Number {i}", "sex": "female" if i % 2 else "male", "birth_date": "1960-05-17"}
            status, body = post_json(f"{hub.base}/api/admissions", {"patient": patient, "bed": bed})
            assert status == 201, body
            enc = body["encounter"]["encounter_id"]
            assert post_json(f"{hub.base}/api/beds/{bed}/chart", {"param": "o2", "value": "oxygen"})[0] == 201
            assert post_json(f"{hub.base}/api/beds/{bed}/chart", {"param": "temp", "value": 38.4})[0] == 201
            for alert in get_json(f"{hub.base}/api/alerts?bed={bed}")["alerts"][:1]:
                post_json(f"{hub.base}/api/alerts/{alert['id']}/ack", {})
            if i % 3 == 1:
                assert post_json(f"{hub.base}/api/encounters/{enc}/transfer", {"bed": spare})[0] == 200
            if i % 2 == 0:
                time.sleep(1)
                status, body = post_json(f"{hub.base}/api/encounters/{enc}/discharge", {"outcome": "discharged"}, timeout=30)
                assert status == 200, body
            i += 1
            time.sleep(2)
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(repr(exc))
    finally:
        done.set()


def test_every_outbox_event_is_in_the_ehr_exactly_once_across_kills(hub: HubProcess, ehr_db: str, tmp_path: Path) -> None:
    secret_file = tmp_path / "ehr-bridge.secret"
    made = teleicu("ehr", "clients", "add", "bridge", "--role", "writer", "--db", ehr_db, "--secret-file", str(secret_file))
    assert made.returncode == 0, made.stdout + made.stderr
    ehr_port, metrics_port = free_port(), free_port()
    ehr = Service("ehr", ["ehr", "serve", "--db", ehr_db, "--host", "127.0.0.1", "--port", str(ehr_port)], tmp_path)
    (tmp_path / "bridge.password").write_text(PASSWORD + "\n")
    config = {"hub": {"url": hub.base, "user": "records-bridge", "password_file": "bridge.password"},
              "ehr": {"url": f"http://127.0.0.1:{ehr_port}/fhir", "secret_file": secret_file.name},
              "hospital": {"mrn_system": CTX.mrn_system, "facility_name": CTX.facility_name},
              "state": "bridge-state.sqlite3", "metrics_listen": f"127.0.0.1:{metrics_port}"}  # fmt: skip
    (tmp_path / "bridge.yaml").write_text(yaml.safe_dump(config))
    bridge = Service("bridge", ["bridge", "--config", str(tmp_path / "bridge.yaml"), "--log-level", "info"], tmp_path)
    state = tmp_path / "bridge-state.sqlite3"
    errors: list[str] = []
    done = threading.Event()
    try:
        ehr.start()
        wait_until(lambda: get_json(f"http://127.0.0.1:{ehr_port}/healthz", as_=None), "the EHR service", timeout=30)
        bridge.start()
        t0 = time.monotonic()
        threading.Thread(target=workload, args=(hub, t0 + 55, done, errors), daemon=True).start()
        wait_until(lambda: bridge_cursor(state) > 0, "the bridge's first delivery", timeout=30)
        ehr.kill()  # the EHR goes down hard for EHR_DOWN_S; the hub and the bridge go on
        down_at = bridge_cursor(state)
        time.sleep(EHR_DOWN_S)
        stuck_at = bridge_cursor(state)
        assert stuck_at <= down_at + 1, "the bridge moved past events the EHR never took"  # +1: the event in flight at the kill
        ehr.start()
        wait_until(lambda: bridge_cursor(state) > stuck_at + 5, "the bridge resuming after the EHR's return", timeout=60)
        bridge.kill()  # mid-backlog: the event in flight is sent again by the next bridge
        time.sleep(2)
        bridge.start()
        assert done.wait(120) and not errors, errors
        last = get_json(f"{hub.base}/api/events?limit=1", as_="records-bridge")["last_id"]
        wait_until(lambda: bridge_cursor(state) >= last, f"the bridge to reach event {last}", timeout=120, interval=0.5)
    finally:
        bridge.stop()  # the hub goes on writing (alarms resolve as the fed values go stale): the cursor says how far
        ehr.stop()
    cursor = bridge_cursor(state)
    events = all_events(hub)
    assert [e.id for e in events] == list(range(1, len(events) + 1)) and cursor >= last
    kinds = {e.data.type for e in events if e.id <= cursor}
    assert {"patient.admitted", "patient.transferred", "patient.discharged", "observation.charted", "alarm.raised",
            "alarm.acknowledged", "score.band_changed"} <= kinds, kinds  # fmt: skip
    engine = sa.create_engine(ehr_db)
    try:
        with engine.connect() as c:
            rows = c.execute(sa.text("SELECT row_id, type, id, version_id, content FROM ehr_resources")).all()
            history = dict(((t, i), n) for t, i, n in c.execute(sa.text("SELECT type, id, count(*) FROM ehr_history GROUP BY type, id")))
            indexed: dict[int, list[tuple]] = {}
            for row_id, *entry in c.execute(sa.text("SELECT row_id, param, value, system, lo, hi FROM ehr_search")):
                indexed.setdefault(row_id, []).append(tuple(entry))
    finally:
        engine.dispose()
    held = {(t, i): (json.loads(content), v) for _r, t, i, v, content in rows}
    candidates = possible_states(events, cursor)
    matching = [w for w in candidates if set(w) == set(held) and all(without_server_meta(held[k][0]) == w[k][0] for k in w)]
    assert matching, (f"the EHR holds {len(held)} resources; the events up to {cursor} account for {len(candidates[0])}: "
                      f"missing {sorted(set(candidates[0]) - set(held))[:5]}, extra {sorted(set(held) - set(candidates[-1]))[:5]}")  # fmt: skip
    want = matching[0]
    for key, (_content, versions) in want.items():
        stored, version = held[key]
        assert version == versions == history[key], f"{key}: {version} versions stored ({history[key]} in history), {versions} written"
        validated(stored)
    for row_id, kind, ident, _v, content in rows:  # the search index is the final content's, no more, no less
        expected = sorted((e.param, e.value, e.system, e.lo, e.hi) for e in index_entries(json.loads(content)))
        assert sorted(indexed.get(row_id, [])) == expected, f"{kind}/{ident}: stale or duplicate search index rows"
    with contextlib.closing(sqlite3.connect(state)) as db:
        assert db.execute("SELECT count(*) FROM parked").fetchone() == (0,)
    by_type: dict[str, int] = {}
    for t, _i in held:
        by_type[t] = by_type.get(t, 0) + 1
    print(f"\n{cursor} outbox events delivered -> EHR {by_type} ({sum(v for _c, v in want.values())} versions)")
