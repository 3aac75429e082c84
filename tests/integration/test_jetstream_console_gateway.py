"""A console on one hub worker process sees, confirms and acknowledges alarms of a ward another worker owns.

Two real ``teleicu hub`` worker processes on the local NATS, sharing their
state in PostgreSQL (users, agents, alarms): w1 owns ward A, w2 owns ward B
only. An agent publishes frames for bed A-01 scoring NEWS2 11 to the stream;
w1 consumes them and raises the alarm. A ward nurse of ward A signed in on w2
gets ward A from w1 through NATS (``ingest.console_relay``): the bed in her
snapshot, the alarm as it is raised, and her acknowledgement, made on w2, is
carried out by w1 and comes back to her console; w2 audits it under her name.
Her delivery confirmation reaches w1. A nurse of ward B may not acknowledge it.
Without NATS or PostgreSQL these fail.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from jetstream_support import Publisher, connect, make_stream, removed, unique, worker_file
from state_db_support import hub_state
from support import WORKED_11, HubProcess, console_connect, get_json, post_json, register_agent, start_hub, wait_until

from wire.messages import Observation, ObsFrame

pytestmark = pytest.mark.integration

BED = "A-01"


def start_worker(tmp: Path, worker: str, state: str, config: Path) -> HubProcess:
    home = tmp / worker
    home.mkdir()
    return start_hub(home, extra=("--config", str(config), "--data-dir", str(home)), state=state)


async def publish_alarming_frames(stream: str, prefix: str, frames: int) -> None:
    nc = await connect()
    try:
        await make_stream(nc.jetstream(), stream, prefix)
        pub = Publisher(nc.jetstream(), "A", "edge-A", prefix)
        t = int(time.time() * 1000) - frames * 1000
        for seq in range(1, frames + 1):
            t += 1000
            await pub.publish(ObsFrame(seq, tuple(Observation(BED, k, float(v), t, t, "mon-A01") for k, v in WORKED_11.items())))
    finally:
        await nc.close()


def test_a_nurse_on_another_worker_sees_confirms_and_acknowledges_the_alarm_of_a_ward_it_does_not_own(tmp_path: Path) -> None:
    stream, prefix, bucket = unique("FRAMES"), unique("t.frames"), unique("leases")
    common = {"lease_ttl_s": 6, "ack_wait_s": 5, "console_prefix": unique("t.console")}
    with hub_state("postgresql", tmp_path) as state:
        assert state is not None
        register_agent(state, "edge-A", "A", (BED,), tmp_path / "edge-A.secret")
        register_agent(state, "edge-B", "B", ("B-01",), tmp_path / "edge-B.secret")
        asyncio.run(publish_alarming_frames(stream, prefix, 5))
        w1 = start_worker(tmp_path, "w1", state, worker_file(tmp_path, "w1", stream, prefix, bucket, ["A"], **common))
        w2: HubProcess | None = None
        try:
            wait_until(lambda: get_json(w1.base + "/api/stats")["jetstream"]["wards_owned"] == ["A"], "w1 to own ward A", timeout=30)
            w2 = start_worker(tmp_path, "w2", state, worker_file(tmp_path, "w2", stream, prefix, bucket, ["B"], **common))
            wait_until(lambda: get_json(w2.base + "/api/stats")["jetstream"]["wards_owned"] == ["B"], "w2 to own ward B", timeout=30)
            alarm = wait_until(lambda: next((a for a in get_json(w1.base + "/api/alerts")["alerts"] if a["bed"] == BED), None),
                               "w1 to raise the alarm of bed A-01", timeout=30)  # fmt: skip

            with console_connect(w2, as_="nurse-a") as ws:
                snapshot = json.loads(ws.recv(timeout=10))
                assert [b["bed"] for b in snapshot["beds"]] == [BED] and snapshot["unserved_wards"] == []
                assert snapshot["beds"][0]["news2"]["total"] == 11
                assert alarm["id"] in [a["id"] for a in snapshot["alerts"]]
                ws.send(json.dumps({"type": "delivered", "alerts": [alarm["id"]]}))

                def both_list_the_same() -> list[str] | None:  # w2 from the shared state, w1 from its book (polled:
                    on_w2 = sorted(a["id"] for a in get_json(w2.base + "/api/alerts", as_="nurse-a")["alerts"])  # a new
                    on_w1 = sorted(a["id"] for a in get_json(w1.base + "/api/alerts")["alerts"] if a["ward"] == "A")  # alarm,
                    return on_w1 if on_w2 == on_w1 else None  # such as no data, may come between the two reads)

                listed = wait_until(both_list_the_same, "w2 to list ward A's open alarms as w1 has them", timeout=10)
                shown = [a["id"] for a in snapshot["alerts"]]
                assert alarm["id"] in listed and len(shown) == len(set(shown))  # each of w1's alarms once in her snapshot
                assert all(a["ward"] == "A" for a in snapshot["alerts"])
                status, _ = post_json(f"{w2.base}/api/alerts/{alarm['id']}/ack", None, as_="nurse-b")
                assert status == 403
                status, acked = post_json(f"{w2.base}/api/alerts/{alarm['id']}/ack", None, as_="nurse-a")
                assert status == 200 and acked["state"] == "acknowledged" and acked["acked_by"] == "Test nurse-a", acked
                while True:  # the owner's event comes back to her console through NATS
                    msg = json.loads(ws.recv(timeout=10))
                    if msg["type"] == "alert" and msg["alert"]["id"] == alarm["id"] and msg["event"] == "acknowledged":
                        break

            owner = next(a for a in get_json(w1.base + "/api/alerts")["alerts"] if a["id"] == alarm["id"])
            assert owner["state"] == "acknowledged"
            wait_until(lambda: get_json(w1.base + "/api/stats")["counters"].get("alert_deliveries_confirmed", 0) >= 1,
                       "w1 to hear the nurse's delivery confirmation", timeout=10)  # fmt: skip
            wait_until(lambda: any(e["action"] == "alarm.acknowledge" and e["detail"]["alert"] == alarm["id"]
                                   for e in get_json(w2.base + "/api/audit?user=nurse-a", as_="admin")["entries"]),
                       "w2 to audit the nurse's acknowledgement", timeout=10)  # fmt: skip
            relayed = get_json(w2.base + "/api/stats")["jetstream"]
            print(f"\nconsole gateway: w2 relayed {relayed.get('console_messages_relayed', 0)} messages of ward A; "
                  f"w1 answered {get_json(w1.base + '/api/stats')['jetstream'].get('console_snapshots_answered', 0)} snapshots")  # fmt: skip
        finally:
            w1.stop()
            if w2 is not None:
                w2.stop()
            asyncio.run(removed(stream, bucket))
