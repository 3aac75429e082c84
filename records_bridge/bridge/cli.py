"""``teleicu bridge --config bridge.yaml``: run the records bridge until stopped (SIGTERM or Ctrl-C).

Start-up order: the cursor file (locked: one bridge per state file), the
metrics endpoint, the sinks (each waits until its target answers as the
service it should be), then the followers; stop in reverse (a delivery in
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

from prometheus_client import start_http_server

from records_bridge.bridge.config import BridgeConfig, load_bridge_config
from records_bridge.bridge.cursor import CursorStore, StateInUse
from records_bridge.bridge.fhir_sink import FhirSink
from records_bridge.bridge.follower import Follower
from records_bridge.bridge.hub_client import HubClient
from records_bridge.bridge.metrics import BridgeMetrics
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
    follower = Follower(hub, [ehr], cursors, metrics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("bridge following %s into %s (cursor %d)", f.hub.url, f.ehr.url, cursors.position(ehr.name))
    try:
        task = asyncio.create_task(follower.run())
        await asyncio.wait([task, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # a follower that stopped by itself stopped with an error: raise it
        task.cancel()
        await asyncio.wait([task])  # its own cancellation is expected here; ours would still propagate
    finally:
        await ehr.close()
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
