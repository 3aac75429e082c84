"""Checks the FHIR models do not make: R4's required bindings and invariants for what the mapping writes.

``fhir.resources`` checks structure, datatypes and cardinality; these add the
R4 rules a server's validator would apply to the same JSON: no empty elements,
codes from required value sets, obs-6/obs-7 (a value or a data-absent reason,
never both), cmp-1/cmp-2 for document sections, XHTML narratives, and
references that resolve inside a document bundle.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

OBSERVATION_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
ENCOUNTER_STATUS = {"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled", "entered-in-error", "unknown"}
FLAG_STATUS = {"active", "inactive", "entered-in-error"}
GENDER = {"male", "female", "other", "unknown"}
OBSERVATION_CATEGORY = {"social-history", "vital-signs", "imaging", "laboratory", "procedure", "survey", "exam", "therapy", "activity"}
LOCATION_STATUS = {"active", "suspended", "inactive"}
ENCOUNTER_LOCATION_STATUS = {"planned", "active", "reserved", "completed"}
DOCREF_STATUS = {"current", "superseded", "entered-in-error"}
_REFERENCE = re.compile(r"(?:[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}|urn:uuid:[0-9a-f\-]{36})")


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")


def check_resource(resource: dict[str, Any]) -> None:
    """Raise ``AssertionError`` naming the first rule ``resource`` (and, for a bundle, its entries) breaks."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for path, value in walk(resource):
        assert value not in ("", None, [], {}), f"{resource['resourceType']}{path} is empty"
        if path.endswith(".div") or path == ".text.div":
            assert value.startswith('<div xmlns="http://www.w3.org/1999/xhtml">'), f"{path}: not an XHTML div"
        if isinstance(value, dict) and "coding" in value:
            assert all(c.get("system") and c.get("code") for c in value["coding"]), f"{path}: a coding without system or code"
        if isinstance(value, dict) and "reference" in value:
            assert _REFERENCE.fullmatch(value["reference"]), f"{path}: {value['reference']!r} is not a literal reference"
        if isinstance(value, dict) and value.get("system") == "http://unitsofmeasure.org":
            assert "code" in value and "value" in value, f"{path}: a UCUM quantity without value or code"
    kind = resource["resourceType"]
    if kind == "Observation":
        _observation(resource)
    elif kind == "Patient":
        assert resource["gender"] in GENDER
    elif kind == "Encounter":
        assert resource["status"] in ENCOUNTER_STATUS
        assert all(loc["status"] in ENCOUNTER_LOCATION_STATUS for loc in resource.get("location", []))
    elif kind == "Flag":
        assert resource["status"] in FLAG_STATUS
    elif kind == "Location":
        assert resource["status"] in LOCATION_STATUS
    elif kind == "DocumentReference":
        assert resource["status"] in DOCREF_STATUS
    elif kind == "Composition":
        for section in resource["section"]:
            assert not ("emptyReason" in section and "entry" in section), f"cmp-1: {section['title']} has entries and an emptyReason"
            assert "text" in section or "entry" in section or "section" in section, f"cmp-2: {section['title']} is blank"
    elif kind == "Bundle":
        for entry in resource["entry"]:
            check_resource(entry["resource"])
        check_references_resolve(resource)


def _observation(obs: dict[str, Any]) -> None:
    assert obs["status"] in OBSERVATION_STATUS
    for category in obs.get("category", []):
        for coding in category["coding"]:
            if coding["system"].endswith("/observation-category"):
                assert coding["code"] in OBSERVATION_CATEGORY
    for part in [obs, *obs.get("component", [])]:
        values = [k for k in part if k.startswith("value")]
        assert len(values) <= 1
        assert not (values and "dataAbsentReason" in part), "obs-6/obs-7: a value and a dataAbsentReason"
        if part is not obs or "component" not in obs:
            assert values or "dataAbsentReason" in part, "vs-2: neither a value nor a dataAbsentReason"


def references(resource: dict[str, Any]) -> list[str]:
    return [v["reference"] for _, v in walk(resource) if isinstance(v, dict) and isinstance(v.get("reference"), str)]


def check_references_resolve(bundle: dict[str, Any]) -> None:
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    assert len(full_urls) == len(bundle["entry"]), "two entries share a fullUrl"
    for entry in bundle["entry"]:
        for ref in references(entry["resource"]):
            assert ref in full_urls, f"{entry['resource']['resourceType']} refers to {ref}, which is not in the bundle"
