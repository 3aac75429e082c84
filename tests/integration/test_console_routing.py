"""Alarm routing to consoles on real sockets: ward subscriptions, nurse acknowledgement, delivery confirmation."""

from __future__ import annotations

import json
import time

import pytest
from support import HubProcess, get_json, post_json, wait_alarm, wait_alarm_cleared
from websockets.sync.client import connect

from wire.codec import decode_hub, encode_edge
from wire.messages import Ack, Hello, ObsFrame, Observation

pytestmark = pytest.mark.integration

WORKED_11 = {"rr": 18, "spo2": 90, "o2": 1, "nibp_sys": 100, "hr": 100, "acvpu": 2, "temp": 36.5}  # NEWS2 11


def send_vitals(hub: HubProcess, agent: str, ward: str, bed: str) -> None:
    t = time.time_ns() // 1_000_000
    with connect(hub.edge_url) as ws:
        ws.send(encode_edge(Hello(agent=agent, epoch=1, ward=ward, beds=(bed,))).decode())
        decode_hub(ws.recv(timeout=5))
        ws.send(encode_edge(ObsFrame(1, tuple(Observation(bed, k, v, t, t, "m") for k, v in WORKED_11.items()))).decode())
        while not isinstance(decode_hub(ws.recv(timeout=5)), Ack):
            pass


def alert_messages(ws, want: int, timeout: float = 10) -> list[dict]:
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        try:
            msg = json.loads(ws.recv(timeout=0.5))
        except TimeoutError:
            continue
        if msg["type"] == "alert":
            out.append(msg)
    return out


def test_ward_console_sees_only_its_ward_and_nurse_acks_only_there(hub: HubProcess) -> None:
    with connect(f"ws://127.0.0.1:{hub.port}/ws/console?ward=A") as ward_a, connect(f"ws://127.0.0.1:{hub.port}/ws/console") as central:
        assert json.loads(ward_a.recv(timeout=5))["type"] == "snapshot"
        assert json.loads(central.recv(timeout=5))["type"] == "snapshot"
        send_vitals(hub, "edge-A", "A", "A-01")
        send_vitals(hub, "edge-B", "B", "B-01")
        central_alerts = alert_messages(central, 4)  # NEWS2 and qSOFA on each bed
        assert {m["alert"]["bed"] for m in central_alerts} == {"A-01", "B-01"}
        ward_alerts = alert_messages(ward_a, 4, timeout=3)
        assert {m["alert"]["bed"] for m in ward_alerts} == {"A-01"}

    b_alert = next(m["alert"] for m in central_alerts if m["alert"]["bed"] == "B-01" and m["alert"]["kind"] == "news2")
    status, body = post_json(f"{hub.base}/api/alerts/{b_alert['id']}/ack", {"by": "Nurse Asha", "role": "bedside_nurse", "ward": "A"})
    assert status == 403 and "ward 'A'" in body["detail"]
    status, body = post_json(f"{hub.base}/api/alerts/{b_alert['id']}/ack", {"by": "Nurse Bina", "role": "bedside_nurse", "ward": "B"})
    assert status == 200 and body["acked_by"] == "Nurse Bina"


def test_an_alarm_no_console_confirms_raises_a_technical_alarm(hub: HubProcess) -> None:
    # a console that receives but never confirms: its alarms count as undelivered
    with connect(f"ws://127.0.0.1:{hub.port}/ws/console") as mute:
        json.loads(mute.recv(timeout=5))
        send_vitals(hub, "edge-A", "A", "A-01")
        raised = alert_messages(mute, 2)  # NEWS2 11 and qSOFA positive
        undelivered = wait_alarm(hub.base, "technical:undelivered", "the undelivered technical alarm", timeout=20)
        assert undelivered[0]["bed"] == "A-01"
        assert any(f"#{m['alert']['id']} " in undelivered[0]["title"] for m in raised)
        # a console that confirms what it shows clears it
        with connect(f"ws://127.0.0.1:{hub.port}/ws/console") as good:
            snap = json.loads(good.recv(timeout=5))
            good.send(json.dumps({"type": "delivered", "alerts": [a["id"] for a in snap["alerts"]]}))
            wait_alarm_cleared(hub.base, "technical:undelivered", "the undelivered alarm to clear once a console confirmed", timeout=30)
    stats = get_json(f"{hub.base}/api/stats")
    assert stats["counters"]["alert_deliveries_confirmed"] >= 1
