"""Fault injection on the whole MQTT pipeline, with real processes, counting every sample.

Simulated MQTT monitors (``teleicu sim --protocols mqtt``, each recording every
vitals sample it produces) -> a private ``mosquitto`` (persistence on, so the
edge agent's persistent session survives) -> ``teleicu edge --record`` ->
``teleicu hub``. The broker is stopped with SIGTERM for ``OUTAGE_S`` and
started again. While it is away the monitors hold what they produce in their
outboxes and the edge agent reports its link to the broker lost; afterwards:

* the hub raised ``technical:device_disconnected`` (the link) for every MQTT
  bed during the outage and cleared it after, as its audit trail shows;
* every sample the monitors produced, including those produced during the
  outage, is in the hub's store exactly once with the same value, and so is
  every sample the edge agent took in (its ``--record``).

The monitors' own record is what is counted, so seconds the simulator skipped
under load (``mqtt_sim.MAX_CATCH_UP_S``) cannot make the count look right.
The gateway's persistent session is opened (by the agent's own transport)
before the monitors start, as when the edge agent has been running: a broker
queues nothing for a client id it has never seen, so otherwise what the
monitors publish before the edge process has subscribed would not count.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from pathlib import Path

import pytest
from mqtt_support import OwnBroker, mqtt_device, own_broker  # noqa: F401 - own_broker is a fixture
from support import HubProcess, get_json, register_agent, start_hub, wait_audit_resolved, wait_until
from ward_support import Ward, read_samples

from edge_agent.config import DeviceConfig
from edge_agent.drivers.mqtt_json import MqttJsonParser
from edge_agent.transports.mqtt import device_from_config

pytestmark = pytest.mark.integration

BEDS = 3  # one MQTT device (topic tree) serves them all: its link alarm must reach every bed
OUTAGE_S = 10.0  # the broker is down this long; the agent, backing off, sees it a few seconds longer


class MqttWard(Ward):
    """``Ward``'s processes and checks, for simulated MQTT monitors on ``broker`` that record what they produce."""

    streams_ecg = False  # MQTT monitors send numerics only

    def __init__(self, tmp: Path, hub: HubProcess, broker: OwnBroker) -> None:  # not Ward's: that one starts ptys
        self.tmp, self.hub = tmp, hub
        self.cfg = tmp / "edge.yaml"
        self.record = tmp / "record.jsonl"
        self.produced_path = tmp / "produced.jsonl"
        self.beds = [f"M-{i:02d}" for i in range(1, BEDS + 1)]
        token = secrets.token_hex(4)
        prefix, client_id = f"teleicu-test/{token}", f"teleicu-edge-test-{token}"
        asyncio.run(open_gateway_session(mqtt_device(broker.port, prefix, client_id, self.beds)))
        self.sim = self.spawn("sim", "sim", "--protocols", "mqtt", "--ward", "M", "--beds", str(BEDS), "--seed", "11",
                              "--edge-config", str(self.cfg), "--hub", hub.edge_url, "--nibp-interval", "10",
                              "--sim-option", f"mqtt.broker={broker.url}", "--sim-option", f"mqtt.record={self.produced_path}",
                              "--sim-option", f"mqtt.topic_prefix={prefix}", "--sim-option", f"mqtt.edge_client_id={client_id}")  # fmt: skip
        wait_until(self.cfg.exists, "the simulator's edge config")
        register_agent(self.hub.db, "edge-M", "M", self.beds, self.cfg.parent / "edge-M.secret")
        self.edge = self.start_edge()

    def produced(self) -> dict[tuple[str, str, int], float | None]:
        return read_samples(self.produced_path)


