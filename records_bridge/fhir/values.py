"""A measured value checked against the vocabulary and written as an Observation value (Quantity or category)."""

from __future__ import annotations

import math
from typing import Any

from records_bridge.fhir import clinical_text, systems
from records_bridge.fhir.contract import MappingError
from wire.vocabulary import BY_KEY, CATEGORICAL


def check(param: str, value: float, unit: str) -> None:
    """``MappingError`` unless ``param`` is a vocabulary key, ``unit`` its UCUM unit and ``value`` a real measurement."""
    p = BY_KEY.get(param)
    if p is None:
        raise MappingError(f"unknown parameter {param!r}")
    if unit != p.ucum:
        raise MappingError(f"{param}: unit {unit!r} is not the vocabulary's {p.ucum!r}")
    if not math.isfinite(value) or not p.lo <= value <= p.hi:
        raise MappingError(f"{param}: {value} is outside {p.lo}..{p.hi} {p.ucum}")
    if param in CATEGORICAL and value != int(value):
        raise MappingError(f"{param}: {value} is not a category code")


def value_element(param: str, value: float) -> dict[str, Any]:
    """``{"valueQuantity": ...}`` in UCUM with the unit as written, or ``{"valueCodeableConcept": ...}`` for a category."""
    if param in CATEGORICAL:
        return {"valueCodeableConcept": {"text": clinical_text.CATEGORY_TEXT[param][int(value)]}}
    return {"valueQuantity": quantity(param, value)}


def quantity(param: str, value: float) -> dict[str, Any]:
    return {"value": _json_number(value), "unit": clinical_text.unit(param), "system": systems.UCUM, "code": BY_KEY[param].ucum}


def _json_number(value: float) -> int | float:
    """Whole values as integers (72, not 72.0), so the JSON reads as the ward wrote it."""
    return int(value) if value == int(value) else value


def data_absent(code: str, text: str) -> dict[str, Any]:
    display = {"unknown": "Unknown", "not-performed": "Not Performed", "error": "Error"}[code]
    return {"coding": [{"system": systems.DATA_ABSENT_REASON, "code": code, "display": display}], "text": text}
