"""Alarm routing to consoles on real sockets: ward subscriptions, nurse acknowledgement, delivery confirmation."""

from __future__ import annotations

import json
import time

import pytest
from support import HubProcess, console_connect, feed_news2_alarm, get_json, post_json, wait_alarm, wait_alarm_cleared
from websockets.exceptions import InvalidStatus

pytestmark = pytest.mark.integration

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
    # the ward nurse's console asks for no ward: the hub gives her hers, because of who she is
    with console_connect(hub, as_="nurse-a") as ward_a, console_connect(hub) as central:
        assert json.loads(ward_a.recv(timeout=5))["type"] == "snapshot"
        assert json.loads(central.recv(timeout=5))["type"] == "snapshot"
        feed_news2_alarm(hub, "A", "A-01")
        feed_news2_alarm(hub, "B", "B-01")
        central_alerts = alert_messages(central, 4)  # NEWS2 and qSOFA on each bed
        assert {m["alert"]["bed"] for m in central_alerts} == {"A-01", "B-01"}
        ward_alerts = alert_messages(ward_a, 4, timeout=3)
        assert {m["alert"]["bed"] for m in ward_alerts} == {"A-01"}

    b_alert = next(m["alert"] for m in central_alerts if m["alert"]["bed"] == "B-01" and m["alert"]["kind"] == "news2")
    status, body = post_json(f"{hub.base}/api/alerts/{b_alert['id']}/ack", None, as_="nurse-a")
    assert status == 403 and "ward 'B' is not one of yours" in body["detail"]
    with pytest.raises(InvalidStatus) as refused:  # asking for another ward's feed outright
        console_connect(hub, as_="nurse-a", query="?ward=B")
    assert refused.value.response.status_code == 403
    status, body = post_json(f"{hub.base}/api/alerts/{b_alert['id']}/ack", None, as_="nurse-b")
    assert status == 200 and body["acked_by"] == "Test nurse-b"  # the session's user, never a name in the request


def test_an_alarm_no_console_confirms_raises_a_technical_alarm(hub: HubProcess) -> None:
    # a console that receives but never confirms: its alarms count as undelivered
    with console_connect(hub) as mute:
        json.loads(mute.recv(timeout=5))
        feed_news2_alarm(hub, "A", "A-01")
        raised = alert_messages(mute, 2)  # NEWS2 11 and qSOFA positive
        undelivered = wait_alarm(hub.base, "technical:undelivered", "the undelivered technical alarm", timeout=20)
        assert undelivered[0]["bed"] == "A-01"
        assert any(f"#{m['alert']['id']} " in undelivered[0]["title"] for m in raised)
        # a console that confirms what it shows clears it
        with console_connect(hub) as good:
            snap = json.loads(good.recv(timeout=5))
            good.send(json.dumps({"type": "delivered", "alerts": [a["id"] for a in snap["alerts"]]}))
            wait_alarm_cleared(hub.base, "technical:undelivered", "the undelivered alarm to clear once a console confirmed", timeout=30)
    stats = get_json(f"{hub.base}/api/stats")
    assert stats["counters"]["alert_deliveries_confirmed"] >= 1
