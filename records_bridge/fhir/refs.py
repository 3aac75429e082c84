"""References in the two places resources live: on the FHIR server (``Patient/<id>``) and inside a document bundle
(``urn:uuid:<id>``, the entry's fullUrl). Builders take one of these so the same code serves both."""

from __future__ import annotations

from typing import Any, Protocol


class Refs(Protocol):
    def __call__(self, kind: str, resource_id: str, display: str | None = None) -> dict[str, Any]: ...


def server_ref(kind: str, resource_id: str, display: str | None = None) -> dict[str, Any]:
    return _with_display({"reference": f"{kind}/{resource_id}"}, display)


def document_ref(kind: str, resource_id: str, display: str | None = None) -> dict[str, Any]:
    return _with_display({"reference": f"urn:uuid:{resource_id}", "type": kind}, display)


def display_only(display: str) -> dict[str, Any]:
    """A reference that names someone the records have no resource for (a nurse as the session names her)."""
    return {"display": display}


def _with_display(ref: dict[str, Any], display: str | None) -> dict[str, Any]:
    return ref | {"display": display} if display else ref
