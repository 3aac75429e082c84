"""A real hub starved of CPU paces a real edge agent: the agent keeps its connection, loses nothing, sends its newest
frame first, and the older frames it held arriving late do not move the bed's live values backwards.

As in test_hub_overload: the hub process is stopped (SIGSTOP) for 0.4 s of every 0.5 s for 8 s, so its event loop
runs late as one past its capacity does, and it brakes its intake. The agent is ``edge_agent.uplink.Uplink`` (its
spool on disk, its EdgeSession, a real WebSocket), which says ``pace`` in its hello: the hub tells it to slow down
(``Pace``) instead of leaving its frames in the TCP buffers. It makes a one-observation frame every 50 ms, far
above its pace, until the starving ends, so most frames are held in its spool and sent once the hub lifts the pace.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from pydantic import SecretStr
from support import get_json, starve, start_hub, wait_alarm, wait_alarm_cleared, wait_until

from edge_agent.config import UplinkConfig
from edge_agent.uplink import Uplink
from wire.messages import Observation

pytestmark = pytest.mark.integration

BED, WARD, AGENT = "PA-01", "PA", "edge-PA"


class Agent(threading.Thread):
    """The real uplink in a thread of its own: a frame every 50 ms while ``producing``, then until its spool is empty."""

    def __init__(self, url: str, secret: str, spool: Path) -> None:
        super().__init__(daemon=True)
        cfg = UplinkConfig(url=url, secret=SecretStr(secret), flush_ms=100, backlog_rate=500, status_s=1.0)
        self.up = Uplink(cfg, AGENT, WARD, [BED], spool)
        self.producing = threading.Event()
        self.producing.set()
        self.done = threading.Event()
        self.sent: list[tuple[int, float]] = []  # (t_dev, hr) of every frame made
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test, which fails on it
            self.error = exc

    async def _main(self) -> None:
        up = self.up
        task = asyncio.create_task(up.run())
        try:
            while self.producing.is_set():
                t = max(time.time_ns() // 1_000_000, self.sent[-1][0] + 1 if self.sent else 0)
                hr = 60.0 + len(self.sent) % 50
                up.add_observation(Observation(BED, "hr", hr, t, t, "mon-PA"))
                up.flush_observations()  # one frame each
                self.sent.append((t, hr))
                await asyncio.sleep(0.05)
            while not self.done.is_set():
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.wait([task])
            up.close()


def test_a_braked_hub_paces_its_agent_which_keeps_its_connection_and_loses_nothing(tmp_path: Path) -> None:
    hub = start_hub(tmp_path)
    hub.agent_auth(AGENT, WARD, (BED,))
    agent = Agent(hub.edge_url, hub.secrets[AGENT], tmp_path / "spool.sqlite3")
    up = agent.up
    try:
        agent.start()
        wait_until(lambda: up.counters["frames_acked"] >= 20, "the agent's first frames acknowledged", timeout=15)
        starve(hub.proc.pid, 8)  # the hub gets 0.1 s of every 0.5 s
        wait_alarm(hub.base, "technical:hub_overloaded", "the overload alarm", timeout=10)
        agent.producing.clear()  # the newest frame is made while paced: frames held before it arrive after it
        wait_until(lambda: up.counters["paces_received"] >= 1, "a pace", timeout=10)
        assert up.session.pace is not None and up.counters["frames_held"] > 0, dict(up.counters)
        wait_alarm_cleared(hub.base, "technical:hub_overloaded", "the overload alarm to clear once the hub keeps up", timeout=40)
        wait_until(lambda: up.session.pace is None, "the pace lifted", timeout=15)
        wait_until(lambda: up.spool.stats.frames == 0, "every frame acknowledged and deleted", timeout=30)
        agent.done.set()
        agent.join(15)
        assert agent.error is None, f"the agent failed: {agent.error!r}"
        c = up.counters
        assert c["connects"] == 1 and c["disconnects"] == 0, f"the agent's connection ended: {dict(c)}"
        assert c["frames_acked"] == len(agent.sent) and up.acked == len(agent.sent), dict(c)
        assert c["paces_received"] >= 2 and c["frames_sent_paced"] > 0 and c["frames_held"] > 0, dict(c)
        with sqlite3.connect(hub.db) as db:
            stored = db.execute("SELECT count(*) FROM numerics WHERE bed = ?", (BED,)).fetchone()[0]
        assert stored == len(agent.sent), f"made {len(agent.sent)} observations, stored {stored}"
        t_newest, hr_newest = agent.sent[-1]
        hr = get_json(f"{hub.base}/api/beds/{BED}")["vitals"]["hr"]
        assert (hr["t"], hr["value"]) == (t_newest, hr_newest), "older frames arriving late moved the live value backwards"
        counters = get_json(hub.base + "/api/stats")["counters"]
        assert counters.get("paces_sent", 0) >= 2, counters
    finally:
        agent.producing.clear()
        agent.done.set()
        if hub.proc.poll() is None:
            os.kill(hub.proc.pid, signal.SIGCONT)
        hub.stop()
