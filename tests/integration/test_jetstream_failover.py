"""Two real hub worker processes on one JetStream stream, one InfluxDB and one PostgreSQL state: kill -9 the owner.

Run twice: on the local server, and on a three-node cluster the test starts on
loopback ports (stream and lease bucket with three replicas).

Both workers may own ward K; the first holds its lease. Two agents publish
frames to the stream throughout (as the edge does: the stream's publish
acknowledgement is their record). Mid-stream the owner is killed with SIGKILL:
no goodbye, its lease left to expire, its unacknowledged frames left to the
stream. The other worker takes the ward once the lease expires, and the ward's
durable consumer hands it what the dead one had not acknowledged.

Every sample the stream acknowledged must then be in InfluxDB exactly once (its
value at its device time, nothing missing, nothing extra), the consumer must
have nothing pending, and the time from the kill to the first frame the second
worker stored is measured and printed. "Exactly once" in the store rests on
InfluxDB's keyed points (a frame the dead worker wrote but had not acknowledged
is written again, over itself), on the watermarks both workers persist in the
shared PostgreSQL state (the survivor acknowledges frames below the dead one's
watermark as duplicates), and on JetStream delivering again what nobody acked.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from influx_support import Influxd
from jetstream_support import Publisher, connect, consumer_state, make_stream, removed, unique
from jetstream_support import worker_file as js_worker_file
from nats.aio.client import Client as NatsClient
from nats_cluster import ADMIN_USER, NatsCluster
from state_db_support import hub_state
from support import HubProcess, console_connect, get_json, register_agent, seed_users, start_hub, wait_until

from wire.messages import Observation, ObsFrame

pytestmark = pytest.mark.integration

WARD = "K"
AGENTS = {"edge-K1": tuple(f"K-{i:02d}" for i in range(1, 6)), "edge-K2": tuple(f"K-{i:02d}" for i in range(6, 11))}
PARAMS = ("hr", "rr", "spo2")
LEASE_TTL_S, ACK_WAIT_S = 6, 4
FRAME_EVERY_S = 0.05  # per agent: 20 frames/s, 15 values each
BEFORE_KILL_S, AFTER_KILL_S = 4.0, 14.0


@dataclass(frozen=True)
class Nats:
    """Where the test runs: the local server, or a three-node cluster of the test's own (stream and bucket R3)."""

    urls: list[str]
    user: str
    password: str
    replicas: int
    connect: Callable[[], Awaitable[NatsClient]]


@pytest.fixture(params=["local server", "three-node cluster"])
def nats_under(request: pytest.FixtureRequest) -> Nats:
    if request.param == "local server":
        return Nats([request.getfixturevalue("local_nats")], "", "", 1, connect)
    cluster: NatsCluster = request.getfixturevalue("nats_cluster")
    return Nats(cluster.urls, ADMIN_USER, cluster.admin_password, 3, cluster.admin)


def worker_file(tmp: Path, worker: str, stream: str, prefix: str, bucket: str, on: Nats) -> Path:
    return js_worker_file(tmp, worker, stream, prefix, bucket, [WARD], servers=on.urls, user=on.user, password=on.password,
                          replicas=on.replicas, lease_ttl_s=LEASE_TTL_S, ack_wait_s=ACK_WAIT_S, max_ack_pending=500,
                          fetch_batch=50)  # fmt: skip


def start_worker(tmp: Path, worker: str, store_url: str, state: str, config: Path) -> HubProcess:
    home = tmp / worker
    home.mkdir()
    return start_hub(home, extra=("--store", store_url, "--config", str(config), "--data-dir", str(home)), state=state)


def worker_stats(hub: HubProcess) -> dict:
    return get_json(hub.base + "/api/stats")["jetstream"]


def frame(agent: str, seq: int, t0: int) -> ObsFrame:
    t = t0 + seq * 50
    return ObsFrame(seq, tuple(Observation(bed, p, float(60 + (seq + i) % 40), t, t + 3, f"mon-{bed}")
                               for i, bed in enumerate(AGENTS[agent]) for p in PARAMS))  # fmt: skip



