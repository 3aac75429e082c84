"""The KPI store: the hub's outbox events taken into normalised facts, once each.

``take(engine, hub, items, now)`` writes a batch in one transaction: each
(hub, event id) is recorded in ``kpi_events`` first and an event already there
is skipped, so the bridge's retries change nothing. What each event type adds:

- ``patient.admitted`` / ``transferred`` / ``discharged`` / ``admission.cancelled`` /
  ``discharge.cancelled``: the encounter row as the event carries it (bed, ward, start, end,
  outcome, cancelled), with the facility the bridge mapped its ward to and the patient's MRN
  and ABHA number when the event names the patient. A row only moves forward: an event older
  than the one the row is from does not overwrite it. A transfer also adds a ``kpi_transfers`` row.
- ``patient.updated``: the patient's MRN and ABHA number on their encounters at that hub.
- ``score.band_changed``: a ``kpi_news2`` row (time, band, total).
- ``alarm.raised|acknowledged|resolved``: the ``kpi_alarms`` row (raised; the first
  acknowledgement and who; resolved); each acknowledgement also adds a ``kpi_alarm_acks`` row.
- ``vitals.hourly``: a ``kpi_hourly`` row per parameter (encounter, hour, parameter, samples).
- ``observation.charted``: recorded as seen, nothing else.

Events that name an encounter (alarms, scores, hourly vitals) are tied to a
facility only through the encounter row, when a query runs: one whose
encounter has never arrived is kept, counts for no facility, and counts for
its facility from the moment the encounter's admission (or any later
encounter event) arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, text

from records_bridge.services.db import migrate_to_head, write_transaction
from wire.outbox_events import (AdmissionCancelled, AlarmEvent, DischargeCancelled, Encounter, Event, Patient, PatientAdmitted,
                                PatientDischarged, PatientTransferred, PatientUpdated, ScoreBandChanged, VitalsHourly)  # fmt: skip

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "kpi_alembic_version"
MAX_ID = 200  # hub, facility, encounter and alarm ids are far shorter; longer is refused, not cut


def migrate(engine: Engine) -> None:
    """The KPI store's schema at its newest revision (a no-op when it is there already)."""
    migrate_to_head(engine, MIGRATIONS, VERSION_TABLE)


