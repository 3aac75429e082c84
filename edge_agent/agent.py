"""The edge agent: device drivers in, one uplink out, supervised together.

The uplink is the WebSocket to the hub (``edge_agent.uplink``) or, with
``uplink.transport: jetstream``, NATS JetStream (``edge_agent.jetstream_uplink``);
both spool the same frames the same way (``edge_agent.uplink_base``).

Start order: the uplink comes up first (so nothing read is without a way out),
then live video if cameras are configured (its own task: ``edge_agent.video``
logs and retries its own failures, never taking the agent down), then one
reader task per device. Stop order is the reverse: video stops (its sessions
closed), devices stop, the last numerics are flushed into the outbox, and the
uplink is given a moment to deliver what is outstanding before it is cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.config import DeviceConfig, EdgeConfig, load_edge_config
from edge_agent.drivers import get_driver
from edge_agent.events import DeviceStatus, DriverEvent, ParseError, WaveSegment
from edge_agent.transports import get_transport
from edge_agent.uplink import Uplink
from edge_agent.uplink_base import UplinkBase
from wire.messages import Observation, PatientSeen, UnmappedObservation, WaveChunk
from wire.sample_record import record_lines

if TYPE_CHECKING:
    from edge_agent.video.signalling_link import SignallingLink

log = logging.getLogger(__name__)

MAX_UNMAPPED_NAMED = 10_000  # distinct (device, system, code) named in the log; beyond, counted only
PATIENT_REPEAT_MS = 60_000  # a device's unchanged patient id is forwarded again this often


def make_uplink(cfg: EdgeConfig, beds: list[str], spool: Path) -> UplinkBase:
    """The uplink ``uplink.transport`` names (the JetStream one imported only when chosen)."""
    if cfg.uplink.transport == "jetstream":
        from edge_agent.jetstream_uplink import JetStreamUplink

        if cfg.jetstream is None:
            raise ValueError("uplink.transport is jetstream but the configuration has no jetstream section")
        return JetStreamUplink(cfg.uplink, cfg.jetstream, cfg.nats_credentials, cfg.agent_id, cfg.ward, spool)
    return Uplink(cfg.uplink, cfg.agent_id, cfg.ward, beds, spool)


class EdgeAgent:
    def __init__(self, cfg: EdgeConfig) -> None:
        self.cfg = cfg
        beds = sorted({b for d in cfg.devices for b in d.served_beds})
        spool = Path(cfg.uplink.spool or f"{cfg.agent_id}.spool.sqlite3")
        self.uplink = make_uplink(cfg, beds, spool)
        self.counters: Counter[str] = Counter()
        self.device_status: dict[str, str] = {}
        self.unmapped_seen: set[tuple[str, str, str]] = set()  # (device, system, code) already logged
        self.patient_seen: dict[tuple[str, str], tuple[str, int]] = {}  # (bed, device) -> (patient id, t) last forwarded
        self.video: SignallingLink | None = None
        if cfg.cameras:  # aiortc is imported only by a gateway with cameras
            from edge_agent.video.signalling_link import SignallingLink

            self.video = SignallingLink(cfg.uplink, cfg.agent_id, cfg.cameras, cfg.video)

    def route(self, events: list[DriverEvent]) -> None:
        for ev in events:
            if isinstance(ev, Observation):
                self.uplink.add_observation(ev)
            elif isinstance(ev, UnmappedObservation):
                self.uplink.add_unmapped(ev)
                self._note_unmapped(ev)
            elif isinstance(ev, WaveSegment):
                self.uplink.add_wave(ev)
            elif isinstance(ev, PatientSeen):
                self._note_patient(ev)
            elif isinstance(ev, DeviceStatus):
                if self.device_status.get(ev.device) != ev.status:
                    log.info("device %s (bed %s): %s %s", ev.device, ev.bed, ev.status, ev.detail)
                self.device_status[ev.device] = ev.status
                self.counters[f"status_{ev.status}"] += 1
                self.uplink.add_status(ev)
            elif isinstance(ev, ParseError):
                self.counters[f"parse_error_{ev.code}"] += 1
                self.counters["bytes_discarded"] += ev.discarded
                log.debug("parse error: %s %s", ev.code, ev.detail)

    def _note_patient(self, ev: PatientSeen) -> None:
        """Forward a patient id when it changes, and again every ``PATIENT_REPEAT_MS`` (a monitor names it in every
        message; the hub needs to hear it, not once a second)."""
        key = (ev.bed, ev.device)
        last = self.patient_seen.get(key)
        if last is not None and last[0] == ev.patient_id and ev.t - last[1] < PATIENT_REPEAT_MS:
            return
        if len(self.patient_seen) >= MAX_UNMAPPED_NAMED:
            self.patient_seen.clear()
        self.patient_seen[key] = (ev.patient_id, ev.t)
        self.uplink.add_patient_seen(ev)

    def _note_unmapped(self, ev: UnmappedObservation) -> None:
        """Name each new (device, code) once, at warning level: hospital IT must see what a monitor sends unmapped."""
        key = (ev.device, ev.system, ev.code)
        if key in self.unmapped_seen:
            return
        if len(self.unmapped_seen) >= MAX_UNMAPPED_NAMED:
            self.counters["unmapped_codes_not_named"] += 1
            return
        self.unmapped_seen.add(key)
        log.warning("device %s (bed %s) sends %s code %r (%s) = %r %s, which teleicu does not map: forwarded to the hub "
                    "as an unmapped observation, never scored", ev.device, ev.bed, ev.system or "(no system)", ev.code,
                    ev.name or "no name", ev.value, ev.unit)  # fmt: skip

    async def _device(self, dev: DeviceConfig) -> None:
        spec = get_driver(dev.driver)
        await get_transport(spec.transport)(dev, spec, self.route)

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tg:
            up = tg.create_task(self.uplink.run(), name="uplink")
            video = tg.create_task(self.video.run(), name="video") if self.video is not None else None
            devices = [tg.create_task(self._device(d), name=f"device-{d.id}") for d in self.cfg.devices]
            await stop.wait()
            if video is not None:
                video.cancel()
                await asyncio.gather(video, return_exceptions=True)
            for t in devices:
                t.cancel()
            await asyncio.gather(*devices, return_exceptions=True)
            self.uplink.commit()  # whatever was read is on disk now, sent or not
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    while self.uplink.outbox_size and self.uplink.connected.is_set():
                        await asyncio.sleep(0.05)
            up.cancel()

    def stats(self) -> dict[str, object]:
        return {
            "agent": dict(self.counters),
            "uplink": dict(self.uplink.counters),
            "spool": self.uplink.report(),
            "acked_seq": self.uplink.acked,
            **({"video": dict(self.video.counters)} if self.video is not None else {}),
        }


async def _amain(args: argparse.Namespace) -> int:
    cfg = load_edge_config(args.config)
    agent = EdgeAgent(cfg)
    record = None
    if args.record:
        record = open(args.record, "a", encoding="utf-8")  # noqa: SIM115 - closed below

        def write(samples: list[Observation | UnmappedObservation | WaveChunk]) -> None:
            record.write(record_lines(samples))
            record.flush()

        agent.uplink.recorder = write
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("edge agent %s: %d devices, %d cameras -> %s", cfg.agent_id, len(cfg.devices), len(cfg.cameras), agent.uplink.destination)
    try:
        await agent.run(stop)
    finally:
        if args.stats_file:
            args.stats_file.write_text(json.dumps(agent.stats(), indent=2))
        agent.uplink.close()
        if record is not None:
            record.close()
    return 0


def edge_main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s edge %(levelname)s %(name)s: %(message)s")
    return asyncio.run(_amain(args))