def test_killing_the_worker_that_owns_a_ward_loses_and_doubles_no_sample(tmp_path: Path, influx: Influxd, nats_under: Nats) -> None:
    on = nats_under
    stream, prefix, bucket, db = unique("FRAMES"), unique("t.frames"), unique("leases"), unique("jsfail")
    store_url = influx.store_url(db, flush_ms=100)
    with hub_state("postgresql", tmp_path) as state:
        assert state is not None
        seed_users(state)
        for agent, beds in AGENTS.items():
            register_agent(state, agent, WARD, beds, tmp_path / f"{agent}.secret")

        async def stream_up() -> None:
            nc = await on.connect()
            await make_stream(nc.jetstream(), stream, prefix, on.replicas)
            await nc.close()

        asyncio.run(stream_up())
        w1 = start_worker(tmp_path, "w1", store_url, state, worker_file(tmp_path, "w1", stream, prefix, bucket, on))
        w2: HubProcess | None = None
        try:
            wait_until(lambda: worker_stats(w1)["wards_owned"] == [WARD], "w1 to own the ward", timeout=30)
            w2 = start_worker(tmp_path, "w2", store_url, state, worker_file(tmp_path, "w2", stream, prefix, bucket, on))
            assert worker_stats(w2)["wards_owned"] == []
            survivor = w2
            publishers, marks, seen = asyncio.run(publish_and_kill(on, prefix, w1, survivor))
            t_kill, t_owned, t_stored = marks
            last = max(p.last_stream_seq for p in publishers)
            wait_until(lambda: asyncio.run(consumer_state(stream, WARD, on.connect)) == (0, 0, last), "w2 to acknowledge every frame", timeout=120)
            stats = worker_stats(survivor)
            counters = get_json(survivor.base + "/api/stats")["counters"]
        finally:
            w1.stop()
            if w2 is not None:
                w2.stop()
            asyncio.run(removed(stream, bucket, on.connect))

    published = {(o.bed, o.param, o.t_dev, o.value) for p in publishers for f in p.acked for o in f.obs}
    rows = influx.rows("SELECT value, bed, param FROM vitals", db)
    stored = [(r["bed"], r["param"], r["time"], r["value"]) for r in rows]
    frames = sum(len(p.acked) for p in publishers)
    print(f"\nfailover: {frames} frames ({len(published)} samples) published; w1 killed {BEFORE_KILL_S:g} s in; "
          f"w2 owned the ward {t_owned - t_kill:.2f} s after the kill and stored its first frame {t_stored - t_kill:.2f} s after it "
          f"(lease TTL {LEASE_TTL_S} s, ack wait {ACK_WAIT_S} s); w2: {stats}; w2 obs_stored {counters.get('obs_stored')}")  # fmt: skip
    assert len(stored) == len(set(stored)) == len(published)
    assert set(stored) == published
    snapshot, updates = seen
    every_bed = {b for beds in AGENTS.values() for b in beds}
    assert snapshot["unserved_wards"] == [] and {b["bed"] for b in snapshot["beds"]} <= every_bed  # w1 answered for its ward
    seen_before = {b["bed"] for b in snapshot["beds"]}.union(*(beds for t, beds in updates if t < t_kill))
    assert seen_before == every_bed  # the beds w1 had heard of when asked, then the rest as their agents were heard
    before, after = [t for t, _ in updates if t < t_kill], [t for t, _ in updates if t > t_kill]
    assert len(before) >= 10 and len(after) >= 10, (len(before), len(after))  # relayed from w1, then from w2 itself
    gap = after[0] - before[-1]
    print(f"console on w2: ward {WARD} updates {len(before)} before the kill, {len(after)} after; longest silence "
          f"across the failover {gap:.2f} s (last from w1 {t_kill - before[-1]:.2f} s before the kill)")  # fmt: skip
    assert gap < 2 * LEASE_TTL_S + 5
    assert stats["frames_acked"] + stats.get("duplicates_acked", 0) >= 1 and stats.get("frames_refused", 0) == 0


def watch_console(hub: HubProcess, until: float) -> tuple[dict, list[tuple[float, set[str]]]]:
    """A console on ``hub`` watching ward K: its snapshot, and when each update with K's beds arrived, with those beds."""
    updates: list[tuple[float, set[str]]] = []
    with console_connect(hub, query=f"?ward={WARD}") as ws:
        snapshot = json.loads(ws.recv(timeout=10))
        while (left := until - time.monotonic()) > 0:
            try:
                msg = json.loads(ws.recv(timeout=left))
            except TimeoutError:
                break
            if msg["type"] == "beds" and (beds := {b["bed"] for b in msg["beds"] if b["ward"] == WARD}):
                updates.append((time.monotonic(), beds))
    return snapshot, updates


async def publish_and_kill(on: Nats, prefix: str, owner: HubProcess, survivor: HubProcess) -> tuple[list[Publisher], tuple[float, float, float],
                                                                                           tuple[dict, list[tuple[float, set[str]]]]]:  # fmt: skip
    """Both agents publish throughout; the owner is killed ``BEFORE_KILL_S`` in; the survivor is watched until it has
    taken the ward and stored a frame, and a console on the survivor watches the ward throughout. Returns the
    publishers (their record), the (kill, owned, first stored) times and what the console saw."""
    nc = await on.connect()
    js = nc.jetstream()
    t0 = int(time.time() * 1000) - 120_000
    pubs = [Publisher(js, WARD, agent, prefix) for agent in AGENTS]
    start = time.monotonic()
    stop = start + BEFORE_KILL_S + AFTER_KILL_S
    times: dict[str, float] = {}

    async def agent_loop(pub: Publisher) -> None:
        seq = 0
        while time.monotonic() < stop:
            seq += 1
            await pub.publish(frame(pub.agent, seq, t0))
            await asyncio.sleep(FRAME_EVERY_S)

    async def killer() -> None:
        await asyncio.sleep(BEFORE_KILL_S)
        owner.proc.kill()  # SIGKILL: no goodbye, the lease is left to expire
        times["kill"] = time.monotonic()
        while "stored" not in times:
            stats = await asyncio.to_thread(worker_stats, survivor)
            now = time.monotonic()
            if stats["wards_owned"] and "owned" not in times:
                times["owned"] = now
            if stats.get("frames_acked", 0) + stats.get("duplicates_acked", 0) > 0:
                times["stored"] = now
            if now > times["kill"] + LEASE_TTL_S + ACK_WAIT_S + 20:
                raise AssertionError(f"w2 did not take the ward: {stats}")
            await asyncio.sleep(0.05)

    try:
        async with asyncio.TaskGroup() as tg:
            console = tg.create_task(asyncio.to_thread(watch_console, survivor, stop))
            for pub in pubs:
                tg.create_task(agent_loop(pub))
            tg.create_task(killer())
    finally:
        await nc.close()
    return pubs, (times["kill"], times["owned"], times["stored"]), console.result()