class Item(BaseModel):
    """One posted event: the hub's outbox event and the facility the bridge maps its ward to (events with an encounter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event: Event
    facility_id: str | None = Field(None, min_length=1, max_length=MAX_ID)


_SEEN = text("INSERT INTO kpi_events (hub, event_id, type, at, received) VALUES (:hub, :id, :type, :at, :now) ON CONFLICT DO NOTHING")
_ENCOUNTER_NOW = text("SELECT last_event FROM kpi_encounters WHERE hub = :hub AND encounter_id = :eid")
_ENCOUNTER_INSERT = text(
    "INSERT INTO kpi_encounters (hub, encounter_id, patient_id, mrn, abha, facility_id, ward, bed, start_ms, end_ms, outcome, cancelled,"
    " last_event) VALUES (:hub, :eid, :pid, :mrn, :abha, :fac, :ward, :bed, :start, :end, :outcome, :cancelled, :id)"
)
_ENCOUNTER_UPDATE = text(
    "UPDATE kpi_encounters SET patient_id = :pid, mrn = COALESCE(:mrn, mrn), abha = COALESCE(:abha, abha),"
    " facility_id = COALESCE(:fac, facility_id), ward = :ward, bed = :bed, start_ms = :start, end_ms = :end, outcome = :outcome,"
    " cancelled = :cancelled, last_event = :id WHERE hub = :hub AND encounter_id = :eid AND last_event < :id"
)
_PATIENT_UPDATE = text("UPDATE kpi_encounters SET mrn = :mrn, abha = COALESCE(:abha, abha) WHERE hub = :hub AND patient_id = :pid")
_TRANSFER = text("INSERT INTO kpi_transfers (hub, event_id, encounter_id, t, from_bed, to_bed, ward)"
                 " VALUES (:hub, :id, :eid, :t, :from_bed, :to_bed, :ward)")  # fmt: skip
_NEWS2 = text("INSERT INTO kpi_news2 (hub, event_id, encounter_id, t, band, total) VALUES (:hub, :id, :eid, :t, :band, :total)")
_ALARM_INSERT = text(
    "INSERT INTO kpi_alarms (hub, alarm_id, encounter_id, kind, category, priority, raised, acknowledged, acknowledged_by, resolved)"
    " VALUES (:hub, :aid, :eid, :kind, :category, :priority, :raised, :ack, :by, :resolved) ON CONFLICT DO NOTHING"
)
_ALARM_UPDATE = text(
    "UPDATE kpi_alarms SET priority = :priority, acknowledged = COALESCE(acknowledged, :ack), acknowledged_by = COALESCE(acknowledged_by, :by),"
    " resolved = COALESCE(:resolved, resolved) WHERE hub = :hub AND alarm_id = :aid"
)
_ACK = text("INSERT INTO kpi_alarm_acks (hub, event_id, alarm_id, encounter_id, kind, t, ack_by) VALUES (:hub, :id, :aid, :eid, :kind, :t, :by)")
_HOURLY = text("INSERT INTO kpi_hourly (hub, encounter_id, hour, param, n) VALUES (:hub, :eid, :hour, :param, :n) ON CONFLICT DO NOTHING")


def take(engine: Engine, hub: str, items: Sequence[Item], now: int) -> int:
    """Store a batch from ``hub`` in one transaction; returns how many of its events were new."""
    new = 0
    with write_transaction(engine) as conn:
        for item in items:
            e = item.event
            if conn.execute(_SEEN, {"hub": hub, "id": e.id, "type": e.data.type, "at": e.at, "now": now}).rowcount == 0:
                continue  # taken before: a retry
            new += 1
            _apply(conn, hub, e, item.facility_id)
    return new


def _apply(conn: Connection, hub: str, e: Event, facility_id: str | None) -> None:
    d = e.data
    if isinstance(d, PatientAdmitted | PatientDischarged):
        _encounter(conn, hub, e.id, d.encounter, d.patient, facility_id, cancelled=False)
    elif isinstance(d, PatientTransferred):
        _encounter(conn, hub, e.id, d.encounter, d.patient, facility_id, cancelled=False)
        conn.execute(_TRANSFER, {"hub": hub, "id": e.id, "eid": d.encounter.encounter_id, "t": e.at, "from_bed": d.from_bed,
                                 "to_bed": d.encounter.bed, "ward": d.encounter.ward})  # fmt: skip
    elif isinstance(d, AdmissionCancelled):
        _encounter(conn, hub, e.id, d.encounter, d.patient, facility_id, cancelled=True)
    elif isinstance(d, DischargeCancelled):
        _encounter(conn, hub, e.id, d.encounter, d.patient, facility_id, cancelled=False)
    elif isinstance(d, PatientUpdated):
        conn.execute(_PATIENT_UPDATE, {"hub": hub, "pid": d.patient.patient_id, "mrn": d.patient.mrn, "abha": d.patient.abha})
    elif isinstance(d, ScoreBandChanged):
        conn.execute(_NEWS2, {"hub": hub, "id": e.id, "eid": d.encounter_id, "t": d.t, "band": d.band, "total": d.total})
    elif isinstance(d, AlarmEvent):
        _alarm(conn, hub, e.id, d)
    elif isinstance(d, VitalsHourly):
        if d.values:
            conn.execute(_HOURLY, [{"hub": hub, "eid": d.encounter_id, "hour": d.hour, "param": v.param, "n": v.n} for v in d.values])


def _encounter(conn: Connection, hub: str, event_id: int, enc: Encounter, patient: Patient | None, facility_id: str | None, *,
               cancelled: bool) -> None:  # fmt: skip
    row = {"hub": hub, "eid": enc.encounter_id, "pid": enc.patient_id, "mrn": patient.mrn if patient else None,
           "abha": patient.abha if patient else None, "fac": facility_id, "ward": enc.ward, "bed": enc.bed, "start": enc.start,
           "end": enc.end, "outcome": enc.outcome, "cancelled": cancelled, "id": event_id}  # fmt: skip
    if conn.execute(_ENCOUNTER_NOW, row).first() is None:
        conn.execute(_ENCOUNTER_INSERT, row)
    else:
        conn.execute(_ENCOUNTER_UPDATE, row)


def _alarm(conn: Connection, hub: str, event_id: int, d: AlarmEvent) -> None:
    ack = d.acknowledged if d.acknowledged is not None else (d.t if d.type == "alarm.acknowledged" else None)
    row = {"hub": hub, "aid": d.alarm_id, "eid": d.encounter_id, "kind": d.kind, "category": d.category, "priority": d.priority,
           "raised": d.raised if d.raised is not None else d.t, "ack": ack, "by": d.by if ack is not None else None,
           "resolved": d.t if d.type == "alarm.resolved" else None}  # fmt: skip
    if conn.execute(_ALARM_INSERT, row).rowcount == 0:
        conn.execute(_ALARM_UPDATE, row)
    if d.type == "alarm.acknowledged":
        conn.execute(_ACK, {"hub": hub, "id": event_id, "aid": d.alarm_id, "eid": d.encounter_id, "kind": d.kind, "t": d.t, "by": d.by})
