"""Edge agent YAML: what is accepted, and a clear error for each mistake."""

import pytest

from edge_agent.config import EdgeConfigError, load_edge_config, parse_edge_config


def base(**dev) -> dict:
    device = {"bed": "A-01", "id": "m1", "driver": "tsp", "port": "/dev/ttyUSB0"} | dev
    return {"agent": {"id": "edge-A", "ward": "A"}, "hub": {"url": "ws://127.0.0.1:8080/ws/edge", "secret_file": "edge.secret"}, "devices": [device]}


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
        ({**base(), "hub": {"url": "http://x", "secret_file": "edge.secret"}}, "ws:// or wss://"),
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


@pytest.mark.parametrize(
    ("dev", "message"),
    [
        # a driver's options, as it declares them
        ({"options": {"x": 1}}, "devices[0].options: unknown keys ['x']; expected none"),
        ({"driver": "s5", "options": {"tx_intervall_s": 1}}, "devices[0].options: unknown keys ['tx_intervall_s']; expected pressures,"),
        ({"driver": "s5", "options": {"tx_interval_s": 0}}, "devices[0].options.tx_interval_s: must be at least 1, not 0"),
        ({"driver": "s5", "options": {"temperature": "t9"}}, "devices[0].options: temperature must be one of"),
        ({"driver": "nonin", "options": {"hr_key": "heart"}}, "devices[0].options.hr_key: must be 'pr' or 'hr', not 'heart'"),
        # a transport's settings, as it declares them
        ({"baud": "9600"}, "devices[0].baud: must be a whole number, not '9600'"),
        ({"serial": {"rtcts": True}}, "devices[0].serial: unknown keys ['rtcts']; expected parity,"),
        ({"serial": {"parity": "X"}}, "devices[0].serial.parity: must be 'N', 'E', 'O', 'M' or 'S', not 'X'"),
        ({"port": ""}, "devices[0].port: must not be empty"),
        ({"id": "x" * 65}, "devices[0].id: must be at most 64 characters, not 65"),
    ],
)
def test_driver_options_and_transport_settings_are_checked_at_load(dev: dict, message: str) -> None:
    with pytest.raises(EdgeConfigError) as info:
        parse_edge_config(base(**dev), "edge-A.yaml")
    assert str(info.value).startswith(f"edge-A.yaml: {message}"), str(info.value)


@pytest.mark.parametrize(
    ("dev", "message"),
    [
        ({"listen": "0.0.0.0:99999"}, "devices[0].listen: listen must be 'host:port' with a port 0-65535"),
        ({"listen": "0.0.0.0:2575", "max_connections": 0}, "devices[0].max_connections: must be at least 1, not 0"),
        ({"listen": "0.0.0.0:2575", "options": {"timezone": "Mars/Olympus"}}, "devices[0].options.timezone: timezone 'Mars/Olympus'"),
    ],
)
def test_gateway_settings_and_options_are_checked_at_load(dev: dict, message: str) -> None:
    raw = base()
    raw["devices"] = [{"id": "gw", "driver": "hl7_pcd01", "beds": {"ICU^^BED04": "A-04"}} | dev]
    with pytest.raises(EdgeConfigError) as info:
        parse_edge_config(raw, "edge-A.yaml")
    assert str(info.value).startswith(f"edge-A.yaml: {message}"), str(info.value)


def test_valid_options_and_settings_reach_the_device() -> None:
    cfg = parse_edge_config(base(driver="s5", baud=19200, serial={"rtscts": False}, options={"tx_interval_s": 1}))
    (dev,) = cfg.devices
    assert dev.settings == {"port": "/dev/ttyUSB0", "baud": 19200, "serial": {"rtscts": False}}
    assert dev.options == {"tx_interval_s": 1}


def test_a_file_names_itself_in_every_problem(tmp_path) -> None:
    path = tmp_path / "edge-A.yaml"
    path.write_text("agent: {id: edge-A, ward: A}\nhub: {url: 'ws://h/ws/edge', secret_file: edge.secret}\n"
                    "devices:\n  - {id: m1, driver: tsp, bed: A-01, port: /dev/ttyUSB0, bud: 9600}\n"
                    "  - {id: m2, driver: nonin, bed: A-02, port: /dev/ttyUSB1, options: {report_every: 0}}\n")  # fmt: skip
    with pytest.raises(EdgeConfigError) as info:
        load_edge_config(path)
    assert str(info.value).splitlines() == [
        f"{path}: devices[0]: unknown keys ['bud']; expected id, driver, bed, beds, options, scenario, port, baud, serial",
        f"{path}: devices[1].options.report_every: must be at least 1, not 0",
    ]
