"""The queue service's HTTP API under ``/api`` and the display board under ``/board``.

Bodies are small JSON objects (at most ``MAX_BODY`` bytes), checked here and
in the store; every refusal is problem JSON with a reason. Database work runs
in worker threads. After each change that moves a queue, the facility's boards
are told (``board.BoardFeed``) and the reminders now due are sent (``_remind``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse

from records_bridge.services.hub_identity import Staff
from records_bridge.services.queue import policy
from records_bridge.services.queue.board import BoardFeed, TooManyBoards
from records_bridge.services.problems import Problem
from records_bridge.services.queue.store import Booking, Patient, Store, booking_digest
from records_bridge.services.sms import SmsError

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
STATIC = Path(__file__).resolve().parent / "static"
ACTIONS = ("skip", "no_show", "recall", "complete")

api = APIRouter(prefix="/api")
pages = APIRouter()


def _store(request: Request) -> Store:
    return request.app.state.store


def _feed(request: Request) -> BoardFeed:
    return request.app.state.feed


def staff(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency: the signed-in hub user, if their role is one of ``roles``."""

    async def who(request: Request) -> Staff:
        return await request.app.state.identity.dependency(*roles)(request)

    return Depends(who)


async def body_of(request: Request) -> dict[str, Any]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Problem(415, f"send application/json, not {media or 'no Content-Type'!r}", reason="media_type")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise Problem(413, f"the body is larger than {MAX_BODY} bytes", reason="too_large")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise Problem(400, "the body is not JSON", reason="not_json") from None
    if not isinstance(data, dict):
        raise Problem(400, "the body must be a JSON object", reason="not_object")
    return data


