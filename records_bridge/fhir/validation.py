"""Every resource is checked against the FHIR models before it leaves the mapping.

The models are ``fhir.resources``' R4B classes (pydantic v2). fhir.resources
has no R4 (4.0.1) models on pydantic v2; R4B (4.3.0) changed none of the
resources written here in a way the JSON shows (it reworked the medication
definition resources), so R4B's models check our R4 JSON. They check structure,
datatypes and required elements; they do not check bindings or invariants, which
the tests under ``tests/records_bridge`` do for what the mapping writes.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from records_bridge.fhir.contract import MappingError


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` itself when the R4B model of its type accepts it; ``MappingError`` naming the fault otherwise."""
    kind = resource.get("resourceType")
    try:
        model = get_fhir_model_class(str(kind))
    except ValueError as e:  # only a mapping bug names an unknown type
        raise MappingError(f"unknown resource type {kind!r}") from e
    try:
        model.model_validate(resource)
    except ValidationError as e:
        where = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()[:5])
        raise MappingError(f"{kind}/{resource.get('id')} is not valid FHIR: {where}") from None
    return resource
