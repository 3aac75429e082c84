"""The edge agent's single WebSocket to the hub: an asyncio shell around ``wire.edge_session.EdgeSession``.

The frames themselves (numerics batched every ``flush_ms``, waveform chunks,
numbered and fsynced to the spool before they are sent, deleted only when the
hub acknowledges them) come from ``edge_agent.uplink_base``, which this
uplink shares with the JetStream one (``edge_agent.jetstream_uplink``).

The protocol itself (numbering, the floor, hello and welcome, live frames
first and the backlog behind them, ack-clocked and paced, the hub's ``Pace``
while it brakes its intake, status reports, the reconnect backoff) is decided
by the session; this module only moves bytes:
it tells the session what was spooled and what the hub said, and sends what
the session says to send. Reconnects back off exponentially with full jitter,
so a hub restart is not met by every gateway at the same instant.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl
import time
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from edge_agent.config import UplinkConfig
from edge_agent.uplink_base import UplinkBase
from wire.codec import WireError, is_wave_chunk
from wire.edge_session import BacklogFrame, DeleteFrames, EdgeEvent, EdgeSession, HubError, LiveFrame, Welcomed

log = logging.getLogger(__name__)

WELCOME_TIMEOUT_S = 10.0


def credentials(cfg: UplinkConfig, agent: str, url: str | None = None) -> dict[str, Any]:
    """How the agent proves who it is on a socket to the hub (``url``, default the uplink's): its secret (HTTP Basic
    on the upgrade request), and for ``wss://`` the hospital's CA and, with mutual TLS, its client certificate."""
    out: dict[str, Any] = {}
    if cfg.secret is not None:
        token = base64.b64encode(f"{agent}:{cfg.secret.get_secret_value()}".encode()).decode()
        out["additional_headers"] = {"Authorization": f"Basic {token}"}
    if (url or cfg.url or "").startswith("wss://"):
        ctx = ssl.create_default_context(cafile=cfg.ca_file)
        if cfg.cert_file is not None:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        out["ssl"] = ctx
    return out


class Uplink(UplinkBase):
    cfg: UplinkConfig

    def __init__(self, cfg: UplinkConfig, agent: str, ward: str, beds: list[str], spool_path: Path, *,
                 rng: random.Random | None = None) -> None:  # fmt: skip
        if cfg.url is None:
            raise ValueError("the WebSocket uplink needs the hub's URL (hub.url)")
        super().__init__(cfg, agent, ward, spool_path)
        self.url: str = cfg.url
        self.session = EdgeSession(agent=agent, ward=ward, beds=beds, epoch=self.spool.epoch, next_seq=self.spool.next_seq,
                                   spooled=self.spool.runs(), backlog_rate=cfg.backlog_rate, status_s=cfg.status_s,
                                   backoff=(cfg.backoff_initial_s, cfg.backoff_max_s), rng=rng, counters=self.counters)  # fmt: skip

    @property
    def destination(self) -> str:
        return self.url

    @property
    def acked(self) -> int:
        """The highest cumulative acknowledgement from the hub."""
        return self.session.acked

    def report(self) -> dict[str, int]:
        """The spool's report with the floor, as status reports carry it."""
        return self.session.report(self.spool.report())

    def _spooled(self, frames: list[tuple[int, bytes]], dropped: list[int]) -> None:
        self.session.spooled(frames, dropped)
        if self.session.connected:
            self._wake.set()

    def _status_changed(self) -> None:
        self.session.status_changed()
        self._wake.set()

    # --- connection ----------------------------------------------------------------

    async def _connection_loop(self) -> None:
        while True:
            try:
                async with connect(self.url, max_size=4 * 1024 * 1024, open_timeout=10, ping_interval=10, **self._credentials()) as ws:
                    await self._connection(ws)
            except* (OSError, websockets.WebSocketException, TimeoutError, WireError) as group:
                # a dropped link surfaces bare (connect) or grouped (from the connection's TaskGroup)
                self.counters["disconnects"] += 1
                log.warning("uplink to %s lost: %s", self.url, group.exceptions[0])
            finally:
                self.connected.clear()
                self.session.connection_lost()  # unsent live frames are in the spool: next time they are backlog
            await asyncio.sleep(self.session.reconnect_delay())

    def _credentials(self) -> dict[str, Any]:
        return credentials(self.cfg, self.agent)

    async def _connection(self, ws: ClientConnection) -> None:
        self.commit()
        await ws.send(self.session.connect().decode())
        async with asyncio.timeout(WELCOME_TIMEOUT_S):  # not wait_for: on 3.11 it can swallow a cancellation
            welcome = await ws.recv()
        self.commit()  # frames spooled before the welcome are backlog
        self.receive(welcome)
        self.connected.set()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._sender(ws))
            tg.create_task(self._receiver(ws))

    async def _sender(self, ws: ClientConnection) -> None:
        """Send what the session says, then wait for new frames, acknowledgements or its next deadline."""
        session = self.session
        while True:
            self._wake.clear()  # before the work: a frame released meanwhile sets it again
            while (item := session.next_send(time.monotonic())) is not None:
                if isinstance(item, LiveFrame):
                    await self._send(ws, item.data)
                elif isinstance(item, BacklogFrame):
                    data = self.spool.get(item.seq)
                    if data is None:  # the session and the spool disagree: the frame cannot be sent again
                        log.error("backlog frame %d is missing from the spool", item.seq)
                        session.dropped([item.seq])
                        continue
                    await self._send(ws, data)
                else:
                    await ws.send(session.status_message(list(self._devices.values()), self.spool.report()).decode())
            try:
                async with asyncio.timeout(session.timeout(time.monotonic())):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _send(self, ws: ClientConnection, data: bytes) -> None:
        await ws.send(data if is_wave_chunk(data) else data.decode())

    async def _receiver(self, ws: ClientConnection) -> None:
        async for raw in ws:
            self.receive(raw)
            self._wake.set()  # an acknowledgement may open the backlog window

    def receive(self, raw: bytes | str) -> None:
        """One message from the hub: let the session decide, then delete what it says the hub holds."""
        self._apply(self.session.receive_data(raw))

    def _apply(self, events: list[EdgeEvent]) -> None:
        for ev in events:
            if isinstance(ev, DeleteFrames):
                self.spool.delete(ev.runs)
            elif isinstance(ev, HubError):
                r = ev.report
                log.warning("hub reports %s (seq %s): %s %s", r.code, r.seq, r.detail, list(r.rejected)[:5])
            elif isinstance(ev, Welcomed):
                log.info("uplink connected to %s; hub holds up to seq %d; backlog %d frames", self.url, ev.last_seq, ev.backlog)
