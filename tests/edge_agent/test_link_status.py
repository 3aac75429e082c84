"""Link status of transports (``edge_agent.transports``): one status per served bed, routed on change only."""

from __future__ import annotations

from edge_agent.config import parse_edge_config
from edge_agent.events import DeviceStatus, DriverEvent
from edge_agent.transports import LINK, LinkReporter, link_events


def devices() -> tuple:
    raw = {
        "agent": {"id": "edge-A", "ward": "A"},
        "hub": {"url": "ws://127.0.0.1:9/ws/edge", "secret_file": "edge.secret"},
        "devices": [
            {"bed": "A-01", "id": "mon-1", "driver": "tsp", "port": "/dev/ttyUSB0"},
            {"id": "gw", "driver": "mqtt_json", "broker": "mqtt://127.0.0.1", "beds": {"bed07": "A-07", "bed08": "A-08"}},
        ],
    }
    return parse_edge_config(raw).devices


def test_link_events_name_every_served_bed() -> None:
    serial, mqtt = devices()
    assert link_events(serial, False, 5) == [DeviceStatus("A-01", "mon-1", "disconnected", 5, "link")]
    assert link_events(mqtt, True, 6) == [DeviceStatus("A-07", "gw", "ok", 6, LINK), DeviceStatus("A-08", "gw", "ok", 6, LINK)]


def test_reporter_routes_changes_only() -> None:
    _, mqtt = devices()
    routed: list[list[DriverEvent]] = []
    clock = iter(range(100, 200))
    link = LinkReporter(mqtt, routed.append, clock_ms=lambda: next(clock))
    assert link.up is None
    link(False)  # never connected: reported
    link(False)  # a retry that failed too: not again
    link(True)
    link(True)
    link(False)
    assert [[(e.bed, e.status, e.t_dev) for e in batch] for batch in routed] == [  # type: ignore[union-attr]
        [("A-07", "disconnected", 100), ("A-08", "disconnected", 100)],
        [("A-07", "ok", 101), ("A-08", "ok", 101)],
        [("A-07", "disconnected", 102), ("A-08", "disconnected", 102)],
    ]
    assert link.up is False


def test_the_agent_forwards_a_device_patient_id_when_it_changes_and_once_a_minute(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edge_agent.agent import PATIENT_REPEAT_MS, EdgeAgent
    from edge_agent.config import parse_edge_config
    from wire.messages import PatientSeen

    raw = {"agent": {"id": "edge-A", "ward": "A"}, "hub": {"url": "ws://127.0.0.1:9/ws/edge", "secret_file": "edge.secret"},
           "uplink": {"spool": str(tmp_path / "spool.sqlite3")},
           "devices": [{"bed": "A-01", "id": "mon-1", "driver": "tsp", "port": "/dev/ttyUSB0"}]}  # fmt: skip
    agent = EdgeAgent(parse_edge_config(raw))
    t0 = 1_700_000_000_000
    for dt, pid in ((0, "P1"), (1000, "P1"), (2000, "P2"), (3000, "P2"), (2000 + PATIENT_REPEAT_MS, "P2")):
        agent.route([PatientSeen("A-01", pid, "mon-1", t0 + dt)])
    agent.uplink.flush_observations()
    [(_kind, frame)] = agent.uplink._unspooled
    assert [(p.patient_id, p.t - t0) for p in frame.patients] == [("P1", 0), ("P2", 2000), ("P2", 2000 + PATIENT_REPEAT_MS)]
    agent.uplink.close()
