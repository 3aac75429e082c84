"""Nurse charting: values monitors do not send (oxygen, ACVPU, temperature, a manual blood pressure).

A charted value is an ``Observation`` like any other, from the device
``chart:<username>``: it is screened by the same rules, stored as a sample, and
enters the bed-state matrix (so it completes a NEWS2 that lacked it, and the
console shows who charted it). The same state-store transaction records it in
``charted``, appends its ``observation.charted`` outbox event and its audit
entry. Charting needs an admitted patient: a value belongs to someone.

ACVPU and oxygen may be given as the letters and words clinicians write
(``"V"``, ``"oxygen"``) or as the vocabulary's codes.
"""

from __future__ import annotations

from ingest.auth import audit_log
from ingest.auth.audit_log import AuditEntry
from ingest.outbox import append as outbox_append
from ingest.patients import tables
from ingest.patients.service import Actor, PatientRefused
from ingest.stores.portable_sql import Conn, upsert
from wire.messages import Observation
from wire.outbox_events import Encounter, ObservationCharted, VitalValue
from wire.screen import screen
from wire.vocabulary import BY_KEY

CHART_DEVICE = "chart:"  # a charted value's device: chart:<username>
CHARTABLE = ("o2", "o2_flow", "fio2", "acvpu", "temp", "nibp_sys", "nibp_dia")
WORDS = {
    "acvpu": {"A": 0, "C": 1, "V": 2, "P": 3, "U": 4},
    "o2": {"AIR": 0, "OXYGEN": 1, "O2": 1},
}


def chart_value(param: str, value: float | str) -> float:
    """The vocabulary value of what a nurse charted; raises ``PatientRefused`` (400) for anything else."""
    if param not in CHARTABLE:
        raise PatientRefused(400, f"{param!r} is not charted by hand here; chartable: {', '.join(CHARTABLE)}")
    if isinstance(value, str):
        words = WORDS.get(param, {})
        code = words.get(value.strip().upper())
        if code is None:
            raise PatientRefused(400, f"{param}: {value!r} is not one of {', '.join(words) or 'a number'}")
        return float(code)
    return float(value)


def charted_observation(bed: str, param: str, value: float, t: int, now: int, username: str) -> Observation:
    obs = Observation(bed, param, value, t, now, CHART_DEVICE + username)
    reason = screen(obs)
    if reason:
        raise PatientRefused(400, reason)
    return obs


_CHART_SQL = upsert("charted", 'encounter_id, bed, param, t, value, "by", at', "encounter_id, param, t")


def record(conn: Conn, enc: Encounter, obs: Observation, now: int, actor: Actor) -> ObservationCharted:
    """Inside the state-store transaction: the charted row, its outbox event and its audit entry."""
    assert obs.value is not None
    still = tables.open_encounter_in_bed(conn, obs.bed)
    if still is None or still.encounter_id != enc.encounter_id:
        raise PatientRefused(409, f"the patient in bed {obs.bed} was discharged or moved meanwhile: nothing charted")
    conn.execute(_CHART_SQL,
                 (enc.encounter_id, obs.bed, obs.param, obs.t_dev, obs.value, actor.name, now))  # fmt: skip
    event = ObservationCharted(encounter_id=enc.encounter_id, patient_id=enc.patient_id, bed=obs.bed, by=actor.name,
                               value=VitalValue(param=obs.param, value=obs.value, unit=BY_KEY[obs.param].ucum, t=obs.t_dev))  # fmt: skip
    outbox_append(conn, event, now)
    audit_log.append(conn, [AuditEntry(now, actor.name, "patient.chart", f"patient:{enc.patient_id}",
                                       {"bed": obs.bed, "param": obs.param, "value": obs.value, "t": obs.t_dev}, actor.source)])  # fmt: skip
    return event
