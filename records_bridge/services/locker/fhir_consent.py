"""An artefact as a FHIR R4 ``Consent`` resource, validated with fhir.resources; rebuilt on every state change.

The artefact's state maps to ``Consent.status`` (REQUESTED proposed, GRANTED
active, DENIED rejected, REVOKED and EXPIRED inactive; the exact state is kept
as a tag). ``provision`` carries what ABDM's artefact says: the period the
access lasts (until the expiry), the records' date range (``dataPeriod``), the
record types (``code``), the purpose and the access mode (``action``), and the
requester as the actor. The patient is named by ABHA number or by MRN.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from records_bridge.fhir.contract import MappingError
from records_bridge.fhir.systems import ABHA_NUMBER, TELEICU
from records_bridge.fhir.validation import validated
from wire.abha import format_abha

STATUS = {"REQUESTED": "proposed", "GRANTED": "active", "DENIED": "rejected", "REVOKED": "inactive", "EXPIRED": "inactive"}
PURPOSES = {
    "CAREMGT": "Care Management",
    "BTG": "Break the Glass",
    "PUBHLTH": "Public Health",
    "HPAYMT": "Healthcare Payment",
    "DSRCH": "Disease Specific Healthcare Research",
    "PATRQT": "Self Requested",
}
MODES = ("VIEW", "STORE", "QUERY", "STREAM")
PURPOSE_SYSTEM = TELEICU + "CodeSystem:abdm-consent-purpose"
HI_TYPE_SYSTEM = TELEICU + "CodeSystem:abdm-hi-type"
MODE_SYSTEM = TELEICU + "CodeSystem:abdm-access-mode"
STATE_SYSTEM = TELEICU + "CodeSystem:locker-consent-state"
MRN_SYSTEM = TELEICU + "locker-mrn:"  # followed by the facility's id
REQUESTER_SYSTEM = TELEICU + "locker-requester:"  # followed by staff or facility


def instant(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def patient_identifier(abha: str | None, facility: str | None, mrn: str | None) -> dict[str, str]:
    if abha:
        return {"system": ABHA_NUMBER, "value": format_abha(abha)}
    return {"system": MRN_SYSTEM + str(facility), "value": str(mrn)}


def consent_resource(a: dict[str, Any], patient: dict[str, str], updated_ms: int) -> dict[str, Any]:
    """The ``Consent`` of artefact ``a`` (a row of ``locker_consents`` as a dict), checked against the R4B models."""
    requester = {"system": REQUESTER_SYSTEM + a["requester_kind"], "value": a["requester_id"]}
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": a["consent_id"],
        "meta": {"lastUpdated": instant(updated_ms), "tag": [{"system": STATE_SYSTEM, "code": a["state"]}]},
        "status": STATUS[a["state"]],
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"identifier": patient},
        "dateTime": instant(a["created_ms"]),
        "organization": [{"identifier": requester, "display": a["requester_name"]}] if a["requester_kind"] == "facility" else [],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {
            "type": "permit",
            "period": {"start": instant(a["created_ms"]), "end": instant(a["expires_ms"])},
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                       "reference": {"identifier": requester, "display": a["requester_name"]}}],
            "action": [{"coding": [{"system": MODE_SYSTEM, "code": a["mode"]}]}],
            "purpose": [{"system": PURPOSE_SYSTEM, "code": a["purpose"], "display": PURPOSES[a["purpose"]]}],
            "dataPeriod": {"start": a["date_from"], "end": a["date_to"]},
            "code": [{"coding": [{"system": HI_TYPE_SYSTEM, "code": t}]} for t in a["types"]],
        },
    }  # fmt: skip
    if not resource["organization"]:
        del resource["organization"]
    try:
        return validated(resource)
    except MappingError as exc:  # a bug here, not the caller's input: the artefact's fields were checked already
        raise RuntimeError(str(exc)) from None
