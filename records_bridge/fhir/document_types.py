"""Document-level concepts shared by the Composition, the DocumentReference and the section table."""

from __future__ import annotations

from typing import Any

from records_bridge.fhir import systems

DISCHARGE_SUMMARY_SNOMED = {"system": systems.SNOMED, "code": "373942005", "display": "Discharge summary"}
DISCHARGE_SUMMARY_LOINC = {"system": systems.LOINC, "code": "18842-5", "display": "Discharge summary"}

#: Composition.type: the ABDM profile fixes exactly one coding, SNOMED CT 373942005
COMPOSITION_TYPE: dict[str, Any] = {"coding": [DISCHARGE_SUMMARY_SNOMED], "text": "Discharge summary"}
#: DocumentReference.type: the same concept, with LOINC's for receivers that index documents by LOINC
DISCHARGE_SUMMARY_TYPE: dict[str, Any] = {"coding": [DISCHARGE_SUMMARY_SNOMED, DISCHARGE_SUMMARY_LOINC], "text": "Discharge summary"}
