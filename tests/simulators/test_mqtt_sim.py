"""The MQTT simulator's sans-I/O parts: the bounded outbox, and the samples a record holds (the broker tests are in
tests/integration/test_mqtt_broker.py and test_mqtt_pipeline_faults.py)."""

from __future__ import annotations

import json

import pytest

from edge_agent.drivers.mqtt_json import MqttJsonParser
from simulators.base import SimBed
from simulators.mqtt_sim import OUTBOX_MAX, BedDevice, Outbox, Publication, create, vitals_samples
from wire.messages import Observation
from wire.vocabulary import Flag


def pubs(*names: str) -> list[Publication]:
    return [Publication(f"p/{n}/vitals", n.encode()) for n in names]


def test_outbox_keeps_order_and_drops_the_oldest_when_full() -> None:
    box = Outbox(3)
    box.put(pubs("a", "b"))
    head = box.head()
    assert head is not None and head.payload == b"a" and len(box) == 2
    box.put(pubs("c", "d", "e"))  # a and b go
    assert box.dropped == 2 and len(box) == 3
    box.done(head)  # a was in flight when it was dropped: the new head (c) stays
    sent = []
    while (pub := box.head()) is not None:
        sent.append(pub.payload)
        box.done(pub)
    assert sent == [b"c", b"d", b"e"] and len(box) == 0


def test_outbox_bound() -> None:
    assert OUTBOX_MAX >= 3600  # an hour at 1 Hz
    with pytest.raises(ValueError):
        Outbox(0)


def test_vitals_samples_are_what_the_edge_parser_reads() -> None:
    device = BedDevice(SimBed("R-01", "probe_off", 4, nibp_interval_s=1), "p")
    parser = MqttJsonParser(beds={"R-01": "R-01"}, device="gw", topic_prefix="p", clock_ms=lambda: 0)
    recorded, parsed = [], []
    for k in range(40):  # the probe comes off during these 40 s
        for pub in device.publications(k, 1_000_000 + 1000 * k):
            recorded += vitals_samples("R-01", pub)
            parsed += [[o.bed, o.param, o.t_dev, o.value, o.flags] for o in parser.feed_message(pub.topic, pub.payload)
                       if isinstance(o, Observation)]  # fmt: skip
    assert recorded == parsed and len(recorded) > 40 * 5
    assert ["R-01", "spo2", recorded[-1][2], None, Flag.PROBE_OFF] in recorded
    assert all(json.loads(json.dumps(r)) == r for r in recorded)  # one JSON line each
    assert list(vitals_samples("R-01", Publication("p/R-01/status", b'{"status": "ok"}'))) == []


def test_record_is_an_option_and_unknown_options_are_refused(tmp_path) -> None:
    sim = create([SimBed("R-01", "stable", 1)], ward="X", record=str(tmp_path / "r.jsonl"))
    assert sim.record_path == tmp_path / "r.jsonl"
    with pytest.raises(TypeError, match="recrod"):
        create([SimBed("R-01", "stable", 1)], ward="X", recrod="x")
