"""The patient's side of the locker (``/api/patient``): sign in with a code texted to the mobile number, list and open
records, grant, deny or revoke consents, make and revoke share links (with a QR code), and read the access log."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from records_bridge.services.locker import share_tokens
from records_bridge.services.locker.bodies import SMALL_BODY, CodeRequest, ShareRequest, SignIn, parsed, read_json
from records_bridge.services.locker.consent_machine import Action, Role
from records_bridge.services.locker.fhir_consent import instant
from records_bridge.services.locker.qr import qr_png, qr_svg
from records_bridge.services.locker.routes_staff import record_response
from records_bridge.services.locker.sessions import COOKIE, SESSION_TTL_MS, PatientSession, patient, session_token
from records_bridge.services.locker.store import LockerError, LogEntry, NotFound, RateLimited, Store
from records_bridge.services.locker.views import consent_view, link_view, log_view, patient_view, record_view
from records_bridge.services.sms import SmsError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/patient")
SENT = "If this number has a locker, a code was sent to it by SMS. It works for 5 minutes."


def _store(request: Request) -> Store:
    return request.app.state.store


def _now(request: Request) -> int:
    return int(request.app.state.clock())


@router.post("/code", status_code=202)
async def send_code(request: Request) -> JSONResponse:
    address = request.client.host if request.client else "?"
    limiter = request.app.state.code_limiter
    if not limiter.allow(address, _now(request)):  # besides each number's own limit: one address cannot text every number
        raise RateLimited("too many sign-in codes were asked for from this address; try again in a minute",
                          retry_after_s=limiter.retry_after_s(address))  # fmt: skip
    body = parsed(CodeRequest, await read_json(request, SMALL_BODY))
    code = await run_in_threadpool(_store(request).send_code, body.mobile, _now(request))
    if code is not None:
        text = f"Your teleicu locker code is {code}. It works for 5 minutes. Do not share it with anyone."
        try:
            await run_in_threadpool(request.app.state.sms.send, body.mobile, text)
        except SmsError as exc:
            log.warning("sign-in code not sent: %s", exc)
            raise LockerError("the SMS could not be sent just now; try again in a minute", code="sms_failed", status=503) from None
    return JSONResponse({"detail": SENT}, status_code=202)


@router.post("/session")
async def sign_in(request: Request) -> JSONResponse:
    body = parsed(SignIn, await read_json(request, SMALL_BODY))
    store, now = _store(request), _now(request)
    pid = await run_in_threadpool(store.verify_code, body.mobile, body.code, now)
    token = await run_in_threadpool(store.new_session, pid, now, SESSION_TTL_MS)
    await run_in_threadpool(store.log, LogEntry("patient", "patient", "session.start", "allowed", "signed in with a texted code", pid), now)
    resp = JSONResponse({"token": token, "expires_at": instant(now + SESSION_TTL_MS)})
    resp.set_cookie(COOKIE, token, max_age=SESSION_TTL_MS // 1000, httponly=True, samesite="strict", path="/",
                    secure=request.url.scheme == "https")  # fmt: skip
    return resp


@router.post("/signout")
async def sign_out(request: Request) -> JSONResponse:
    token = session_token(request)
    if token:
        await run_in_threadpool(_store(request).end_session, token)
    resp = JSONResponse({"detail": "signed out"})
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/me")
async def me(request: Request, who: PatientSession = Depends(patient)) -> JSONResponse:
    return JSONResponse(patient_view(await run_in_threadpool(_store(request).patient, who.patient_id)))


@router.get("/records")
async def records(request: Request, who: PatientSession = Depends(patient)) -> JSONResponse:
    rows = await run_in_threadpool(_store(request).records_of, who.patient_id)
    return JSONResponse({"records": [record_view(r) for r in rows]})


@router.get("/records/{record_id}")
async def open_record(request: Request, record_id: str, format: str = Query("json", pattern="^(json|pdf)$"),
                      who: PatientSession = Depends(patient)) -> Response:  # fmt: skip
    store = _store(request)
    rec = await run_in_threadpool(store.record, record_id[:64])
    if rec is None or rec["patient_id"] != who.patient_id:
        raise NotFound(f"no record {record_id[:64]} in your locker")
    await run_in_threadpool(store.log, LogEntry("patient", "patient", "record.open", "allowed", "you opened it", who.patient_id,
                                                rec["record_id"]), _now(request))  # fmt: skip
    return record_response(rec, format)


@router.get("/consents")
async def consents(request: Request, who: PatientSession = Depends(patient)) -> JSONResponse:
    rows = await run_in_threadpool(_store(request).consents_of, who.patient_id)
    return JSONResponse({"consents": [consent_view(c) for c in rows]})


@router.post("/consents/{consent_id}/{action}")
async def act(request: Request, consent_id: str, action: str, who: PatientSession = Depends(patient)) -> JSONResponse:
    if action not in (Action.GRANT, Action.DENY, Action.REVOKE):
        raise NotFound(f"a patient may grant, deny or revoke a consent, not {action[:20]!r}")
    row = await run_in_threadpool(_store(request).act, consent_id[:64], action, Role.PATIENT, "patient", _now(request), who.patient_id)
    return JSONResponse(consent_view(row))


def _link_url(request: Request, token: str) -> str:
    base = request.app.state.public_url or str(request.base_url).rstrip("/")
    return f"{base}/s/{token}"


@router.get("/share-links")
async def links(request: Request, who: PatientSession = Depends(patient)) -> JSONResponse:
    rows = await run_in_threadpool(_store(request).links_of, who.patient_id)
    now = _now(request)
    return JSONResponse({"links": [link_view(r, _link_url(request, r["token"]), now) for r in rows]})


@router.post("/share-links", status_code=201)
async def create_link(request: Request, who: PatientSession = Depends(patient)) -> JSONResponse:
    body = parsed(ShareRequest, await read_json(request, SMALL_BODY))
    now, secret = _now(request), request.app.state.share_secret
    row = await run_in_threadpool(_store(request).create_link, who.patient_id, body.record_id, now + body.minutes * 60_000, now,
                                  lambda link_id, exp_s: share_tokens.sign(secret, link_id, exp_s))  # fmt: skip
    return JSONResponse(link_view(row, _link_url(request, row["token"]), now), status_code=201)


@router.post("/share-links/{link_id}/revoke")
async def revoke_link(request: Request, link_id: str, who: PatientSession = Depends(patient)) -> JSONResponse:
    now = _now(request)
    row = await run_in_threadpool(_store(request).revoke_link, who.patient_id, link_id[:64], now)
    return JSONResponse(link_view(row, _link_url(request, row["token"]), now))


@router.get("/share-links/{link_id}/qr.{kind}")
async def link_qr(request: Request, link_id: str, kind: str, who: PatientSession = Depends(patient)) -> Response:
    if kind not in ("svg", "png"):
        raise NotFound("the QR code is served as qr.svg or qr.png")
    row = await run_in_threadpool(_store(request).link, who.patient_id, link_id[:64])
    url = _link_url(request, row["token"])
    if kind == "svg":
        return Response(qr_svg(url), media_type="image/svg+xml")
    return Response(qr_png(url), media_type="image/png")


@router.get("/access-log")
async def access_log(request: Request, limit: int = Query(100, ge=1, le=500), before: int | None = Query(None, ge=1),
                     who: PatientSession = Depends(patient)) -> JSONResponse:  # fmt: skip
    rows = await run_in_threadpool(_store(request).access_log_of, who.patient_id, limit, before)
    return JSONResponse({"entries": [log_view(e) for e in rows]})



