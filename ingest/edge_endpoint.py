"""The edge agents' WebSocket endpoint (``/ws/edge``): a thin asyncio layer over ``Hub``.

Per connection, a reader task decodes and screens frames and hands batches to
the store; an acker task waits for each batch to be durable, in order, and
sends cumulative acknowledgements. A bad frame gets an error message and the
connection stays open. The number of frames waiting for the store is bounded,
so a slow store stops the reader (backpressure) instead of growing memory.

If the store fails a write, or says it is failing (``store.error``: InfluxDB
unreachable, its writer retrying), the connection *holds*: it tells the agent
(``store_unavailable``), stops submitting, acknowledges only what was already
submitted and becomes durable, but keeps taking live frames into the bed
state, so consoles keep seeing the patients while the frames wait in the
agent's spool (not in the hub's memory, and without stalling the reader behind
a full store queue). It retries one held batch (the failed one, or the first
not submitted) with backoff (``HOLD_RETRY_S``); once the store takes it, the
hub closes the connection with code 1013 and the agent reconnects and re-sends
everything unacknowledged. Any other failure closes the connection with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import WebSocket, WebSocketDisconnect

from ingest.hub import Hub
from ingest.rate_limit import TokenBucket
from ingest.stores.base import Batch, StoreError
from wire.codec import WireError, decode_edge, encode_hub
from wire.messages import Ack, ErrorReport, Hello, HubMessage, Status, Welcome

log = logging.getLogger(__name__)

ACK_EVERY = 64  # under sustained load, acknowledge at least this often
HOLD_RETRY_S = (0.5, 5.0)  # while holding, the failed batch is retried after 0.5 s, doubling up to 5 s
CLOSE_STORE_RECOVERED = 1013  # "try again later": reconnect now and re-send what is unacknowledged


class UnknownAgent(Exception):
    pass


class StoreRecovered(Exception):
    """The store took the held batch again: the agent must reconnect and re-send what was not stored."""


class _Connection:
    def __init__(self, hub: Hub, ws: WebSocket) -> None:
        self.hub = hub
        self.ws = ws
        self.hello: Hello | None = None
        # (seq, durability future, batch); seq None only wakes the acker when a hold starts
        self.inflight: asyncio.Queue[tuple[int | None, asyncio.Future[None] | None, Batch | None]] = asyncio.Queue(
            maxsize=hub.cfg.max_inflight_frames
        )
        self.holding = False  # the store is failing: frames feed the live view only and stay unacknowledged
        self.held_batch: Batch | None = None  # the batch to retry until the store takes it
        self._send_lock = asyncio.Lock()
        self.frames = TokenBucket(hub.cfg.max_frames_per_s, hub.cfg.max_frames_per_s)
        self.bytes = TokenBucket(hub.cfg.max_bytes_per_s, hub.cfg.max_bytes_per_s)
        self._last_rate_notice = 0.0

    async def send(self, msg: HubMessage) -> None:
        data = encode_hub(msg).decode()
        async with self._send_lock:
            await self.ws.send_text(data)

    async def reader(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            data = message.get("bytes")
            if data is None:
                data = (message.get("text") or "").encode()
            await self.throttle(len(data))
            await self.on_frame(data)

    async def throttle(self, size: int) -> None:
        wait = max(self.frames.delay_for(1), self.bytes.delay_for(size))
        if wait <= 0:
            return
        self.hub.counters["rate_limited_waits"] += 1
        now = asyncio.get_running_loop().time()
        if now - self._last_rate_notice >= 1.0:
            self._last_rate_notice = now
            await self.send(ErrorReport("rate_limited", f"more than {self.hub.cfg.max_frames_per_s:g} frames/s or "
                                        f"{self.hub.cfg.max_bytes_per_s:g} bytes/s: reading slowed down, nothing dropped"))  # fmt: skip
        await asyncio.sleep(min(wait, 5.0))

    async def on_frame(self, data: bytes) -> None:
        hub = self.hub
        t_hub = hub.clock()
        try:
            msg = decode_edge(data)
        except WireError as exc:
            hub.frame_rejected()
            await self.send(ErrorReport(exc.code, exc.detail, exc.seq))
            if exc.seq is not None and self.hello is not None and not self.holding:
                await self.inflight.put((exc.seq, None, None))  # a rejected frame is handled: acknowledge it
            return
        if isinstance(msg, Status):
            if self.hello is None:
                hub.frame_rejected()
                await self.send(ErrorReport("protocol", "send hello before status"))
            else:
                hub.agent_status(self.hello, msg)
            return
        if isinstance(msg, Hello):
            if self.hello is not None:
                hub.frame_rejected()
                await self.send(ErrorReport("protocol", "hello was already sent on this connection"))
                return
            allowed = hub.cfg.allowed_agents
            if allowed is not None and msg.agent not in allowed:
                hub.counters["unknown_agents"] += 1
                await self.send(ErrorReport("unknown_agent", f"agent {msg.agent!r} is not allowed to connect to this hub"))
                raise UnknownAgent(msg.agent)
            self.hello = msg
            last = hub.hello(msg)
            await self.send(Welcome(last_seq=last))
            return
        if self.hello is None:
            hub.frame_rejected()
            await self.send(ErrorReport("protocol", "send hello before data frames", msg.seq))
            return
        batch, rejected = hub.take_frame(self.hello, msg, t_hub)
        if rejected:
            await self.send(
                ErrorReport("rejected", f"{len(rejected)} value(s) rejected, the rest of the frame was kept", msg.seq, tuple(rejected))
            )
        if not self.holding and hub.store.error is not None:
            await self.begin_hold()
        if self.holding:
            hub.counters["frames_held_unstored"] += 1
            if self.held_batch is None and batch is not None and (batch.obs or batch.waves or batch.unmapped):
                self.held_batch = batch
            return
        fut = await hub.store.submit(batch) if batch is not None else None
        await self.inflight.put((msg.seq, fut, batch))

    async def acker(self) -> None:
        """Acknowledge durable frames: the contiguous watermark, plus those stored above it."""
        hub = self.hub
        unacked = 0
        also: list[int] = []
        while True:
            if self.holding and self.inflight.empty():  # what was submitted before the hold is acknowledged
                if also and self.hello is not None:
                    mark = hub.seqs.last_durable(self.hello.agent, self.hello.epoch)
                    await self.send(Ack(mark, tuple(sorted(s for s in also if s > mark))))
                await self.hold()
                raise StoreRecovered
            seq, fut, batch = await self.inflight.get()
            if seq is None:
                continue
            if fut is not None:
                try:
                    await fut
                except StoreError:
                    if self.held_batch is None:
                        self.held_batch = batch
                    if not self.holding:
                        await self.begin_hold()
                    self.discard_inflight()  # unblocks a reader waiting for room; those frames stay unacknowledged
                    continue
            assert self.hello is not None
            h = self.hello
            hub.handled(h, seq, batch)
            also.append(seq)
            unacked += 1
            if self.inflight.empty() or unacked >= ACK_EVERY:
                mark = hub.seqs.last_durable(h.agent, h.epoch)
                await self.send(Ack(mark, tuple(sorted(s for s in also if s > mark))))
                unacked, also = 0, []

    async def begin_hold(self) -> None:
        """From now on frames feed the live view only; wake the acker if it is idle, and tell the agent."""
        self.holding = True
        if self.inflight.empty():
            self.inflight.put_nowait((None, None, None))
        error = self.hub.store.error or "a write failed"
        self.hub.counters["store_holds"] += 1
        log.error("store failing (%s): holding agent %s's frames in its spool", error, self.hello.agent if self.hello else "?")
        await self.send(ErrorReport("store_unavailable", f"the hub cannot store data ({error}); keep sending: live data is "
                                    "shown, nothing more is acknowledged, and you will be asked to re-send once the store recovers"))  # fmt: skip

    async def hold(self) -> None:
        """Retry the held batch until the store takes it (returns then)."""
        delay, max_delay = HOLD_RETRY_S
        while True:
            await asyncio.sleep(delay)
            if self.held_batch is None:  # no data frame since the hold began: nothing to try yet
                continue
            try:
                await self.hub.store.write(self.held_batch)
                return
            except StoreError:
                delay = min(delay * 2, max_delay)

    def discard_inflight(self) -> None:
        """Forget what is still in flight (it stays unacknowledged), retrieving the store's verdicts."""
        while not self.inflight.empty():
            _seq, fut, _batch = self.inflight.get_nowait()
            if fut is not None:
                fut.add_done_callback(_retrieve)


def _retrieve(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()  # a failed write of an unacknowledged frame is expected here, not an unhandled error


async def serve_edge(hub: Hub, ws: WebSocket) -> None:
    await ws.accept()
    conn = _Connection(hub, ws)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(conn.reader())
            tg.create_task(conn.acker())
    except* WebSocketDisconnect:
        pass
    except* UnknownAgent:
        await ws.close(code=1008, reason="unknown agent")
    except* StoreRecovered:
        log.info("store recovered: asking agent %s to re-send", conn.hello.agent if conn.hello else "?")
        with contextlib.suppress(Exception):  # the agent may have gone meanwhile
            await ws.close(code=CLOSE_STORE_RECOVERED, reason="store recovered: reconnect and re-send")
    except* Exception as group:
        log.error("edge connection closed after error: %s", group.exceptions[0])
        with contextlib.suppress(Exception):  # the socket may already be gone
            await ws.close(code=1011, reason="hub error; reconnect and re-send")
    finally:
        conn.discard_inflight()
        if conn.hello is not None:
            hub.goodbye(conn.hello)
