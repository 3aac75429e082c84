"""mqtt_json parser: golden messages, every documented error, the simulator's messages, and fuzzing.

MQTT delivers whole messages (the broker and client do the framing), so there
is no byte stream to split: ``feed_message`` takes one (topic, payload) at a
time, and the fuzz tests below feed it any topic and any bytes.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.config import EdgeConfigError, parse_edge_config
from edge_agent.drivers import get_driver, mqtt_json
from edge_agent.drivers.mqtt_json import (
    MAX_DEVICES,
    MAX_ERRORS_PER_MESSAGE,
    MAX_PAYLOAD,
    MAX_TOPIC,
    MqttJsonParser,
)
from edge_agent.events import DeviceStatus, ParseError
from edge_agent.transports.mqtt import BrokerAddress, BrokerUrlError, parse_broker_url
from simulators.base import SimBed
from simulators.mqtt_sim import BedDevice, encode_presence, encode_status, encode_vitals
from simulators.scenarios import Scenario, get_scenario
from wire.codec import decode_edge, encode_edge
from wire.messages import ObsFrame, Observation, UnmappedObservation
from wire.vocabulary import BY_KEY, HUB_DERIVED, Flag

T_RX = 1_800_000_000_000
BEDS = {"bed07": "ICU1-07", "bed08": "ICU1-08"}
DEV = "mqtt-gw"

#: codes documented in edge_agent/drivers/mqtt_json.py
DOCUMENTED_CODES = {
    "oversized", "bad_topic", "unknown_bed", "bad_json", "bad_time", "bad_field",
    "bad_value", "bad_flags", "bad_presence", "more_errors", "no_topic",
}  # fmt: skip


def parser(prefix: str = "teleicu") -> MqttJsonParser:
    return MqttJsonParser(beds=BEDS, device=DEV, topic_prefix=prefix, clock_ms=lambda: T_RX)


def obs(bed: str, param: str, value: float | None, t_dev: int = T_RX, device: str = DEV, flags: int = 0) -> Observation:
    return Observation(bed=bed, param=param, value=value, t_dev=t_dev, t_rx=T_RX, device=device, flags=flags)


def err(code: str, detail: str, discarded: int = 0) -> ParseError:
    return ParseError(code=code, detail=detail, discarded=discarded)


# -- golden messages ---------------------------------------------------------------

# The README's mosquitto_pub example: no time (receive time), no device (the configured one).
README_VITALS = ("teleicu/bed07/vitals", b'{"values": {"hr": 82, "spo2": 97}}')
FULL_VITALS = (
    "teleicu/bed08/vitals",
    (
        b'{"t": 1732600000000, "device": "mon-8", "values": {"hr": 91, "spo2": null, "rr": 18, "temp": 37.4,'
        b' "nibp_sys": 121, "acvpu": 0}, "flags": {"spo2": ["probe_off"]}}'
    ),
)
ARTEFACT = ("teleicu/bed07/vitals", b'{"t": 1732600001000, "values": {"hr": 140.5}, "flags": {"hr": ["artefact", "leads_off"]}}')
NULL_NO_FLAGS = ("teleicu/bed07/vitals", b'{"t": 1732600002000, "values": {"etco2": null}}')
STATUS = ("teleicu/bed08/status", b'{"t": 1732600003000, "device": "mon-8", "status": "probe_off", "detail": "spo2"}')
PRESENCE_OFFLINE_WORD = ("teleicu/mon-8/presence", b"offline\n")
PRESENCE_ONLINE_JSON = ("teleicu/gw-3/presence", b'{"state": "online", "beds": ["bed07", "bed08"]}')

GOLDEN: list[tuple[tuple[str, bytes], list]] = [
    (README_VITALS, [obs("ICU1-07", "hr", 82), obs("ICU1-07", "spo2", 97)]),
    (
        FULL_VITALS,
        [
            obs("ICU1-08", "hr", 91, 1732600000000, "mon-8"),
            obs("ICU1-08", "spo2", None, 1732600000000, "mon-8", Flag.PROBE_OFF),
            obs("ICU1-08", "rr", 18, 1732600000000, "mon-8"),
            obs("ICU1-08", "temp", 37.4, 1732600000000, "mon-8"),
            obs("ICU1-08", "nibp_sys", 121, 1732600000000, "mon-8"),
            obs("ICU1-08", "acvpu", 0, 1732600000000, "mon-8"),
        ],
    ),
    (ARTEFACT, [obs("ICU1-07", "hr", 140.5, 1732600001000, flags=Flag.ARTEFACT | Flag.LEADS_OFF)]),
    (NULL_NO_FLAGS, [obs("ICU1-07", "etco2", None, 1732600002000, flags=Flag.INVALID)]),
    (STATUS, [DeviceStatus(bed="ICU1-08", device="mon-8", status="probe_off", t_dev=1732600003000, detail="spo2")]),
    # mon-8 was seen sending for bed08 above, so its bare "offline" applies there
    (PRESENCE_OFFLINE_WORD, [DeviceStatus(bed="ICU1-08", device="mon-8", status="disconnected", t_dev=T_RX, detail="presence")]),
    (
        PRESENCE_ONLINE_JSON,
        [
            DeviceStatus(bed="ICU1-07", device="gw-3", status="ok", t_dev=T_RX, detail="presence"),
            DeviceStatus(bed="ICU1-08", device="gw-3", status="ok", t_dev=T_RX, detail="presence"),
        ],
    ),
]


def test_golden_messages_in_sequence() -> None:
    p = parser()
    for (topic, payload), expected in GOLDEN:
        assert p.feed_message(topic, payload) == expected, topic
    assert p.errors == {} and p.messages == len(GOLDEN)


def test_values_keep_their_json_order_and_exact_numbers() -> None:
    [o1, o2, o3] = parser().feed_message("teleicu/bed07/vitals", b'{"values": {"temp": 36.95, "fio2": 21, "hr": 0}}')
    assert [o1.param, o2.param, o3.param] == ["temp", "fio2", "hr"]
    assert (o1.value, o2.value, o3.value) == (36.95, 21.0, 0.0)


def test_every_vocabulary_key_accepted() -> None:
    values = {k: BY_KEY[k].lo for k in BY_KEY if k not in HUB_DERIVED}
    events = parser().feed_message("teleicu/bed07/vitals", json.dumps({"values": values}).encode())
    assert [e.param for e in events] == list(values)
    assert all(isinstance(e, Observation) for e in events)


def test_multi_level_prefix() -> None:
    p = parser("hospital-1/icu/teleicu")
    assert p.topic_filters == ("hospital-1/icu/teleicu/+/vitals", "hospital-1/icu/teleicu/+/status", "hospital-1/icu/teleicu/+/presence")
    assert p.feed_message("hospital-1/icu/teleicu/bed07/vitals", README_VITALS[1]) == GOLDEN[0][1]
    [e] = p.feed_message("teleicu/bed07/vitals", README_VITALS[1])
    assert e.code == "bad_topic"


def test_empty_payload_is_a_retained_message_deletion() -> None:
    p = parser()
    for kind in ("vitals", "status", "presence"):
        assert p.feed_message(f"teleicu/bed07/{kind}", b"") == []
    assert p.errors == {}


def test_presence_of_unknown_device_without_beds_has_no_bed() -> None:
    assert parser().feed_message("teleicu/never-seen/presence", b"online") == []


def test_presence_remembers_beds_from_status_and_vitals() -> None:
    p = parser()
    p.feed_message("teleicu/bed07/vitals", b'{"device": "m", "values": {}}')
    p.feed_message("teleicu/bed08/status", b'{"device": "m", "status": "ok"}')
    events = p.feed_message("teleicu/m/presence", b"offline")
    assert [(e.bed, e.status) for e in events] == [("ICU1-07", "disconnected"), ("ICU1-08", "disconnected")]


def test_device_memory_is_bounded() -> None:
    p = parser()
    for i in range(MAX_DEVICES + 10):
        p.feed_message(f"teleicu/d{i}/presence", b'{"state": "online", "beds": ["bed07"]}')
    assert len(p.device_beds) == MAX_DEVICES
    assert "d0" not in p.device_beds and f"d{MAX_DEVICES + 9}" in p.device_beds


def test_feed_without_topic_and_nothing_to_send() -> None:
    p = parser()
    assert p.feed(b"") == []
    assert p.feed(b'{"values": {"hr": 1}}') == [err("no_topic", "mqtt_json takes messages: call feed_message(topic, payload)", 21)]
    assert p.bytes_to_send() == b""
    assert p.errors["no_topic"] == 1


# -- every documented error --------------------------------------------------------

V = "teleicu/bed07/vitals"

ERRORS: list[tuple[str, bytes, list]] = [
    # whole message discarded
    ("teleicu/bed07/vitals", b"{" + b" " * MAX_PAYLOAD + b"}", [err("oversized", f"payload of {MAX_PAYLOAD + 2} bytes is over the {MAX_PAYLOAD}-byte limit", MAX_PAYLOAD + 2)]),
    ("other/bed07/vitals", b"{}", [err("bad_topic", "topic 'other/bed07/vitals' is not under 'teleicu/'", 2)]),
    ("teleicu/bed07/waves", b"{}", [err("bad_topic", "topic 'teleicu/bed07/waves' is not teleicu/<id>/vitals|status|presence", 2)]),
    ("teleicu/bed07/vitals/x", b"{}", [err("bad_topic", "topic 'teleicu/bed07/vitals/x' is not teleicu/<id>/vitals|status|presence", 2)]),
    ("teleicu//vitals", b"{}", [err("bad_topic", "topic 'teleicu//vitals' is not teleicu/<id>/vitals|status|presence", 2)]),
    ("teleicu/bed99/vitals", b"{}", [err("unknown_bed", "bed 'bed99' is not in this device's beds", 2)]),
    (V, b"\xff\xfe{}", [err("bad_json", "payload is not UTF-8", 4)]),
    (V, b'{"values": {"hr": 1}', [err("bad_json", "payload is not JSON: Expecting ',' delimiter: line 1 column 21 (char 20)", 20)]),
    (V, b'{"values": {}, "values": {}}', [err("bad_json", "payload is not JSON: key 'values' given twice", 28)]),
    (V, b"[" * 5000, [err("bad_json", "payload nests too deep", 5000)]),
    (V, b"[1, 2]", [err("bad_json", "payload must be a JSON object, not list", 6)]),
    (V, b'{"t": 1.5e12, "values": {"hr": 1}}', [err("bad_time", "t must be integer ms since the epoch, got 1500000000000.0", 34)]),
    (V, b'{"t": -1, "values": {"hr": 1}}', [err("bad_time", "t must be integer ms since the epoch, got -1", 30)]),
    (V, b'{"t": "now", "values": {"hr": 1}}', [err("bad_time", "t must be integer ms since the epoch, got 'now'", 33)]),
    (V, b'{"t": 1000000000000000, "values": {}}', [err("bad_time", "t must be integer ms since the epoch, got 1000000000000000", 37)]),
    (V, b'{"t": true, "values": {}}', [err("bad_time", "t must be integer ms since the epoch, got True", 25)]),
    (
        V,
        b'{"hr": 82}',
        [
            err("bad_field", "unknown member 'hr' ignored (allowed: device, flags, t, values)"),
            err("bad_field", "'values' must be an object of parameter keys, got None", 10),
        ],
    ),
    (V, b'{"values": [82]}', [err("bad_field", "'values' must be an object of parameter keys, got [82]", 16)]),
    (V, b'{"device": "", "values": {"hr": 1}}', [err("bad_field", "device must be a string of 1-64 printable characters, got ''", 35)]),
    (V, b'{"device": "a\\u0007b", "values": {"hr": 1}}', [err("bad_field", "device must be a string of 1-64 printable characters, got 'a\\x07b'", 43)]),
    (V, b'{"device": 7, "values": {"hr": 1}}', [err("bad_field", "device must be a string of 1-64 printable characters, got 7", 34)]),
    ("teleicu/bed07/status", b'{"status": "Probe Off"}', [err("bad_field", "status must be a lowercase token like 'probe_off', got 'Probe Off'", 23)]),
    ("teleicu/bed07/status", b'{"detail": "x"}', [err("bad_field", "status must be a lowercase token like 'probe_off', got None", 15)]),
    ("teleicu/bed07/status", b'{"status": "ok", "detail": 5}', [err("bad_field", "detail must be a string of at most 256 characters, got 5", 29)]),
    ("teleicu/bed07/status", b'{"status": "ok", "t": "x"}', [err("bad_time", "t must be integer ms since the epoch, got 'x'", 26)]),
    ("teleicu/m/presence", b"gone", [err("bad_json", "payload is not JSON: Expecting value: line 1 column 1 (char 0)", 4)]),
    ("teleicu/m/presence", b'{"state": "away"}', [err("bad_presence", "presence must be 'online', 'offline' or {\"state\": ..., \"beds\": [...]}, got {'state': 'away'}", 17)]),
    ("teleicu/m/presence", b'"online"', [err("bad_presence", "presence must be 'online', 'offline' or {\"state\": ..., \"beds\": [...]}, got 'online'", 8)]),
    ("teleicu/" + "d" * 65 + "/presence", b"online", [err("bad_topic", "device id in the presence topic is over 64 characters", 6)]),
]


@pytest.mark.parametrize(("topic", "payload", "expected"), ERRORS, ids=range(len(ERRORS)))
def test_documented_errors(topic: str, payload: bytes, expected: list) -> None:
    p = parser()
    assert p.feed_message(topic, payload) == expected
    assert sum(p.errors.values()) == len(expected)
    assert p.discarded_bytes == sum(e.discarded for e in expected)


def test_over_long_topic() -> None:
    topic = "teleicu/" + "b" * MAX_TOPIC + "/vitals"
    assert parser().feed_message(topic, b"{}") == [err("oversized", f"topic longer than {MAX_TOPIC} characters", 2)]


def test_payload_of_exactly_the_limit_is_read() -> None:
    body = b'{"values": {"hr": 80}}'
    payload = body[:-1] + b" " * (MAX_PAYLOAD - len(body)) + b"}"
    assert len(payload) == MAX_PAYLOAD
    assert parser().feed_message(V, payload) == [obs("ICU1-07", "hr", 80)]


def test_bad_values_are_reported_and_good_ones_kept() -> None:
    payload = (
        b'{"t": 5, "values": {"hr": 80, "pulse": 81, "spo2": "97", "rr": true, "temp": NaN, "etco2": Infinity,'
        b' "nibp_sys": ' + b"9" * 400 + b', "nibp_dia": [70], "o2": 1}, "extra": 1}'
    )
    events = parser().feed_message(V, payload)
    assert events == [
        err("bad_field", "unknown member 'extra' ignored (allowed: device, flags, t, values)"),
        obs("ICU1-07", "hr", 80, 5),
        UnmappedObservation("ICU1-07", DEV, "mqtt_json", "pulse", "", "81", "", "", 5, T_RX),  # kept as sent
        err("bad_value", "spo2: value '97' is not a number or null"),
        err("bad_value", "rr: value True is not a number or null"),
        err("bad_value", "temp: value nan is not a finite number"),
        err("bad_value", "etco2: value inf is not a finite number"),
        err("bad_value", "nibp_sys: value 999999999999999999...99999999... is not a finite number"),
        err("bad_value", "nibp_dia: value [70] is not a number or null"),
        obs("ICU1-07", "o2", 1, 5),
    ]


def test_bad_flags() -> None:
    payload = (
        b'{"t": 5, "values": {"hr": 80, "spo2": null, "rr": 12, "temp": 37}, '
        b'"flags": {"spo2": ["probe_off"], "hr": ["loose"], "rr": "artefact", "etco2": ["invalid"], "temp": []}}'
    )
    events = parser().feed_message(V, payload)
    assert events == [
        err("bad_flags", "'hr': flags must be a list of probe_off, leads_off, artefact, invalid, got ['loose']"),
        err("bad_flags", "'rr': flags must be a list of probe_off, leads_off, artefact, invalid, got 'artefact'"),
        err("bad_flags", "flags for 'etco2', which is not in 'values' (give it as null)"),
        err("bad_flags", "'temp': flags must be a list of probe_off, leads_off, artefact, invalid, got []"),
        obs("ICU1-07", "spo2", None, 5, flags=Flag.PROBE_OFF),
    ]
    [e, o] = parser().feed_message(V, b'{"t": 5, "values": {"hr": 80}, "flags": ["probe_off"]}')
    assert e == err("bad_flags", "'flags' must be an object, got ['probe_off'] (flags ignored)") and o == obs("ICU1-07", "hr", 80, 5)


def test_presence_beds_errors_keep_the_good_beds() -> None:
    events = parser().feed_message("teleicu/m/presence", b'{"state": "offline", "beds": ["bed07", "bed99", 3], "why": 1}')
    assert events == [
        err("bad_field", "unknown member 'why' ignored (allowed: beds, state)"),
        err("unknown_bed", "bed 'bed99' in 'beds' is not in this device's beds"),
        err("bad_presence", "'beds' entry 3 is not a string"),
        DeviceStatus(bed="ICU1-07", device="m", status="disconnected", t_dev=T_RX, detail="presence"),
    ]
    [e] = parser().feed_message("teleicu/m/presence", b'{"state": "offline", "beds": "bed07"}')
    assert e == err("bad_presence", "'beds' must be a list of bed ids, got 'bed07'")


def test_unknown_keys_are_kept_as_unmapped_observations_and_an_empty_key_is_an_error() -> None:
    events = parser().feed_message(V, b'{"t": 9, "values": {"": 1, "hr": 1, "st_ii": -0.1, "mode": "AC/VC"}}')
    assert events == [
        err("bad_field", "an empty key in 'values' names nothing: its value is dropped"),
        obs("ICU1-07", "hr", 1, 9),
        UnmappedObservation("ICU1-07", DEV, "mqtt_json", "st_ii", "", "-0.1", "", "", 9, T_RX),
        UnmappedObservation("ICU1-07", DEV, "mqtt_json", "mode", "", '"AC/VC"', "", "", 9, T_RX),
    ]


def test_a_rate_the_hub_derives_is_not_a_devices_to_send() -> None:
    events = parser().feed_message(V, b'{"t": 9, "values": {"hr": 71, "hr_ecg": 70}}')
    assert events == [obs("ICU1-07", "hr", 71, 9),
                      err("bad_field", "'hr_ecg' is computed by the hub from the waveforms; a device may not send it: dropped")]


def test_errors_per_message_are_capped() -> None:
    flags = {f"x{i}": ["probe_off"] for i in range(1000)}  # each names a key not in values: 1000 problems
    events = parser().feed_message(V, json.dumps({"t": 1, "values": {"hr": 70}, "flags": flags}).encode())
    errors = [e for e in events if isinstance(e, ParseError)]
    assert len(errors) == MAX_ERRORS_PER_MESSAGE + 1
    assert errors[-1] == err("more_errors", f"{1000 - MAX_ERRORS_PER_MESSAGE} more problems in this message")
    assert obs("ICU1-07", "hr", 70, 1) in events


def test_bad_configuration_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="one topic level"):
        MqttJsonParser(beds={"a/b": "X"}, device="d")
    for prefix in ("", "a/+/b", "a/#", "a//b", "/a", "a/"):
        with pytest.raises(ValueError, match="topic_prefix"):
            MqttJsonParser(beds={}, device="d", topic_prefix=prefix)


# -- the simulator's messages --------------------------------------------------------


def test_encoders_produce_what_the_parser_reads() -> None:
    p = parser()
    payload = encode_vitals(1000, "m7", {"hr": 72.0, "temp": 36.9, "spo2": None}, {"spo2": Flag.PROBE_OFF})
    assert json.loads(payload) == {"t": 1000, "device": "m7", "values": {"hr": 72, "temp": 36.9, "spo2": None}, "flags": {"spo2": ["probe_off"]}}
    assert p.feed_message(V, payload) == [
        obs("ICU1-07", "hr", 72, 1000, "m7"),
        obs("ICU1-07", "temp", 36.9, 1000, "m7"),
        obs("ICU1-07", "spo2", None, 1000, "m7", Flag.PROBE_OFF),
    ]
    assert p.feed_message("teleicu/bed07/status", encode_status(1001, "m7", "ok", "spo2")) == [
        DeviceStatus(bed="ICU1-07", device="m7", status="ok", t_dev=1001, detail="spo2")
    ]
    assert p.feed_message("teleicu/m7/presence", encode_presence("offline", ["bed07"])) == [
        DeviceStatus(bed="ICU1-07", device="m7", status="disconnected", t_dev=T_RX, detail="presence")
    ]


def test_simulated_device_round_trip() -> None:
    probe = Scenario("probe_off", get_scenario("probe_off").keyframes, probe_off=((2.0, 4.0),))
    dev = BedDevice(SimBed("bed07", "probe_off", 3, nibp_interval_s=3), "teleicu", device_id="sim-7", scenario=probe)
    p = parser()
    p.feed_message(dev.birth().topic, dev.birth().payload)
    seen: dict[int, list] = {}
    retained = []
    for k in range(6):
        pubs = dev.publications(k, 1000 * k)
        retained += [pub for pub in pubs if pub.retain]
        seen[k] = [e for pub in pubs for e in p.feed_message(pub.topic, pub.payload)]
    assert p.errors == {}
    status = {k: [(e.status, e.detail) for e in ev if isinstance(e, DeviceStatus)] for k, ev in seen.items()}
    assert status == {0: [("ok", "spo2")], 1: [], 2: [("probe_off", "spo2")], 3: [], 4: [("ok", "spo2")], 5: []}
    spo2 = {k: [(o.value, o.flags) for o in ev if isinstance(o, Observation) and o.param == "spo2"] for k, ev in seen.items()}
    assert all(v == [(None, Flag.PROBE_OFF)] for k, v in spo2.items() if k in (2, 3))
    assert all(len(v) == 1 and v[0][0] is not None and v[0][1] == 0 for k, v in spo2.items() if k not in (2, 3))
    # the cuff readings (t = 0 and one per 3 s cycle) are retained messages of their own
    assert retained and all(pub.topic == "teleicu/bed07/vitals" for pub in retained)
    assert all(set(json.loads(pub.payload)["values"]) == {"nibp_sys", "nibp_dia", "nibp_mean"} for pub in retained)
    assert all(o.bed == "ICU1-07" and o.device == "sim-7" for ev in seen.values() for o in ev)
    assert {"hr", "rr", "temp", "etco2", "o2", "acvpu"} <= {o.param for o in seen[5] if isinstance(o, Observation)}
    assert dev.retained_topics() == ["teleicu/sim-7/presence", "teleicu/bed07/vitals"]
    [off] = p.feed_message(dev.will().topic, dev.will().payload)
    assert off == DeviceStatus(bed="ICU1-07", device="sim-7", status="disconnected", t_dev=T_RX, detail="presence")


def test_silent_device_stops_publishing() -> None:
    dev = BedDevice(SimBed("bed07", "silent", 1), "teleicu")
    assert dev.publications(14, 0) and dev.publications(15, 0) == []


# -- registry, configuration and broker URLs ---------------------------------------------


def test_registered_as_a_multi_bed_mqtt_driver() -> None:
    spec = get_driver("mqtt_json")
    assert (spec.name, spec.transport, spec.multi_bed, spec.parser) == ("mqtt_json", "mqtt", True, MqttJsonParser)


def test_gateway_yaml_with_an_mqtt_json_device() -> None:
    raw = {
        "agent": {"id": "edge-ICU1", "ward": "ICU1"},
        "hub": {"url": "ws://hub:8080/ws/edge", "secret_file": "edge.secret"},
        "devices": [
            {"id": "mqtt-1", "driver": "mqtt_json", "broker": "mqtt://10.0.0.5:1883", "topic_prefix": "teleicu",
             "client_id": "teleicu-edge-icu1", "beds": {"bed07": "ICU1-07", "bed08": "ICU1-08"}},
        ],
    }  # fmt: skip
    [dev] = parse_edge_config(raw).devices
    assert dev.beds == BEDS and dev.served_beds == ("ICU1-07", "ICU1-08")
    assert dev.settings == {"broker": "mqtt://10.0.0.5:1883", "topic_prefix": "teleicu", "client_id": "teleicu-edge-icu1"}
    raw["devices"][0]["brokr"] = "x"
    with pytest.raises(EdgeConfigError, match="unknown keys"):
        parse_edge_config(raw)
    del raw["devices"][0]["brokr"], raw["devices"][0]["broker"]
    with pytest.raises(EdgeConfigError, match="needs \\['broker'\\]"):
        parse_edge_config(raw)


def test_broker_urls() -> None:
    assert parse_broker_url("mqtt://127.0.0.1:1883") == BrokerAddress("127.0.0.1", 1883)
    assert parse_broker_url("mqtt://broker.hospital.local") == BrokerAddress("broker.hospital.local", 1883)
    assert str(parse_broker_url("mqtt://[::1]:1884")) == "mqtt://::1:1884"
    for bad in ("127.0.0.1:1883", "tcp://h:1", "mqtt://", "mqtt://h:99999", "mqtt://u:p@h", "mqtt://h/x", "mqtts://h", 1883):
        with pytest.raises(BrokerUrlError):
            parse_broker_url(bad)  # type: ignore[arg-type]


# -- fuzzing ----------------------------------------------------------------------------


def check_events(p: MqttJsonParser, events: list) -> None:
    """Only documented events, each well formed."""
    ours = set(BEDS.values())
    for e in events:
        if isinstance(e, ParseError):
            assert e.code in DOCUMENTED_CODES and e.discarded >= 0 and len(e.detail) < 300
        elif isinstance(e, UnmappedObservation):  # whatever a device sends, the wire carries it as sent
            assert e.code and e.code not in BY_KEY and e.bed in ours and e.system == "mqtt_json"
            assert decode_edge(encode_edge(ObsFrame(1, (), (e,)))).unmapped == (e,)
        elif isinstance(e, Observation):
            assert decode_edge(encode_edge(ObsFrame(1, (e,)))).obs == (e,)  # the hub takes what the parser emits
            assert e.param in BY_KEY and e.bed in ours and e.t_rx == T_RX and 0 <= e.t_dev < 10**15
            assert (e.value is None and e.flags) or (e.value is not None and math.isfinite(e.value))
            assert 0 <= e.flags <= 15 and isinstance(e.device, str) and 0 < len(e.device) <= 64
        else:
            assert isinstance(e, DeviceStatus) and e.bed in ours
    assert len([e for e in events if isinstance(e, ParseError)]) <= MAX_ERRORS_PER_MESSAGE + 1
    assert len(p.device_beds) <= MAX_DEVICES


TOPICS = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda a, b: f"teleicu/{a}/{b}",
        st.sampled_from(["bed07", "bed08", "bed99", "m", ""]) | st.text(max_size=8),
        st.sampled_from(["vitals", "status", "presence"]) | st.text(max_size=8),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=TOPICS, payload=st.binary(max_size=512))
def test_fuzz_any_topic_any_bytes(topic: str, payload: bytes) -> None:
    p = parser()
    check_events(p, p.feed_message(topic, payload))


JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from([*BY_KEY, "x", ""])
FLAGS = st.lists(st.sampled_from(["probe_off", "leads_off", "artefact", "invalid", "x"]), max_size=3)
VITALS = st.fixed_dictionaries(
    {"values": st.dictionaries(KEYS, JSON_LEAF, max_size=6) | JSON},
    optional={
        "t": st.integers(-5, 2 * 10**15) | JSON_LEAF,
        "device": st.text(max_size=70) | JSON_LEAF,
        "flags": st.dictionaries(KEYS, FLAGS | JSON, max_size=4) | JSON,
        "extra": JSON,
    },
)
STATUS_DOC = st.fixed_dictionaries(
    {"status": st.sampled_from(["ok", "probe_off", "Bad", ""]) | JSON_LEAF},
    optional={"detail": st.text(max_size=300) | JSON_LEAF, "t": st.integers(-5, 2 * 10**15), "device": st.text(max_size=70)},
)
PRESENCE = st.fixed_dictionaries(
    {"state": st.sampled_from(["online", "offline", "x"]) | JSON_LEAF},
    optional={"beds": st.lists(st.sampled_from(["bed07", "bed08", "bed99"]) | JSON_LEAF, max_size=4) | JSON},
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(
        st.one_of(
            st.tuples(st.just("teleicu/bed07/vitals"), VITALS),
            st.tuples(st.just("teleicu/bed08/status"), STATUS_DOC),
            st.tuples(st.sampled_from(["teleicu/m/presence", "teleicu/gw/presence"]), PRESENCE | JSON),
        ),
        max_size=5,
    )
)
def test_fuzz_structured_json(messages: list[tuple[str, object]]) -> None:
    p = parser()
    for topic, doc in messages:
        payload = json.dumps(doc).encode()  # NaN and Infinity included: Python writes them
        check_events(p, p.feed_message(topic, payload))


@settings(max_examples=100, deadline=None)
@given(head=st.binary(max_size=64), over=st.integers(1, 64))
def test_fuzz_oversized_always_refused_whole(head: bytes, over: int) -> None:
    payload = head + b"x" * (MAX_PAYLOAD + over - len(head))
    [e] = parser().feed_message(V, payload)
    assert e.code == "oversized" and e.discarded == len(payload)


# -- the driver README stays true ----------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "edge_agent" / "drivers" / "mqtt_json.md"


def test_readme_parameter_table_is_the_vocabulary() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| (.+?) \| (\S+) to (\S+) \|$", README.read_text(), re.MULTILINE)
    assert [(k, m, u, float(lo), float(hi)) for k, m, u, lo, hi in rows] == [
        (p.key, p.meaning, p.ucum, p.lo, p.hi) for p in BY_KEY.values() if p.key not in HUB_DERIVED
    ]  # the rates the hub derives from waveforms are not a device's to send


def test_readme_error_table_is_the_documented_codes() -> None:
    text = README.read_text().split("## Errors", 1)[1]
    assert set(re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE)) == DOCUMENTED_CODES
    doc = (mqtt_json.__doc__ or "").split("Error handling", 1)[1]
    assert set(re.findall(r"^``(\w+)``\s{2,}", doc, re.MULTILINE)) == DOCUMENTED_CODES


def test_readme_sample_configuration_loads() -> None:
    block = README.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = parse_edge_config(yaml.safe_load(block))
    [dev] = cfg.devices
    assert (dev.driver, dev.beds, dev.settings["broker"]) == ("mqtt_json", BEDS, "mqtt://127.0.0.1:1883")
    topic, payload = README_VITALS
    assert f"-t {topic} -m '{payload.decode()}'" in README.read_text()


def test_transport_queue_is_bounded_in_messages_and_bytes() -> None:
    import asyncio

    import aiomqtt

    from edge_agent.transports import mqtt as transport

    async def main() -> None:
        dev = transport.MqttDevice("q", BrokerAddress("127.0.0.1", 1), ("t/#",), lambda t, p: None, client_id="q")
        q = transport._bounded_queue(dev)(maxsize=3)

        def msg(n: int) -> aiomqtt.Message:
            return aiomqtt.Message("t/x", b"x" * n, 1, False, 1, None)

        big = transport.MAX_QUEUED_BYTES // 2
        q.put_nowait(msg(big))
        q.put_nowait(msg(big))
        with pytest.raises(asyncio.QueueFull):  # bytes bound
            q.put_nowait(msg(1))
        assert (await q.get()).payload == b"x" * big and q.queued_bytes == big
        q.put_nowait(msg(1))
        q.put_nowait(msg(0))
        with pytest.raises(asyncio.QueueFull):  # message bound
            q.put_nowait(msg(0))
        assert dev.dropped == 2 and q.qsize() == 3

    asyncio.run(main())