async def open_gateway_session(dev: DeviceConfig) -> None:
    """Connect and subscribe as the edge agent will, then disconnect cleanly: the broker keeps the session."""
    parser = MqttJsonParser(beds=dev.beds, device=dev.id, topic_prefix=dev.settings["topic_prefix"])
    mqtt = device_from_config(dev, parser.topic_filters, lambda _topic, _payload: None)
    task = asyncio.create_task(mqtt.run())
    try:
        await asyncio.wait_for(mqtt.connected.wait(), 20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def subjects(alarm: dict) -> set[str]:
    """What a device_disconnected alarm says is gone: "... reports gone (mqtt-M: link; sim-M-01: presence): ..."."""
    per_device = alarm["detail"].split(" gone (", 1)[1].rsplit("): ", 1)[0].split("; ")
    return {subject for part in per_device for subject in part.split(": ", 1)[1].split(", ")}


def link_alarms(hub: HubProcess) -> list[dict]:
    """Open device_disconnected alarms that name the link (the broker restart also takes the monitors' presence)."""
    alerts = get_json(f"{hub.base}/api/alerts?kind=technical:device_disconnected")["alerts"]
    return [a for a in alerts if "link" in subjects(a)]


def test_broker_restart_loses_no_sample_and_raises_then_clears_the_link_alarm(tmp_path: Path, own_broker: OwnBroker) -> None:
    own_broker.start()
    hub = start_hub(tmp_path)
    ward = MqttWard(tmp_path, hub, own_broker)
    try:
        wait_until(lambda: {b for b, _p, _t in ward.stored()} == set(ward.beds), "data from every bed", timeout=60)
        assert link_alarms(hub) == []

        t_stopping = time.time_ns() // 1_000_000  # mosquitto drops its clients before it has saved and exited
        own_broker.stop()  # SIGTERM: mosquitto saves the sessions and exits
        t_down = time.time_ns() // 1_000_000  # from here nothing can be delivered
        alarms = wait_until(lambda: (a := link_alarms(hub)) and {x["bed"] for x in a} == set(ward.beds) and a,
                            "the link alarm on every MQTT bed", timeout=30)  # fmt: skip
        for a in alarms:
            assert (a["subject"], a["category"]) == (a["bed"], "technical") and a["title"].endswith(" disconnected"), a
        wait_until(lambda: time.time_ns() // 1_000_000 - t_down >= OUTAGE_S * 1000, "the outage", timeout=OUTAGE_S + 5, interval=0.2)
        held = {k for k in ward.produced() if k[2] >= t_down}  # produced while the broker was away: none stored yet
        assert len(held) >= BEDS * 5 * (OUTAGE_S - 2) and not held & set(ward.stored()), len(held)  # 5+ parameters a second
        own_broker.start()
        t_up = time.time_ns() // 1_000_000

        # the agent reconnects (backoff: within about 20 s), then the alarm clears after the technical clear delay
        wait_until(lambda: not link_alarms(hub), "the link alarms to clear", timeout=60, interval=0.5)
        for a in alarms:
            history = wait_audit_resolved(hub.base, a["id"])
            assert history[0]["event"] == "raised" and t_stopping <= history[0]["at"] <= t_up < history[-1]["at"], history

        # what the monitors held reached the store after the broker came back
        wait_until(lambda: held <= set(ward.stored()), "the samples held by the monitors during the outage", timeout=30, interval=0.5)

        assert ward.stop(ward.sim) == 0  # the monitors send what they still hold, then say goodbye
        produced = ward.produced()
        wait_until(lambda: set(produced) <= set(ward.stored()), "every sample the monitors produced to reach the store",
                   timeout=30, interval=0.5)  # fmt: skip
        ward.all_stored_exactly_once()  # the edge drained and stopped: what it took in is what the store holds
        stored = ward.stored()
        missing, extra = set(produced) - set(stored), set(stored) - set(produced)
        assert not missing and not extra, f"missing {sorted(missing)[:5]} ({len(missing)}), unexpected {sorted(extra)[:5]} ({len(extra)})"
        assert [k for k in produced if produced[k] != stored[k]] == []
        edge_stats = json.loads((tmp_path / "edge.stats.json").read_text())
        assert edge_stats["spool"]["dropped_frames"] == 0 and edge_stats["spool"]["frames"] == 0
        summary = re.findall(r"mqtt sim M: (\d+) messages sent, (\d+) dropped", (tmp_path / "sim.log").read_text())
        assert summary and int(summary[-1][0]) > 0 and summary[-1][1] == "0", summary
    finally:
        ward.cleanup()
        hub.stop()
