"""The hospital and its places: the Organization, its wards and beds as Locations."""

from __future__ import annotations

from typing import Any

from records_bridge.fhir import ids, systems, text_fields
from records_bridge.fhir.contract import MappingContext
from records_bridge.fhir.refs import Refs


def organization_id(ctx: MappingContext) -> str:
    return ids.organization_id(ctx.facility_id, ctx.facility_name)


def organization_resource(ctx: MappingContext) -> dict[str, Any]:
    """The facility; its HFR id (ABDM's Health Facility Registry) as identifier when it has one."""
    resource: dict[str, Any] = {"resourceType": "Organization", "id": organization_id(ctx)}
    if ctx.facility_id:
        resource["identifier"] = [
            {
                "type": {"coding": [{"system": systems.V2_IDENTIFIER_TYPE, "code": "PRN", "display": "Provider number"}]},
                "system": systems.HFR_FACILITY,
                "value": ctx.facility_id,
            }
        ]
    return resource | {"active": True, "name": ctx.facility_name}


def bed_name(bed: str, ward: str) -> str:
    """ "Bed 3, MICU": the Location's name and how references display it."""
    return f"Bed {text_fields.required(bed, 'the bed')}, {text_fields.required(ward, 'the ward')}"


def ward_resource(ward: str, ctx: MappingContext, refs: Refs) -> dict[str, Any]:
    name = text_fields.required(ward, "the ward")
    return {
        "resourceType": "Location",
        "id": ids.ward_location_id(name),
        "status": "active",
        "name": name,
        "mode": "instance",
        "physicalType": {"coding": [{"system": systems.LOCATION_PHYSICAL_TYPE, "code": "wa", "display": "Ward"}]},
        "managingOrganization": refs("Organization", organization_id(ctx), ctx.facility_name),
    }


def bed_resource(bed: str, ward: str, ctx: MappingContext, refs: Refs) -> dict[str, Any]:
    """An ICU bed, part of its ward; the bed is keyed by its hub name alone (unique in a hub), so a bed moved
    to another ward keeps its id."""
    return {
        "resourceType": "Location",
        "id": ids.bed_location_id(bed),
        "status": "active",
        "name": bed_name(bed, ward),
        "mode": "instance",
        "physicalType": {"coding": [{"system": systems.LOCATION_PHYSICAL_TYPE, "code": "bd", "display": "Bed"}]},
        "managingOrganization": refs("Organization", organization_id(ctx), ctx.facility_name),
        "partOf": refs("Location", ids.ward_location_id(ward), ward),
    }
