"""The edge agent's single WebSocket to the hub: an asyncio shell around ``wire.edge_session.EdgeSession``.

Numerics are gathered for ``flush_ms`` and become one JSON frame; each waveform
segment becomes one binary chunk (several per second per lead). Every
``flush_ms`` the frames produced meanwhile get their sequence numbers and are
written to the spool (``edge_agent.spool``, fsynced) in one step, before they
are sent; a frame is deleted only when the hub acknowledges it.

The protocol itself (numbering, the floor, hello and welcome, live frames
first and the backlog behind them, ack-clocked and paced, status reports, the
reconnect backoff) is decided by the session; this module only produces the
frames, keeps the spool and the device picture, and moves bytes: it tells the
session what was spooled and what the hub said, and sends what the session
says to send. Reconnects back off exponentially with full jitter, so a hub
restart is not met by every gateway at the same instant.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from edge_agent.config import UplinkConfig
from edge_agent.events import DeviceStatus, WaveSegment
from edge_agent.spool import KIND_OBS, KIND_WAVE, Spool
from wire.codec import MAX_OBS_PER_FRAME, MAX_SAMPLES_PER_CHUNK, WireError, encode_edge
from wire.edge_session import BacklogFrame, DeleteFrames, EdgeEvent, EdgeSession, HubError, LiveFrame, Welcomed
from wire.messages import ObsFrame, Observation, PatientSeen, UnmappedObservation, WaveChunk

log = logging.getLogger(__name__)

MAX_DEVICE_CONDITIONS = 256  # (bed, device, subject) conditions remembered and re-sent (at most ~100 KB a status
# message, well inside the codec's 256 KiB); beyond it the oldest "ok" is forgotten first
WELCOME_TIMEOUT_S = 10.0


def credentials(cfg: UplinkConfig, agent: str, url: str | None = None) -> dict[str, Any]:
    """How the agent proves who it is on a socket to the hub (``url``, default the uplink's): its secret (HTTP Basic
    on the upgrade request), and for ``wss://`` the hospital's CA and, with mutual TLS, its client certificate."""
    out: dict[str, Any] = {}
    if cfg.secret is not None:
        token = base64.b64encode(f"{agent}:{cfg.secret.get_secret_value()}".encode()).decode()
        out["additional_headers"] = {"Authorization": f"Basic {token}"}
    if (url or cfg.url).startswith("wss://"):
        ctx = ssl.create_default_context(cafile=cfg.ca_file)
        if cfg.cert_file is not None:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        out["ssl"] = ctx
    return out


class Uplink:
    def __init__(self, cfg: UplinkConfig, agent: str, ward: str, beds: list[str], spool_path: Path, *,
                 rng: random.Random | None = None) -> None:  # fmt: skip
        self.cfg = cfg
        self.agent = agent
        self.spool = Spool(spool_path, max_bytes=cfg.spool_max_mb * 1024 * 1024)
        self.counters: Counter[str] = Counter()
        self.session = EdgeSession(agent=agent, ward=ward, beds=beds, epoch=self.spool.epoch, next_seq=self.spool.next_seq,
                                   spooled=self.spool.runs(), backlog_rate=cfg.backlog_rate, status_s=cfg.status_s,
                                   backoff=(cfg.backoff_initial_s, cfg.backoff_max_s), rng=rng, counters=self.counters)  # fmt: skip
        self._pending_obs: list[Observation] = []
        self._pending_unmapped: list[UnmappedObservation] = []
        self._pending_patients: list[PatientSeen] = []
        # produced, not yet on disk and not yet numbered: (kind, frame with seq 0), numbered by commit
        self._unspooled: list[tuple[int, ObsFrame | WaveChunk]] = []
        self.recorder: Callable[[list[Observation | UnmappedObservation | WaveChunk]], None] | None = None  # sees every sample once spooled
        self._wake = asyncio.Event()
        self._devices: dict[tuple[str, str, str], dict] = {}  # (bed, device, detail) -> latest reported status
        self.connected = asyncio.Event()

    @property
    def acked(self) -> int:
        """The highest cumulative acknowledgement from the hub."""
        return self.session.acked

    def report(self) -> dict[str, int]:
        """The spool's report with the floor, as status reports carry it."""
        return self.session.report(self.spool.report())

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

    def add_patient_seen(self, seen: PatientSeen) -> None:
        """A patient id a device named: it travels in the next numerics frame (the hub checks it against admissions)."""
        self._pending_patients.append(seen)
        self.counters["patient_ids_queued"] += 1

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
            self.session.status_changed()
            self._wake.set()

    def flush_observations(self) -> None:
        if not self._pending_obs and not self._pending_unmapped and not self._pending_patients:
            return
        obs, self._pending_obs = self._pending_obs, []
        unmapped, self._pending_unmapped = self._pending_unmapped, []
        patients, self._pending_patients = self._pending_patients, []
        self._unspooled.append((KIND_OBS, ObsFrame(0, tuple(obs), tuple(unmapped), tuple(patients))))
        self.counters["obs_frames_queued"] += 1
        self.counters["obs_queued"] += len(obs)

    def commit(self) -> None:
        """Number what was produced since the last flush, write it to the spool, then release it for sending.

        Sequence numbers are taken here, in the same step that makes the frames durable, so a status
        report's floor can never cover a frame still waiting in memory. If the spool write fails, nothing
        is numbered or lost: the frames stay queued for the next commit."""
        self.flush_observations()
        if not self._unspooled:
            return
        frames: list[tuple[int, int, bytes]] = []
        numbered: list[Observation | UnmappedObservation | WaveChunk] = []
        for kind, body in self._unspooled:
            seq = self.session.next_seq + len(frames)
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
        dropped = self.spool.append(frames)
        self._unspooled = []
        self.session.spooled([(seq, data) for seq, _kind, data in frames], dropped)
        if self.recorder is not None:
            self.recorder(numbered)
        if self.session.connected:
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
        while True:
            try:
                async with connect(self.cfg.url, max_size=4 * 1024 * 1024, open_timeout=10, ping_interval=10, **self._credentials()) as ws:
                    await self._connection(ws)
            except* (OSError, websockets.WebSocketException, TimeoutError, WireError) as group:
                # a dropped link surfaces bare (connect) or grouped (from the connection's TaskGroup)
                self.counters["disconnects"] += 1
                log.warning("uplink to %s lost: %s", self.cfg.url, group.exceptions[0])
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
        await ws.send(data if data[:2] == b"TW" else data.decode())

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
                log.info("uplink connected to %s; hub holds up to seq %d; backlog %d frames", self.cfg.url, ev.last_seq, ev.backlog)

    def close(self) -> None:
        self.commit()
        self.spool.close()
