"""The console: its page at ``/`` and its live feed (``/ws/console``): a snapshot, then changes as they happen.

A console watching all wards, or one (``?ward=A``: a bedside nurse's console),
confirms every alarm it shows by sending ``{"type": "delivered", "alerts": [ids]}``;
an alarm event no console confirms raises the ``undelivered`` technical alarm.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

from console import STATIC_DIR
from ingest.hub import Hub
from ingest.routes import HubDep

router = APIRouter(tags=["console"])

HEARTBEAT_S = 2.0  # a console hears from the hub at least this often, even when nothing changed


@router.get("/", include_in_schema=False)
async def console_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")


async def _confirmations(hub: Hub, ws: WebSocket) -> None:
    """Read the console's delivery confirmations until it goes away."""
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return
        try:
            body = json.loads(msg.get("text") or "{}")
            ids = body.get("alerts") if isinstance(body, dict) and body.get("type") == "delivered" else None
            if isinstance(ids, list):
                hub.delivered([i for i in ids[:10_000] if isinstance(i, str)])
        except ValueError:
            pass  # a console sending junk gets nothing from it


@router.websocket("/ws/console")
async def console_ws(hub: HubDep, ws: WebSocket, ward: str | None = None) -> None:
    await ws.accept()
    sub = hub.feed.subscribe(ward)
    reader = asyncio.create_task(_confirmations(hub, ws))
    try:
        await ws.send_json(
            {
                "type": "snapshot",
                "now": hub.clock(),
                "staleness_s": hub.cfg.staleness_s,
                "beds": hub.beds_json(ward),
                "alerts": [a.to_json() for a in hub.book.list_open() if ward is None or a.ward == ward],
            }
        )
        while True:
            try:
                text = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_S)
            except TimeoutError:
                text = json.dumps({"type": "heartbeat", "now": hub.clock()})
            if text is None:
                await ws.close(code=1013, reason="console fell behind; reconnect for a fresh snapshot")
                return
            await ws.send_text(text)
    except (WebSocketDisconnect, RuntimeError):  # RuntimeError: sending after the client left
        pass
    finally:
        hub.feed.unsubscribe(sub)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)  # its end (cancelled, disconnected) is expected here
