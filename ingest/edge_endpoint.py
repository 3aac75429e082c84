"""The edge agents' WebSocket endpoint (``/ws/edge``): an asyncio shell around ``wire.hub_session.HubSession``.

The session decides every protocol answer (welcome, refusals, rate-limit
notices, acknowledgements, the hold, when to close); this module reads the
socket, asks the hub core (``Hub``: registration, screening, deduplication)
and the store, tells the session what they said and sends what it queues.

Per connection, a reader task decodes and screens frames and hands batches to
the store; an acker task waits for each batch to be durable, in order, and
reports the verdicts, on which the session acknowledges. The number of frames
waiting for the store is bounded (``max_inflight_frames``), so a slow store
stops the reader (backpressure) instead of growing memory. It stops it for at
most ``store_stall_s`` (hub configuration): uvicorn reads nothing from a socket, pings and pongs
included, until the app takes the next message, so a longer wait would let the
keepalive of either end (20 s) cut the agent. A reader that has waited that
long for the store *holds* instead, as for a failing store (below): it reads
on, the frames reach the live view and stay in the agent's spool, and once the
store has caught up the agent is asked to reconnect and re-send them.

If the store fails a write, or says it is failing (``store.error``: InfluxDB
unreachable, its writer retrying), the connection *holds* (see the session):
live frames still reach the bed state, so consoles keep seeing the patients
while the frames wait in the agent's spool; one held batch is retried with
backoff and, once the store takes it, the hub closes the connection with
code 1013 and the agent re-sends everything unacknowledged. Any other
failure closes the connection with 1011.

While the hub is overloaded its intake brake (``ingest.overload``) slows the
reader: an agent that said ``pace`` in its hello is told to send more slowly
(``Pace``, decided by the session) and is read at that rate, so its socket
drains; any other waits the whole brake before each message it sends. How long
the reader waited for the store to take a frame is reported to the session too:
a store that keeps readers waiting paces the agents as the brake does.

Before the WebSocket is accepted the agent proves who it is: HTTP Basic on the
upgrade request, its id and the secret ``teleicu agents add`` issued. An
unknown agent, a wrong secret and a revoked one get the same refusal (HTTP
403, nothing said about which). The connection carries that agent's frames
for the beds registered to it only: any other bed's data is refused, counted
(``values_for_unregistered_beds``) and audited once per bed and connection.
Revoking the agent cuts the connection within a second (close 1008).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from ingest.auth.accounts import AgentCredential
from ingest.auth.audit_log import AuditEntry
from ingest.auth.guards import client_address
from ingest.auth.service import AGENT_KEY
from ingest.hub import Hub
from ingest.stores.base import Batch, StoreError
from wire.hub_session import (
    CLOSE_HUB_ERROR,
    CLOSE_POLICY,
    CLOSE_STORE_RECOVERED,
    FrameReceived,
    FrameRefused,
    HelloReceived,
    HubSession,
    StatusReceived,
)
from wire.messages import ObsFrame, WaveChunk

log = logging.getLogger(__name__)

_WAKE = (None, None, None)  # wakes the acker when a hold starts while nothing is in flight


class SessionClosed(Exception):
    """The session asks for the connection to close (unknown agent, store recovered)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class _Connection:
    def __init__(self, hub: Hub, ws: WebSocket, agent: AgentCredential) -> None:
        self.hub = hub
        self.ws = ws
        cfg = hub.cfg
        self.session: HubSession[Batch] = HubSession(
            hub.seqs,
            agent=agent.agent,
            beds=agent.beds,
            max_frames_per_s=cfg.max_frames_per_s,
            max_bytes_per_s=cfg.max_bytes_per_s,
            counters=hub.counters,
            now=asyncio.get_running_loop().time(),
        )
        self.stall_s = cfg.store_stall_s
        self.source = client_address(ws)
        self.refused_beds: set[str] = set()  # beds not registered to the agent, audited once per connection
        # (seq, durability future, batch) in submission order; seq None only wakes the acker (_WAKE)
        self.inflight: asyncio.Queue[tuple[int | None, asyncio.Future[None] | None, Batch | None]] = asyncio.Queue(
            maxsize=cfg.max_inflight_frames
        )
        self._send_lock = asyncio.Lock()

    async def flush(self) -> None:
        """Send what the session queued, in order; raise ``SessionClosed`` once it asks to close."""
        async with self._send_lock:
            for data in self.session.data_to_send():
                await self.ws.send_text(data.decode())
        if self.session.close_code is not None:
            raise SessionClosed(self.session.close_code, self.session.close_reason)

    async def reader(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            data = message.get("bytes")
            if data is None:
                data = (message.get("text") or "").encode()
            wait = self.session.throttle(len(data), loop.time())
            # while the hub is past its capacity (ingest.overload); a pacing agent is told its pace instead
            brake = self.session.brake(self.hub.overload.brake_s(), loop.time())
            if brake > wait:
                wait = brake
                self.hub.counters["frames_braked"] += 1
            if wait > 0:
                await self.flush()  # a pace, a rate notice: before the wait (else after the frame, by on_frame)
                await asyncio.sleep(wait)
            await self.on_frame(data)

    async def on_frame(self, data: bytes) -> None:
        hub, session = self.hub, self.session
        t_hub = hub.clock()
        for ev in session.receive_data(data):
            if isinstance(ev, FrameRefused):
                hub.frame_rejected()
                await self.flush()
                if ev.settle is not None:  # refused for good: acknowledged in turn (or re-sent, if the store is that far behind)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.stall_s):
                            await self.inflight.put((ev.settle, None, None))
            elif isinstance(ev, HelloReceived):
                session.welcome(hub.hello(ev.hello))
                for bed in ev.unregistered:
                    self.refuse_bed(bed, "announced in hello")
            elif isinstance(ev, StatusReceived):
                assert session.hello is not None
                hub.agent_status(session.hello, ev.status)
            elif isinstance(ev, FrameReceived):
                await self.take(ev.frame, t_hub)
        await self.flush()

    async def take(self, msg: ObsFrame | WaveChunk, t_hub: int) -> None:
        hub, session = self.hub, self.session
        assert session.hello is not None
        batch, rejected = hub.take_frame(session.hello, msg, t_hub)
        for r in rejected:
            if r.get("bed") not in session.beds:
                hub.counters["values_for_unregistered_beds"] += 1
                self.refuse_bed(str(r.get("bed")), "data refused")
        was_holding = session.holding
        storable = batch is not None and bool(batch.obs or batch.waves or batch.unmapped)
        submit = session.frame_taken(msg.seq, batch, rejected, storable=storable, store_error=hub.store.error)
        if session.holding and not was_holding and self.inflight.empty():
            self.inflight.put_nowait(_WAKE)
        await self.flush()
        if submit:
            await self.submit(msg.seq, batch)

    async def submit(self, seq: int, batch: Batch | None) -> None:
        """Hand the batch to the store and its verdict to the acker, waiting at most ``store_stall_s`` for room;
        past that, hold (the frame stays unacknowledged in the agent's spool) so that reading never stops."""
        fut: asyncio.Future[None] | None = None
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            async with asyncio.timeout(self.stall_s):
                fut = await self.hub.store.submit(batch) if batch is not None else None
                await self.inflight.put((seq, fut, batch))
            self.session.store_waited(loop.time() - t0, loop.time())  # a store keeping us waiting paces the agent
        except TimeoutError:  # no pace from this wait: the hold reads on, so consoles keep the live values
            if fut is not None:  # written in time but not awaited: re-sent later, it overwrites itself
                fut.add_done_callback(_retrieve)
            self.hub.counters["store_stalls"] += 1
            self.session.store_failed(batch, f"the store is more than {self.stall_s:g} s behind")
            if self.inflight.empty():
                self.inflight.put_nowait(_WAKE)
            await self.flush()

    def refuse_bed(self, bed: str, what: str) -> None:
        """Audit, once per connection and bed, that this agent tried to speak for a bed not registered to it."""
        if bed in self.refused_beds or len(self.refused_beds) >= 1000:
            return
        self.refused_beds.add(bed)
        actor = AGENT_KEY + self.session.agent
        self.hub.audit.persist(AuditEntry(self.hub.clock(), actor, "edge.unregistered_bed", f"bed:{bed}", {"what": what}, self.source))

    async def acker(self) -> None:
        """Report each verdict in order; once holding with nothing in flight, retry the held batch."""
        hub, session = self.hub, self.session
        while True:
            if session.holding and self.inflight.empty():  # what was submitted before the hold is acknowledged
                session.hold_drained()
                await self.flush()
                await self.retry_held()
                await self.flush()  # raises SessionClosed: the store recovered
            seq, fut, batch = await self.inflight.get()
            if seq is None:
                continue
            if fut is not None:
                try:
                    await fut
                except StoreError:
                    session.store_failed(batch, hub.store.error)
                    self.discard_inflight()  # unblocks a reader waiting for room; those frames stay unacknowledged
                    await self.flush()
                    continue
            assert session.hello is not None
            hub.handled(session.hello, seq, batch)
            session.frame_handled(seq, idle=self.inflight.empty())
            await self.flush()

    async def retry_held(self) -> None:
        """Retry the held batch with the session's backoff until the store takes it (the session then closes)."""
        session = self.session
        while session.close_code is None:
            await asyncio.sleep(session.retry_delay)
            batch = session.retry_tick(self.hub.store.error)
            if batch is None:
                continue
            try:
                await self.hub.store.write(batch)
            except StoreError:
                session.retry_failed()
            else:
                session.store_recovered()

    def discard_inflight(self) -> None:
        """Forget what is still in flight (it stays unacknowledged), retrieving the store's verdicts."""
        while not self.inflight.empty():
            _seq, fut, _batch = self.inflight.get_nowait()
            if fut is not None:
                fut.add_done_callback(_retrieve)


def _retrieve(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()  # a failed write of an unacknowledged frame is expected here, not an unhandled error


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(agent id, secret) from an ``Authorization: Basic ...`` header, or None."""
    if header[:6].lower() != "basic ":
        return None
    try:
        agent, sep, secret = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (agent, secret) if sep and agent and secret else None


async def admit_agent(hub: Hub, ws: WebSocket) -> tuple[AgentCredential, Callable[[], None]] | None:
    """Check an agent's upgrade request (HTTP Basic, its id and secret). A known agent's socket is accepted and held
    (revoking the agent closes it; call the returned release when the connection ends); otherwise it is refused
    before accept (HTTP 403), counted and audited, and None returned. Every agent socket of the hub comes in here."""
    creds = basic_credentials(ws.headers.get("authorization", ""))
    agent = await hub.auth.agent(*creds) if creds else None
    if agent is None:  # unknown agent, wrong or revoked secret, no credentials: one answer for all
        hub.counters["agents_refused"] += 1
        if creds is not None:
            hub.audit.persist(AuditEntry(hub.clock(), AGENT_KEY + creds[0][:64], "edge.refused", f"agent:{creds[0][:64]}", None,
                                         client_address(ws)))  # fmt: skip
        await ws.close(code=CLOSE_POLICY, reason="agent not authenticated")  # before accept: HTTP 403
        return None
    await ws.accept()
    name = agent.agent
    return agent, hub.auth.hold(name, lambda: _spawn(_cut(ws, hub, name)))


async def serve_edge(hub: Hub, ws: WebSocket) -> None:
    admitted = await admit_agent(hub, ws)
    if admitted is None:
        return
    agent, release = admitted
    conn = _Connection(hub, ws, agent)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(conn.reader())
            tg.create_task(conn.acker())
    except* WebSocketDisconnect:
        pass
    except* SessionClosed as group:
        closed = group.exceptions[0]
        assert isinstance(closed, SessionClosed)
        if closed.code == CLOSE_STORE_RECOVERED:
            log.info("store recovered: asking agent %s to re-send", conn.session.hello.agent if conn.session.hello else "?")
        with contextlib.suppress(Exception):  # the agent may have gone meanwhile
            await ws.close(code=closed.code, reason=closed.reason)
    except* Exception as group:
        log.error("edge connection closed after error: %s", group.exceptions[0])
        with contextlib.suppress(Exception):  # the socket may already be gone
            await ws.close(code=CLOSE_HUB_ERROR, reason="hub error; reconnect and re-send")
    finally:
        release()
        conn.discard_inflight()
        if conn.session.hello is not None:
            hub.goodbye(conn.session.hello)


_cutting: set[asyncio.Task[None]] = set()  # closes under way (kept referenced until done)


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _cutting.add(task)
    task.add_done_callback(_cutting.discard)


async def _cut(ws: WebSocket, hub: Hub, agent: str) -> None:
    """The agent's secret was revoked: close its live connection now (its frames stay in its spool)."""
    hub.counters["agents_cut"] += 1
    log.warning("agent %s revoked: closing its connection", agent)
    with contextlib.suppress(Exception):  # it may be gone already
        await ws.close(code=CLOSE_POLICY, reason="agent revoked")
