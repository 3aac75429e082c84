"""The discharge summary document: a ``Bundle`` of type document whose first entry is a Composition shaped on
ABDM's DischargeSummaryRecord profile (FHIR Implementation Guide for ABDM 6.5.0, NRCeS).

Sections, in the profile's order and then the unsliced ones it allows at the end:

=====================  ==================  ==========================================================
section                code (SNOMED CT)    entries
=====================  ==================  ==========================================================
Chief complaints       422843007           the admitting diagnosis as a Condition (as written)
Physical examination   425044008           the last valid value of each parameter (Observations)
Document reference     373942005           the PDF of this summary (DocumentReference)
NEWS2 history          (text only)         each change of NEWS2 total or band (Observations)
Alarms                 (text only)         the stay's physiological alarms (Flags)
ICU course             (text only)         outcome and how many values nurses charted (narrative)
=====================  ==================  ==========================================================

A section with nothing to list has an ``emptyReason`` and a narrative saying so.
Every reference inside the bundle is a ``urn:uuid:`` of one of its entries.
"""

from __future__ import annotations

from html import unescape
from typing import Any

from records_bridge.fhir import clinical_text, document_types, ids, systems, text_fields, values
from records_bridge.fhir.alarms import check_alarm, summary_flag
from records_bridge.fhir.contract import MappingContext, MappingError
from records_bridge.fhir.document_reference import document_reference
from records_bridge.fhir.encounter import DISPOSITION, encounter_resource
from records_bridge.fhir.facility import bed_resource, organization_id, organization_resource, ward_resource
from records_bridge.fhir.narrative import narrative
from records_bridge.fhir.news2 import check_point, history_observation
from records_bridge.fhir.patient import patient_resource
from records_bridge.fhir.refs import document_ref
from records_bridge.fhir.times import instant, period
from records_bridge.fhir.vitals import point_observation
from wire.outbox_events import PatientDischarged

#: (title, SNOMED CT code, display) of the profile's slices this document fills
CHIEF_COMPLAINTS = ("Chief complaints", "422843007", "Chief complaint section")
PHYSICAL_EXAMINATION = ("Physical examination: last vital signs", "425044008", "Physical exam section")
DOCUMENT_REFERENCE = ("Discharge summary (PDF)", "373942005", "Discharge summary")


def document_id(hub_encounter_id: str) -> str:
    return ids.resource_id("Bundle.discharge-summary", hub_encounter_id)


def discharge_bundle(ev: PatientDischarged, pdf: bytes, ctx: MappingContext, written_at: int) -> dict[str, Any]:
    """The document for ``ev``, dated ``written_at`` (the outbox event's time): a replay builds the same bundle."""
    p, enc, s = ev.patient, ev.encounter, ev.summary
    bundle_id = document_id(enc.encounter_id)
    ref = document_ref
    patient = patient_resource(p, ctx)
    encounter = encounter_resource(enc, "finished", p, ctx, ref)
    organization = organization_resource(ctx)
    places = [ward_resource(enc.ward, ctx, ref), bed_resource(enc.bed, enc.ward, ctx, ref)]
    attending = text_fields.optional(p.attending)
    author = _practitioner(attending, ctx) if attending else None
    diagnosis = _condition(ev) if text_fields.optional(p.diagnosis) else None
    vitals = [
        point_observation(ids.resource_id("Observation.last", bundle_id, v.param), v, p.patient_id, enc.encounter_id, ref)
        for v in s.last_vitals
    ]
    history = [history_observation(enc.encounter_id, p.patient_id, point, bundle_id, ref) for point in s.news2]
    alarms = [summary_flag(a, p.patient_id, enc.encounter_id, bundle_id, ref) for a in s.alarms]
    pdf_reference = document_reference(pdf, p, enc, written_at, ctx, ref)

    sections = [
        _section(CHIEF_COMPLAINTS, [diagnosis] if diagnosis else [], "No admitting diagnosis was recorded.", "unavailable"),
        _section(PHYSICAL_EXAMINATION, vitals, "No valid vital signs were recorded.", "unavailable"),
        _section(DOCUMENT_REFERENCE, [pdf_reference], "The PDF is not attached.", "unavailable"),
        _section(("NEWS2 history", None, None), history, "No NEWS2 score during the stay.", "nilknown"),
        _section(("Alarms during the stay", None, None), alarms, "No physiological alarms during the stay.", "nilknown"),
        _course_section(ev),
    ]
    author_ref = ref("Practitioner", author["id"], attending) if author else ref("Organization", organization["id"], ctx.facility_name)
    composition_id = ids.resource_id("Composition.discharge-summary", enc.encounter_id)
    composition = {
        "resourceType": "Composition",
        "id": composition_id,
        "meta": {"profile": [systems.PROFILE_DISCHARGE_SUMMARY]},
        "language": "en-IN",
        "text": narrative(_headline(ev)),
        "identifier": {"system": systems.RFC3986, "value": f"urn:uuid:{composition_id}"},
        "status": "final",
        "type": document_types.COMPOSITION_TYPE,
        "subject": ref("Patient", patient["id"], p.name),
        "encounter": ref("Encounter", encounter["id"]),
        "date": instant(written_at),
        "author": [author_ref],
        "title": "Discharge summary",
        "custodian": ref("Organization", organization["id"], ctx.facility_name),
        "section": sections,
    }
    resources = [composition, patient, encounter, organization, *places, *([author] if author else []),
                 *([diagnosis] if diagnosis else []), *vitals, *history, *alarms, pdf_reference]  # fmt: skip
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"versionId": "1", "profile": [systems.PROFILE_DOCUMENT_BUNDLE]},
        "identifier": {"system": systems.RFC3986, "value": f"urn:uuid:{bundle_id}"},
        "type": "document",
        "timestamp": instant(written_at),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


