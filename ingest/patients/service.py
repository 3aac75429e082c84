"""Admit, transfer, discharge, cancel and update: each one transaction with its outbox event and its audit entry.

Every operation checks and writes inside one state-store transaction (the
writer thread runs them one at a time, so two clerks cannot admit two patients
into one bed: the second finds it taken, and the database's unique indexes
would refuse it anyway). The same transaction appends the change's outbox event
(``ingest.outbox``) and its entry in the hash-chained audit log, so the records
bridge, the audit and the census can never disagree. The in-memory ``Census``
(which bed holds which patient now) is updated once the transaction commits.

Refusals raise ``PatientRefused`` with an HTTP-like status: 404 (no such
encounter or patient), 409 (a bed taken, an encounter already ended, a patient
already admitted elsewhere) or 400 (a time before the admission).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ingest.auth import audit_log
from ingest.auth.audit_log import AuditEntry
from ingest.outbox import append as outbox_append
from ingest.patients import tables
from ingest.patients.census import Census
from ingest.patients.records import PatientDetails
from ingest.stores.base import ConstraintError
from ingest.stores.group_commit import GroupCommitDatabase
from ingest.stores.portable_sql import Conn
from wire.ids import new_id
from wire.outbox_events import (
    AdmissionCancelled,
    AlarmSummary,
    DischargeCancelled,
    DischargeSummary,
    Encounter,
    FollowUp,
    Outcome,
    Patient,
    PatientAdmitted,
    PatientDischarged,
    PatientTransferred,
    PatientUpdated,
    ScorePoint,
    VitalValue,
)

MAX_SUMMARY_POINTS = 500
MAX_SUMMARY_ALARMS = 200


T = TypeVar("T")


class AlreadyApplied(Exception):
    """This message (by its key) was applied before: nothing to do, and nothing was done."""


class PatientRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it (a user, or ``his:<sending application>`` for ADT) and from where."""

    name: str
    source: str


