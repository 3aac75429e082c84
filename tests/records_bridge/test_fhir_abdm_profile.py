"""The discharge summary document against ABDM's DischargeSummaryRecord and DocumentBundle profiles (the table in
``abdm_discharge_summary_profile``, which cites the implementation guide it was read from)."""

from __future__ import annotations

import copy
from typing import Any

import abdm_discharge_summary_profile as profile
import pytest
from fhir_rules import check_references_resolve, check_resource
from fhir_stay import CTX, SUMMARY, discharged

from records_bridge.fhir import writes_for


def count(resource: dict[str, Any], path: str) -> int:
    """How many values ``path`` (dotted) has in ``resource``, lists counting each item."""
    nodes: list[Any] = [resource]
    for part in path.split("."):
        found: list[Any] = []
        for node in nodes:
            value = node.get(part) if isinstance(node, dict) else None
            found += value if isinstance(value, list) else [] if value is None else [value]
        nodes = found
    return len(nodes)


def within(n: int, cardinality: tuple[int, int | None]) -> bool:
    low, high = cardinality
    return low <= n and (high is None or n <= high)


def target_type(bundle: dict[str, Any], reference: str) -> str:
    found = [e["resource"]["resourceType"] for e in bundle["entry"] if e["fullUrl"] == reference]
    assert len(found) == 1, f"{reference} is not in the bundle"
    return str(found[0])


def check_against_profile(bundle: dict[str, Any]) -> None:
    """``AssertionError`` naming the first rule of the profile table the bundle breaks."""
    for path, cardinality in profile.BUNDLE_ELEMENTS.items():
        assert within(count(bundle, path), cardinality), f"Bundle.{path}: {count(bundle, path)} not in {cardinality}"
    assert bundle["type"] == profile.BUNDLE_TYPE
    assert profile.BUNDLE_PROFILE in bundle["meta"].get("profile", [])
    composition = bundle["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition", "the first entry is the Composition"
    assert profile.PROFILE in composition["meta"]["profile"]
    for path, cardinality in profile.COMPOSITION_ELEMENTS.items():
        assert within(count(composition, path), cardinality), f"Composition.{path}: {count(composition, path)} not in {cardinality}"
    assert composition["type"]["coding"] == [profile.TYPE_CODING]
    for element, allowed in (("subject", profile.SUBJECT_TYPES), ("encounter", profile.ENCOUNTER_TYPES),
                             ("custodian", profile.CUSTODIAN_TYPES)):  # fmt: skip
        if element in composition:
            assert target_type(bundle, composition[element]["reference"]) in allowed, f"Composition.{element}"
    for author in composition["author"]:
        assert target_type(bundle, author["reference"]) in profile.AUTHOR_TYPES

    seen: dict[str, int] = {}
    past_the_slices = False  # openAtEnd: sections matching no slice come after all that do
    for section in composition["section"]:
        codings = section.get("code", {}).get("coding", [])
        matched = [profile.SECTION_BY_CODE[c["code"]] for c in codings if c.get("code") in profile.SECTION_BY_CODE]
        if not matched:
            past_the_slices = True
            continue
        assert not past_the_slices, f"section {section.get('title')!r} of a slice comes after an unsliced one"
        (s,) = matched
        assert codings == [{"system": profile.SNOMED, "code": s.code, "display": s.display}], f"{s.name}: code.coding is fixed"
        seen[s.name] = seen.get(s.name, 0) + 1
        for entry in section.get("entry", []):
            assert "reference" in entry, f"{s.name}: entry.reference is required"
            assert target_type(bundle, entry["reference"]) in s.entry_types, f"{s.name}: entry must be {sorted(s.entry_types)}"
    for s in profile.SECTIONS:
        assert within(seen.get(s.name, 0), (s.min, s.max)), f"section {s.name}: {seen.get(s.name, 0)} not in {s.min}..{s.max}"
    check_references_resolve(bundle)


def bundle_of(**change: Any) -> dict[str, Any]:
    return writes_for(discharged(**change), CTX)[-1].resource


def test_the_discharge_document_conforms_to_the_profile_table() -> None:
    bundle = bundle_of()
    check_resource(bundle)
    check_against_profile(bundle)


def test_the_sections_are_the_slices_we_fill_then_our_own() -> None:
    sections = bundle_of()["entry"][0]["resource"]["section"]
    coded = [c["code"] for s in sections for c in s["code"].get("coding", [])]
    assert coded == ["422843007", "425044008", "373942005"]  # ChiefComplaints, PhysicalExamination, DocumentReference
    assert [s["title"] for s in sections[3:]] == ["NEWS2 history", "Alarms during the stay", "ICU course"]


def test_the_document_holds_the_stay() -> None:
    bundle = bundle_of()
    sections = {s["title"]: s for s in bundle["entry"][0]["resource"]["section"]}
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert types[:4] == ["Composition", "Patient", "Encounter", "Organization"]
    assert len(sections["NEWS2 history"]["entry"]) == len(SUMMARY["news2"])
    assert len(sections["Alarms during the stay"]["entry"]) == len(SUMMARY["alarms"])
    assert len(sections["Physical examination: last vital signs"]["entry"]) == len(SUMMARY["last_vitals"])
    (diagnosis,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"]
    assert diagnosis["code"] == {"text": "Community-acquired pneumonia with septic shock"}
    (author,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Practitioner"]
    assert author["name"] == [{"text": "Dr. Rakesh Sharma"}]
    incomplete = [e["resource"] for e in bundle["entry"] if e["resource"].get("dataAbsentReason")]
    assert len(incomplete) == 1 and "valueInteger" not in incomplete[0]  # the NEWS2 point without a total


def test_a_stay_with_nothing_to_list_says_so_in_each_section() -> None:
    empty = {"news2": [], "last_vitals": [], "alarms": [], "charted": 0}
    bundle = bundle_of(summary=empty, patient=discharged().data.patient.model_dump() | {"diagnosis": "", "attending": ""})
    check_resource(bundle)
    check_against_profile(bundle)
    composition = bundle["entry"][0]["resource"]
    reasons = {s["title"]: s["emptyReason"]["coding"][0]["code"] for s in composition["section"] if "emptyReason" in s}
    assert reasons == {"Chief complaints": "unavailable", "Physical examination: last vital signs": "unavailable",
                       "NEWS2 history": "nilknown", "Alarms during the stay": "nilknown"}  # fmt: skip
    assert composition["author"][0]["reference"] == composition["custodian"]["reference"]  # no attending: the hospital


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda c, b: c["type"]["coding"].append({"system": "http://loinc.org", "code": "18842-5"}), "coding is fixed|type"),
        (lambda c, b: c.pop("encounter"), "encounter"),
        (lambda c, b: c["section"].insert(0, {"title": "Notes", "code": {"text": "Notes"}, "text": c["text"]}), "after an unsliced"),
        (lambda c, b: c["section"].insert(1, copy.deepcopy(c["section"][0])), "ChiefComplaints"),
        (lambda c, b: c["section"][0]["code"]["coding"][0].update(display="Chief complaint"), "fixed"),
        (lambda c, b: c["section"][1]["entry"].append(c["section"][0]["entry"][0]), "entry must be"),
        (lambda c, b: b["meta"].pop("versionId"), "versionId"),
        (lambda c, b: b["entry"].pop(1), "not in the bundle|Patient"),
    ],
)
def test_the_profile_check_catches_what_it_checks(breakage: Any, message: str) -> None:
    bundle = copy.deepcopy(bundle_of())
    breakage(bundle["entry"][0]["resource"], bundle)
    with pytest.raises(AssertionError, match=message):
        check_against_profile(bundle)
