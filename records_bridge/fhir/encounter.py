"""The Encounter: an inpatient acute stay in an ICU bed, its status, period, attending and discharge disposition.

Every event that changes the encounter writes it whole (a PUT), so the resource
is built from the encounter as the event states it now: the current bed as its
location (the bed history stays with the hub), the attending from the patient
when the event carries one.
"""

from __future__ import annotations

from typing import Any, Literal

from records_bridge.fhir import ids, systems, text_fields
from records_bridge.fhir.clinical_text import when
from records_bridge.fhir.contract import MappingContext, MappingError
from records_bridge.fhir.facility import bed_name, organization_id
from records_bridge.fhir.narrative import narrative
from records_bridge.fhir.refs import Refs, display_only
from records_bridge.fhir.times import period
from wire.outbox_events import Encounter, Outcome, Patient

Status = Literal["in-progress", "finished", "entered-in-error"]

#: outcome -> (discharge-disposition code, its display, as clinicians say it)
DISPOSITION: dict[Outcome, tuple[str, str, str]] = {
    "discharged": ("home", "Home", "Discharged"),
    "transferred_out": ("other-hcf", "Other healthcare facility", "Transferred to another hospital"),
    "died": ("exp", "Expired", "Died"),
    "left_against_advice": ("aadvice", "Left against advice", "Left against medical advice (LAMA)"),
}

_STATUS_TEXT = {"in-progress": "in progress", "finished": "finished", "entered-in-error": "entered in error (admission cancelled)"}


def encounter_resource(enc: Encounter, status: Status, patient: Patient | None, ctx: MappingContext, refs: Refs) -> dict[str, Any]:
    """The Encounter in ``status``; ``MappingError`` when the encounter's fields contradict it."""
    _check(enc, status, patient)
    place = bed_name(enc.bed, enc.ward)
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": ids.encounter_id(enc.encounter_id),
        "text": narrative(_summary(enc, status, place)),
        "identifier": [{"system": systems.HUB_ENCOUNTER_ID, "value": enc.encounter_id}],
        "status": status,
        "class": {"system": systems.V3_ACT_CODE, "code": "ACUTE", "display": "inpatient acute"},
        "subject": refs("Patient", ids.patient_id(enc.patient_id)),
    }
    attending = text_fields.optional(patient.attending) if patient else None
    if attending:
        resource["participant"] = [
            {
                "type": [{"coding": [{"system": systems.PARTICIPATION_TYPE, "code": "ATND", "display": "attender"}]}],
                "individual": display_only(attending),
            }
        ]
    resource["period"] = period(enc.start, enc.end)
    if enc.outcome is not None:
        code, display, text = DISPOSITION[enc.outcome]
        resource["hospitalization"] = {
            "dischargeDisposition": {"coding": [{"system": systems.DISCHARGE_DISPOSITION, "code": code, "display": display}], "text": text}
        }
    resource["location"] = [
        {
            "location": refs("Location", ids.bed_location_id(enc.bed), place),
            "status": "active" if status == "in-progress" else "completed",
        }
    ]
    resource["serviceProvider"] = refs("Organization", organization_id(ctx), ctx.facility_name)
    return resource


def _check(enc: Encounter, status: Status, patient: Patient | None) -> None:
    if patient is not None and patient.patient_id != enc.patient_id:
        raise MappingError("the encounter belongs to another patient than the event's")
    if status == "in-progress" and (enc.end is not None or enc.outcome is not None):
        raise MappingError("an open encounter has an end or an outcome")
    if status == "finished" and (enc.end is None or enc.outcome is None):
        raise MappingError("a finished encounter needs its end and outcome")


def _summary(enc: Encounter, status: Status, place: str) -> str:
    text = f"ICU stay in {place}, from {when(enc.start)}"
    if enc.end is not None:
        text += f" to {when(enc.end)}"
    return f"{text}; {_STATUS_TEXT[status]}."
