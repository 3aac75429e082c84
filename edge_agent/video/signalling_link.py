"""The agent's video signalling socket: ``/ws/edge/video`` on the hub, beside the vitals uplink.

It connects with the uplink's credentials (HTTP Basic ``agent_id:secret``, the
same CA and client certificate), says ``hello`` with the beds it has cameras
for, then relays: the hub's messages to the ``Publisher``, the publisher's
through a bounded outbox to the hub. When the socket drops, every session is
closed (the hub tells the viewers) and it reconnects after an exponential,
jittered backoff. Video must never disturb vitals: ``run`` is its own task, and
any failure inside it is logged and retried; only cancellation ends it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Iterable

import websockets
from websockets.asyncio.client import ClientConnection, connect

from edge_agent.config import CameraConfig, UplinkConfig, VideoConfig, video_url
from edge_agent.uplink import credentials
from edge_agent.video.publisher import Publisher, apply_bitrate
from wire.backoff import Backoff
from wire.video_signal import Signal, SignalError, decode_signal, encode_signal

log = logging.getLogger(__name__)

OUTBOX = 256  # signals waiting for the socket; a full outbox means the socket is stuck, and drops the oldest


class SignallingLink:
    def __init__(self, uplink: UplinkConfig, agent: str, cameras: Iterable[CameraConfig], video: VideoConfig = VideoConfig(),
                 *, rng: random.Random | None = None) -> None:  # fmt: skip
        self.uplink, self.agent = uplink, agent
        self.cameras = tuple(cameras)
        self.video = video
        self.url = video_url(uplink.url)
        self.backoff = Backoff(uplink.backoff_initial_s, uplink.backoff_max_s, rng)
        self.counters: Counter[str] = Counter()
        self.connected = asyncio.Event()
        self._outbox: asyncio.Queue[Signal] = asyncio.Queue(OUTBOX)
        self.publisher: Publisher | None = None
        apply_bitrate(self.cameras)

    def send(self, sig: Signal) -> None:
        """The publisher's way out: queued for the socket (dropped while there is none: the hub has hung up)."""
        if not self.connected.is_set():
            self.counters["signals_without_link"] += 1
            return
        if self._outbox.full():
            self._outbox.get_nowait()
            self.counters["signals_dropped"] += 1
        self._outbox.put_nowait(sig)
        self.counters[f"out_{sig.type}"] += 1

    async def run(self) -> None:
        """Keep the link up until cancelled; a failure of any kind is logged and the link tried again."""
        while True:
            try:
                async with Publisher(self.cameras, self.send, max_sessions=self.video.max_sessions) as pub:
                    self.publisher = pub
                    async with connect(self.url, open_timeout=10, ping_interval=10, max_size=2 * 64 * 1024,
                                       **credentials(self.uplink, self.agent, self.url)) as ws:  # fmt: skip
                        await self._connection(ws, pub)
            except* (OSError, websockets.WebSocketException, TimeoutError) as group:
                self.counters["disconnects"] += 1
                log.warning("video signalling to %s lost: %s", self.url, group.exceptions[0])
            except* Exception as group:  # a bug in video must not take vitals down: log it, start again
                self.counters["crashes"] += 1
                log.error("video signalling failed, restarting it", exc_info=group.exceptions[0])
            finally:
                self.connected.clear()
                self.publisher = None
                while not self._outbox.empty():
                    self._outbox.get_nowait()
            await asyncio.sleep(self.backoff.next())

    async def _connection(self, ws: ClientConnection, pub: Publisher) -> None:
        await ws.send(encode_signal(pub.hello()))
        self.connected.set()
        log.info("video signalling connected to %s: %d cameras", self.url, len(self.cameras))
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._sender(ws), name="video-signal-send")
                tg.create_task(self._receiver(ws, pub), name="video-signal-receive")
        finally:
            self.connected.clear()

    async def _sender(self, ws: ClientConnection) -> None:
        while True:
            sig = await self._outbox.get()
            await ws.send(encode_signal(sig))

    async def _receiver(self, ws: ClientConnection, pub: Publisher) -> None:
        async for raw in ws:
            self.backoff.reset()  # the hub talks to us: the next outage starts from a short wait again
            try:
                sig = decode_signal(raw)
            except SignalError as exc:
                self.counters["signals_refused"] += 1
                log.warning("video signal from the hub refused: %s", exc)
                continue
            self.counters[f"in_{sig.type}"] += 1
            await pub.handle(sig)
        raise ConnectionError("the hub closed the socket")  # a clean close ends the sender too
