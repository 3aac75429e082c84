"""A bed's live waveforms for its detail page (``/ws/waves?bed=A-01``): binary chunks as the hub accepts them.

Only a signed-in clinician who may see the bed's ward gets them (the handshake
is refused otherwise, as for ``/ws/console``); the session is checked again
every ``HEARTBEAT_S`` and an ended one closes the feed with 4401. The message
layout is in ``ingest.wave_feed``. On a JetStream worker, a bed of a ward another worker serves gets its
chunks from that worker (``ingest.wave_relay``).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect

from ingest.auth.guards import authenticate
from ingest.auth.roles import Permission
from ingest.routes import HubDep
from ingest.routes.console import CLOSE_SIGNED_OUT, HEARTBEAT_S
from ingest.wave_feed import WatchRefused

router = APIRouter(tags=["console"])


@router.websocket("/ws/waves")
async def waves_ws(hub: HubDep, ws: WebSocket, bed: str) -> None:
    try:
        principal = await authenticate(ws)
        i = hub.state.index.get(bed)
        if not principal.may(Permission.VIEW_PATIENTS) or i is None or not principal.sees_ward(hub.state.beds[i].ward):
            raise HTTPException(403, "not a bed of yours")
        watcher = hub.waves.watch(bed)
        ward = hub.state.beds[i].ward
    except HTTPException:
        await ws.close(code=1008, reason="sign in as a clinician of this bed's ward")
        return
    except WatchRefused as exc:
        await ws.close(code=1013, reason=str(exc)[:120])
        return
    relay = hub.relay if hub.relay is not None and not hub.relay.speaks_for(ward) else None  # its owner sends them
    try:
        if relay is not None:
            await relay.waves.watch(bed, ward)
        await ws.accept()
        reader = asyncio.create_task(ws.receive())  # only its end matters: the page went away
        loop = asyncio.get_running_loop()
        check_at = loop.time() + HEARTBEAT_S
        try:
            while True:
                get = asyncio.create_task(watcher.queue.get())
                done, _ = await asyncio.wait({get, reader}, timeout=max(0.0, check_at - loop.time()),
                                             return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                if get not in done:
                    get.cancel()
                if reader in done:
                    return
                if get in done:
                    await ws.send_bytes(get.result())
                if loop.time() >= check_at:  # the session, however busy the feed
                    check_at = loop.time() + HEARTBEAT_S
                    now_as = await hub.auth.current(principal.session)
                    if now_as is None:
                        await ws.close(code=CLOSE_SIGNED_OUT, reason="the session ended: sign in again")
                        return
                    principal = now_as
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    except (WebSocketDisconnect, RuntimeError):  # RuntimeError: sending after the client left
        pass
    finally:
        hub.waves.unwatch(watcher)
        if relay is not None:
            await relay.waves.unwatch(bed, ward)