class PatientService:
    def __init__(self, db: GroupCommitDatabase, clock: Callable[[], int], last_vitals: Callable[[str], Awaitable[list[VitalValue]]],
                 moved: Callable[[str | None, str | None, str | None, str | None], Awaitable[None]]) -> None:  # fmt: skip
        self.db = db
        self.clock = clock
        self.last_vitals = last_vitals  # bed -> the last valid value of each parameter (for the discharge summary)
        self.moved = moved  # (from bed, to bed, their wards) after a commit: None when she came from, or went, elsewhere
        self.census = Census()

    async def load(self, ward: str | None = None) -> None:
        """The census from the store's open encounters (of one ward, when given: the rest stays as it is): at start,
        and on a hub worker as it takes a ward or hears that another worker changed one of its ward's (the store is
        the record; the census, a copy)."""
        rows = await self.db.read_with(lambda conn: tables.open_encounters(conn, ward))
        kept = {} if ward is None else {b: (e, p) for b, (e, p) in self.census.by_bed.items() if e.ward != ward}
        self.census.by_bed = kept | {e.bed: (e, p) for e, p in rows}

    # --- operations ----------------------------------------------------------------

    async def admit(self, details: PatientDetails, bed: str, ward: str, t: int | None, actor: Actor, *, once: str | None = None) -> tuple[Encounter, Patient]:
        now = self.clock()
        start = now if t is None else t

        def run(conn: Conn) -> tuple[Encounter, Patient]:
            taken = tables.open_encounter_in_bed(conn, bed)
            if taken is not None:
                raise PatientRefused(409, f"bed {bed} is taken: encounter {taken.encounter_id} is open; discharge or transfer first")
            known = tables.patient_by_mrn(conn, details.mrn)
            patient = details.as_patient(known.patient_id if known else new_id(now))
            if known is not None:
                elsewhere = tables.open_encounter_of_patient(conn, known.patient_id)
                if elsewhere is not None:
                    raise PatientRefused(409, f"MRN {details.mrn} is already admitted to bed {elsewhere.bed}; transfer instead")
            tables.save_patient(conn, patient, now)
            enc = Encounter(encounter_id=new_id(now), patient_id=patient.patient_id, bed=bed, ward=ward, start=start)
            tables.insert_encounter(conn, enc)
            self._record(conn, PatientAdmitted(patient=patient, encounter=enc, by=actor.name), now, actor, "patient.admit",
                         patient, {"bed": bed, "encounter": enc.encounter_id})  # fmt: skip
            return enc, patient

        enc, patient = await self._call(run, once)
        self.census.set(enc, patient)
        await self.moved(None, bed, None, ward)
        return enc, patient

    async def transfer(self, encounter_id: str, bed: str, ward: str, t: int | None, actor: Actor, *, once: str | None = None) -> Encounter:
        now = self.clock()
        at = now if t is None else t

        def run(conn: Conn) -> tuple[Encounter, Patient, str, str]:
            enc, patient = self._open(conn, encounter_id, at)
            if enc.bed == bed:
                raise PatientRefused(409, f"encounter {encounter_id} is already in bed {bed}")
            taken = tables.open_encounter_in_bed(conn, bed)
            if taken is not None:
                raise PatientRefused(409, f"bed {bed} is taken: encounter {taken.encounter_id} is open")
            tables.move(conn, encounter_id, bed, ward, at)
            moved = enc.model_copy(update={"bed": bed, "ward": ward})
            self._record(conn, PatientTransferred(encounter=moved, from_bed=enc.bed, by=actor.name, patient=patient), now, actor, "patient.transfer",
                         patient, {"from": enc.bed, "to": bed, "encounter": encounter_id})  # fmt: skip
            return moved, patient, enc.bed, enc.ward

        moved, patient, from_bed, from_ward = await self._call(run, once)  # as the store had them, not this census's copy
        self.census.set(moved, patient)
        await self.moved(from_bed, bed, from_ward, ward)
        return moved

    async def discharge(self, encounter_id: str, outcome: Outcome, t: int | None, actor: Actor, *, once: str | None = None,
                        follow_up: FollowUp | None = None) -> Encounter:  # fmt: skip
        now = self.clock()
        at = now if t is None else t
        # the last vitals come from the hub's live state, read before the transaction, of the bed the store has her in
        # (not this census's copy: on a hub worker she may have been admitted through another)
        found = await self.db.read_with(lambda conn: tables.get_encounter(conn, encounter_id))
        vitals = await self.last_vitals(found[0].bed) if found is not None and found[1] == "open" else []

        def run(conn: Conn) -> Encounter:
            enc, patient = self._open(conn, encounter_id, at)
            used = tables.end(conn, encounter_id, at, outcome)
            ended = enc.model_copy(update={"end": used, "outcome": outcome})
            summary = _summary(conn, ended, vitals)
            self._record(conn, PatientDischarged(patient=patient, encounter=ended, summary=summary, by=actor.name, follow_up=follow_up), now,
                         actor, "patient.discharge", patient, {"bed": enc.bed, "encounter": encounter_id, "outcome": outcome,
                                                               **({"follow_up": follow_up.department} if follow_up else {})})  # fmt: skip
            return ended

        ended = await self._call(run, once)
        self.census.drop(encounter_id)
        await self.moved(ended.bed, None, ended.ward, None)
        return ended

    async def cancel_admission(self, encounter_id: str, actor: Actor, *, once: str | None = None) -> Encounter:
        """An admission entered in error (HL7 A11): the encounter is void, and the bed free."""
        now = self.clock()

        def run(conn: Conn) -> Encounter:
            found = tables.get_encounter(conn, encounter_id)
            if found is None:
                raise PatientRefused(404, f"no encounter {encounter_id}")
            enc, status = found
            if status != "open":
                raise PatientRefused(409, f"encounter {encounter_id} is {status}: only an open admission can be cancelled")
            tables.cancel(conn, encounter_id, now)
            patient = tables.get_patient(conn, enc.patient_id)
            assert patient is not None
            self._record(conn, AdmissionCancelled(encounter=enc, by=actor.name, patient=patient), now, actor, "patient.admission_cancelled", patient,
                         {"bed": enc.bed, "encounter": encounter_id})  # fmt: skip
            return enc

        enc = await self._call(run, once)
        self.census.drop(encounter_id)
        await self.moved(enc.bed, None, enc.ward, None)
        return enc

    async def cancel_discharge(self, encounter_id: str, actor: Actor, *, once: str | None = None) -> Encounter:
        """A discharge entered in error (HL7 A13): the encounter is open again, in its last bed, if that bed is free."""
        now = self.clock()

        def run(conn: Conn) -> tuple[Encounter, Patient]:
            found = tables.get_encounter(conn, encounter_id)
            if found is None:
                raise PatientRefused(404, f"no encounter {encounter_id}")
            enc, status = found
            if status != "ended":
                raise PatientRefused(409, f"encounter {encounter_id} is {status}: only a discharge can be cancelled")
            taken = tables.open_encounter_in_bed(conn, enc.bed)
            if taken is not None:
                raise PatientRefused(409, f"bed {enc.bed} has been taken by encounter {taken.encounter_id} since the discharge")
            if tables.open_encounter_of_patient(conn, enc.patient_id) is not None:
                raise PatientRefused(409, "the patient has been admitted again since the discharge")
            tables.reopen(conn, encounter_id)
            reopened = enc.model_copy(update={"end": None, "outcome": None})
            patient = tables.get_patient(conn, enc.patient_id)
            assert patient is not None
            self._record(conn, DischargeCancelled(encounter=reopened, by=actor.name, patient=patient), now, actor, "patient.discharge_cancelled",
                         patient, {"bed": enc.bed, "encounter": encounter_id})  # fmt: skip
            return reopened, patient

        reopened, patient = await self._call(run, once)
        self.census.set(reopened, patient)
        await self.moved(None, reopened.bed, None, reopened.ward)
        return reopened

    async def update_patient(self, patient_id: str, details: PatientDetails, actor: Actor, *, once: str | None = None) -> Patient:
        now = self.clock()

        def run(conn: Conn) -> Patient:
            old = tables.get_patient(conn, patient_id)
            if old is None:
                raise PatientRefused(404, f"no patient {patient_id}")
            other = tables.patient_by_mrn(conn, details.mrn)
            if other is not None and other.patient_id != patient_id:
                raise PatientRefused(409, f"MRN {details.mrn} belongs to another patient")
            patient = details.as_patient(patient_id)
            if patient == old:
                return patient  # nothing changed: no event (an ADT A08 is often re-sent)
            tables.save_patient(conn, patient, now)
            changed = sorted(k for k in PatientDetails.model_fields if getattr(old, k) != getattr(patient, k))
            self._record(conn, PatientUpdated(patient=patient, by=actor.name), now, actor, "patient.update", patient, {"changed": changed})
            return patient

        patient = await self._call(run, once)
        self.census.update_patient(patient)
        return patient

    # --- reading -----------------------------------------------------------------------

    async def patient(self, patient_id: str) -> Patient | None:
        return await self.db.read_with(lambda c: tables.get_patient(c, patient_id))

    async def patient_by_mrn(self, mrn: str) -> Patient | None:
        return await self.db.read_with(lambda c: tables.patient_by_mrn(c, mrn))

    async def encounter(self, encounter_id: str) -> tuple[Encounter, str, list[tables.Stay]] | None:
        def run(conn: Conn) -> tuple[Encounter, str, list[tables.Stay]] | None:
            found = tables.get_encounter(conn, encounter_id)
            return None if found is None else (*found, tables.stays(conn, encounter_id))

        return await self.db.read_with(run)

    async def encounters(self, *, bed: str | None, patient_id: str | None, open_only: bool, limit: int) -> list[tuple[Encounter, str]]:
        return await self.db.read_with(lambda c: tables.encounters(c, bed=bed, patient_id=patient_id, open_only=open_only, limit=limit))

    # --- inside a transaction ----------------------------------------------------------

    async def _call(self, run: Callable[[Conn], T], once: str | None) -> T:
        """Run an operation in one transaction; with ``once`` (an HL7 message's key) only if that key was never
        applied, recording it in the same transaction (``AlreadyApplied`` otherwise)."""

        def guarded(conn: Conn) -> T:
            if once is not None and conn.execute("SELECT 1 FROM applied_messages WHERE key = ?", (once,)).fetchone():
                raise AlreadyApplied(once)
            result = run(conn)
            if once is not None:
                conn.execute("INSERT INTO applied_messages VALUES (?,?)", (once, self.clock()))
            return result

        try:
            return await self.db.call(guarded)
        except ConstraintError as exc:  # a check passed, the database's own rules did not: a concurrent change
            raise PatientRefused(409, f"conflicting change, nothing written: {exc}") from None

    def _open(self, conn: Conn, encounter_id: str, at: int) -> tuple[Encounter, Patient]:
        found = tables.get_encounter(conn, encounter_id)
        if found is None:
            raise PatientRefused(404, f"no encounter {encounter_id}")
        enc, status = found
        if status != "open":
            raise PatientRefused(409, f"encounter {encounter_id} is {status}")
        if at < enc.start:
            raise PatientRefused(400, f"time {at} is before the admission ({enc.start})")
        patient = tables.get_patient(conn, enc.patient_id)
        assert patient is not None
        return enc, patient

    @staticmethod
    def _record(conn: Conn, data: object, now: int, actor: Actor, action: str, patient: Patient, detail: dict) -> None:
        outbox_append(conn, data, now)  # type: ignore[arg-type]
        audit_log.append(conn, [AuditEntry(now, actor.name, action, f"patient:{patient.patient_id}", detail, actor.source)])


