"""What the bridge and the mapping agree on: a write, the hospital's facts, and the error for an unmappable event."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR's id datatype
_TYPE = re.compile(r"[A-Z][A-Za-z]+")


class MappingError(ValueError):
    """The event cannot be turned into valid FHIR resources (a contract violation or data FHIR rejects).

    The message names the event type and what is wrong; it never quotes patient data
    beyond identifiers. The bridge parks the event and goes on.
    """


@dataclass(frozen=True, slots=True)
class FhirWrite:
    """One request to the FHIR server: ``PUT <Type>/<id>`` (an idempotent upsert) or a conditional ``POST <Type>``."""

    method: Literal["PUT", "POST"]
    path: str  # "Patient/<id>" for PUT, "Patient" for a conditional POST
    resource: dict[str, Any]  # FHIR JSON, already validated
    if_none_exist: str | None = None  # "identifier=<system>|<value>" for a conditional create

    def __post_init__(self) -> None:
        kind = self.resource.get("resourceType")
        if self.method == "PUT":
            expected = f"{kind}/{self.resource.get('id')}"
            if self.path != expected or self.if_none_exist is not None:
                raise ValueError(f"a PUT goes to {expected} and has no If-None-Exist, not {self.path!r}")
            if not _ID.fullmatch(str(self.resource.get("id"))):
                raise ValueError(f"not a FHIR id: {self.resource.get('id')!r}")
        elif self.path != kind or not self.if_none_exist:
            raise ValueError(f"a conditional POST goes to {kind!r} with If-None-Exist, not {self.path!r}")
        if not isinstance(kind, str) or not _TYPE.fullmatch(kind):
            raise ValueError(f"not a resource type: {kind!r}")


@dataclass(frozen=True, slots=True)
class MappingContext:
    """Facts about the hospital, from the bridge's configuration."""

    mrn_system: str  # the hospital's MRN identifier system (a URI)
    facility_name: str
    facility_id: str  # e.g. an HFR id; may be ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+", self.mrn_system):
            raise ValueError(f"the MRN system must be a URI, not {self.mrn_system!r}")
        for what, text in (("facility name", self.facility_name), ("facility id", self.facility_id)):
            if text != " ".join(text.split()) or not text.isprintable():
                raise ValueError(f"the {what} has stray whitespace or control characters: {text!r}")
        if not self.facility_name:
            raise ValueError("the facility needs a name")
