"""What the API shows of the store's rows: consent artefacts, records, share links and log entries as JSON-ready dicts."""

from __future__ import annotations

from typing import Any

from records_bridge.services.locker.fhir_consent import instant
from wire.abha import format_abha


def consent_view(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "consent_id": c["consent_id"], "state": c["state"], "purpose": c["purpose"], "types": list(c["types"]),
        "date_from": c["date_from"], "date_to": c["date_to"], "mode": c["mode"], "expires_at": instant(c["expires_ms"]),
        "requester": {"kind": c["requester_kind"], "id": c["requester_id"], "name": c["requester_name"]},
        "requested_by": c["requested_by"], "created_at": instant(c["created_ms"]), "updated_at": instant(c["updated_ms"]),
    }  # fmt: skip


def record_view(r: dict[str, Any]) -> dict[str, Any]:
    return {"record_id": r["record_id"], "type": r["type"], "date": r["date"], "facility": r["facility"], "title": r["title"],
            "has_bundle": bool(r["has_bundle"]), "has_pdf": bool(r["has_pdf"]), "added_at": instant(r["created_ms"])}  # fmt: skip


def link_view(link: dict[str, Any], url: str, now_ms: int) -> dict[str, Any]:
    state = "revoked" if link["revoked_ms"] is not None else "expired" if now_ms >= link["expires_ms"] else "active"
    return {"link_id": link["link_id"], "record_id": link["record_id"], "url": url, "state": state,
            "created_at": instant(link["created_ms"]), "expires_at": instant(link["expires_ms"]),
            "qr_svg": f"/api/patient/share-links/{link['link_id']}/qr.svg"}  # fmt: skip


def log_view(e: dict[str, Any]) -> dict[str, Any]:
    return {"seq": e["seq"], "at": instant(e["at_ms"]), "actor_kind": e["actor_kind"], "actor": e["actor"], "action": e["action"],
            "record_id": e["record_id"], "consent_id": e["consent_id"], "link_id": e["link_id"], "outcome": e["outcome"],
            "reason": e["reason"]}  # fmt: skip


def patient_view(p: dict[str, Any]) -> dict[str, Any]:
    mobile = p["mobile"]
    return {"name": p["name"], "abha": format_abha(p["abha"]) if p["abha"] else None, "facility": p["facility"], "mrn": p["mrn"],
            "mobile": mobile[:3] + "X" * (len(mobile) - 7) + mobile[-4:] if mobile else None}  # fmt: skip
