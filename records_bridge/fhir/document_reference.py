"""The discharge summary PDF as a DocumentReference: attached whole (base64) with its size and SHA-1 hash."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from records_bridge.fhir import document_types, ids, text_fields
from records_bridge.fhir.contract import MappingContext
from records_bridge.fhir.facility import organization_id
from records_bridge.fhir.narrative import narrative
from records_bridge.fhir.refs import Refs, display_only
from records_bridge.fhir.times import instant, period
from wire.outbox_events import Encounter, Patient


def document_reference_id(hub_encounter_id: str) -> str:
    return ids.resource_id("DocumentReference.discharge-summary", hub_encounter_id)


def document_reference(pdf: bytes, patient: Patient, enc: Encounter, written_at: int, ctx: MappingContext, refs: Refs) -> dict[str, Any]:
    """The current discharge summary of ``enc``, pointing to the patient and the encounter."""
    name = text_fields.required(patient.name, "the patient's name")
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": document_reference_id(enc.encounter_id),
        "text": narrative(f"Discharge summary of {name} (PDF, {len(pdf):,} bytes)."),
        "status": "current",
        "docStatus": "final",
        "type": document_types.DISCHARGE_SUMMARY_TYPE,
        "subject": refs("Patient", ids.patient_id(patient.patient_id), name),
        "date": instant(written_at),
    }
    attending = text_fields.optional(patient.attending)
    if attending:
        resource["author"] = [display_only(attending)]
    resource |= {
        "custodian": refs("Organization", organization_id(ctx), ctx.facility_name),
        "description": "Discharge summary of the ICU stay",
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "language": "en-IN",
                    "data": base64.b64encode(pdf).decode("ascii"),
                    "size": len(pdf),
                    "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),  # FHIR R4: SHA-1, base64
                    "title": f"Discharge summary — {name}",
                    "creation": instant(written_at),
                }
            }
        ],
        "context": {"encounter": [refs("Encounter", ids.encounter_id(enc.encounter_id))], "period": period(enc.start, enc.end)},
    }
    return resource


def withdrawn_document_reference(enc: Encounter, written_at: int, refs: Refs) -> dict[str, Any]:
    """The summary of a discharge that was cancelled: entered in error, its PDF no longer attached."""
    return {
        "resourceType": "DocumentReference",
        "id": document_reference_id(enc.encounter_id),
        "text": narrative("Discharge summary withdrawn: the discharge was cancelled and the stay goes on."),
        "status": "entered-in-error",
        "type": document_types.DISCHARGE_SUMMARY_TYPE,
        "subject": refs("Patient", ids.patient_id(enc.patient_id)),
        "date": instant(written_at),
        "content": [{"attachment": {"contentType": "application/pdf", "title": "Withdrawn discharge summary"}}],
        "context": {"encounter": [refs("Encounter", ids.encounter_id(enc.encounter_id))]},
    }
