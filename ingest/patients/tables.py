"""Patients and encounters in the state database: the SQL, run inside the caller's transaction.

An encounter is one stay: a patient in a bed (and, after transfers, in the
beds listed in ``encounter_beds``) from ``start`` until ``end``. At most one
open encounter per bed and per patient (unique partial indexes make the
database refuse a second one, whatever the caller checked). ``status`` is
``open``, ``ended`` (discharged, with an outcome) or ``cancelled`` (an
admission entered in error: it never happened). ``encounter_scores`` keeps
each change of the patient's NEWS2 (total, band) for the discharge summary;
``charted`` the values nurses charted, by whom; ``applied_messages`` the
HL7 messages already applied (so a message re-sent after a lost ACK is applied
once, whatever the hub forgot in a restart).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ingest.stores.portable_sql import Conn, json_text, upsert
from wire.outbox_events import Encounter, Patient

SCHEMA = """
CREATE TABLE IF NOT EXISTS patients (
    patient_id TEXT PRIMARY KEY, mrn TEXT NOT NULL UNIQUE, body TEXT NOT NULL, updated INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS encounters (
    encounter_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, bed TEXT NOT NULL, ward TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER, outcome TEXT, status TEXT NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS encounters_open_bed ON encounters (bed) WHERE status = 'open';
CREATE UNIQUE INDEX IF NOT EXISTS encounters_open_patient ON encounters (patient_id) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS encounters_patient ON encounters (patient_id, start);
CREATE TABLE IF NOT EXISTS encounter_beds (
    encounter_id TEXT NOT NULL, bed TEXT NOT NULL, ward TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER,
    PRIMARY KEY (encounter_id, start)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS encounter_beds_bed ON encounter_beds (bed, start);
CREATE TABLE IF NOT EXISTS encounter_scores (
    encounter_id TEXT NOT NULL, t INTEGER NOT NULL, total INTEGER, band TEXT NOT NULL, partial INTEGER NOT NULL,
    PRIMARY KEY (encounter_id, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied_messages (key TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS charted (
    encounter_id TEXT NOT NULL, bed TEXT NOT NULL, param TEXT NOT NULL, t INTEGER NOT NULL, value REAL NOT NULL,
    "by" TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (encounter_id, param, t)
) WITHOUT ROWID;
"""


_SAVE_PATIENT = upsert("patients", "patient_id, mrn, body, updated", "patient_id")


@dataclass(frozen=True, slots=True)
class Stay:
    """A stretch of an encounter in one bed: ``end`` None while the patient is still there."""

    bed: str
    ward: str
    start: int
    end: int | None


def save_patient(conn: Conn, p: Patient, now: int) -> None:
    conn.execute(_SAVE_PATIENT, (p.patient_id, p.mrn, p.model_dump_json(), now))


def get_patient(conn: Conn, patient_id: str) -> Patient | None:
    row = conn.execute("SELECT body FROM patients WHERE patient_id = ?", (patient_id,)).fetchone()
    return None if row is None else Patient.model_validate_json(row[0])


def patient_by_mrn(conn: Conn, mrn: str) -> Patient | None:
    row = conn.execute("SELECT body FROM patients WHERE mrn = ?", (mrn,)).fetchone()
    return None if row is None else Patient.model_validate_json(row[0])


_ENC = 'encounter_id, patient_id, bed, ward, start, "end", outcome'


def _encounter(row: tuple | None) -> Encounter | None:
    if row is None:
        return None
    eid, pid, bed, ward, start, end, outcome = row
    return Encounter(encounter_id=eid, patient_id=pid, bed=bed, ward=ward, start=start, end=end, outcome=outcome)


def get_encounter(conn: Conn, encounter_id: str) -> tuple[Encounter, str] | None:
    """The encounter and its status (open, ended, cancelled)."""
    row = conn.execute(f"SELECT {_ENC}, status FROM encounters WHERE encounter_id = ?", (encounter_id,)).fetchone()
    return None if row is None else (_encounter(row[:-1]), row[-1])  # type: ignore[return-value]


def open_encounter_in_bed(conn: Conn, bed: str) -> Encounter | None:
    return _encounter(conn.execute(f"SELECT {_ENC} FROM encounters WHERE bed = ? AND status = 'open'", (bed,)).fetchone())


def open_encounter_of_patient(conn: Conn, patient_id: str) -> Encounter | None:
    return _encounter(conn.execute(f"SELECT {_ENC} FROM encounters WHERE patient_id = ? AND status = 'open'", (patient_id,)).fetchone())


def open_encounters(conn: Conn, ward: str | None = None) -> list[tuple[Encounter, Patient]]:
    """The open encounters with their patients (of one ward's beds, when given)."""
    sql = (f"SELECT {', '.join('e.' + c for c in _ENC.split(', '))}, p.body FROM encounters e JOIN patients p USING (patient_id) "
           "WHERE e.status = 'open'")  # fmt: skip
    rows = conn.execute(sql, ()).fetchall() if ward is None else conn.execute(sql + " AND e.ward = ?", (ward,)).fetchall()
    return [(_encounter(r[:-1]), Patient.model_validate_json(r[-1])) for r in rows]  # type: ignore[misc]


def encounters(conn: Conn, *, bed: str | None, patient_id: str | None, open_only: bool, limit: int) -> list[tuple[Encounter, str]]:
    sql, args = f"SELECT {_ENC}, status FROM encounters WHERE TRUE", []
    if bed is not None:
        sql += " AND encounter_id IN (SELECT encounter_id FROM encounter_beds WHERE bed = ?)"
        args.append(bed)
    if patient_id is not None:
        sql += " AND patient_id = ?"
        args.append(patient_id)
    if open_only:
        sql += " AND status = 'open'"
    rows = conn.execute(sql + " ORDER BY start DESC LIMIT ?", (*args, limit)).fetchall()
    return [(_encounter(r[:-1]), r[-1]) for r in rows]  # type: ignore[misc]


def insert_encounter(conn: Conn, e: Encounter) -> None:
    conn.execute(f"INSERT INTO encounters ({_ENC}, status) VALUES (?,?,?,?,?,NULL,NULL,'open')",
                 (e.encounter_id, e.patient_id, e.bed, e.ward, e.start))  # fmt: skip
    conn.execute("INSERT INTO encounter_beds VALUES (?,?,?,?,NULL)", (e.encounter_id, e.bed, e.ward, e.start))


def move(conn: Conn, encounter_id: str, bed: str, ward: str, t: int) -> int:
    """The patient moves to ``bed`` at ``t``: the current stay ends, a new one starts. A move stamped no later than
    the current stay's start (HL7 times have whole seconds: an A02 in the second of its A01) starts 1 ms after it,
    so stays never overlap. Returns the time used."""
    (current,) = conn.execute("SELECT max(start) FROM encounter_beds WHERE encounter_id = ?", (encounter_id,)).fetchone()
    t = max(t, current + 1)
    conn.execute('UPDATE encounter_beds SET "end" = ? WHERE encounter_id = ? AND "end" IS NULL', (t, encounter_id))
    conn.execute("INSERT INTO encounter_beds VALUES (?,?,?,?,NULL)", (encounter_id, bed, ward, t))
    conn.execute("UPDATE encounters SET bed = ?, ward = ? WHERE encounter_id = ?", (bed, ward, encounter_id))
    return t


def end(conn: Conn, encounter_id: str, t: int, outcome: str) -> int:
    """The encounter ends at ``t`` (no earlier than its last stay began); returns the time used."""
    (current,) = conn.execute("SELECT max(start) FROM encounter_beds WHERE encounter_id = ?", (encounter_id,)).fetchone()
    t = max(t, current)
    conn.execute('UPDATE encounter_beds SET "end" = ? WHERE encounter_id = ? AND "end" IS NULL', (t, encounter_id))
    conn.execute("""UPDATE encounters SET "end" = ?, outcome = ?, status = 'ended' WHERE encounter_id = ?""", (t, outcome, encounter_id))
    return t


def reopen(conn: Conn, encounter_id: str) -> None:
    """A discharge entered in error: the encounter, and its last stay, are open again."""
    (last,) = conn.execute("SELECT max(start) FROM encounter_beds WHERE encounter_id = ?", (encounter_id,)).fetchone()
    conn.execute('UPDATE encounter_beds SET "end" = NULL WHERE encounter_id = ? AND start = ?', (encounter_id, last))
    conn.execute("""UPDATE encounters SET "end" = NULL, outcome = NULL, status = 'open' WHERE encounter_id = ?""", (encounter_id,))


def cancel(conn: Conn, encounter_id: str, t: int) -> None:
    conn.execute('UPDATE encounter_beds SET "end" = coalesce("end", ?) WHERE encounter_id = ?', (t, encounter_id))
    conn.execute("""UPDATE encounters SET "end" = coalesce("end", ?), status = 'cancelled' WHERE encounter_id = ?""", (t, encounter_id))


def stays(conn: Conn, encounter_id: str) -> list[Stay]:
    rows = conn.execute('SELECT bed, ward, start, "end" FROM encounter_beds WHERE encounter_id = ? ORDER BY start', (encounter_id,))
    return [Stay(*r) for r in rows]


def patient_json(p: Patient) -> dict[str, object]:
    return json.loads(p.model_dump_json())


def alarm_rows(conn: Conn, stays: list[Stay], until: int, *, physiological_only: bool) -> list[tuple[str, int, str, dict]]:
    """The alarm audit rows (alarm id, time, event, alarm body) of the beds and periods of ``stays``, in order;
    ``until`` closes a stay still open."""
    out: list[tuple[str, int, str, dict]] = []
    only = f" AND {json_text(conn, 'body', 'category')} = 'physiological'" if physiological_only else ""
    for s in stays:
        rows = conn.execute("SELECT alert_id, at, event, body FROM alert_audit WHERE at >= ? AND at <= ? "
                            f"AND {json_text(conn, 'body', 'bed')} = ?{only} ORDER BY at, rowid",
                            (s.start, s.end if s.end is not None else until, s.bed))  # fmt: skip
        out += [(alert_id, at, event, json.loads(body)) for alert_id, at, event, body in rows]
    return out
