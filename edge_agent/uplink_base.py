"""What every uplink shares: the drivers' frames, numbered and written to the spool, and the device picture.

Numerics are gathered for ``flush_ms`` and become one JSON frame; each waveform
segment becomes one binary chunk (several per second per lead). Every
``flush_ms`` the frames produced meanwhile get their sequence numbers and are
written to the spool (``edge_agent.spool``, fsynced) in one step, before they
are sent; a frame is deleted only when its destination acknowledges it.

``UplinkBase`` is that producer side. Its subclasses are the ways out: the
WebSocket to one hub (``edge_agent.uplink``) and NATS JetStream
(``edge_agent.jetstream_uplink``). A subclass hears of each committed batch
through ``_spooled`` (the frames under their numbers, and any the spool's
size policy dropped) and of a changed device picture through
``_status_changed``, and keeps its destination's connection in
``_connection_loop``; ``run`` supervises that loop with the periodic commit.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from edge_agent.config import UplinkSettings
from edge_agent.events import DeviceStatus, WaveSegment
from edge_agent.spool import KIND_OBS, KIND_WAVE, Spool
from wire.codec import MAX_OBS_PER_FRAME, MAX_SAMPLES_PER_CHUNK, WireError, encode_edge
from wire.messages import ObsFrame, Observation, PatientSeen, UnmappedObservation, WaveChunk

log = logging.getLogger(__name__)

MAX_DEVICE_CONDITIONS = 256  # (bed, device, subject) conditions remembered and re-sent (at most ~100 KB a status
# message, well inside the codec's 256 KiB); beyond it the oldest "ok" is forgotten first

Recorder = Callable[[list[Observation | UnmappedObservation | WaveChunk]], None]


class UplinkBase(abc.ABC):
    def __init__(self, cfg: UplinkSettings, agent: str, ward: str, spool_path: Path) -> None:
        self.cfg = cfg
        self.agent = agent
        self.ward = ward
        self.spool = Spool(spool_path, max_bytes=cfg.spool_max_mb * 1024 * 1024)
        self.counters: Counter[str] = Counter()
        self._pending_obs: list[Observation] = []
        self._pending_unmapped: list[UnmappedObservation] = []
        self._pending_patients: list[PatientSeen] = []
        # produced, not yet on disk and not yet numbered: (kind, frame with seq 0), numbered by commit
        self._unspooled: list[tuple[int, ObsFrame | WaveChunk]] = []
        self.recorder: Recorder | None = None  # sees every sample once spooled
        self._wake = asyncio.Event()
        self._devices: dict[tuple[str, str, str], dict] = {}  # (bed, device, detail) -> latest reported status
        self.connected = asyncio.Event()

    # --- what a way out provides ----------------------------------------------------

    @property
    @abc.abstractmethod
    def destination(self) -> str:
        """Where frames go, for log lines."""

    @property
    @abc.abstractmethod
    def acked(self) -> int:
        """Every frame up to this number has been acknowledged (or dropped by the spool's size policy)."""

    @abc.abstractmethod
    def report(self) -> dict[str, int]:
        """The spool's report with the floor, as status reports carry it."""

    @abc.abstractmethod
    def _spooled(self, frames: list[tuple[int, bytes]], dropped: list[int]) -> None:
        """``frames`` (seq, encoded) are durably in the spool, continuing the sequence; ``dropped`` left it unsent."""

    def _status_changed(self) -> None:
        """The device picture changed."""

    @abc.abstractmethod
    async def _connection_loop(self) -> None:
        """Keep the destination's connection up and deliver the spool through it, until cancelled."""

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
            self._status_changed()

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
        dropped = self.spool.append(frames)
        self._unspooled = []
        self._spooled([(seq, data) for seq, _kind, data in frames], dropped)
        if self.recorder is not None:
            self.recorder(numbered)

    @property
    def outbox_size(self) -> int:
        return self.spool.stats.frames + len(self._unspooled) + (1 if self._pending_obs or self._pending_unmapped else 0)

    # --- running -------------------------------------------------------------------

    async def run(self) -> None:
        """Spool periodically and keep the connection up, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._flush_loop(), name="uplink-flush")
            tg.create_task(self._connection_loop(), name="uplink-connection")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.flush_ms / 1000)
            self.commit()

    def close(self) -> None:
        self.commit()
        self.spool.close()
