"""``teleicu bridge --config bridge.yaml``: run the records bridge until stopped (SIGTERM or Ctrl-C).

Start-up order: the cursor file (locked: one bridge per state file), the
metrics endpoint, the sinks (each waits until its target answers as the
service it should be), then the followers and, with a ``facility`` section, the
census feed (``census_feed``: live occupancy, beside the outbox); stop in reverse (a delivery in
flight is abandoned and, its cursor not having moved, sent again next time:
harmless by design). ``--parked`` lists the events parked, with the reason.
Parked events are not replayed automatically: an old event re-sent after newer
ones could set a record back (an encounter reopened); an operator reads them and
corrects the record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from prometheus_client import start_http_server

from records_bridge.bridge.census_feed import CensusFeed
from records_bridge.bridge.config import BridgeConfig, load_bridge_config
from records_bridge.bridge.cursor import CursorStore, StateInUse
from records_bridge.bridge.facility_sink import FacilitySink
from records_bridge.bridge.fhir_sink import FhirSink
from records_bridge.bridge.follow_up_sink import FollowUpSink
from records_bridge.bridge.follower import Follower, Sink
from records_bridge.bridge.hub_client import HubClient
from records_bridge.bridge.locker_sink import LockerSink
from records_bridge.bridge.metrics import BridgeMetrics
from records_bridge.bridge.service_client import ServiceClient
from records_bridge.fhir import MappingContext
from wire.config import ConfigError

log = logging.getLogger(__name__)


async def run(cfg: BridgeConfig) -> None:
    f = cfg.file
    cursors = CursorStore(cfg.path(f.state))
    metrics = BridgeMetrics()
    if f.metrics_listen:
        host, _, port = f.metrics_listen.rpartition(":")
        start_http_server(int(port), addr=host or "127.0.0.1", registry=metrics.registry)
    hub = HubClient(f.hub.url, f.hub.user, cfg.hub_password.get_secret_value(), verify=cfg.verify(f.hub.ca_file))
    ctx = MappingContext(mrn_system=f.hospital.mrn_system, facility_name=f.hospital.facility_name, facility_id=f.hospital.facility_id)
    ehr = FhirSink(f.ehr.url, cfg.ehr_secret.get_secret_value(), ctx, verify=cfg.verify(f.ehr.ca_file))
    tz = ZoneInfo(f.hospital.timezone)
    sinks: list[Sink] = [ehr]
    clients: list[ServiceClient] = []
    locker = None
    if f.locker is not None:
        locker = ServiceClient("locker", f.locker.url, hub, verify=cfg.verify(f.locker.ca_file))
        clients.append(locker)
        sinks.append(LockerSink(locker, ctx, f.locker.facility, tz))
    if f.queue is not None:
        queue = ServiceClient("OPD queue", f.queue.url, hub, verify=cfg.verify(f.queue.ca_file))
        clients.append(queue)
        sinks.append(FollowUpSink(queue, locker, f.queue.queues, ctx, f.locker.facility if f.locker else f.hospital.facility_id or "hospital", tz))
    census_feed = None
    if f.facility is not None:
        registry = ServiceClient("facility registry", f.facility.url, hub, verify=cfg.verify(f.facility.ca_file))
        clients.append(registry)
        hub_id = f.facility.hub_id or urlsplit(f.hub.url).netloc
        sinks.append(FacilitySink(registry, f.facility.wards, hub_id))
        census_feed = CensusFeed(hub, registry, f.facility.wards, hub_id, every_s=f.facility.census_every_s,
                                 heartbeat_s=f.facility.heartbeat_s)  # fmt: skip
    follower = Follower(hub, sinks, cursors, metrics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("bridge following %s into %s (cursor %d)", f.hub.url, f.ehr.url, cursors.position(ehr.name))
    async def follow() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(follower.run(), name="bridge-follower")
            if census_feed is not None:
                tg.create_task(census_feed.run(), name="bridge-census-feed")

    try:
        task = asyncio.create_task(follow())
        await asyncio.wait([task, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # a follower that stopped by itself stopped with an error: raise it
        task.cancel()
        await asyncio.wait([task])  # its own cancellation is expected here; ours would still propagate
    finally:
        await ehr.close()
        for c in clients:
            await c.close()
        await hub.close()
        cursors.close()


def main(args: argparse.Namespace) -> int:
    try:
        cfg = load_bridge_config(args.config)
        if args.parked:
            return _list_parked(cfg)
        asyncio.run(run(cfg))
    except (ConfigError, StateInUse) as exc:
        print(f"teleicu bridge: {exc}", file=sys.stderr)
        return 2
    return 0


def _list_parked(cfg: BridgeConfig) -> int:
    """Every parked event with its reason, one JSON object a line, for an operator to read and act on."""
    cursors = CursorStore(cfg.path(cfg.file.state))
    try:
        for row in cursors.parked():
            print(json.dumps(row, ensure_ascii=False))
    finally:
        cursors.close()
    return 0
