"""FHIR R4 mapping of the hub's outbox events: pure functions, no I/O.

``writes_for(event, ctx)`` returns the writes the bridge delivers, in order;
every resource is validated and every id is deterministic, so a replayed event
gives byte-identical writes. An event that cannot be mapped raises
``MappingError`` and the bridge parks it; ``FontMissing`` (the PDF's font is
not installed) is the machine's fault, not the event's: the bridge retries.
"""

from records_bridge.fhir.contract import FhirWrite, MappingContext, MappingError
from records_bridge.fhir.discharge_pdf import FontMissing
from records_bridge.fhir.mapping import writes_for

__all__ = ["FhirWrite", "FontMissing", "MappingContext", "MappingError", "writes_for"]