def check_summary(ev: PatientDischarged) -> None:
    """``MappingError`` for anything in the summary the document cannot show truthfully (checked before the PDF):
    a value FHIR cannot hold, a parameter, NEWS2 time or alarm listed twice."""
    s = ev.summary
    for what, keys in (("parameter", [v.param for v in s.last_vitals]), ("NEWS2 time", [p.t for p in s.news2]),
                       ("alarm", [a.alarm_id for a in s.alarms])):  # fmt: skip
        if len(set(keys)) != len(keys):
            raise MappingError(f"patient.discharged: the summary lists a {what} twice")
    for v in ev.summary.last_vitals:
        values.check(v.param, v.value, v.unit)
        instant(v.t)
    for point in ev.summary.news2:
        check_point(point)
    for a in ev.summary.alarms:
        check_alarm(a.priority, "physiological", a.kind)
        period(a.raised, a.resolved)
    if ev.summary.charted < 0:
        raise MappingError("patient.discharged: a negative count of charted values")


def _headline(ev: PatientDischarged) -> str:
    p, enc = ev.patient, ev.encounter
    outcome = DISPOSITION[enc.outcome][2] if enc.outcome else "not recorded"
    end = clinical_text.when(enc.end) if enc.end is not None else "not recorded"
    return (f"Discharge summary of {p.name}, MRN {p.mrn}: ICU stay from {clinical_text.when(enc.start)} "
            f"to {end}; outcome: {outcome}.")  # fmt: skip


def _section(what: tuple[str, str | None, str | None], entries: list[dict[str, Any]], none_text: str, empty_reason: str) -> dict[str, Any]:
    title, code, display = what
    section: dict[str, Any] = {"title": title}
    section["code"] = {"coding": [{"system": systems.SNOMED, "code": code, "display": display}], "text": title} if code else {"text": title}
    if entries:
        lines = [_entry_line(e) for e in entries]
        section["text"] = narrative(*lines)
        section["entry"] = [document_ref(e["resourceType"], e["id"]) for e in entries]
    else:
        section["text"] = narrative(none_text)
        section["emptyReason"] = _empty_reason(empty_reason)
    return section


def _entry_line(resource: dict[str, Any]) -> str:
    """The first paragraph of an entry's own narrative: every entry the document lists has one."""
    div: str = resource["text"]["div"]
    start = div.index("<p>") + 3
    return unescape(div[start : div.index("</p>", start)])


def _empty_reason(code: str) -> dict[str, Any]:
    display = {"nilknown": "Nil Known", "unavailable": "Unavailable"}[code]
    return {"coding": [{"system": systems.LIST_EMPTY_REASON, "code": code, "display": display}]}


def _course_section(ev: PatientDischarged) -> dict[str, Any]:
    enc, s = ev.encounter, ev.summary
    outcome = DISPOSITION[enc.outcome][2] if enc.outcome else "Not recorded"
    return {
        "title": "ICU course",
        "code": {"text": "ICU course"},
        "text": narrative(f"Outcome: {outcome}.", f"Values charted by nurses during the stay: {s.charted}."),
    }


def _practitioner(attending: str, ctx: MappingContext) -> dict[str, Any]:
    """The attending as the author; by name only (the hub has no HPR id), so keyed by facility and name."""
    return {
        "resourceType": "Practitioner",
        "id": ids.resource_id("Practitioner.name", organization_id(ctx), attending),
        "text": narrative(f"{attending}, attending clinician."),
        "name": [{"text": attending}],
    }


def _condition(ev: PatientDischarged) -> dict[str, Any]:
    p, enc = ev.patient, ev.encounter
    diagnosis = text_fields.required(p.diagnosis, "the diagnosis")
    return {
        "resourceType": "Condition",
        "id": ids.resource_id("Condition.admitting-diagnosis", enc.encounter_id),
        "text": narrative(f"Admitting diagnosis: {diagnosis}."),
        "category": [{"coding": [{"system": systems.CONDITION_CATEGORY, "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}],
        "code": {"text": diagnosis},
        "subject": document_ref("Patient", ids.patient_id(p.patient_id)),
        "encounter": document_ref("Encounter", ids.encounter_id(enc.encounter_id)),
    }
