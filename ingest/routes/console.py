"""The console: its page at ``/`` and its live feed (``/ws/console``): a snapshot, then changes as they happen.

The feed needs a signed-in clinician (the session cookie, or a bearer token);
it carries the wards she may see (all of them, or one with ``?ward=A``), and a
ward nurse's feed never carries another ward's beds or alarms. The session is
checked again at every heartbeat, following it through its renewals: signing
out, an expired session or a disabled account closes the feed (code 4401) and
the console signs in again.
The console confirms every alarm it shows by sending
``{"type": "delivered", "alerts": [ids]}``; an alarm event no console confirms
raises the ``undelivered`` technical alarm. On a JetStream hub worker the feed
carries every ward the clinician sees, whichever worker owns it
(``ingest.console_relay``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

from console import STATIC_DIR
from ingest.auth.guards import authenticate, wards_for
from ingest.auth.roles import Permission
from ingest.console_feed import encode
from ingest.hub import Hub
from ingest.routes import HubDep

router = APIRouter(tags=["console"])

HEARTBEAT_S = 2.0  # a console hears from the hub at least this often, even when nothing changed
CLOSE_SIGNED_OUT = 4401  # the session ended (signed out, expired, revoked): sign in again, then reconnect


@router.get("/", include_in_schema=False)
async def console_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")


@router.get("/docs", include_in_schema=False)
async def api_page() -> FileResponse:
    """The API, read from /openapi.json by the hub's own page (nothing loaded from elsewhere, no inline script)."""
    return FileResponse(STATIC_DIR / "docs.html")


@router.get("/login", include_in_schema=False)
async def sign_in_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "login.html")


@router.get("/kpi", include_in_schema=False)
async def kpi_page() -> FileResponse:
    """The command centre's KPI page; its figures come from /api/kpi (a role that may see KPIs)."""
    return FileResponse(STATIC_DIR / "kpi.html")


@router.get("/bed/{bed}", include_in_schema=False)
async def bed_page(bed: str) -> FileResponse:
    """A bed's detail page; the page asks the API for the bed, which answers only a clinician of its ward."""
    return FileResponse(STATIC_DIR / "bed.html")


async def _confirmations(hub: Hub, ws: WebSocket) -> None:
    """Read the console's delivery confirmations until it goes away."""
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return
        try:
            body = json.loads(msg.get("text") or "{}")
            ids = body.get("alerts") if isinstance(body, dict) and body.get("type") == "delivered" else None
        except ValueError:
            continue  # a console sending junk gets nothing from it
        if isinstance(ids, list):
            mine = [i for i in ids[:10_000] if isinstance(i, str)]
            if hub.relay is not None:
                await hub.relay.delivered(mine)  # another worker's alarms to their owners
            else:
                hub.delivered(mine)


async def _snapshot(hub: Hub, wards: frozenset[str] | None) -> dict[str, Any]:
    """The beds and open alarms the console starts from: this hub's, or on a JetStream worker those of every ward
    the console sees, wherever it is served (``unserved_wards``: nobody answered for them; their beds come with
    the next owner's first update)."""
    if hub.relay is not None:
        beds, alerts, unserved = await hub.relay.snapshot(wards)
        return {"beds": beds, "alerts": alerts, "unserved_wards": unserved}
    opened = [a.to_json() for a in hub.book.list_open() if wards is None or not a.ward or a.ward in wards]
    return {"beds": hub.beds_json(wards), "alerts": opened}


@router.websocket("/ws/console")
async def console_ws(hub: HubDep, ws: WebSocket, ward: str | None = None) -> None:
    try:
        principal = await authenticate(ws)
        if not principal.may(Permission.VIEW_PATIENTS):
            raise HTTPException(403, "this role does not see patients")
        wards = wards_for(principal, ward)
    except HTTPException:
        await ws.close(code=1008, reason="sign in as a clinician of this ward")  # before accept: the handshake is refused
        return
    await ws.accept()
    sub = hub.feed.subscribe(wards)
    reader = asyncio.create_task(_confirmations(hub, ws))
    try:
        if hub.relay is not None:
            await hub.relay.watch(wards)
        start = await _snapshot(hub, wards)
        await ws.send_text(encode({"type": "snapshot", "now": hub.clock(), "staleness_s": hub.cfg.staleness_s, **start,
                                   "user": principal.to_json()}))  # fmt: skip
        loop = asyncio.get_running_loop()
        check_at = loop.time() + HEARTBEAT_S
        while True:
            try:
                async with asyncio.timeout(max(0.0, check_at - loop.time())):  # not wait_for: on 3.11 it can swallow a cancellation
                    text = await sub.queue.get()
            except TimeoutError:
                text = encode({"type": "heartbeat", "now": hub.clock()})
            if loop.time() >= check_at:  # however busy the feed, the session is checked every HEARTBEAT_S
                check_at = loop.time() + HEARTBEAT_S
                now_as = await hub.auth.current(principal.session)
                if now_as is None:
                    await ws.close(code=CLOSE_SIGNED_OUT, reason="the session ended: sign in again")
                    return
                principal = now_as  # renewed sessions carry the feed on
            if text is None:
                await ws.close(code=1013, reason="console fell behind; reconnect for a fresh snapshot")
                return
            await ws.send_text(text)
    except (WebSocketDisconnect, RuntimeError):  # RuntimeError: sending after the client left
        pass
    finally:
        hub.feed.unsubscribe(sub)
        if hub.relay is not None:
            await hub.relay.unwatch(wards)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)  # its end (cancelled, disconnected) is expected here
