"""Opening a share link (``GET /s/{token}``): no sign-in; the token's signature, expiry and the link's row decide.

The record is answered as its PDF when it has one (what a doctor's phone
shows best), otherwise as JSON with its FHIR Bundle; ``?format=json`` asks for
JSON. Every opening and every refusal is in the patient's access log.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from records_bridge.services.locker import share_tokens
from records_bridge.services.locker.routes_staff import record_response
from records_bridge.services.locker.store import Forbidden, LogEntry, NotFound, Store

router = APIRouter()


@router.get("/s/{token}")
async def open_share(request: Request, token: str, format: str = Query("", pattern="^(|json|pdf)$")) -> Response:
    store: Store = request.app.state.store
    now = int(request.app.state.clock())
    viewer = f"viewer at {request.client.host if request.client else 'unknown'}"
    try:
        parsed = share_tokens.parse(request.app.state.share_secret, token)
    except share_tokens.ShareTokenError as exc:
        await run_in_threadpool(store.log, LogEntry("share-link", viewer, "share.view", "refused", str(exc)), now)
        raise NotFound(str(exc), code="link_refused") from None
    if now >= parsed.expires_s * 1000:  # the row says so too; the token alone is enough to refuse
        await run_in_threadpool(store.open_link, parsed.link_id, now, viewer)  # logs the refusal under the patient, raises
        raise Forbidden("this share link has expired; ask the patient for a new one", code="link_refused")
    rec = await run_in_threadpool(store.open_link, parsed.link_id, now, viewer)
    fmt = format or ("pdf" if rec["pdf"] is not None else "json")
    resp = record_response(rec, fmt)
    resp.headers["cache-control"] = "no-store"
    return resp
