"""Deterministic resource ids: UUIDv5 over a kind and stable keys, so a replayed event writes the same ids."""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:teleicu:fhir")
_SEPARATOR = "\x1f"  # unit separator: keys never contain it, so ("a", "bc") and ("ab", "c") differ


def resource_id(kind: str, *keys: str | int) -> str:
    """The id of the resource of ``kind`` named by ``keys`` (the hub's ids, a bed, an hour, a parameter)."""
    return str(uuid.uuid5(_NAMESPACE, _SEPARATOR.join([kind, *map(str, keys)])))


def patient_id(hub_patient_id: str) -> str:
    return resource_id("Patient", hub_patient_id)


def encounter_id(hub_encounter_id: str) -> str:
    return resource_id("Encounter", hub_encounter_id)


def bed_location_id(bed: str) -> str:
    return resource_id("Location.bed", bed)


def ward_location_id(ward: str) -> str:
    return resource_id("Location.ward", ward)


def organization_id(facility_id: str, facility_name: str) -> str:
    """The facility by its registry id when it has one, else by its name."""
    return resource_id("Organization", facility_id) if facility_id else resource_id("Organization.name", facility_name)
