"""ABDM's DischargeSummaryRecord profile, as a table the discharge document is checked against.

Source (read 2025-03 content; transcribed as facts, not copied as code):

- Implementation guide: "FHIR Implementation Guide for ABDM", National Resource
  Centre for EHR Standards (NRCeS) for the National Health Authority, version
  6.5.0, FHIR 4.0.1, canonical base https://nrces.in/ndhm/fhir/r4
  (published: https://nrces.in/ndhm/fhir/r4/6.5.0/StructureDefinition-DischargeSummaryRecord.html).
- StructureDefinition: https://nrces.in/ndhm/fhir/r4/StructureDefinition/DischargeSummaryRecord
  (Composition), read in its FSH source, repository gauravvaishnav17/abdm-fhir-ig-fsh,
  file input/fsh/profiles/DischargeSummaryRecord.fsh, commit
  355f629bd216ec01107680738894b17c2fc93555 (its sushi-config.yaml says IG
  version 6.5.0; the profile's own ^version still reads 6.0.0).
- The bundle: StructureDefinition DocumentBundle (same IG), file
  input/fsh/profiles/DocumentBundle.fsh of the same commit.
- Section titles: the profile fixes none; the titles below are those of the
  IG's example Bundle-DischargeSummary-example-04, for reference only.

Cardinalities are (min, max) with None for "*"; those the profile does not
change are R4's base Composition ones.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_URL = "https://nrces.in/ndhm/fhir/r4/6.5.0/StructureDefinition-DischargeSummaryRecord.html"
PROFILE = "https://nrces.in/ndhm/fhir/r4/StructureDefinition/DischargeSummaryRecord"
BUNDLE_PROFILE = "https://nrces.in/ndhm/fhir/r4/StructureDefinition/DocumentBundle"
IG_VERSION = "6.5.0"

SNOMED = "http://snomed.info/sct"

#: Composition.type.coding: 1..1, every part fixed
TYPE_CODING = {"system": SNOMED, "code": "373942005", "display": "Discharge summary"}

#: Composition elements the profile (or R4) requires, with (min, max)
COMPOSITION_ELEMENTS: dict[str, tuple[int, int | None]] = {
    "status": (1, 1),  # R4; must support
    "type": (1, 1),  # R4; must support
    "type.coding": (1, 1),  # profile
    "subject": (1, 1),  # profile 1.., Reference(Patient)
    "subject.reference": (1, 1),  # profile
    "encounter": (1, 1),  # profile 1.., Reference(Encounter)
    "date": (1, 1),  # R4
    "author": (1, None),  # R4; must support
    "title": (1, 1),  # R4
    "custodian": (0, 1),  # Reference(Organization)
    "section": (1, None),  # profile 1.., must support
}

#: reference targets the profile allows
SUBJECT_TYPES = {"Patient"}
ENCOUNTER_TYPES = {"Encounter"}
AUTHOR_TYPES = {"Device", "RelatedPerson", "Patient", "Practitioner", "PractitionerRole", "Organization"}
CUSTODIAN_TYPES = {"Organization"}

#: Composition.section slicing: discriminator value at code.coding.code; rules openAtEnd
SLICING = {"discriminator": ("value", "code.coding.code"), "rules": "openAtEnd"}


@dataclass(frozen=True, slots=True)
class Slice:
    name: str
    code: str  # code.coding: ..1; system, code and display 1.. and fixed
    display: str
    entry_types: frozenset[str]  # entry only Reference(...); entry.reference 1..
    example_title: str
    min: int = 0
    max: int = 1


SECTIONS: tuple[Slice, ...] = (
    Slice("ChiefComplaints", "422843007", "Chief complaint section", frozenset({"Condition"}), "Chief complaints"),
    Slice("PhysicalExamination", "425044008", "Physical exam section", frozenset({"Observation"}), "Physical examination"),
    Slice("Allergies", "722446000", "Allergy record", frozenset({"AllergyIntolerance"}), "Allergies"),
    Slice("MedicalHistory", "1003642006", "Past medical history section", frozenset({"Procedure", "Condition"}), "Medical History"),
    Slice("FamilyHistory", "422432008", "Family history section", frozenset({"FamilyMemberHistory"}), "Family history"),
    Slice("Investigations", "721981007", "Diagnostic studies report", frozenset({"DiagnosticReport"}), "Investigations"),
    Slice("Medications", "1003606003", "Medication history section", frozenset({"MedicationRequest"}), "Medications"),
    Slice("Procedures", "1003640003", "History of past procedure section", frozenset({"Procedure"}), "Procedures"),
    Slice("CarePlan", "734163000", "Care plan", frozenset({"CarePlan"}), "Care Plan"),
    Slice("DocumentReference", "373942005", "Discharge summary", frozenset({"DocumentReference"}), "Document Reference"),
)
SECTION_BY_CODE = {s.code: s for s in SECTIONS}

#: DocumentBundle: Bundle elements the profile requires, and its fixed type
BUNDLE_ELEMENTS: dict[str, tuple[int, int | None]] = {
    "meta": (1, 1),
    "meta.versionId": (1, 1),
    "identifier": (1, 1),
    "identifier.system": (1, 1),
    "identifier.value": (1, 1),
    "timestamp": (1, 1),
}
BUNDLE_TYPE = "document"
