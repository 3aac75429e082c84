"""Every URI the mapping writes: code systems, identifier systems, profiles and extensions, each named once.

Sources: FHIR R4 (4.0.1) terminology; the ABDM FHIR implementation guide
(NRCeS, https://nrces.in/ndhm/fhir/r4, version 6.5.0) for the Indian systems;
IEEE 11073-10101 for MDC. ``TELEICU`` is the programme's own namespace for the
few codes no standard has (alarm kinds, NEWS2 risk bands, the acknowledgement
extension); replace it here with a registered one when the programme has it.
"""

from __future__ import annotations

# Standard code systems
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
MDC = "urn:iso:std:iso:11073:10101"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V2_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
DISCHARGE_DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
LOCATION_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
FLAG_PRIORITY = "http://hl7.org/fhir/flag-priority-code"  # R4's code system for the flag-priority extension
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
LIST_EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
RFC3986 = "urn:ietf:rfc:3986"

# Core extensions
EXT_FLAG_PRIORITY = "http://hl7.org/fhir/StructureDefinition/flag-priority"

# India: ABDM / NRCeS (IG 6.5.0; the systems its own examples use)
ABDM_IDENTIFIER_TYPE = "https://nrces.in/ndhm/fhir/r4/CodeSystem/ndhm-identifier-type-code"
ABHA_NUMBER = "https://healthid.ndhm.gov.in"  # the 14-digit ABHA number, written 91-2345-6789-0123
HFR_FACILITY = "https://facility.ndhm.gov.in"  # Health Facility Registry ids
ABDM_PROFILE = "https://nrces.in/ndhm/fhir/r4/StructureDefinition/"
PROFILE_DISCHARGE_SUMMARY = ABDM_PROFILE + "DischargeSummaryRecord"
PROFILE_DOCUMENT_BUNDLE = ABDM_PROFILE + "DocumentBundle"

# The programme's own
TELEICU = "urn:teleicu:fhir:"
ALARM_KIND = TELEICU + "CodeSystem:alarm-kind"
NEWS2_RISK_BAND = TELEICU + "CodeSystem:news2-risk-band"
EXT_ALARM_ACKNOWLEDGEMENT = TELEICU + "StructureDefinition:alarm-acknowledgement"
HUB_PATIENT_ID = TELEICU + "patient-id"  # the hub's own ids, kept as identifiers for tracing
HUB_ENCOUNTER_ID = TELEICU + "encounter-id"
HUB_ALARM_ID = TELEICU + "alarm-id"
