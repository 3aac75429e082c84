"""The FHIR mapping of each outbox event: what it writes, in which order, and what it refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir_rules import check_resource
from fhir_stay import (
    CTX,
    ENCOUNTER,
    ENCOUNTER_ID,
    HOUR,
    MINUTE,
    PATIENT,
    PATIENT_ID,
    admission_cancelled,
    admitted,
    alarm,
    charted,
    discharge_cancelled,
    discharged,
    event,
    hourly,
    news2,
    news2_incomplete,
    transferred,
    updated,
    whole_stay,
)

from records_bridge.fhir import FhirWrite, MappingContext, MappingError, writes_for
from records_bridge.fhir.ids import encounter_id, patient_id
from wire.outbox_events import Event

MDC = "urn:iso:std:iso:11073:10101"
LOINC = "http://loinc.org"


def resources(ev: Event) -> list[dict[str, Any]]:
    return [w.resource for w in writes_for(ev, CTX)]


def codes(concept: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c["system"] == system]


def by_code(observations: list[dict[str, Any]], loinc: str) -> dict[str, Any]:
    (found,) = [o for o in observations if loinc in codes(o["code"], LOINC)]
    return found


# --- every event, every resource -------------------------------------------------------------------


@pytest.mark.parametrize("ev", whole_stay(), ids=lambda e: e.data.type)
def test_every_resource_is_valid_r4(ev: Event) -> None:
    writes = writes_for(ev, CTX)
    assert writes
    for w in writes:
        assert w.method == "PUT" and w.path == f"{w.resource['resourceType']}/{w.resource['id']}"
        check_resource(w.resource)


@pytest.mark.parametrize("ev", whole_stay(), ids=lambda e: e.data.type)
def test_a_replayed_event_gives_byte_identical_writes(ev: Event) -> None:
    first = writes_for(ev, CTX)
    again = writes_for(Event.model_validate_json(ev.model_dump_json()), CTX)  # as the bridge reads it back from the outbox
    assert [json.dumps([w.method, w.path, w.resource, w.if_none_exist]) for w in first] == [
        json.dumps([w.method, w.path, w.resource, w.if_none_exist]) for w in again
    ]


def test_ids_are_stable_keys_not_per_call() -> None:
    assert patient_id(PATIENT_ID) == patient_id(PATIENT_ID) != patient_id(PATIENT_ID + "x")
    assert encounter_id(ENCOUNTER_ID) != patient_id(ENCOUNTER_ID)  # the kind is part of the key
    one, other = resources(hourly(hour=HOUR)), resources(hourly(hour=HOUR + 3_600_000, values=_shift(hourly().data.values, 3_600_000)))
    assert {o["id"] for o in one}.isdisjoint({o["id"] for o in other})


def _shift(values: Any, ms: int) -> list[dict[str, Any]]:
    return [v.model_dump() | {"first": v.first + ms, "last": v.last + ms} for v in values]


# --- patients and encounters ------------------------------------------------------------------------


def test_admission_writes_the_places_before_the_patient_and_the_encounter() -> None:
    paths = [w.path.split("/")[0] for w in writes_for(admitted(), CTX)]
    assert paths == ["Organization", "Location", "Location", "Patient", "Encounter"]


def test_patient_identifiers_mrn_abha_and_demographics() -> None:
    (patient,) = [r for r in resources(admitted()) if r["resourceType"] == "Patient"]
    mrn, abha, hub = patient["identifier"]
    assert (mrn["system"], mrn["value"], mrn["type"]["coding"][0]["code"]) == (CTX.mrn_system, "SMS-2024-004217", "MR")
    assert (abha["system"], abha["value"]) == ("https://healthid.ndhm.gov.in", "91-2345-6789-0123")
    assert abha["type"]["coding"][0]["system"] == "https://nrces.in/ndhm/fhir/r4/CodeSystem/ndhm-identifier-type-code"
    assert hub["value"] == PATIENT_ID
    assert patient["name"] == [{"text": "Sita Devi Meena"}]
    assert (patient["gender"], patient["birthDate"]) == ("female", "1961-04-12")


def test_a_patient_without_abha_or_birth_date_has_neither() -> None:
    (patient,) = resources(updated(patient=PATIENT | {"abha": None, "birth_date": None, "sex": "unknown"}))
    assert [i["system"] for i in patient["identifier"]] == [CTX.mrn_system, "urn:teleicu:fhir:patient-id"]
    assert "birthDate" not in patient and patient["gender"] == "unknown"


def test_whitespace_from_the_ward_is_collapsed_not_refused() -> None:
    (patient,) = resources(updated(patient=PATIENT | {"name": "  Sita\u00a0Devi \n Meena "}))
    assert patient["name"] == [{"text": "Sita Devi Meena"}]


def test_encounter_of_an_admission() -> None:
    enc = resources(admitted())[-1]
    assert enc["status"] == "in-progress"
    assert enc["class"] == {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ACUTE", "display": "inpatient acute"}
    assert enc["subject"] == {"reference": f"Patient/{patient_id(PATIENT_ID)}"}
    assert enc["period"] == {"start": "2024-05-01T10:00:00Z"}
    (place,) = enc["location"]
    assert place["status"] == "active" and place["location"]["display"] == "Bed MICU-03, Medical ICU"
    assert enc["participant"][0]["individual"] == {"display": "Dr. Rakesh Sharma"}
    assert enc["participant"][0]["type"][0]["coding"][0]["code"] == "ATND"
    assert "hospitalization" not in enc


def test_the_bed_is_a_location_in_its_ward() -> None:
    _, ward, bed, _, enc = resources(admitted())
    assert (ward["name"], ward["physicalType"]["coding"][0]["code"]) == ("Medical ICU", "wa")
    assert (bed["name"], bed["physicalType"]["coding"][0]["code"]) == ("Bed MICU-03, Medical ICU", "bd")
    assert bed["partOf"]["reference"] == f"Location/{ward['id']}"
    assert enc["location"][0]["location"]["reference"] == f"Location/{bed['id']}"


def test_a_transfer_moves_the_encounter_to_the_new_bed() -> None:
    ward, bed, enc = resources(transferred())
    assert bed["name"] == "Bed MICU-07, Medical ICU"
    assert enc["location"][0]["location"]["reference"] == f"Location/{bed['id']}"
    assert enc["status"] == "in-progress" and enc["participant"][0]["individual"]["display"] == "Dr. Rakesh Sharma"


def test_a_transfer_from_a_hub_that_sends_no_patient_has_no_attending() -> None:
    enc = resources(transferred(patient=None))[-1]
    assert "participant" not in enc


@pytest.mark.parametrize(
    ("outcome", "code"),
    [("discharged", "home"), ("transferred_out", "other-hcf"), ("died", "exp"), ("left_against_advice", "aadvice")],
)
def test_discharge_finishes_the_encounter_with_its_disposition(outcome: str, code: str) -> None:
    ev = discharged(encounter=ENCOUNTER | {"end": HOUR + 10 * 3_600_000, "outcome": outcome})
    enc = resources(ev)[2]
    assert enc["status"] == "finished" and enc["period"]["end"] == "2024-05-01T20:00:00Z"
    assert enc["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == code
    assert enc["location"][0]["status"] == "completed"


def test_discharge_writes_patient_encounter_pdf_and_document_in_that_order() -> None:
    assert [w.path.split("/")[0] for w in writes_for(discharged(), CTX)] == [
        "Organization",
        "Patient",
        "Encounter",
        "DocumentReference",
        "Bundle",
    ]


def test_a_cancelled_admission_is_entered_in_error() -> None:
    (enc,) = resources(admission_cancelled())
    assert enc["status"] == "entered-in-error"


def test_a_cancelled_discharge_reopens_the_encounter_and_withdraws_the_summary() -> None:
    enc, docref = resources(discharge_cancelled())
    assert enc["status"] == "in-progress" and "end" not in enc["period"] and "hospitalization" not in enc
    summary = [w.resource for w in writes_for(discharged(), CTX)][3]
    assert docref["id"] == summary["id"] and docref["status"] == "entered-in-error"
    assert "data" not in docref["content"][0]["attachment"]


def test_a_patient_update_rewrites_the_patient_only() -> None:
    (patient,) = resources(updated())
    assert patient["resourceType"] == "Patient"


# --- vital signs -----------------------------------------------------------------------------------


def test_hourly_medians_carry_loinc_and_mdc_in_ucum() -> None:
    obs = resources(hourly())
    hr = by_code(obs, "8867-4")
    assert codes(hr["code"], MDC) == ["147842"]
    assert hr["valueQuantity"] == {"value": 112, "unit": "beats/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    assert hr["category"][0]["coding"][0]["code"] == "vital-signs"
    assert hr["effectivePeriod"] == {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T11:00:00Z"}
    assert hr["note"][0]["text"].startswith("Median of 3597 valid samples")
    assert hr["subject"]["reference"] == f"Patient/{patient_id(PATIENT_ID)}"
    assert hr["encounter"]["reference"] == f"Encounter/{encounter_id(ENCOUNTER_ID)}"
    spo2 = by_code(obs, "2708-6")
    assert codes(spo2["code"], LOINC) == ["2708-6", "59408-5"] and codes(spo2["code"], MDC) == ["150456"]
    assert spo2["valueQuantity"]["value"] == 93.5 and spo2["valueQuantity"]["unit"] == "%"
    temp = by_code(obs, "8310-5")
    assert (temp["valueQuantity"]["unit"], temp["valueQuantity"]["code"]) == ("°C", "Cel")
    assert by_code(obs, "9279-1")["valueQuantity"]["unit"] == "breaths/min"


def test_hourly_blood_pressure_is_the_r4_panel() -> None:
    panel = by_code(resources(hourly()), "85354-9")
    assert codes(panel["code"], MDC) == ["150020"]
    assert "valueQuantity" not in panel
    parts = {codes(c["code"], LOINC)[0]: c for c in panel["component"]}
    assert list(parts) == ["8480-6", "8462-4", "8478-0"]
    assert parts["8480-6"]["valueQuantity"]["value"] == 96 and codes(parts["8480-6"]["code"], MDC) == ["150021"]
    assert parts["8462-4"]["valueQuantity"] == {"value": 58, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}


def test_a_panel_missing_its_diastolic_says_so() -> None:
    ev = hourly(values=[v.model_dump() for v in hourly().data.values if v.param != "nibp_dia"])
    panel = by_code(resources(ev), "85354-9")
    (dia,) = [c for c in panel["component"] if "8462-4" in codes(c["code"], LOINC)]
    assert dia["dataAbsentReason"]["coding"][0]["code"] == "unknown" and "valueQuantity" not in dia


def test_arterial_pressure_carries_the_generic_and_the_invasive_codes() -> None:
    values = [{"param": p, "median": m, "unit": "mm[Hg]", "n": 3600, "first": HOUR, "last": HOUR + 3_599_999}
              for p, m in (("abp_sys", 101), ("abp_dia", 55), ("abp_mean", 70))]  # fmt: skip
    (panel,) = resources(hourly(values=values))
    assert codes(panel["code"], MDC) == ["150032"]
    assert [codes(c["code"], LOINC) for c in panel["component"]] == [["8480-6", "76215-3"], ["8462-4", "76213-8"], ["8478-0", "76214-6"]]


def test_a_charted_value_names_the_nurse_and_its_time() -> None:
    (obs,) = resources(charted(param="temp", value=38.9, unit="Cel"))
    assert obs["performer"] == [{"display": "Nurse Meena Kumari"}]
    assert obs["effectiveDateTime"] == "2024-05-01T10:20:00Z"
    assert obs["valueQuantity"]["value"] == 38.9 and "38.9 °C" in obs["text"]["div"]


def test_consciousness_is_a_coded_exam_finding_not_a_quantity() -> None:
    (obs,) = resources(charted(param="acvpu", value=2, unit="{ACVPU}"))
    assert obs["valueCodeableConcept"] == {"text": "Responds to voice"}
    assert obs["category"][0]["coding"][0]["code"] == "exam"
    assert codes(obs["code"], LOINC) == ["67775-7"]


# --- NEWS2 -----------------------------------------------------------------------------------------


def test_a_complete_news2_has_its_total_subscores_and_band() -> None:
    (obs,) = resources(news2())
    assert codes(obs["code"], "http://snomed.info/sct") == ["1104051000000101"]
    assert obs["valueInteger"] == 8 and "dataAbsentReason" not in obs
    assert [c["valueInteger"] for c in obs["component"]] == [2, 1, 0, 2, 2, 0, 1]
    assert len({c["code"]["coding"][0]["code"] for c in obs["component"]}) == 7
    assert obs["interpretation"][0]["coding"][0]["code"] == "high"
    assert obs["interpretation"][0]["text"] == "High clinical risk"


def test_an_incomplete_news2_has_no_total_and_flags_what_is_missing() -> None:
    (obs,) = resources(news2_incomplete())
    assert "valueInteger" not in obs and obs["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    absent = [c for c in obs["component"] if "dataAbsentReason" in c]
    assert [c["code"]["coding"][0]["code"] for c in absent] == ["1104341000000101", "1104371000000107"]  # SBP, temperature
    assert obs["interpretation"][0]["text"] == "Medium or higher (incomplete) clinical risk"
    assert "sum to 5; this is not a total" in obs["note"][0]["text"]


def test_spo2_scale_2_has_its_own_subscore_code() -> None:
    (obs,) = resources(news2(spo2_scale=2))
    assert "1104321000000108" in [c["code"]["coding"][0]["code"] for c in obs["component"]]


@pytest.mark.parametrize(
    "change",
    [
        {"total": 9},  # not the sum of its sub-scores
        {"total": None, "missing": []},  # incomplete with nothing missing
        {"missing": ["temp"]},  # missing a sub-score it has
        {"partial": 7},
        {"subscores": {"rr": 2, "spo2": 1, "o2": 0, "sbp": 2, "hr": 2, "acvpu": 0, "temp": 1, "gcs": 1}},
        {"subscores": {"rr": 4, "spo2": 1, "o2": 0, "sbp": 2, "hr": 2, "acvpu": 0, "temp": -1}},
        {"band": "unknown"},
    ],
)
def test_a_news2_that_contradicts_itself_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(MappingError, match="score.band_changed"):
        writes_for(news2(**change), CTX)


# --- alarms ----------------------------------------------------------------------------------------


def test_an_alarm_flag_through_its_life() -> None:
    (raised,) = resources(alarm("alarm.raised"))
    (acked,) = resources(alarm("alarm.acknowledged"))
    (resolved,) = resources(alarm("alarm.resolved"))
    assert raised["id"] == acked["id"] == resolved["id"]
    assert [f["status"] for f in (raised, acked, resolved)] == ["active", "active", "inactive"]
    assert raised["period"] == {"start": "2024-05-01T10:40:00Z"}
    assert resolved["period"] == {"start": "2024-05-01T10:40:00Z", "end": "2024-05-01T10:55:00Z"}
    priority = raised["extension"][0]
    assert priority["url"] == "http://hl7.org/fhir/StructureDefinition/flag-priority"
    assert priority["valueCodeableConcept"]["coding"][0]["code"] == "PH"
    assert len(raised["extension"]) == 1  # not acknowledged yet
    for flag in (acked, resolved):
        ack = flag["extension"][1]
        assert ack["extension"] == [
            {"url": "by", "valueString": "Nurse Meena Kumari"},
            {"url": "at", "valueDateTime": "2024-05-01T10:41:00Z"},
        ]
    assert raised["code"]["text"] == "SpO₂ 86% (limit 90%)" and raised["encounter"]["reference"].startswith("Encounter/")


@pytest.mark.parametrize(("priority", "code"), [("high", "PH"), ("medium", "PM"), ("low", "PL")])
def test_alarm_priority_is_kept(priority: str, code: str) -> None:
    (flag,) = resources(alarm(priority=priority))
    assert flag["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == code


def test_an_acknowledgement_that_names_no_one_is_refused() -> None:
    with pytest.raises(MappingError, match="who acknowledged"):
        writes_for(alarm("alarm.acknowledged", by=None), CTX)


# --- what cannot be mapped -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ev", "message"),
    [
        (lambda: charted(param="gcs", value=3, unit="{score}"), "unknown parameter"),
        (lambda: charted(param="temp", value=101.2, unit="[degF]"), "unit"),
        (lambda: charted(param="spo2", value=140, unit="%"), "outside"),
        (lambda: charted(param="acvpu", value=1.5), "not a category"),
        (lambda: hourly(hour=HOUR + 1), "start of a clock hour"),
        (lambda: hourly(values=[{"param": "hr", "median": 80, "unit": "/min", "n": 0, "first": HOUR, "last": HOUR}]), "median of 0"),
        (lambda: hourly(values=[{"param": "hr", "median": 80, "unit": "/min", "n": 5, "first": HOUR, "last": HOUR + 3_600_000}]),
         "in the hour"),
        (lambda: hourly(values=2 * [{"param": "hr", "median": 80, "unit": "/min", "n": 5, "first": HOUR, "last": HOUR}]), "twice"),
        (lambda: admitted(patient=PATIENT | {"abha": "1234"}), "ABHA"),
        (lambda: admitted(patient=PATIENT | {"birth_date": "1961-02-30"}), "date of birth"),
        (lambda: admitted(patient=PATIENT | {"name": " \t"}), "name is blank"),
        (lambda: admitted(patient=PATIENT | {"mrn": "SMS\x00004217"}), "control characters"),
        (lambda: admitted(encounter=ENCOUNTER | {"end": HOUR + MINUTE, "outcome": "died"}), "open encounter"),
        (lambda: admitted(encounter=ENCOUNTER | {"patient_id": "someone-else"}), "another patient"),
        (lambda: transferred(encounter=ENCOUNTER), "bed the patient left"),
        (lambda: discharged(encounter=ENCOUNTER), "end and outcome"),
        (lambda: discharged(encounter=ENCOUNTER | {"end": HOUR - 1, "outcome": "discharged"}), "before it starts"),
        (lambda: event({"type": "observation.charted", "encounter_id": ENCOUNTER_ID, "patient_id": PATIENT_ID, "bed": "b",
                        "value": {"param": "hr", "value": 80, "unit": "/min", "t": -5}, "by": "n"}), "out of range"),
        (lambda: alarm(priority="urgent"), "priority"),
        (lambda: news2(subscores={"rr": 2, "rr ": 2}), "differ only in whitespace"),
        (lambda: alarm(category="clinical"), "category"),
    ],
)  # fmt: skip
def test_an_event_that_cannot_be_mapped_raises_mapping_error(ev: Any, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        writes_for(ev(), CTX)


def test_a_discharge_summary_with_a_bad_last_value_is_refused_before_any_pdf() -> None:
    from fhir_stay import SUMMARY

    bad = SUMMARY | {"last_vitals": [{"param": "hr", "value": 80, "unit": "/s", "t": HOUR}]}
    with pytest.raises(MappingError, match="unit"):
        writes_for(discharged(summary=bad), CTX)


# --- the contract ----------------------------------------------------------------------------------


def test_fhir_write_paths_match_their_resource() -> None:
    resource = {"resourceType": "Patient", "id": "abc"}
    assert FhirWrite("PUT", "Patient/abc", resource).path == "Patient/abc"
    assert FhirWrite("POST", "Patient", resource, if_none_exist="identifier=urn:x|1").method == "POST"
    for bad in (
        ("PUT", "Patient/xyz", None),
        ("PUT", "Patient/abc", "identifier=urn:x|1"),
        ("POST", "Patient", None),
        ("POST", "Encounter", "x"),
    ):
        with pytest.raises(ValueError):
            FhirWrite(bad[0], bad[1], resource, if_none_exist=bad[2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields", [("not a uri", "SMS", ""), ("https://h/mrn", "", ""), ("https://h/mrn", " SMS", ""), ("https://h/mrn", "SMS", "IN\n1")]
)
def test_a_mapping_context_is_checked_when_made(fields: tuple[str, str, str]) -> None:
    with pytest.raises(ValueError):
        MappingContext(*fields)


def test_a_facility_without_registry_id_is_named_only() -> None:
    ctx = MappingContext("https://h.example.in/mrn", "District Hospital, Alwar", "")
    org = writes_for(admitted(), ctx)[0].resource
    assert org["name"] == "District Hospital, Alwar" and "identifier" not in org
    hfr = writes_for(admitted(), CTX)[0].resource["identifier"][0]
    assert (hfr["system"], hfr["value"]) == ("https://facility.ndhm.gov.in", "IN0810012345")


def test_every_vocabulary_parameter_has_its_words_and_codes() -> None:
    from records_bridge.fhir import clinical_text, vital_codes
    from wire.vocabulary import PARAMETERS

    for p in PARAMETERS:  # a parameter added to the vocabulary must be given its label and unit here
        assert clinical_text.label(p.key) and (clinical_text.unit(p.key) or p.key in clinical_text.CATEGORY_TEXT)
        code = vital_codes.parameter_code(p.key)
        assert code["text"] == clinical_text.label(p.key)
        assert p.loinc is None or p.loinc in codes(code, LOINC)
        assert not p.mdc or codes(code, MDC) == [str(p.mdc[0])]


def test_every_parameter_of_the_vocabulary_has_a_label_for_the_discharge_summary() -> None:
    from records_bridge.fhir import clinical_text
    from wire.vocabulary import PARAMETERS

    assert {p.key: clinical_text.label(p.key) for p in PARAMETERS}  # a KeyError here stopped the bridge once
