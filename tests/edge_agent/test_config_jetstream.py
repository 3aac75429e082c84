"""Edge YAML with ``uplink.transport: jetstream``: what is accepted, credentials read at load, each mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import EdgeConfigError, load_edge_config, parse_edge_config

DEVICE = {"bed": "A-01", "id": "m1", "driver": "tsp", "port": "/dev/ttyUSB0"}
NATS = {"servers": ["nats://n1:4222", "nats://n2:4222", "nats://n3:4222"], "user": "edge-A", "password_file": "edge-A.nats"}


def js_base(**jetstream: object) -> dict:
    return {"agent": {"id": "edge-A", "ward": "A"}, "uplink": {"transport": "jetstream"}, "jetstream": NATS | jetstream,
            "devices": [DEVICE]}  # fmt: skip


def test_the_websocket_stays_the_default() -> None:
    cfg = parse_edge_config({"agent": {"id": "edge-A", "ward": "A"}, "hub": {"url": "ws://h/ws/edge", "secret_file": "s"},
                             "devices": [DEVICE]})  # fmt: skip
    assert cfg.uplink.transport == "websocket" and cfg.jetstream is None and cfg.uplink.url == "ws://h/ws/edge"


def test_a_jetstream_uplink_needs_no_hub_and_takes_the_stream_settings() -> None:
    cfg = parse_edge_config(js_base(stream={"replicas": 3, "max_age_s": 3600, "duplicate_window_s": 300}, max_in_flight=16))
    assert cfg.uplink.transport == "jetstream" and cfg.uplink.url is None
    js = cfg.jetstream
    assert js is not None and js.servers == NATS["servers"] and js.subject_prefix == "teleicu.frames"
    assert (js.stream.name, js.stream.replicas, js.stream.max_age_s, js.stream.duplicate_window_s) == ("TELEICU_FRAMES", 3, 3600, 300)
    assert js.max_in_flight == 16 and js.provision_stream


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**js_base(), "agent": {"id": "edge.A", "ward": "A"}},
         "agent.id: agent id 'edge.A' cannot be a NATS subject token: use 1-64 of A-Z a-z 0-9 - _ (uplink.transport is jetstream)"),
        ({**js_base(), "agent": {"id": "edge-A", "ward": "ICU 1"}}, "agent.ward: agent ward 'ICU 1' cannot be a NATS subject token"),
        ({**js_base(), "jetstream": None}, "missing jetstream (servers and credentials), as uplink.transport is jetstream"),
        ({k: v for k, v in js_base().items() if k != "uplink"},
         "jetstream: given, but uplink.transport is websocket: set uplink.transport: jetstream to use it"),
        ({**js_base(), "uplink": {"transport": "kafka"}}, "uplink.transport: must be 'websocket' or 'jetstream', not 'kafka'"),
        ({**js_base(), "cameras": [{"bed": "A-01", "source": "testpattern"}]}, "cameras: missing hub: cameras need the hub's url"),
        (js_base(user=None), "jetstream: credentials are required: missing user"),
        (js_base(servers=["nats://edge-A:secret@n1:4222"]), "jetstream.servers[0]: must not carry credentials"),
        (js_base(subject_prefix="teleicu.>"), "jetstream.subject_prefix: subject prefix 'teleicu.>': dot-separated tokens"),
        (js_base(stream={"name": "frames.all"}), "jetstream.stream.name: stream name 'frames.all' cannot be a NATS subject token"),
        (js_base(stream={"replicas": 4, "storage": "memory"}), "jetstream.stream.storage: must be 'file', not 'memory'"),
        (js_base(max_in_flight=0), "jetstream.max_in_flight: must be at least 1, not 0"),
        (js_base(status_prefix="teleicu.frames.status"), "status_prefix teleicu.frames.status and subject_prefix teleicu.frames overlap"),
        (js_base(stream={"max_age_s": 30}), "jetstream.stream.duplicate_window_s: must not exceed max_age_s (30), not 120"),
    ],
)
def test_mistakes_are_named(raw: dict, message: str) -> None:
    with pytest.raises(EdgeConfigError) as info:
        parse_edge_config(raw)
    assert message in str(info.value), str(info.value)
    assert "secret" not in str(info.value).replace("secret_file", "")


def write(tmp_path: Path, jetstream: str) -> Path:
    path = tmp_path / "edge-A.yaml"
    path.write_text("agent: {id: edge-A, ward: A}\nuplink: {transport: jetstream}\n"
                    f"jetstream: {jetstream}\ndevices:\n  - {{id: m1, driver: tsp, bed: A-01, port: /dev/ttyUSB0}}\n")  # fmt: skip
    return path


def test_credentials_are_read_at_load_beside_the_file_and_kept_secret(tmp_path: Path) -> None:
    (tmp_path / "edge-A.nats").write_text("p" * 32 + "\n")
    cfg = load_edge_config(write(tmp_path, "{servers: ['nats://127.0.0.1:4222'], user: edge-A, password_file: edge-A.nats}"))
    creds = cfg.nats_credentials
    assert creds is not None and creds.user == "edge-A" and creds.password is not None
    assert creds.password.get_secret_value() == "p" * 32 and "p" * 32 not in repr(cfg)
    assert cfg.uplink.spool == str(tmp_path / "edge-A.spool.sqlite3")
    (tmp_path / "edge-A.token").write_text("t" * 40)
    cfg = load_edge_config(write(tmp_path, "{servers: ['nats://127.0.0.1:4222'], token_file: edge-A.token}"))
    assert cfg.nats_credentials is not None and cfg.nats_credentials.token is not None and cfg.nats_credentials.user is None


def test_a_missing_or_weak_credential_file_is_refused_at_load(tmp_path: Path) -> None:
    path = write(tmp_path, "{servers: ['nats://127.0.0.1:4222'], user: edge-A, password_file: edge-A.nats}")
    with pytest.raises(EdgeConfigError, match=r"jetstream.password_file: cannot read .*edge-A.nats"):
        load_edge_config(path)
    (tmp_path / "edge-A.nats").write_text("short")
    with pytest.raises(EdgeConfigError, match=r"jetstream.password_file: .*does not hold a secret"):
        load_edge_config(path)