def _fields(body: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise Problem(422, f"unknown field(s) {', '.join(unknown)[:200]}; allowed: {', '.join(allowed)}", reason="unknown_field")
    missing = [f for f in required if body.get(f) in (None, "")]
    if missing:
        raise Problem(422, f"missing {', '.join(missing)}", reason="missing_field")


def _token_answer(token: dict[str, Any], created: bool) -> JSONResponse:
    return JSONResponse(token | {"created": created}, status_code=201 if created else 200)


PUBLIC_TOKEN_FIELDS = ("id", "queue_id", "day", "number", "display", "category", "source", "status", "position", "estimate_now_s", "estimate_at_issue_s")


def _public_token_answer(token: dict[str, Any], created: bool) -> JSONResponse:
    """What a kiosk or a scan may show: the number, place and wait, never how the token came to be (a booking's id
    names the ICU stay it follows, and anyone knowing a patient's ABHA number or mobile may ask)."""
    return _token_answer({k: v for k, v in token.items() if k in PUBLIC_TOKEN_FIELDS}, created)


async def _moved(request: Request, queue_id: str, facility_id: str) -> None:
    """After a change in ``queue_id``: refresh the facility's boards, send the reminders now due."""
    _feed(request).changed(facility_id)
    store, sms = _store(request), request.app.state.sms
    due = await run_in_threadpool(store.claim_reminders, queue_id)
    for r in due:
        text = (f"Your token {r['display']} ({r['queue'][:40]}): {r['position'] - 1} patient(s) before you. "
                "Please come near the counter.")  # fmt: skip
        try:
            await run_in_threadpool(sms.send, r["mobile"], text)
        except SmsError as exc:  # claimed already: it is not sent twice; the log says which one failed
            log.warning("queue reminder for token %s not sent: %s", r["token_id"], exc)


# ------------------------------------------------------------------------------------------------ structure (admin)


@api.put("/facilities/{facility_id}")
async def put_facility(request: Request, facility_id: str, _who: Staff = staff(*policy.ADMIN)) -> JSONResponse:
    body = await body_of(request)
    _fields(body, ("name", "tz"), ("name",))
    return JSONResponse(await run_in_threadpool(_store(request).put_facility, facility_id, body["name"], body.get("tz", "Asia/Kolkata")))


@api.put("/facilities/{facility_id}/departments/{department_id}")
async def put_department(request: Request, facility_id: str, department_id: str, _who: Staff = staff(*policy.ADMIN)) -> JSONResponse:
    body = await body_of(request)
    _fields(body, ("name",), ("name",))
    return JSONResponse(await run_in_threadpool(_store(request).put_department, department_id, facility_id, body["name"]))


@api.put("/facilities/{facility_id}/counters/{counter_id}")
async def put_counter(request: Request, facility_id: str, counter_id: str, _who: Staff = staff(*policy.ADMIN)) -> JSONResponse:
    body = await body_of(request)
    _fields(body, ("name", "department_id"), ("name",))
    return JSONResponse(await run_in_threadpool(_store(request).put_counter, counter_id, facility_id, body["name"], body.get("department_id")))


@api.put("/departments/{department_id}/queues/{queue_id}")
async def put_queue(request: Request, department_id: str, queue_id: str, _who: Staff = staff(*policy.ADMIN)) -> JSONResponse:
    body = await body_of(request)
    _fields(body, ("name", "prefix", "doctor", "service_s", "remind_ahead"), ("name",))
    opts = {k: body[k] for k in ("prefix", "doctor", "service_s", "remind_ahead") if k in body}
    return JSONResponse(await run_in_threadpool(lambda: _store(request).put_queue(queue_id, department_id, body["name"], **opts)))


@api.post("/facilities/{facility_id}/credentials")
async def add_credential(request: Request, facility_id: str, _who: Staff = staff(*policy.ADMIN)) -> JSONResponse:
    """A kiosk secret or a board key, shown once."""
    body = await body_of(request)
    _fields(body, ("kind", "name"), ("kind", "name"))
    secret = await run_in_threadpool(_store(request).add_credential, body["kind"], facility_id, body["name"])
    out = {"kind": body["kind"], "name": body["name"], "secret": secret}
    if body["kind"] == "board":
        out["board_path"] = f"/board/{facility_id}?key={secret}"
    return JSONResponse(out, status_code=201)


@api.get("/facilities/{facility_id}")
async def get_facility(request: Request, facility_id: str, _who: Staff = staff(*policy.READERS)) -> JSONResponse:
    return JSONResponse(await run_in_threadpool(_store(request).structure, facility_id))


# ------------------------------------------------------------------------------------------------------ issuing


def _patient(body: dict[str, Any], *, need: bool = False) -> Patient:
    patient = Patient.of(body.get("abha"), body.get("mobile"))
    if need and patient.key is None:
        raise Problem(422, "give the patient's ABHA number or mobile number", reason="missing_field")
    return patient


@api.post("/queues/{queue_id}/tokens")
async def issue_at_counter(request: Request, queue_id: str, _who: Staff = staff(*policy.STAFF)) -> JSONResponse:
    """A token issued by staff; ``category`` walk_in (default), booked or priority; abha/mobile optional."""
    body = await body_of(request)
    _fields(body, ("category", "abha", "mobile"))
    patient = _patient(body)
    token, created = await run_in_threadpool(lambda: _store(request).issue(queue_id, patient, category=body.get("category", "walk_in")))
    return _token_answer(token, created)


@api.post("/kiosk/tokens")
async def issue_at_kiosk(request: Request) -> JSONResponse:
    """A walk-in token from a kiosk (``Authorization: Bearer qk_…``), for a queue of the kiosk's facility."""
    auth = request.headers.get("authorization", "")
    facility = await run_in_threadpool(_store(request).credential, auth[7:].strip(), "kiosk") if auth[:7].lower() == "bearer " else None
    if facility is None:
        raise Problem(401, "a kiosk credential is needed (Authorization: Bearer qk_…; teleicu queue credentials add)", reason="kiosk")
    body = await body_of(request)
    _fields(body, ("queue_id", "abha", "mobile"), ("queue_id",))
    patient = _patient(body)
    token, created = await run_in_threadpool(lambda: _store(request).issue(str(body["queue_id"]), patient, source="kiosk", facility_id=facility))
    return _public_token_answer(token, created)


@api.post("/scan/{facility_id}/tokens")
async def issue_by_scan(request: Request, facility_id: str) -> JSONResponse:
    """Scan and share: the patient scanned the facility's QR code and sends an ABHA number or mobile and the queue.
    Public, so rate-limited by client address and by patient."""
    limiter, now = request.app.state.scan_limiter, request.app.state.clock()
    ip = request.client.host if request.client else "?"
    if not limiter.allow(f"ip:{ip}", now):
        raise Problem(429, "too many requests from this address; try again in a minute", reason="rate_limited",
                      headers={"Retry-After": str(limiter.retry_after_s(f'ip:{ip}'))})  # fmt: skip
    body = await body_of(request)
    _fields(body, ("queue_id", "abha", "mobile"), ("queue_id",))
    patient = _patient(body, need=True)
    if not limiter.allow(f"patient:{patient.key}", now):
        raise Problem(429, "too many requests for this patient; try again in a minute", reason="rate_limited",
                      headers={"Retry-After": str(limiter.retry_after_s(f'patient:{patient.key}'))})  # fmt: skip
    token, created = await run_in_threadpool(lambda: _store(request).issue(str(body["queue_id"]), patient, source="scan", facility_id=facility_id))
    return _public_token_answer(token, created)


BOOKING_FIELDS = ("booking_id", "queue_id", "day", "slot", "patient")


@api.post("/bookings")
async def book(request: Request, _who: Staff = staff(*policy.BOOKERS)) -> JSONResponse:
    """A booked slot: the token of ``queue_id`` on ``day`` (category booked). ``booking_id`` is the client's; the same
    request again returns the same token (200), a different one with that id is a 409."""
    body = await body_of(request)
    _fields(body, BOOKING_FIELDS, ("booking_id", "queue_id", "day", "patient"))
    booking_id, slot, p = body["booking_id"], body.get("slot"), body["patient"]
    if not isinstance(booking_id, str) or not 1 <= len(booking_id) <= 64 or not booking_id.isprintable():
        raise Problem(422, "booking_id must be 1 to 64 printable characters", reason="bad_booking_id")
    if slot is not None and (not isinstance(slot, str) or len(slot) != 5 or not slot[:2].isdigit() or slot[2] != ":" or not slot[3:].isdigit()):
        raise Problem(422, "slot must be a time, HH:MM", reason="bad_slot")
    if not isinstance(p, dict) or set(p) - {"abha", "mobile", "ref"}:
        raise Problem(422, "patient must be an object with abha, mobile and/or ref", reason="bad_patient")
    patient = Patient.of(p.get("abha"), p.get("mobile"), p.get("ref"))
    if patient.key is None:
        raise Problem(422, "the booking's patient needs an abha, a mobile or a ref", reason="missing_field")
    booking = Booking(booking_id, str(body["day"]), slot, booking_digest({k: body.get(k) for k in BOOKING_FIELDS}))
    token, created = await run_in_threadpool(lambda: _store(request).issue(str(body["queue_id"]), patient, category="booked",
                                                                          source="booking", booking=booking))  # fmt: skip
    return _token_answer(token, created)


# -------------------------------------------------------------------------------------------------- working it


@api.get("/tokens/{token_id}")
async def get_token(request: Request, token_id: int, _who: Staff = staff(*policy.READERS)) -> JSONResponse:
    return JSONResponse(await run_in_threadpool(_store(request).token, token_id))


@api.get("/queues/{queue_id}/waiting")
async def waiting(request: Request, queue_id: str, _who: Staff = staff(*policy.READERS)) -> JSONResponse:
    return JSONResponse({"queue_id": queue_id, "waiting": await run_in_threadpool(_store(request).waiting, queue_id)})


@api.post("/queues/{queue_id}/next")
async def call_next(request: Request, queue_id: str, _who: Staff = staff(*policy.STAFF)) -> JSONResponse:
    body = await body_of(request)
    _fields(body, ("counter_id",), ("counter_id",))
    token = await run_in_threadpool(_store(request).call_next, queue_id, str(body["counter_id"]))
    await _moved(request, queue_id, token["facility_id"])
    return JSONResponse(token)


@api.post("/tokens/{token_id}/transfer")
async def transfer(request: Request, token_id: int, _who: Staff = staff(*policy.STAFF)) -> JSONResponse:
    body = await body_of(request)
    _fields(body, ("queue_id",), ("queue_id",))
    old = await run_in_threadpool(_store(request).token, token_id)
    token = await run_in_threadpool(_store(request).transfer, token_id, str(body["queue_id"]))
    await _moved(request, old["queue_id"], token["facility_id"])
    await _moved(request, token["queue_id"], token["facility_id"])
    return JSONResponse(token)


@api.post("/tokens/{token_id}/{action}")
async def act(request: Request, token_id: int, action: str, _who: Staff = staff(*policy.STAFF)) -> JSONResponse:
    if action not in ACTIONS:
        raise Problem(404, f"no action {action[:20]!r}; one of {', '.join(ACTIONS)}, transfer", reason="bad_action")
    body = await body_of(request)
    _fields(body, ("counter_id",))
    token = await run_in_threadpool(_store(request).act, token_id, action, body.get("counter_id"))
    await _moved(request, token["queue_id"], token["facility_id"])
    return JSONResponse(token)


@api.get("/facilities/{facility_id}/metrics")
async def metrics(request: Request, facility_id: str, day: str | None = None, _who: Staff = staff(*policy.READERS)) -> JSONResponse:
    if day is not None and (len(day) != 10 or not day.replace("-", "").isdigit()):
        raise Problem(422, "day must be YYYY-MM-DD", reason="bad_day")
    return JSONResponse(await run_in_threadpool(_store(request).metrics, facility_id, day))


# ---------------------------------------------------------------------------------------------- display board


async def _board_facility(request: Request, facility_id: str, key: str | None) -> str:
    """The facility, if ``key`` is its board key; 404 otherwise (a wrong key learns nothing, not even that the facility exists)."""
    found = await run_in_threadpool(_store(request).credential, key or "", "board")
    if found is None or found != facility_id:
        raise Problem(404, "no such board: the board URL needs the facility's board key (?key=qb_…)", reason="board_key")
    return found


@pages.get("/board/{facility_id}")
async def board_page(request: Request, facility_id: str, key: str | None = None) -> Response:
    await _board_facility(request, facility_id, key)
    return FileResponse(STATIC / "board.html", media_type="text/html", headers={"Cache-Control": "no-store"})


@pages.get("/board/{facility_id}/state")
async def board_state(request: Request, facility_id: str, key: str | None = None) -> JSONResponse:
    await _board_facility(request, facility_id, key)
    return JSONResponse(await run_in_threadpool(_store(request).board, facility_id), headers={"Cache-Control": "no-store"})


@pages.get("/board/{facility_id}/events")
async def board_events(request: Request, facility_id: str, key: str | None = None) -> StreamingResponse:
    await _board_facility(request, facility_id, key)
    feed = _feed(request)
    if feed.boards(facility_id) >= feed.max_boards:
        raise Problem(503, "too many boards are open for this facility", reason="too_many_boards")

    async def state() -> dict[str, Any]:
        return await run_in_threadpool(_store(request).board, facility_id)

    async def events():  # type: ignore[no-untyped-def]
        try:
            async for chunk in feed.stream(facility_id, state):
                yield chunk
        except TooManyBoards:
            return

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@pages.get("/static/queue/{name}")
async def static_file(name: str) -> Response:
    files = {"board.js": "text/javascript", "board_tone.js": "text/javascript", "board.css": "text/css"}
    if name not in files:
        raise Problem(404, f"no file {name[:40]!r}", reason="not_found")
    return FileResponse(STATIC / name, media_type=files[name], headers={"Cache-Control": "no-cache"})
