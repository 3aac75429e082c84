"""Edge agent YAML: what is accepted, and a clear error for each mistake."""

import pytest

from edge_agent.config import EdgeConfigError, parse_edge_config


def base(**dev) -> dict:
    device = {"bed": "A-01", "id": "m1", "driver": "tsp", "port": "/dev/ttyUSB0"} | dev
    return {"agent": {"id": "edge-A", "ward": "A"}, "hub": {"url": "ws://127.0.0.1:8080/ws/edge"}, "devices": [device]}


def test_minimal_serial_device() -> None:
    cfg = parse_edge_config(base())
    (dev,) = cfg.devices
    assert dev.bed == "A-01" and dev.settings == {"port": "/dev/ttyUSB0"} and dev.served_beds == ("A-01",)
    assert cfg.uplink.flush_ms == 250


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (base(driver="nope"), "unknown driver 'nope'"),
        (base(prot="/dev/x"), "unknown keys ['prot']"),
        ({**base(), "hub": {"url": "http://x"}}, "ws:// or wss://"),
        (base(port=None), "device path"),
        ({**base(), "devices": []}, "non-empty list"),
        ({**base(), "extra": 1}, "unknown keys ['extra']"),
        (base(beds=["A-01"]), "serves one bed"),
    ],
)
def test_mistakes_are_named(raw: dict, words: str) -> None:
    with pytest.raises(EdgeConfigError) as info:
        parse_edge_config(raw)
    assert words in str(info.value)


def test_missing_transport_setting() -> None:
    raw = base()
    del raw["devices"][0]["port"]
    with pytest.raises(EdgeConfigError, match=r"needs \['port'\]"):
        parse_edge_config(raw)


def test_duplicate_ids_and_beds_are_refused() -> None:
    raw = base()
    raw["devices"].append(dict(raw["devices"][0]))
    with pytest.raises(EdgeConfigError, match="used twice"):
        parse_edge_config(raw)
    raw["devices"][1]["id"] = "m2"
    with pytest.raises(EdgeConfigError, match="more than one device"):
        parse_edge_config(raw)
