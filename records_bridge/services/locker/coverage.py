"""The access decision: may this consent artefact release this record now? Pure: the caller passes the clock's reading.

The checks run in the order a person fixing the problem needs them: no
consent at all; a consent for another patient or held by someone else; its
state (requested, denied, revoked, expired); an expiry that has passed though
the sweeper has not yet closed it; the record's type; the record's date.
Every refusal has a short code (for the access log and tests) and a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConsentView:
    """What the decision needs of an artefact."""

    consent_id: str
    patient_id: int
    state: str
    types: tuple[str, ...]
    date_from: str  # YYYY-MM-DD, inclusive
    date_to: str  # YYYY-MM-DD, inclusive
    expires_ms: int
    requester_kind: str  # "staff" or "facility"
    requester_id: str
    requested_by: str  # the staff user who asked


@dataclass(frozen=True, slots=True)
class RecordView:
    record_id: str
    patient_id: int
    type: str
    date: str  # YYYY-MM-DD


@dataclass(frozen=True, slots=True)
class Denial:
    code: str
    reason: str


def check_access(consent: ConsentView | None, record: RecordView, user: str, now_ms: int) -> Denial | None:
    """None when ``user`` may read ``record`` under ``consent`` at ``now_ms``; otherwise the ``Denial``."""
    if consent is None:
        return Denial("no_consent", "no such consent: ask the patient for one that covers this record")
    if consent.patient_id != record.patient_id:
        return Denial("other_patient", "this consent was given by another patient; it does not cover this record")
    if consent.requester_kind == "staff" and consent.requested_by != user:
        return Denial("not_requester", f"this consent was given to {consent.requested_by}, not to {user}")
    match consent.state:
        case "REQUESTED":
            return Denial("not_granted", "the patient has not granted this consent yet")
        case "DENIED":
            return Denial("not_granted", "the patient denied this consent")
        case "REVOKED":
            return Denial("revoked", "the patient revoked this consent")
        case "EXPIRED":
            return Denial("expired", "this consent has expired; ask the patient for a new one")
    if now_ms >= consent.expires_ms:
        return Denial("expired", "this consent has expired; ask the patient for a new one")
    if record.type not in consent.types:
        return Denial("type_not_covered", f"this consent covers {', '.join(consent.types)}, not {record.type}")
    if not consent.date_from <= record.date <= consent.date_to:
        return Denial("date_outside_range",
                      f"this record is dated {record.date}; the consent covers {consent.date_from} to {consent.date_to}")  # fmt: skip
    return None
