"""A real hub starved of CPU: it says it is overloaded, brakes its agents' uplinks, drops none and loses nothing.

The fault is caused for real: the hub process is stopped (SIGSTOP) for 0.4 s of
every 0.5 s for 8 s, so its event loop runs late as one past its capacity does.
Meanwhile an edge agent on a real WebSocket sends a numerics frame every 100 ms.
The hub must raise the hub-wide ``technical:hub_overloaded`` alarm, report its
intake brake in /api/stats, keep the agent's connection (the same socket, never
closed), store every observation sent exactly once (counted in its database),
and clear the alarm once it has caught up.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from support import get_json, starve, start_hub, wait_alarm, wait_alarm_cleared, wait_until

from wire.codec import decode_hub, encode_edge
from wire.messages import Ack, Hello, ObsFrame, Observation

pytestmark = pytest.mark.integration

BED, WARD, AGENT = "OV-01", "OV", "edge-OV"


class Agent(threading.Thread):
    """Sends a frame of three observations every 100 ms until stopped; counts what it sent and what the hub acked."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.stop = threading.Event()
        self.sent = self.acked = 0
        self.closed: BaseException | None = None

    def run(self) -> None:
        from websockets.sync.client import connect

        try:
            with connect(self.url, additional_headers=self.headers) as ws:
                ws.send(encode_edge(Hello(AGENT, 1, WARD, (BED,))).decode())
                decode_hub(ws.recv(timeout=10))
                seq = 0
                while not self.stop.is_set() or self.acked < self.sent:
                    if not self.stop.is_set():
                        seq += 1
                        t = time.time_ns() // 1_000_000
                        obs = tuple(Observation(BED, p, v, t, t, "mon-OV") for p, v in (("hr", 80.0 + seq % 5), ("spo2", 97.0), ("rr", 16.0)))
                        ws.send(encode_edge(ObsFrame(seq, obs)).decode())
                        self.sent = seq
                    deadline = time.monotonic() + 0.1
                    while (left := deadline - time.monotonic()) > 0:
                        try:
                            msg = decode_hub(ws.recv(timeout=left))
                        except TimeoutError:
                            break
                        if isinstance(msg, Ack):
                            self.acked = max(self.acked, msg.seq)
        except BaseException as exc:  # noqa: BLE001 - reported to the test, which fails on it
            self.closed = exc


def test_a_starved_hub_raises_overload_brakes_keeps_its_agent_and_loses_nothing(tmp_path: Path) -> None:
    hub = start_hub(tmp_path)
    agent = Agent(hub.edge_url, hub.agent_auth(AGENT, WARD, (BED,)))
    try:
        agent.start()
        wait_until(lambda: agent.acked >= 10, "the agent's first frames acknowledged", timeout=15)
        starve(hub.proc.pid, 8)  # the hub gets 0.1 s of every 0.5 s
        alarm = wait_alarm(hub.base, "technical:hub_overloaded", "the overload alarm", timeout=10)
        assert alarm[0]["ward"] in ("", None) and "late" in alarm[0]["detail"], alarm
        overload = get_json(hub.base + "/api/stats")["overload"]
        assert overload["overload_episodes"] >= 1 and overload["overload_peak_lag_ms"] >= 150, overload
        assert AGENT in get_json(hub.base + "/api/stats")["agents_online"]
        wait_alarm_cleared(hub.base, "technical:hub_overloaded", "the overload alarm to clear once the hub keeps up", timeout=40)
        agent.stop.set()
        agent.join(30)
        assert agent.closed is None, f"the agent's connection ended: {agent.closed!r}"
        assert agent.acked == agent.sent > 50
        with sqlite3.connect(hub.db) as db:
            stored = db.execute("SELECT count(*) FROM numerics WHERE bed = ?", (BED,)).fetchone()[0]
        assert stored == 3 * agent.sent, f"sent {3 * agent.sent} observations, stored {stored}"
        counters = get_json(hub.base + "/api/stats")["counters"]
        assert counters.get("overload_episodes", 0) >= 1 and counters.get("frames_braked", 0) > 0, counters
    finally:
        agent.stop.set()
        if hub.proc.poll() is None:
            os.kill(hub.proc.pid, signal.SIGCONT)
        hub.stop()
