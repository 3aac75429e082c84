"""A follow-up OPD token as a FHIR document Bundle, for the patient's health locker.

The records bridge books a discharged patient's follow-up visit in the OPD
queue service; the token it gets back becomes a small document (Composition,
Patient, the hospital's Organization and a booked Appointment) that lands in the
patient's locker beside the discharge summary. Built only from the booking's
answer and the discharge event, so a replay builds the same bundle.
"""

from __future__ import annotations

from typing import Any

from records_bridge.fhir import ids, systems
from records_bridge.fhir.contract import MappingContext
from records_bridge.fhir.facility import organization_resource
from records_bridge.fhir.narrative import narrative
from records_bridge.fhir.patient import patient_resource
from records_bridge.fhir.refs import document_ref
from records_bridge.fhir.times import instant
from records_bridge.fhir.validation import validated
from wire.outbox_events import PatientDischarged


def opd_token_bundle(ev: PatientDischarged, token: dict[str, Any], queue_name: str, ctx: MappingContext, written_at: int) -> dict[str, Any]:
    """``token`` is the OPD queue's answer to the booking (``id``, ``display``, ``day``, ``slot``)."""
    p = ev.patient
    bundle_id = ids.resource_id("Bundle.opd-token", token["id"])
    patient = patient_resource(p, ctx)
    organization = organization_resource(ctx)
    when = f"{token['day']}" + (f" at {token['slot']}" if token.get("slot") else "")
    headline = f"OPD follow-up: token {token['display']}, {queue_name}, {when}"
    appointment_id = ids.resource_id("Appointment.opd-token", token["id"])
    appointment: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": appointment_id,
        "identifier": [{"system": systems.RFC3986, "value": f"urn:uuid:{appointment_id}"}],
        "status": "booked",
        "description": headline,
        "participant": [{"actor": document_ref("Patient", patient["id"], p.name), "status": "accepted"}],
    }
    if ev.follow_up is not None and ev.follow_up.note:
        appointment["comment"] = ev.follow_up.note
    validated(appointment)
    composition_id = ids.resource_id("Composition.opd-token", token["id"])
    composition = validated({
        "resourceType": "Composition",
        "id": composition_id,
        "language": "en-IN",
        "text": narrative(headline),
        "identifier": {"system": systems.RFC3986, "value": f"urn:uuid:{composition_id}"},
        "status": "final",
        "type": {"text": "OPD token"},
        "subject": document_ref("Patient", patient["id"], p.name),
        "date": instant(written_at),
        "author": [document_ref("Organization", organization["id"], ctx.facility_name)],
        "title": f"OPD token {token['display']}",
        "section": [{"title": "Follow-up visit", "text": narrative(headline),
                     "entry": [document_ref("Appointment", appointment_id)]}],
    })  # fmt: skip
    return validated({
        "resourceType": "Bundle",
        "id": bundle_id,
        "identifier": {"system": systems.RFC3986, "value": f"urn:uuid:{bundle_id}"},
        "type": "document",
        "timestamp": instant(written_at),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in (composition, patient, organization, appointment)],
    })
