"""``writes_for``: one outbox event in, the FHIR writes that record it out, in the order the server needs them.

=======================  ======================================================================
event                    writes (all PUT, ids deterministic)
=======================  ======================================================================
patient.admitted         Organization, ward and bed Locations, Patient, Encounter (in-progress)
patient.updated          Patient
patient.transferred      ward and bed Locations of the new bed, Encounter (in-progress)
patient.discharged       Organization, Patient, Encounter (finished, disposition),
                         DocumentReference (the PDF), Bundle (the discharge summary document)
admission.cancelled      Encounter (entered-in-error)
discharge.cancelled      Encounter (in-progress again), DocumentReference (entered-in-error)
observation.charted      Observation (vital sign, performer the nurse)
score.band_changed       Observation (NEWS2)
alarm.*                  Flag
vitals.hourly            Observation per parameter or BP panel
=======================  ======================================================================

Conditional creates (``POST`` with If-None-Exist) are not needed: every id is
derived from the hub's own ids, so a PUT is already an idempotent create-or-update
and references between the writes are known before the server answers.
"""

from __future__ import annotations

from typing import Any

from records_bridge.fhir import discharge_pdf, text_fields
from records_bridge.fhir.alarms import flag_resource
from records_bridge.fhir.contract import FhirWrite, MappingContext, MappingError
from records_bridge.fhir.discharge_document import check_summary, discharge_bundle
from records_bridge.fhir.document_reference import document_reference, withdrawn_document_reference
from records_bridge.fhir.encounter import encounter_resource
from records_bridge.fhir.facility import bed_resource, organization_resource, ward_resource
from records_bridge.fhir.news2 import news2_observation
from records_bridge.fhir.patient import patient_resource
from records_bridge.fhir.refs import server_ref
from records_bridge.fhir.validation import validated
from records_bridge.fhir.vitals import charted_observation, hourly_observations
from wire.outbox_events import (
    AdmissionCancelled,
    AlarmEvent,
    DischargeCancelled,
    Event,
    ObservationCharted,
    PatientAdmitted,
    PatientDischarged,
    PatientTransferred,
    PatientUpdated,
    ScoreBandChanged,
    VitalsHourly,
)


def writes_for(event: Event, ctx: MappingContext) -> list[FhirWrite]:
    """The writes that record ``event``; ``MappingError`` when it cannot be mapped (the bridge parks it).

    ``discharge_pdf.FontMissing`` is not an event's fault: it means the machine lacks its font.
    """
    try:
        resources = _resources(text_fields.clean_event(event), ctx)
    except ArithmeticError as e:  # a number no FHIR value can hold (OverflowError is one)
        raise MappingError(f"{event.data.type}: {e}") from None
    return [FhirWrite("PUT", f"{r['resourceType']}/{r['id']}", validated(r)) for r in resources]


def _resources(event: Event, ctx: MappingContext) -> list[dict[str, Any]]:
    ev = event.data
    ref = server_ref
    match ev:
        case PatientAdmitted():
            enc = ev.encounter
            return [organization_resource(ctx), ward_resource(enc.ward, ctx, ref), bed_resource(enc.bed, enc.ward, ctx, ref),
                    patient_resource(ev.patient, ctx), encounter_resource(enc, "in-progress", ev.patient, ctx, ref)]  # fmt: skip
        case PatientUpdated():
            return [patient_resource(ev.patient, ctx)]
        case PatientTransferred():
            enc = ev.encounter
            if enc.bed == ev.from_bed:
                raise MappingError("patient.transferred: the new bed is the bed the patient left")
            return [ward_resource(enc.ward, ctx, ref), bed_resource(enc.bed, enc.ward, ctx, ref),
                    encounter_resource(enc, "in-progress", ev.patient, ctx, ref)]  # fmt: skip
        case PatientDischarged():
            head = [
                organization_resource(ctx),
                patient_resource(ev.patient, ctx),
                encounter_resource(ev.encounter, "finished", ev.patient, ctx, ref),
            ]
            check_summary(ev)  # before the PDF shows any of it
            pdf = discharge_pdf.render(ev, ctx, event.at)
            return [*head, document_reference(pdf, ev.patient, ev.encounter, event.at, ctx, ref), discharge_bundle(ev, pdf, ctx, event.at)]
        case AdmissionCancelled():
            return [encounter_resource(ev.encounter, "entered-in-error", ev.patient, ctx, ref)]
        case DischargeCancelled():
            return [
                encounter_resource(ev.encounter, "in-progress", ev.patient, ctx, ref),
                withdrawn_document_reference(ev.encounter, event.at, ref),
            ]
        case ObservationCharted():
            return [charted_observation(ev, ref)]
        case ScoreBandChanged():
            return [news2_observation(ev, ref)]
        case AlarmEvent():
            return [flag_resource(ev, ref)]
        case VitalsHourly():
            return hourly_observations(ev, ref)
    raise MappingError(f"no mapping for events of type {getattr(ev, 'type', '?')!r}")  # pragma: no cover - the union is closed
