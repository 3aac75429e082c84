"""The real hub process on a real influxd, fed through the real edge WebSocket: counted, replayed, outage.

Every sample sent is looked up in InfluxDB (counted, not sampled); a replay
leaves the counts unchanged; a 30 s InfluxDB outage (influxd killed and started
again on the same port and data) stalls acknowledgements and loses nothing.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import websockets
from influx_support import Influxd, start_hub_on_influx, start_influxd
from support import HubProcess, auth_headers, get_json
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.sync.client import connect

from ingest.influx_schema import unpack_samples
from wire.codec import decode_hub, encode_edge
from wire.messages import Ack, Hello, Observation, ObsFrame, WaveChunk, Welcome

pytestmark = pytest.mark.integration

BEDS = ("T-01", "T-02", "T-03")
OUTAGE_S = 30


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def send_and_wait_acks(hub: HubProcess, hello: Hello, frames: list[ObsFrame | WaveChunk], expect_welcome: int = 0) -> None:
    with connect(hub.edge_url, additional_headers=hub.agent_auth(hello.agent, hello.ward, hello.beds)) as ws:
        ws.send(encode_edge(hello).decode())
        assert decode_hub(ws.recv(timeout=10)) == Welcome(expect_welcome)
        for f in frames:
            data = encode_edge(f)
            ws.send(data if isinstance(f, WaveChunk) else data.decode())
        last = frames[-1].seq
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = decode_hub(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            assert not (hasattr(msg, "code") and msg.code != "rejected"), msg
            if isinstance(msg, Ack) and msg.seq >= last:
                return
        raise AssertionError(f"no ack for seq {last}")


def make_frames(t0: int) -> tuple[list[ObsFrame | WaveChunk], list[Observation], list[WaveChunk]]:
    frames: list[ObsFrame | WaveChunk] = []
    sent_obs: list[Observation] = []
    sent_waves: list[WaveChunk] = []
    seq = 0
    for k in range(40):  # 40 s of 1 Hz numerics for 3 beds
        t = t0 + k * 1000
        obs = []
        for b, bed in enumerate(BEDS):
            obs.append(Observation(bed, "hr", 60.0 + b + k % 7, t, t + 40, f"mon-{bed}"))
            obs.append(Observation(bed, "rr", 12.0 + (k % 5), t, t + 40, f"mon-{bed}"))
            obs.append(Observation(bed, "temp", round(36.5 + 0.1 * (k % 9), 1), t, t + 40, f"mon-{bed}"))
            if k % 10 == 3:
                obs.append(Observation(bed, "spo2", None, t, t + 40, f"mon-{bed}", 1))  # probe off: flags, no value
            else:
                obs.append(Observation(bed, "spo2", 90.0 + (k % 9), t, t + 40, f"mon-{bed}"))
        seq += 1
        frames.append(ObsFrame(seq, tuple(obs)))
        sent_obs.extend(obs)
        if k < 10:
            seq += 1
            chunk = WaveChunk(seq, "T-01", "ecg_ii", t, 250, 0.005, tuple((i * 37 + k) % 2000 - 1000 for i in range(250)))
            frames.append(chunk)
            sent_waves.append(chunk)
    return frames, sent_obs, sent_waves


def stored_vitals(influx: Influxd, db: str) -> dict[tuple[str, str, int], dict]:
    rows = influx.rows('SELECT * FROM "raw"."vitals"', db)
    out = {(r["bed"], r["param"], r["time"]): r for r in rows}
    assert len(out) == len(rows)
    return out


def test_hub_run_is_stored_exactly_with_tags_values_times_and_replays_overwrite(influx: Influxd, tmp_path: Path) -> None:
    db = "hub_counted"
    state = tmp_path / "state.sqlite3"
    url = influx.store_url(db, hospital="Civil-Hospital", flush_ms=100, state=state)
    t0 = now_ms() - 120_000
    frames, sent_obs, sent_waves = make_frames(t0)
    hello = Hello(agent="edge-T", epoch=1, ward="T", beds=BEDS)

    hub = start_hub_on_influx(tmp_path, url, state)
    try:
        send_and_wait_acks(hub, hello, frames)
        stats = get_json(f"{hub.base}/api/stats")["store"]
        assert stats["numerics_written"] == len(sent_obs) and stats["wave_chunks_written"] == len(sent_waves)
        assert stats["dropped"] == 0 and stats["buffered"] == 0

        # (1) counted: every observation sent is stored once, with its tags, value, flags and device time
        stored = stored_vitals(influx, db)
        assert len(stored) == len(sent_obs)
        for o in sent_obs:
            r = stored[(o.bed, o.param, o.t_dev)]
            assert (r["value"], r["flags"], r["t_rx"]) == (o.value, o.flags, o.t_rx), (o, r)
            assert (r["device"], r["hospital"]) == (o.device, "Civil-Hospital")
        waves = influx.rows('SELECT * FROM "raw"."waveform"', db)
        assert len(waves) == len(sent_waves)
        by_t = {w["time"]: w for w in waves}
        for c in sent_waves:
            w = by_t[c.t_first]
            f32_scale = struct.unpack("<f", struct.pack("<f", c.scale))[0]  # the wire carries the scale as f32
            assert (w["bed"], w["lead"], w["rate"], w["n"], w["scale"]) == (c.bed, c.lead, c.rate_hz, len(c.samples), f32_scale)
            assert unpack_samples(w["samples"]) == c.samples

        # (2) the hub's trend API answers from InfluxDB with the expected points
        body = get_json(f"{hub.base}/api/beds/T-02/trend?param=hr&since={t0}&until={t0 + 39_000}")
        expect = [(o.t_dev, o.value) for o in sent_obs if o.bed == "T-02" and o.param == "hr"]
        assert [(p["t"], p["value"]) for p in body["points"]] == expect
        body = get_json(f"{hub.base}/api/beds/T-01/trend?param=spo2&since={t0}&until={t0 + 39_000}")
        assert [p["flags"] for p in body["points"] if p["value"] is None] == [1, 1, 1, 1]

        # (3) a replay (a new agent epoch re-sending the same samples) overwrites: no duplicates. The latest
        # sample of each series is known to be stored, so its re-send is counted apart and not written again
        send_and_wait_acks(hub, Hello(agent="edge-T", epoch=2, ward="T", beds=BEDS), frames)
        series = len({(o.bed, o.param) for o in sent_obs})
        after = get_json(f"{hub.base}/api/stats")
        assert after["store"]["numerics_written"] == 2 * len(sent_obs) - series
        assert after["counters"]["obs_resent"] == series
        assert len(stored_vitals(influx, db)) == len(sent_obs)
        assert len(influx.rows('SELECT * FROM "raw"."waveform"', db)) == len(sent_waves)
    finally:
        hub.stop()

    # the sequence marks live in the SQLite state next to InfluxDB: a restarted hub knows what it holds
    hub = start_hub_on_influx(tmp_path, url, state)
    try:
        send_and_wait_acks(hub, hello, frames[-1:], expect_welcome=frames[-1].seq)
        assert get_json(f"{hub.base}/api/stats")["counters"]["frames_duplicate"] == 1
    finally:
        hub.stop()
    assert len(stored_vitals(influx, db)) == len(sent_obs)


class EdgeClient:
    """A minimal edge agent speaking the README's edge protocol, independent of edge_agent's internals.

    Numbered frames are kept until acknowledged (``Ack.seq`` and ``Ack.also``) and
    re-sent after a reconnect; it records when each frame was first sent and
    which frames each acknowledgement covered, for the test to judge.
    """

    def __init__(self, url: str, hello: Hello, headers: dict[str, str]) -> None:
        self.url = url
        self.hello = hello
        self.headers = headers  # its credentials (the agent's secret)
        self.unacked: dict[int, str] = {}
        self.obs: dict[int, tuple[Observation, ...]] = {}
        self.first_sent: dict[int, float] = {}
        self.acks: list[tuple[float, list[int]]] = []  # (when, frames newly acknowledged)
        self.floor = 0
        self.also: set[int] = set()
        self.next_seq = 1
        self.connects = 0
        self._new = asyncio.Event()

    def add(self, obs: tuple[Observation, ...]) -> None:
        seq = self.next_seq
        self.next_seq += 1
        self.obs[seq] = obs
        self.unacked[seq] = encode_edge(ObsFrame(seq, obs)).decode()
        self._new.set()

    def acked(self, seq: int) -> bool:
        return seq <= self.floor or seq in self.also

    def _ack(self, floor: int, also: tuple[int, ...]) -> None:
        self.floor = max(self.floor, floor)
        self.also.update(also)
        done = [seq for seq in self.unacked if self.acked(seq)]
        for seq in done:
            del self.unacked[seq]
        if done:
            self.acks.append((time.monotonic(), done))

    async def run(self) -> None:
        while True:
            try:
                async with ws_connect(self.url, open_timeout=10, additional_headers=self.headers) as ws:
                    await ws.send(encode_edge(self.hello).decode())
                    welcome = decode_hub(await asyncio.wait_for(ws.recv(), 10))
                    assert isinstance(welcome, Welcome), welcome
                    self._ack(welcome.last_seq, ())
                    self.connects += 1
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._sender(ws))
                        tg.create_task(self._receiver(ws))
            except* (OSError, websockets.WebSocketException, TimeoutError):
                pass
            await asyncio.sleep(0.2)

    async def _sender(self, ws: ClientConnection) -> None:
        sent_upto = 0
        while True:
            self._new.clear()
            for seq in sorted(s for s in self.unacked if s > sent_upto):
                data = self.unacked.get(seq)
                if data is not None:
                    await ws.send(data)
                    self.first_sent.setdefault(seq, time.monotonic())
                sent_upto = seq
            await self._new.wait()

    async def _receiver(self, ws: ClientConnection) -> None:
        async for raw in ws:
            msg = decode_hub(raw)
            if isinstance(msg, Ack):
                self._ack(msg.seq, msg.also)


def test_influxdb_outage_holds_live_data_flowing_and_loses_nothing(tmp_path: Path) -> None:
    influx = start_influxd(tmp_path)
    db = "hub_outage"
    state = tmp_path / "state.sqlite3"
    buffer_limit = 300
    url = influx.store_url(db, flush_ms=100, max_buffer_lines=buffer_limit, backoff_max_ms=1000, state=state)
    hub = start_hub_on_influx(tmp_path, url, state)
    edge = EdgeClient(hub.edge_url, Hello("edge-O", 7, "T", BEDS), hub.agent_auth("edge-O", "T", BEDS))
    t0 = now_ms() - 600_000

    async def until(pred: Callable[[], bool | Awaitable[bool]], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ok = pred()
            if not isinstance(ok, bool):
                ok = await ok
            if ok:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.1)

    async def produce(stop: asyncio.Event) -> None:
        k = 0
        while not stop.is_set():
            t = t0 + k * 100  # device times 100 ms apart: every sample is a distinct point
            edge.add(tuple(Observation(bed, p, v + k % 20, t, t, "m") for bed in BEDS for p, v in (("hr", 60.0), ("rr", 10.0), ("spo2", 80.0))))
            k += 1
            await asyncio.sleep(0.05)

    async def run() -> None:
        stop_producing = asyncio.Event()
        async with httpx.AsyncClient(timeout=10, headers=auth_headers(hub.base, "intensivist")) as client:

            async def store_stats() -> dict:
                return (await client.get(f"{hub.base}/api/stats")).json()["store"]

            async def retried_at_least(n: int) -> bool:
                return (await store_stats())["retried"] >= n

            async def store_alarms() -> list[dict]:
                return (await client.get(f"{hub.base}/api/alerts?kind=technical:store_unreachable")).json()["alerts"]

            async def store_alarm_open() -> bool:
                return bool(await store_alarms())

            async def store_alarm_cleared() -> bool:
                return not await store_alarms()

            async with asyncio.TaskGroup() as tg:
                link = tg.create_task(edge.run())
                producer = tg.create_task(produce(stop_producing))
                try:
                    await until(lambda: edge.floor >= 20, "data flowing and acknowledged", 60)
                    before = (await store_stats())["retried"]
                    influx.kill()
                    t_kill = time.monotonic()
                    await until(lambda: retried_at_least(before + 2), "the hub to retry writes", 30)
                    await until(store_alarm_open, "the store-unreachable technical alarm", 30)
                    [alarm] = await store_alarms()
                    assert alarm["category"] == "technical" and "InfluxDB" in alarm["detail"], alarm
                    while time.monotonic() < t_kill + OUTAGE_S:  # the outage itself lasts a fixed time, by design
                        await asyncio.sleep(0.5)
                    s = await store_stats()
                    assert s["buffered"] <= buffer_limit and s["dropped"] == 0, s  # the buffer neither grew nor dropped
                    counters = (await client.get(f"{hub.base}/api/stats")).json()["counters"]
                    # the connection held: frames feed the live view and wait at the edge, not in the hub
                    assert counters["store_holds"] >= 1 and counters["frames_held_unstored"] > 0, counters
                    assert len(edge.unacked) > 100  # the frames wait at the edge, unacknowledged
                    beds = (await client.get(f"{hub.base}/api/beds")).json()["beds"]
                    assert all(b["last_rx"] >= now_ms() - 5000 for b in beds), beds  # live data reached the beds
                    # acks stalled: no frame first sent after InfluxDB died was acknowledged while it was down
                    acked_in_outage = [seq for t, seqs in edge.acks if t > t_kill for seq in seqs]
                    late = [seq for seq in acked_in_outage if edge.first_sent[seq] > t_kill]
                    assert not late, f"acknowledged while InfluxDB was down: frames {late[:10]}..."

                    influx.start()
                    await until(lambda: len(edge.acks) > 0 and edge.acks[-1][0] > time.monotonic() - 5, "acks to resume", 60)
                    stop_producing.set()
                    await producer
                    await until(lambda: not edge.unacked, f"all {edge.next_seq - 1} frames acknowledged", 120)
                    await until(store_alarm_cleared, "the store-unreachable alarm to clear", 60)
                    s = await store_stats()
                    assert s["dropped"] == 0 and s["retried"] > before, s
                finally:
                    stop_producing.set()
                    link.cancel()

    try:
        asyncio.run(run())
        rows = influx.rows('SELECT * FROM "raw"."vitals"', db)
        stored = {(r["bed"], r["param"], r["time"]): r["value"] for r in rows}
        sent = [o for obs in edge.obs.values() for o in obs]
        assert len(rows) == len(sent) == len(stored)  # every sample exactly once
        assert stored == {(o.bed, o.param, o.t_dev): o.value for o in sent}
    finally:
        hub.stop()
        influx.stop()
