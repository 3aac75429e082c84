"""The bridge's follower against a real hub: in order, retried until taken, poison parked, the cursor durable.

The sink here is scripted (it fails on cue: a target that is down, or refuses
an event for good), because what is under test is the follower's contract
with any sink; the EHR itself is the sink in test_records_exactly_once.py.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from support import PASSWORD, HubProcess, feed_news2_alarm, post_json

from records_bridge.bridge.cursor import CursorStore
from records_bridge.bridge.follower import Follower
from records_bridge.bridge.hub_client import HubClient
from records_bridge.bridge.metrics import BridgeMetrics
from records_bridge.bridge.outcomes import Poison, Retry
from wire.outbox_events import Event

pytestmark = pytest.mark.integration


class ScriptedSink:
    name = "scripted"

    def __init__(self, fail: dict[int, list[type[Exception]]]) -> None:
        self.fail = fail  # event id -> the exceptions to raise on its next attempts, in order
        self.attempts: list[int] = []
        self.taken: list[tuple[int, str]] = []

    async def handle(self, event: Event) -> None:
        self.attempts.append(event.id)
        queue = self.fail.get(event.id, [])
        if queue:
            raise queue.pop(0)(f"scripted failure of event {event.id}")
        self.taken.append((event.id, event.data.type))


async def follow_until(follower: Follower, done, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(follower.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.wait([task])


def admit(hub: HubProcess, n: int) -> None:
    for i in range(n):
        feed_news2_alarm(hub, "A", f"A-0{i + 1}", agent=f"edge-A-0{i + 1}")
        status, body = post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": f"MRN-{i}", "name": f"Patient {i}"}, "bed": f"A-0{i + 1}"})
        assert status == 201, body


def test_events_are_delivered_in_order_retried_until_taken_and_poison_is_parked(hub: HubProcess, tmp_path: Path) -> None:
    admit(hub, 3)
    with sqlite3.connect(hub.db) as db:  # a corrupt row in the outbox (a fault no API can make): parked, not fatal
        db.execute("INSERT INTO outbox (at, type, body) VALUES (0, 'patient.admitted', '{\"type\": \"patient.admitted\"}')")
        (bad_id,) = db.execute("SELECT max(id) FROM outbox").fetchone()
    metrics = BridgeMetrics()
    cursors = CursorStore(tmp_path / "bridge.sqlite3")
    sink = ScriptedSink({2: [Retry, Retry], 3: [Poison]})

    async def first_run() -> None:
        client = HubClient(hub.base, "records-bridge", PASSWORD)
        follower = Follower(client, [sink], cursors, metrics, backoff=(0.01, 0.05), wait_s=0.5)
        await follow_until(follower, lambda: cursors.position("scripted") >= bad_id)
        await client.close()

    asyncio.run(first_run())
    taken = [i for i, _t in sink.taken]
    assert taken == sorted(taken) and 2 in taken and 3 not in taken and bad_id not in taken
    assert sink.attempts[: sink.attempts.index(2) + 3] == [*sink.attempts[: sink.attempts.index(2)], 2, 2, 2]  # nothing overtook it
    parked = cursors.parked("scripted")
    assert [p["event_id"] for p in parked] == [3, bad_id] and "scripted failure" in parked[0]["reason"]
    assert "not a valid outbox event" in parked[1]["reason"]
    snap = metrics.snapshot()
    assert snap["teleicu_bridge_events_parked_total{sink=scripted}"] == 2 and snap["teleicu_bridge_retries_total{sink=scripted}"] >= 2
    # a new bridge process starts from the durable cursor: nothing before it again, the new event after it
    cursors.close()
    status, _ = post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": "MRN-9", "name": "Patient 9"}, "bed": "A-04"})
    assert status == 404  # A-04 was never seen: no admission, no event
    feed_news2_alarm(hub, "A", "A-04", agent="edge-A-04")
    assert post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": "MRN-9", "name": "Patient 9"}, "bed": "A-04"})[0] == 201
    again = CursorStore(tmp_path / "bridge.sqlite3")
    second = ScriptedSink({})

    async def second_run() -> None:
        client = HubClient(hub.base, "records-bridge", PASSWORD)
        follower = Follower(client, [second], again, BridgeMetrics(), backoff=(0.01, 0.05), wait_s=0.5)
        await follow_until(follower, lambda: any(t == "patient.admitted" for _i, t in second.taken))
        await client.close()

    asyncio.run(second_run())
    assert second.taken and all(i > bad_id for i, _t in second.taken)
    assert json.loads(json.dumps(parked[0]["event"]))["id"] == 3
