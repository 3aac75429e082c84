"""The staff side of the locker, signed in through the hub: register a patient, push a record (the ``records`` role),
request a consent, and fetch a record under one (clinicians)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from records_bridge.fhir.contract import MappingError
from records_bridge.fhir.validation import validated
from records_bridge.services.hub_identity import Staff
from records_bridge.services.locker.bodies import (
    ID_PATTERN,
    MAX_BUNDLE_TEXT,
    RECORD_BODY,
    SMALL_BODY,
    ConsentRequest,
    PatientIn,
    RecordPut,
    digest_of,
    parsed,
    read_json,
)
from records_bridge.services.locker.sessions import CLINICIANS, REGISTRARS, staff
from records_bridge.services.locker.store import ConsentIn, LockerError, LogEntry, NotFound, RecordIn, Store
from records_bridge.services.locker.views import consent_view
from records_bridge.services.sms import SmsError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api")


def _store(request: Request) -> Store:
    return request.app.state.store


def _now(request: Request) -> int:
    return int(request.app.state.clock())


def _check_id(record_id: str) -> None:
    if not re.fullmatch(ID_PATTERN, record_id):
        raise LockerError("a record id is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", code="invalid")


@router.post("/patients")
async def register(request: Request, who: Staff = Depends(staff(*REGISTRARS))) -> JSONResponse:
    body = parsed(PatientIn, await read_json(request, SMALL_BODY))
    store = _store(request)
    pid, created = await run_in_threadpool(store.register_patient, body.patient.key(), body.mobile, body.name, _now(request))
    # who registered the locker or gave it a mobile number (the number that opens it) is on the patient's own record
    await run_in_threadpool(store.log, LogEntry("staff", f"{who.display_name} ({who.role})", "patient.register", "allowed",
                                                f"mobile number ending {body.mobile[-4:]} registered", pid), _now(request))  # fmt: skip
    return JSONResponse({"patient_id": pid, "created": created}, status_code=201 if created else 200)


@router.put("/records/{record_id}")
async def put_record(request: Request, record_id: str, who: Staff = Depends(staff("records"))) -> JSONResponse:
    _check_id(record_id)
    raw = await read_json(request, RECORD_BODY)
    body = parsed(RecordPut, raw)
    pdf = body.pdf_bytes()
    bundle_text = None
    if body.bundle is not None:
        try:
            await run_in_threadpool(validated, body.bundle)
        except MappingError as exc:
            raise LockerError(str(exc), code="invalid_fhir") from None
        except RecursionError:
            raise LockerError("the bundle is nested too deeply", code="invalid_fhir") from None
        bundle_text = json.dumps(body.bundle, ensure_ascii=False, separators=(",", ":"))
        if len(bundle_text) > MAX_BUNDLE_TEXT:
            raise LockerError(f"the bundle is larger than {MAX_BUNDLE_TEXT} bytes", code="too_large", status=413)
    rec = RecordIn(body.type, body.date, body.facility, body.title or body.type, bundle_text, pdf, digest_of(raw))
    created, pid = await run_in_threadpool(_store(request).put_record, record_id, body.patient.key(), body.mobile, body.name, rec,
                                           _now(request))  # fmt: skip
    return JSONResponse({"record_id": record_id, "created": created}, status_code=201 if created else 200)


@router.post("/consents")
async def request_consent(request: Request, who: Staff = Depends(staff(*CLINICIANS))) -> JSONResponse:
    body = parsed(ConsentRequest, await read_json(request, SMALL_BODY))
    store, now = _store(request), _now(request)
    expires_ms = int(body.expires_at.timestamp() * 1000)
    if expires_ms <= now:
        raise LockerError("expires_at is in the past", code="invalid")
    pid = await run_in_threadpool(store.find_patient, body.patient.key())
    if pid is None:
        raise NotFound(f"no locker for the patient with {body.patient.key().describe()}: the patient needs a locker first",
                       code="no_patient")  # fmt: skip
    r = body.requester
    kind, rid, name = (("facility", r.id, r.name or r.id) if r.kind == "facility" else ("staff", who.username, who.display_name))
    c = ConsentIn(kind, str(rid), str(name), who.username, body.purpose, tuple(dict.fromkeys(body.types)), body.date_from,
                  body.date_to, body.mode, expires_ms)  # fmt: skip
    row = await run_in_threadpool(store.request_consent, pid, c, now)
    await run_in_threadpool(_tell_patient, request, pid, f"{name} asks to see your {', '.join(c.types)} records. "
                                                          "Open your teleicu locker to grant or deny.")  # fmt: skip
    return JSONResponse(consent_view(row), status_code=201)


def _tell_patient(request: Request, patient_id: int, text: str) -> None:
    mobile = request.app.state.store.patient(patient_id)["mobile"]
    if not mobile:
        return
    try:
        request.app.state.sms.send(mobile, text)
    except SmsError as exc:  # the request stands; the patient sees it on signing in
        log.warning("could not text patient %s about a consent request: %s", patient_id, exc)


async def _consent_for_staff(request: Request, consent_id: str, who: Staff) -> dict[str, Any]:
    c = await run_in_threadpool(_store(request).consent, consent_id[:64])
    if c is None or (c["requester_kind"] == "staff" and c["requested_by"] != who.username):
        raise NotFound(f"no consent {consent_id[:64]} that you requested")
    return c


@router.get("/consents/{consent_id}")
async def consent(request: Request, consent_id: str, who: Staff = Depends(staff(*CLINICIANS))) -> JSONResponse:
    return JSONResponse(consent_view(await _consent_for_staff(request, consent_id, who)))


@router.get("/consents/{consent_id}/fhir")
async def consent_fhir(request: Request, consent_id: str, who: Staff = Depends(staff(*CLINICIANS))) -> Response:
    c = await _consent_for_staff(request, consent_id, who)
    return Response(json.dumps(c["fhir"]), media_type="application/fhir+json")


@router.get("/records/{record_id}")
async def fetch(request: Request, record_id: str, consent: str = Query(..., max_length=64,
                description="the consent artefact that allows this"), format: str = Query("json", pattern="^(json|pdf)$"),
                who: Staff = Depends(staff(*CLINICIANS))) -> Response:  # fmt: skip
    _check_id(record_id)
    rec = await run_in_threadpool(_store(request).fetch_under_consent, record_id, consent, who.username, _now(request))
    return record_response(rec, format)


def record_response(rec: dict[str, Any], fmt: str) -> Response:
    """A record as JSON (its details and Bundle) or as its PDF."""
    if fmt == "pdf":
        if rec["pdf"] is None:
            raise NotFound("this record has no PDF; ask for format=json", code="no_pdf")
        return Response(rec["pdf"], media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{rec["record_id"]}.pdf"'})  # fmt: skip
    meta = {k: rec[k] for k in ("record_id", "type", "date", "facility", "title")} | {"has_pdf": rec["pdf"] is not None}
    bundle = rec["bundle"] or "null"
    return Response(json.dumps(meta)[:-1] + f',"bundle":{bundle}}}', media_type="application/json")


__all__ = ["record_response", "router"]