def _summary(conn: Conn, enc: Encounter, vitals: list[VitalValue]) -> DischargeSummary:
    """The stay as the hub recorded it: NEWS2 history, last vitals, physiological alarms, values charted."""
    assert enc.end is not None
    rows = conn.execute("SELECT t, total, band, partial FROM encounter_scores WHERE encounter_id = ? AND t <= ? ORDER BY t",
                        (enc.encounter_id, enc.end)).fetchall()  # fmt: skip
    points = [ScorePoint(t=t, total=total, band=band, partial=partial) for t, total, band, partial in rows]
    alarms: dict[str, AlarmSummary] = {}
    for alert_id, at, event, a in tables.alarm_rows(conn, tables.stays(conn, enc.encounter_id), enc.end, physiological_only=True):
        seen = alarms.get(alert_id) or AlarmSummary(alarm_id=alert_id, kind=a["kind"], priority=a["priority"], raised=a["raised"])
        if event == "acknowledged":
            seen = seen.model_copy(update={"acknowledged_by": a.get("acked_by")})
        elif event == "resolved":
            seen = seen.model_copy(update={"resolved": at})
        alarms[alert_id] = seen
    (charted,) = conn.execute("SELECT count(*) FROM charted WHERE encounter_id = ?", (enc.encounter_id,)).fetchone()
    if len(points) > MAX_SUMMARY_POINTS:  # keep the first and last, and evenly spaced ones between
        step = len(points) / MAX_SUMMARY_POINTS
        points = [points[int(i * step)] for i in range(MAX_SUMMARY_POINTS - 1)] + [points[-1]]
    return DischargeSummary(news2=points, last_vitals=vitals, alarms=list(alarms.values())[:MAX_SUMMARY_ALARMS], charted=charted)
