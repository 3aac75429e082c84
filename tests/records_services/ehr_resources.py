"""Small FHIR resources for the EHR tests: what a test changes is all it states."""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
MRN = "https://hospital.example/mrn"


def observation(ident: str, patient: str = "p1", encounter: str = "e1", code: str = "8867-4", when: str = "2024-05-01T10:00:00Z",
                value: float = 80, system: str = LOINC) -> dict[str, Any]:  # fmt: skip
    return {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{encounter}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def patient(ident: str | None = "p1", mrn: str = "MRN-1", **more: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}], "gender": "female"} | more
    return r if ident is None else {"resourceType": "Patient", "id": ident} | r
