"""The edge agent's single WebSocket to the hub: sequencing, outbox, acknowledgement, reconnect.

Numerics are gathered for ``flush_ms`` and sent as one JSON frame; each waveform
segment becomes one binary chunk (several per second per lead). Every frame gets
the next sequence number and waits in the outbox until the hub acknowledges it
(cumulatively). After a reconnect the hub's ``welcome`` says what it already
holds; the rest is re-sent in order, so a dropped link loses nothing the
outbox still holds.

The outbox is bounded (``max_outbox_frames``); when a long outage fills it the
oldest frames are dropped and counted. (A durable on-disk spool replaces this
in-memory outbox in a later step.)

Reconnects back off exponentially with full jitter, so a hub restart is not
met by every gateway at the same instant.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

import websockets
from websockets.asyncio.client import ClientConnection, connect

from edge_agent.config import UplinkConfig
from edge_agent.events import WaveSegment
from wire.codec import MAX_OBS_PER_FRAME, MAX_SAMPLES_PER_CHUNK, WireError, decode_hub, encode_edge
from wire.messages import Ack, ErrorReport, Hello, ObsFrame, Observation, WaveChunk, Welcome

log = logging.getLogger(__name__)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Uplink:
    def __init__(self, cfg: UplinkConfig, hello: Hello, *, rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.hello = hello
        self.counters: Counter[str] = Counter()
        self._rng = rng or random.Random()
        self._next_seq = 1
        self._outbox: OrderedDict[int, bytes] = OrderedDict()
        self._sent_upto = 0  # highest seq sent on the current connection
        self._pending_obs: list[Observation] = []
        self._new_frame = asyncio.Event()
        self.connected = asyncio.Event()
        self.acked = 0

    # --- producer side (called by drivers) ----------------------------------------

    def add_observation(self, obs: Observation) -> None:
        self._pending_obs.append(obs)
        if len(self._pending_obs) >= MAX_OBS_PER_FRAME:
            self.flush_observations()

    def add_wave(self, seg: WaveSegment) -> None:
        for start in range(0, len(seg.samples), MAX_SAMPLES_PER_CHUNK):
            part = seg.samples[start : start + MAX_SAMPLES_PER_CHUNK]
            t_first = seg.t_first + (start * 1000) // seg.rate_hz
            seq = self._take_seq()
            chunk = WaveChunk(seq, seg.bed, seg.lead, t_first, seg.rate_hz, seg.scale, tuple(part))
            self._enqueue(seq, encode_edge(chunk))
            self.counters["wave_chunks_queued"] += 1

    def flush_observations(self) -> None:
        if not self._pending_obs:
            return
        obs, self._pending_obs = self._pending_obs, []
        seq = self._take_seq()
        self._enqueue(seq, encode_edge(ObsFrame(seq, tuple(obs))))
        self.counters["obs_frames_queued"] += 1
        self.counters["obs_queued"] += len(obs)

    def _take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _enqueue(self, seq: int, data: bytes) -> None:
        self._outbox[seq] = data
        while len(self._outbox) > self.cfg.max_outbox_frames:
            self._outbox.popitem(last=False)
            self.counters["frames_dropped_outbox_full"] += 1
        self._new_frame.set()

    @property
    def outbox_size(self) -> int:
        return len(self._outbox)

    # --- connection ----------------------------------------------------------------

    async def run(self) -> None:
        """Flush numerics periodically and keep the connection up, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._flush_loop(), name="uplink-flush")
            tg.create_task(self._connection_loop(), name="uplink-connection")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.flush_ms / 1000)
            self.flush_observations()

    async def _connection_loop(self) -> None:
        attempt = 0
        while True:
            try:
                async with connect(self.cfg.url, max_size=4 * 1024 * 1024, open_timeout=10, ping_interval=10) as ws:
                    attempt = 0
                    await self._session(ws)
            except* (OSError, websockets.WebSocketException, TimeoutError, WireError) as group:
                # a dropped link surfaces bare (connect) or grouped (from the session's TaskGroup)
                self.counters["disconnects"] += 1
                log.warning("uplink to %s lost: %s", self.cfg.url, group.exceptions[0])
            finally:
                self.connected.clear()
            delay = min(self.cfg.backoff_max_s, self.cfg.backoff_initial_s * 2**attempt)
            attempt = min(attempt + 1, 30)
            await asyncio.sleep(self._rng.uniform(0, delay))

    async def _session(self, ws: ClientConnection) -> None:
        await ws.send(encode_edge(self.hello).decode())
        welcome = decode_hub(await asyncio.wait_for(ws.recv(), timeout=10))
        if not isinstance(welcome, Welcome):
            raise WireError("protocol", f"expected welcome, got {type(welcome).__name__}")
        self._acknowledge(welcome.last_seq)
        self._sent_upto = welcome.last_seq
        self.connected.set()
        self.counters["connects"] += 1
        log.info("uplink connected to %s; hub holds up to seq %d; %d frames to send", self.cfg.url, welcome.last_seq, len(self._outbox))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._sender(ws))
            tg.create_task(self._receiver(ws))

    async def _sender(self, ws: ClientConnection) -> None:
        while True:
            self._new_frame.clear()
            if self._outbox:
                seq = max(self._sent_upto + 1, next(iter(self._outbox)))
                while seq < self._next_seq:
                    data = self._outbox.get(seq)
                    if data is not None:  # None: acknowledged (or dropped) meanwhile
                        await ws.send(data if data[:2] == b"TW" else data.decode())
                        self.counters["frames_sent"] += 1
                    self._sent_upto = seq
                    seq += 1
            await self._new_frame.wait()

    async def _receiver(self, ws: ClientConnection) -> None:
        async for raw in ws:
            msg = decode_hub(raw)
            if isinstance(msg, Ack):
                self._acknowledge(msg.seq)
            elif isinstance(msg, ErrorReport):
                self.counters[f"hub_error_{msg.code}"] += 1
                log.warning("hub rejected (seq %s) %s: %s %s", msg.seq, msg.code, msg.detail, list(msg.rejected)[:5])

    def _acknowledge(self, seq: int) -> None:
        self.acked = max(self.acked, seq)
        while self._outbox:
            first = next(iter(self._outbox))
            if first > seq:
                break
            del self._outbox[first]
            self.counters["frames_acked"] += 1


def make_hello(agent: str, ward: str, beds: list[str], clock: Callable[[], int] = wall_ms) -> Hello:
    return Hello(agent=agent, epoch=clock(), ward=ward, beds=tuple(beds))
