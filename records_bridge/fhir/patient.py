"""The Patient: MRN and ABHA number as identifiers, name, sex and date of birth."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from records_bridge.fhir import ids, systems, text_fields
from records_bridge.fhir.contract import MappingContext, MappingError
from records_bridge.fhir.narrative import narrative
from wire.outbox_events import Patient

_ABHA = re.compile(r"\d{14}")


def abha_number(raw: str) -> str:
    """The 14-digit ABHA number as ABDM writes it, ``91-2345-6789-0123``; ``MappingError`` for anything else."""
    digits = re.sub(r"[\s-]", "", raw)
    if not _ABHA.fullmatch(digits):
        raise MappingError("the ABHA number is not 14 digits")
    return f"{digits[:2]}-{digits[2:6]}-{digits[6:10]}-{digits[10:]}"


def identifiers(p: Patient, ctx: MappingContext) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "use": "usual",
            "type": {"coding": [{"system": systems.V2_IDENTIFIER_TYPE, "code": "MR", "display": "Medical record number"}]},
            "system": ctx.mrn_system,
            "value": text_fields.required(p.mrn, "the MRN"),
        }
    ]
    if text_fields.optional(p.abha):
        out.append(
            {
                "type": {
                    "coding": [
                        {"system": systems.ABDM_IDENTIFIER_TYPE, "code": "ABHA", "display": "Ayushman Bharat Health Account (ABHA) ID"}
                    ],
                    "text": "ABHA number",
                },
                "system": systems.ABHA_NUMBER,
                "value": abha_number(p.abha or ""),
            }
        )
    out.append({"use": "secondary", "system": systems.HUB_PATIENT_ID, "value": text_fields.required(p.patient_id, "the hub's patient id")})
    return out


def patient_resource(p: Patient, ctx: MappingContext) -> dict[str, Any]:
    name = text_fields.required(p.name, "the patient's name")
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": ids.patient_id(p.patient_id),
        "text": narrative(f"{name}, MRN {p.mrn}."),
        "identifier": identifiers(p, ctx),
        "active": True,
        "name": [{"text": name}],
        "gender": p.sex,
    }
    if p.birth_date:
        resource["birthDate"] = birth_date(p.birth_date)
    return resource


def birth_date(raw: str) -> str:
    """``YYYY-MM-DD`` of a real calendar day; ``MappingError`` otherwise."""
    try:
        if len(raw) == 10 and date.fromisoformat(raw):
            return raw
    except ValueError:
        pass
    raise MappingError("the date of birth is not a calendar date (YYYY-MM-DD)")
