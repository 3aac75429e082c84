"""The edge agent's single WebSocket to the hub: sequencing, durable spool, live-first sending, reconnect.

Numerics are gathered for ``flush_ms`` and become one JSON frame; each waveform
segment becomes one binary chunk (several per second per lead). Every
``flush_ms`` the frames produced meanwhile get their sequence numbers and are
written to the spool (``edge_agent.spool``, fsynced) in one step, before they
are sent; a frame is deleted only when the hub acknowledges it.

After a reconnect the hub's ``welcome`` says what it already holds. From then
on, live frames go out as soon as they are spooled, and the backlog (frames
spooled before the reconnect and not yet acknowledged) drains behind them at
``backlog_rate`` frames per second and at most ``BACKLOG_WINDOW`` unacknowledged
frames at a time, so an outage never delays current vitals.
The hub accepts frames out of order and acknowledges them individually.

Reconnects back off exponentially with full jitter, so a hub restart is not
met by every gateway at the same instant. Device status changes and the
spool's health are reported to the hub in unsequenced ``status`` messages.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path

import websockets
from websockets.asyncio.client import ClientConnection, connect

from edge_agent.config import UplinkConfig
from edge_agent.events import DeviceStatus, WaveSegment
from edge_agent.spool import KIND_OBS, KIND_WAVE, Spool
from wire.codec import MAX_OBS_PER_FRAME, MAX_SAMPLES_PER_CHUNK, WireError, decode_hub, encode_edge
from wire.messages import Ack, ErrorReport, Hello, ObsFrame, Observation, Status, UnmappedObservation, WaveChunk, Welcome

log = logging.getLogger(__name__)

BACKLOG_WINDOW = 16  # backlog frames sent but not yet acknowledged: the backlog is ack-clocked, so it never
# fills the socket's buffers ahead of live frames (which would delay them however they are ordered here)
MAX_DEVICE_CONDITIONS = 256  # (bed, device, subject) conditions remembered and re-sent (at most ~100 KB a status
# message, well inside the codec's 256 KiB); beyond it the oldest "ok" is forgotten first
MAX_LIVE_QUEUE = 10_000  # frames waiting to go out live; beyond it they wait in the spool as backlog


class Uplink:
    def __init__(self, cfg: UplinkConfig, agent: str, ward: str, beds: list[str], spool_path: Path, *,
                 rng: random.Random | None = None) -> None:  # fmt: skip
        self.cfg = cfg
        self.spool = Spool(spool_path, max_bytes=cfg.spool_max_mb * 1024 * 1024)
        self.hello = Hello(agent=agent, epoch=self.spool.epoch, ward=ward, beds=tuple(beds))
        self.counters: Counter[str] = Counter()
        self._rng = rng or random.Random()
        self._pending_obs: list[Observation] = []
        self._pending_unmapped: list[UnmappedObservation] = []
        # produced, not yet on disk and not yet numbered: (kind, frame with seq 0), numbered by commit
        self._unspooled: list[tuple[int, ObsFrame | WaveChunk]] = []
        self.recorder: Callable[[list[Observation | UnmappedObservation | WaveChunk]], None] | None = None  # sees every sample once spooled
        self._live: deque[tuple[int, bytes]] = deque()  # spooled, to send now
        self._backlog_after = 0  # backlog cursor: highest seq of the backlog already sent (this connection)
        self._live_from = 0  # frames from this seq on are live on this connection
        self._wake = asyncio.Event()
        self._devices: dict[tuple[str, str, str], dict] = {}  # (bed, device, detail) -> latest reported status
        self._devices_changed = False
        self.connected = asyncio.Event()
        self.acked = 0

    # --- producer side (called by drivers) ----------------------------------------

    def add_observation(self, obs: Observation) -> None:
        self._pending_obs.append(obs)
        if len(self._pending_obs) + len(self._pending_unmapped) >= MAX_OBS_PER_FRAME:
            self.flush_observations()

    def add_unmapped(self, obs: UnmappedObservation) -> None:
        """A value the vocabulary does not map: it travels in the next numerics frame, kept as sent."""
        self._pending_unmapped.append(obs)
        self.counters["unmapped_queued"] += 1
        if len(self._pending_obs) + len(self._pending_unmapped) >= MAX_OBS_PER_FRAME:
            self.flush_observations()

    def add_wave(self, seg: WaveSegment) -> None:
        for start in range(0, len(seg.samples), MAX_SAMPLES_PER_CHUNK):
            part = seg.samples[start : start + MAX_SAMPLES_PER_CHUNK]
            t_first = seg.t_first + (start * 1000) // seg.rate_hz
            # numbered when it is spooled (commit), never before: see edge_agent.spool
            self._unspooled.append((KIND_WAVE, WaveChunk(0, seg.bed, seg.lead, t_first, seg.rate_hz, seg.scale, tuple(part))))
            self.counters["wave_chunks_queued"] += 1

    def add_status(self, ev: DeviceStatus) -> None:
        detail = ev.detail[:200]
        key = (ev.bed, ev.device, detail)  # one condition per subject, as the hub keys them
        cur = self._devices.get(key)
        if cur is None or cur["status"] != ev.status:
            self._devices.pop(key, None)  # re-inserted last: the dict is in order of last change
            self._devices[key] = {"bed": ev.bed, "device": ev.device, "status": ev.status, "detail": detail, "t": ev.t_dev}
            if len(self._devices) > MAX_DEVICE_CONDITIONS:  # free-text subjects must not grow it for ever
                victim = next((k for k, d in self._devices.items() if d["status"] == "ok"), None)
                if victim is None:  # all of them are faults: forget the oldest, and say so
                    victim = next(iter(self._devices))
                    self.counters["device_conditions_forgotten"] += 1
                    log.error("more than %d device conditions: forgetting %s", MAX_DEVICE_CONDITIONS, victim)
                del self._devices[victim]
            self._devices_changed = True
            self._wake.set()

    def flush_observations(self) -> None:
        if not self._pending_obs and not self._pending_unmapped:
            return
        obs, self._pending_obs = self._pending_obs, []
        unmapped, self._pending_unmapped = self._pending_unmapped, []
        self._unspooled.append((KIND_OBS, ObsFrame(0, tuple(obs), tuple(unmapped))))
        self.counters["obs_frames_queued"] += 1
        self.counters["obs_queued"] += len(obs)

    def commit(self) -> None:
        """Number what was produced since the last flush, write it to the spool, then release it for sending.

        Sequence numbers are taken here, in the same step that makes the frames durable, so a status
        report's floor (``Spool.floor``) can never cover a frame still waiting in memory. If the spool
        write fails, nothing is numbered or lost: the frames stay queued for the next commit."""
        self.flush_observations()
        if not self._unspooled:
            return
        frames: list[tuple[int, int, bytes]] = []
        numbered: list[Observation | UnmappedObservation | WaveChunk] = []
        for kind, body in self._unspooled:
            seq = self.spool.next_seq + len(frames)
            msg = replace(body, seq=seq)
            try:
                data = encode_edge(msg)
            except WireError as exc:  # an identifier too long for the wire: a driver fault, never sendable
                self.counters["frames_unencodable"] += 1
                log.error("frame cannot be encoded, dropped: %s", exc)
                continue
            frames.append((seq, kind, data))
            if isinstance(msg, ObsFrame):
                numbered.extend(msg.obs)
                numbered.extend(msg.unmapped)
            else:
                numbered.append(msg)
        self.spool.append(frames)
        self._unspooled = []
        if self.recorder is not None:
            self.recorder(numbered)
        if self.connected.is_set():
            for seq, _kind, data in frames:
                if len(self._live) < MAX_LIVE_QUEUE:
                    self._live.append((seq, data))
                # else: it stays in the spool and goes out with the backlog
            self._wake.set()

    @property
    def outbox_size(self) -> int:
        return self.spool.stats.frames + len(self._unspooled) + (1 if self._pending_obs or self._pending_unmapped else 0)

    # --- connection ----------------------------------------------------------------

    async def run(self) -> None:
        """Spool periodically and keep the connection up, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._flush_loop(), name="uplink-flush")
            tg.create_task(self._connection_loop(), name="uplink-connection")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.flush_ms / 1000)
            self.commit()

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
                self._live.clear()  # unsent live frames are in the spool: next time they are backlog
            delay = min(self.cfg.backoff_max_s, self.cfg.backoff_initial_s * 2**attempt)
            attempt = min(attempt + 1, 30)
            await asyncio.sleep(self._rng.uniform(0, delay))

    async def _session(self, ws: ClientConnection) -> None:
        self.commit()
        self.hello = replace(self.hello, floor=self.spool.floor())
        await ws.send(encode_edge(self.hello).decode())
        welcome = decode_hub(await asyncio.wait_for(ws.recv(), timeout=10))
        if not isinstance(welcome, Welcome):
            raise WireError("protocol", f"expected welcome, got {type(welcome).__name__}")
        self.commit()
        self._acknowledge(welcome.last_seq, ())
        self._backlog_after = welcome.last_seq
        self._live_from = self.spool.next_seq  # everything before is backlog, everything after is live
        self._live.clear()
        self._devices_changed = True  # tell the new hub connection the device picture
        self.connected.set()
        self.counters["connects"] += 1
        log.info("uplink connected to %s; hub holds up to seq %d; backlog %d frames", self.cfg.url, welcome.last_seq, self.spool.stats.frames)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._sender(ws))
            tg.create_task(self._receiver(ws))

    async def _sender(self, ws: ClientConnection) -> None:
        """Live frames first; the backlog behind them, at most ``backlog_rate`` frames a second."""
        tick = 0.1
        per_tick = max(1, int(self.cfg.backlog_rate * tick))
        last_status = 0.0
        while True:
            self._wake.clear()  # before the work: a frame released meanwhile sets it again
            while self._live:
                seq, data = self._live.popleft()
                await self._send(ws, data)
                self.counters["frames_sent_live"] += 1
            window = BACKLOG_WINDOW - max(0, self._backlog_after - self.acked)
            backlog = self.spool.read(self._backlog_after, self._live_from, min(per_tick, window)) if window > 0 else []
            for seq, data in backlog:
                await self._send(ws, data)
                self._backlog_after = seq
                self.counters["frames_sent_backlog"] += 1
                if self._live:  # live data waiting: it goes first
                    break
            now = time.monotonic()
            if self._devices_changed or now - last_status >= self.cfg.status_s:
                self._devices_changed, last_status = False, now
                devices = tuple(d for d in self._devices.values())
                await ws.send(encode_edge(Status(devices=devices, spool=self.spool.report())).decode())
            if self._live:
                continue
            if backlog or (window <= 0 and self._backlog_after < self._live_from - 1):
                await asyncio.sleep(tick)  # pace the backlog (and wait for acknowledgements to open the window)
            else:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.cfg.status_s)
                except TimeoutError:
                    pass

    async def _send(self, ws: ClientConnection, data: bytes) -> None:
        await ws.send(data if data[:2] == b"TW" else data.decode())
        self.counters["frames_sent"] += 1

    async def _receiver(self, ws: ClientConnection) -> None:
        async for raw in ws:
            msg = decode_hub(raw)
            if isinstance(msg, Ack):
                self._acknowledge(msg.seq, msg.also)
            elif isinstance(msg, ErrorReport):
                self.counters[f"hub_error_{msg.code}"] += 1
                log.warning("hub reports %s (seq %s): %s %s", msg.code, msg.seq, msg.detail, list(msg.rejected)[:5])

    def _acknowledge(self, seq: int, also: tuple[int, ...]) -> None:
        if seq > self.acked or also:
            self.acked = max(self.acked, seq)
            before = self.spool.stats.frames
            self.spool.acknowledge(seq, also)
            self.counters["frames_acked"] += before - self.spool.stats.frames

    def close(self) -> None:
        self.commit()
        self.spool.close()

