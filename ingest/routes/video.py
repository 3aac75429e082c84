"""Video signalling sockets and the video status of a bed; the hub relays, it never carries media.

* ``/ws/video?bed=A-01``: one viewer's session for one bed. Only a signed-in
  clinician who may see the bed's ward gets it (refused before accept
  otherwise, as for ``/ws/waves``); the session is checked again on every
  message and every ``HEARTBEAT_S``, and an ended one closes the socket with
  4401. A refusal the viewer can act on (gateway offline, viewer cap) comes as
  a ``state: failed`` message with its reason, then the socket closes.
* ``/ws/edge/video``: an edge agent's signalling link, authenticated like its
  vitals socket (``ingest.edge_endpoint.admit_agent``); its first message is
  ``hello`` with the cameras it serves.
* ``GET /api/beds/{bed}/video``: whether the bed has a camera, whether it is
  running, how many watch, whether talk-back is on.

The decisions are ``ingest.video.relay``'s; the messages ``wire.video_signal``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, HTTPException, WebSocket, WebSocketDisconnect

from ingest.auth.guards import authenticate, client_address, require
from ingest.auth.roles import Permission, Principal
from ingest.edge_endpoint import admit_agent
from ingest.hub import Hub
from ingest.routes import GUARDED, HubDep, errors
from ingest.routes.console import CLOSE_SIGNED_OUT, HEARTBEAT_S
from ingest.video.relay import VideoRefused
from wire.video_signal import Signal, SignalError, decode_signal, encode_signal

log = logging.getLogger(__name__)
router = APIRouter(tags=["video"])

HELLO_TIMEOUT_S = 10.0
CLOSE_BAD_MESSAGE = 1007


def _bed_ward(hub: Hub, bed: str) -> str | None:
    i = hub.state.index.get(bed)
    return None if i is None else hub.state.beds[i].ward


def _may_watch(hub: Hub, principal: Principal, bed: str) -> bool:
    ward = _bed_ward(hub, bed)
    return ward is not None and principal.may(Permission.VIEW_PATIENTS) and principal.sees_ward(ward)


@router.get("/api/beds/{bed}/video", responses=GUARDED | errors(404))
async def bed_video(hub: HubDep, bed: str, principal: Principal = Depends(require(Permission.VIEW_PATIENTS))) -> dict:
    """Whether the bed has a camera gateway connected, whether its camera runs, how many watch, and whether talk-back
    is offered to you."""
    if not _may_watch(hub, principal, bed):
        raise HTTPException(404, "no such bed")
    status = hub.video.status(bed)
    status["talkback"] = bool(status["talkback"]) and principal.may(Permission.TALK_BACK)
    return status


async def _pump(receive: Callable[[], Awaitable[None]], send: Callable[[], Awaitable[None]]) -> None:
    """Run a socket's two directions until either ends (its peer left, or the session is over); errors propagate."""
    async with asyncio.TaskGroup() as tg:
        t_in = tg.create_task(receive())
        t_out = tg.create_task(send())
        t_in.add_done_callback(lambda _: t_out.cancel())
        t_out.add_done_callback(lambda _: t_in.cancel())


@router.websocket("/ws/video")
async def video_ws(hub: HubDep, ws: WebSocket, bed: str) -> None:
    try:
        principal = await authenticate(ws)
        if not _may_watch(hub, principal, bed):
            raise HTTPException(403, "not a bed of yours")
    except HTTPException:
        await ws.close(code=1008, reason="sign in as a clinician of this bed's ward")
        return
    await ws.accept()
    try:
        session = hub.video.open(bed, principal.username, client_address(ws), principal.may(Permission.TALK_BACK))
    except VideoRefused as exc:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.send_text(encode_signal(Signal("state", state="failed", reason=exc.reason)))
            await ws.close(code=1000, reason=exc.reason[:120])
        return
    close: tuple[int, str] = (1000, "")

    async def still_allowed() -> bool:
        nonlocal principal, close
        now_as = await hub.auth.current(principal.session)
        if now_as is None:
            close = (CLOSE_SIGNED_OUT, "the session ended: sign in again")
            return False
        principal = now_as
        if not _may_watch(hub, principal, bed):
            close = (1008, "you may no longer see this bed")
            return False
        if not principal.may(Permission.TALK_BACK) and session.talkback:
            session.talkback = False  # a role changed meanwhile: talk stops now, and the relay refuses it from here on
            hub.video.from_viewer(session, Signal("talk", on=False))
        return True

    async def receive() -> None:
        nonlocal close
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                sig = decode_signal(message.get("text") or message.get("bytes") or b"", session_required=False)
            except SignalError as exc:
                close = (CLOSE_BAD_MESSAGE, f"bad signalling message: {exc}"[:120])
                return
            if not await still_allowed():  # role and ward scope, on every message
                return
            hub.video.from_viewer(session, sig)

    async def send() -> None:
        nonlocal close
        loop = asyncio.get_running_loop()
        check_at = loop.time() + HEARTBEAT_S
        while True:
            try:
                async with asyncio.timeout(max(0.0, check_at - loop.time())):
                    sig = await session.outbox.get()
            except TimeoutError:
                check_at = loop.time() + HEARTBEAT_S
                if session.ended is not None:  # ended without a word to this viewer (its outbox overflowed)
                    close = (1011, session.ended[:120])
                    return
                if not await still_allowed():
                    return
                continue
            await ws.send_text(encode_signal(sig))
            if sig.type == "hangup":
                return

    try:
        await _pump(receive, send)
    except* (WebSocketDisconnect, RuntimeError):  # RuntimeError: sending after the viewer left
        pass
    finally:
        hub.video.viewer_gone(session, close[1] or "the viewer's connection closed")
        with contextlib.suppress(Exception):  # the viewer may be gone already
            await ws.close(code=close[0], reason=close[1])


@router.websocket("/ws/edge/video")
async def edge_video_ws(hub: HubDep, ws: WebSocket) -> None:
    admitted = await admit_agent(hub, ws)
    if admitted is None:
        return
    agent, release = admitted
    link = None
    try:
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                message = await ws.receive()
            hello = decode_signal(message.get("text") or message.get("bytes") or b"")
            if hello.type != "hello":
                raise SignalError("the first message must be hello")
        except (TimeoutError, SignalError) as exc:
            await ws.close(code=1008, reason=f"send hello first: {exc}"[:120])
            return
        link = hub.video.edge_up(agent.agent, agent.beds, hello)
        hub.counters["video_links"] += 1

        async def receive() -> None:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    sig = decode_signal(message.get("text") or message.get("bytes") or b"")
                except SignalError as exc:
                    hub.counters["video_bad_signals"] += 1
                    log.warning("agent %s sent a bad video signalling message: %s", agent.agent, exc)
                    continue
                hub.video.from_edge(link, sig)

        async def send() -> None:
            while not link.dropped:
                await ws.send_text(encode_signal(await link.outbox.get()))

        await _pump(receive, send)
    except* (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        release()
        if link is not None:
            hub.video.edge_down(link)
        with contextlib.suppress(Exception):
            await ws.close(code=1000)
