"""The uplink's asyncio shell against an in-memory hub (a HubSession per fake WebSocket), without sockets.

``websockets``' ``connect`` is replaced by a fake whose connections speak to a
hub built from ``wire.hub_session.HubSession``: frames are stored at once (or
left unacknowledged, like a stalled store), connections can be refused or
dropped. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from typing import Any
from pathlib import Path

import pytest
from async_deadline import eventually
from websockets.exceptions import ConnectionClosedError

import edge_agent.uplink as uplink_module
from edge_agent.config import UplinkConfig
from edge_agent.events import DeviceStatus
from edge_agent.uplink import Uplink
from wire.dedup import SeqTracker
from wire.hub_session import FrameReceived, HelloReceived, HubSession, StatusReceived
from wire.messages import Hello, Observation, Status

CFG = UplinkConfig(url="ws://hub.test/ws/edge", flush_ms=10, backlog_rate=1000, backoff_initial_s=0.01, backoff_max_s=0.05, status_s=0.05)


class FakeHub:
    def __init__(self) -> None:
        self.seqs = SeqTracker()
        self.stored: Counter[int] = Counter()
        self.hellos: list[Hello] = []
        self.statuses: list[Status] = []
        self.refuse = 0  # connection attempts to refuse
        self.acknowledge = True  # False: frames are stored but never acknowledged (a stalled store)
        self.connections: list[FakeConnection] = []

    def connect(self, url: str, **_kw: object) -> FakeConnection:
        assert url == CFG.url
        if self.refuse:
            self.refuse -= 1
            raise OSError("connection refused")
        conn = FakeConnection(self)
        self.connections.append(conn)
        return conn


class FakeConnection:
    """The client side of one WebSocket; the hub's side is a HubSession answering at once."""

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self.session: HubSession[int] = HubSession(hub.seqs, agent="edge-T", beds=["T-1"], max_frames_per_s=1e9, max_bytes_per_s=1e12, now=0.0)
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False

    async def __aenter__(self) -> FakeConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True

    def drop(self) -> None:
        self.closed = True
        self.inbox.put_nowait(None)

    async def send(self, data: str | bytes) -> None:
        if self.closed:
            raise ConnectionClosedError(None, None)
        hub, s = self.hub, self.session
        for ev in s.receive_data(data.encode() if isinstance(data, str) else data):
            if isinstance(ev, HelloReceived):
                hub.hellos.append(ev.hello)
                hub.seqs.raise_floor(ev.hello.agent, ev.hello.epoch, ev.hello.floor)
                s.welcome(hub.seqs.last_durable(ev.hello.agent, ev.hello.epoch))
            elif isinstance(ev, StatusReceived):
                assert s.hello is not None and ev.status.spool is not None
                hub.statuses.append(ev.status)
                hub.seqs.raise_floor(s.hello.agent, s.hello.epoch, ev.status.spool["floor"])
            elif isinstance(ev, FrameReceived):
                assert s.hello is not None
                seq = ev.frame.seq
                if hub.seqs.is_new(s.hello.agent, s.hello.epoch, seq):
                    hub.stored[seq] += 1
                    if not hub.acknowledge:
                        continue
                    hub.seqs.stored(s.hello.agent, s.hello.epoch, seq)
                s.frame_handled(seq, idle=True)
        for out in s.data_to_send():
            self.inbox.put_nowait(out.decode())

    async def recv(self) -> str:
        msg = await self.inbox.get()
        if msg is None:
            raise ConnectionClosedError(None, None)
        return msg

    def __aiter__(self) -> FakeConnection:
        return self

    async def __anext__(self) -> str:
        return await self.recv()


