"""The hub's outbox events: what it tells the records services, typed once for the hub and the records bridge.

The hub writes each event into its outbox in the same transaction as the change
it records, numbered in order (``Event.id``, gapless per hub); the records
bridge reads them with a cursor (``GET /api/events?after=<id>``) and turns them
into FHIR resources and the services' calls. An event is never changed once
written; a correction is a new event (``patient.updated``, ``admission.cancelled``).

Every event names the patient and the encounter it belongs to: beds without an
admitted patient produce none. Times are ms since the epoch (UTC). Units are
the vocabulary's UCUM units (``wire.vocabulary``).

=======================  ====================================================================
type                     data
=======================  ====================================================================
``patient.admitted``     the patient and the new encounter (bed, ward, start)
``patient.updated``      the patient's demographics changed (HL7 A08, the API)
``patient.transferred``  the encounter moved from one bed to another
``patient.discharged``   the encounter ended (end, outcome) with its discharge summary data
``admission.cancelled``  an admission entered in error: the encounter is void (HL7 A11)
``discharge.cancelled``  a discharge entered in error: the encounter is open again (HL7 A13)
``observation.charted``  a nurse charted a value monitors do not send (who, when, what)
``score.band_changed``   NEWS2's band (or its completeness) changed for the bed's patient
``alarm.raised``         an alarm about the patient was raised
``alarm.acknowledged``   ... acknowledged (by whom)
``alarm.resolved``       ... resolved
``vitals.hourly``        one validated value per parameter for a clock hour: the median of the
                         hour's valid samples (with their count, first and last time)
=======================  ====================================================================
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_EVENT_BYTES = 256 * 1024  # one event as JSON; a discharge summary's history is bounded to fit

Sex = Literal["male", "female", "other", "unknown"]
Outcome = Literal["discharged", "transferred_out", "died", "left_against_advice"]
Band = Literal["low", "low-medium", "medium", "high", "unknown"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Patient(_Model):
    patient_id: str  # the hub's id (UUIDv7), stable for the patient
    mrn: str  # the hospital's medical record number
    abha: str | None = None  # ABHA number, 14 digits (validated when entered)
    name: str
    sex: Sex = "unknown"
    birth_date: str | None = None  # YYYY-MM-DD
    diagnosis: str = ""  # the admitting diagnosis, as written
    attending: str = ""  # the attending clinician


class Encounter(_Model):
    encounter_id: str  # UUIDv7
    patient_id: str
    bed: str
    ward: str
    start: int
    end: int | None = None
    outcome: Outcome | None = None


class ScorePoint(_Model):
    t: int
    total: int | None  # None: incomplete (an input missing or stale)
    band: Band
    partial: int


class VitalValue(_Model):
    param: str  # the vocabulary key: hr, spo2, rr, ...
    value: float
    unit: str  # UCUM
    t: int


class AlarmSummary(_Model):
    alarm_id: str
    kind: str
    priority: str
    raised: int
    acknowledged_by: str | None = None
    resolved: int | None = None


class DischargeSummary(_Model):
    """What the discharge summary document is written from: the hub's own record of the stay."""

    news2: list[ScorePoint]  # the NEWS2 history (each change of total or band), oldest first, at most 500 points
    last_vitals: list[VitalValue]  # the last valid value of each parameter
    alarms: list[AlarmSummary]  # the stay's physiological alarms, at most 200
    charted: int  # how many values nurses charted


class PatientAdmitted(_Model):
    type: Literal["patient.admitted"] = "patient.admitted"
    patient: Patient
    encounter: Encounter
    by: str


class PatientUpdated(_Model):
    type: Literal["patient.updated"] = "patient.updated"
    patient: Patient
    by: str


class PatientTransferred(_Model):
    type: Literal["patient.transferred"] = "patient.transferred"
    encounter: Encounter  # as it is now: the new bed and ward
    from_bed: str
    by: str
    patient: Patient | None = None  # the patient as now: the records keep the encounter's attending from it


class FollowUp(_Model):
    """A follow-up OPD visit the discharging clinician asks for: the records bridge books it in the OPD queue."""

    department: str = Field(min_length=1, max_length=60)  # the OPD department's code at the facility, e.g. "MED"
    after_days: int = Field(ge=1, le=90)  # the visit is due this many days after discharge (the OPD queue books 90 days ahead)
    note: str = Field("", max_length=200)


class PatientDischarged(_Model):
    type: Literal["patient.discharged"] = "patient.discharged"
    patient: Patient
    encounter: Encounter  # with end and outcome
    summary: DischargeSummary
    by: str
    follow_up: FollowUp | None = None


class AdmissionCancelled(_Model):
    type: Literal["admission.cancelled"] = "admission.cancelled"
    encounter: Encounter
    by: str
    patient: Patient | None = None  # as in ``patient.transferred``


class DischargeCancelled(_Model):
    type: Literal["discharge.cancelled"] = "discharge.cancelled"
    encounter: Encounter  # open again: end and outcome are None
    by: str
    patient: Patient | None = None  # as in ``patient.transferred``


class ObservationCharted(_Model):
    type: Literal["observation.charted"] = "observation.charted"
    encounter_id: str
    patient_id: str
    bed: str
    value: VitalValue
    by: str  # the nurse, as the session names her


class ScoreBandChanged(_Model):
    type: Literal["score.band_changed"] = "score.band_changed"
    encounter_id: str
    patient_id: str
    bed: str
    score: Literal["news2"] = "news2"
    t: int
    total: int | None
    partial: int
    band: Band
    subscores: dict[str, int | None]  # per parameter; None where the input is missing
    missing: list[str]
    spo2_scale: Literal[1, 2] = 1  # the SpO2 chart the spo2 sub-score came from (2: chosen for hypercapnic failure)


class AlarmEvent(_Model):
    type: Literal["alarm.raised", "alarm.acknowledged", "alarm.resolved"]
    encounter_id: str
    patient_id: str
    bed: str
    alarm_id: str
    kind: str
    priority: str  # high, medium, low
    category: str  # physiological, technical
    detail: str
    t: int
    by: str | None = None  # who acknowledged (on every event after the acknowledgement)
    raised: int | None = None  # when the alarm was raised (on every event: a record of it is written whole)
    acknowledged: int | None = None  # when it was acknowledged, once it has been


class HourlyValue(_Model):
    param: str
    median: float
    unit: str
    n: int  # valid samples in the hour
    first: int
    last: int


class VitalsHourly(_Model):
    type: Literal["vitals.hourly"] = "vitals.hourly"
    encounter_id: str
    patient_id: str
    bed: str
    hour: int  # the hour's start
    values: list[HourlyValue]


EventData = Annotated[
    PatientAdmitted | PatientUpdated | PatientTransferred | PatientDischarged | AdmissionCancelled | DischargeCancelled
    | ObservationCharted | ScoreBandChanged | AlarmEvent | VitalsHourly,
    Field(discriminator="type"),
]


class Event(_Model):
    """One outbox entry: its number (the cursor), when the hub wrote it, and what happened."""

    id: int
    at: int
    data: EventData