async def until(cond: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    return await eventually(cond, what, timeout, interval=0.005)


def add_obs(up: Uplink, n: int, t0: int) -> None:
    for i in range(n):
        up.add_observation(Observation("T-1", "hr", 60.0 + i % 40, t0 + i, t0 + i, "mon"))
        up.flush_observations()  # one frame each


@contextlib.asynccontextmanager
async def running(up: Uplink):
    task = asyncio.create_task(up.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.wait([task])
        assert task.cancelled(), task.exception()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    fake = FakeHub()
    monkeypatch.setattr(uplink_module, "connect", fake.connect)
    return fake


def test_frames_flow_live_are_acknowledged_once_and_deleted(hub: FakeHub, tmp_path: Path) -> None:
    async def scenario() -> None:
        up = Uplink(CFG, "edge-T", "T", ["T-1"], tmp_path / "spool.sqlite3")
        async with running(up):
            await until(up.connected.is_set, "the uplink to connect")
            add_obs(up, 30, 1_000)
            up.add_status(DeviceStatus("T-1", "mon", "disconnected", 1_000, "link"))
            await until(lambda: len(hub.stored) == 30 and up.spool.stats.frames == 0, "30 frames stored and acknowledged")
            await until(lambda: hub.statuses and (hub.statuses[-1].spool or {}).get("floor") == 30, "a status report with floor 30")
        assert sorted(hub.stored) == list(range(1, 31)) and set(hub.stored.values()) == {1}
        assert up.counters["connects"] == 1 and up.counters["frames_sent_live"] == 30 and up.counters["frames_acked"] == 30
        assert any(d["status"] == "disconnected" and d["detail"] == "link" for st in hub.statuses for d in st.devices)
        assert up.report()["floor"] == 30
        assert up.acked == 30
        up.close()

    asyncio.run(scenario())


def test_an_agent_announcing_a_bed_not_registered_to_it_is_welcomed_told_and_streams(hub: FakeHub, tmp_path: Path) -> None:
    async def scenario() -> None:
        up = Uplink(CFG, "edge-T", "T", ["T-1", "T-9"], tmp_path / "spool.sqlite3")  # the hub registered T-1 only
        async with running(up):
            await until(up.connected.is_set, "the uplink to connect")
            add_obs(up, 10, 1_000)
            await until(lambda: len(hub.stored) == 10 and up.spool.stats.frames == 0, "10 frames stored and acknowledged")
        assert up.counters["connects"] == 1 and up.counters["hub_error_unregistered_beds"] == 1  # told once, no reconnecting
        up.close()

    asyncio.run(scenario())


def test_an_outage_is_spooled_then_sent_as_backlog_behind_live_frames(hub: FakeHub, tmp_path: Path) -> None:
    async def scenario() -> None:
        hub.refuse = 3
        up = Uplink(CFG, "edge-T", "T", ["T-1"], tmp_path / "spool.sqlite3")
        add_obs(up, 50, 1_000)
        up.commit()  # spooled while the hub is unreachable
        async with running(up):
            await until(up.connected.is_set, "the uplink to connect after the refusals")
            add_obs(up, 5, 2_000)
            await until(lambda: len(hub.stored) == 55 and up.spool.stats.frames == 0, "backlog and live frames stored")
        assert hub.hellos[0].floor == 0 and up.counters["disconnects"] == 3
        assert up.counters["frames_sent_backlog"] == 50 and up.counters["frames_sent_live"] == 5
        assert set(hub.stored.values()) == {1}
        up.close()

    asyncio.run(scenario())


def test_frames_left_unacknowledged_on_a_dropped_connection_are_sent_again(hub: FakeHub, tmp_path: Path) -> None:
    async def scenario() -> None:
        hub.acknowledge = False  # the first connection stores but never acknowledges (a stalled store)
        up = Uplink(CFG, "edge-T", "T", ["T-1"], tmp_path / "spool.sqlite3")
        async with running(up):
            await until(up.connected.is_set, "the uplink to connect")
            add_obs(up, 10, 1_000)
            await until(lambda: len(hub.stored) == 10, "10 frames at the hub")
            assert up.spool.stats.frames == 10 and up.report()["floor"] == 0
            hub.acknowledge = True
            hub.connections[0].drop()
            await until(lambda: up.spool.stats.frames == 0, "the re-sent frames acknowledged")
        assert up.counters["connects"] == 2 and up.counters["frames_sent_backlog"] == 10
        assert up.counters["frames_acked"] == 10 and dict(hub.stored) == {seq: 2 for seq in range(1, 11)}  # stored again, harmlessly
        up.close()

    asyncio.run(scenario())


def test_a_restarted_agent_continues_its_sequence_from_the_spool(hub: FakeHub, tmp_path: Path) -> None:
    async def scenario() -> None:
        path = tmp_path / "spool.sqlite3"
        first = Uplink(CFG, "edge-T", "T", ["T-1"], path)
        add_obs(first, 4, 1_000)
        first.commit()
        first.close()  # killed before it could connect: frames 1-4 wait in the spool
        again = Uplink(CFG, "edge-T", "T", ["T-1"], path)
        assert again.session.epoch == first.session.epoch and again.session.next_seq == 5
        async with running(again):
            await until(lambda: again.spool.stats.frames == 0 and len(hub.stored) == 4, "the spooled frames stored")
            add_obs(again, 1, 2_000)
            await until(lambda: 5 in hub.stored, "a new frame, numbered after them")
        assert [h.epoch for h in hub.hellos] == [first.session.epoch]
        again.close()

    asyncio.run(scenario())
