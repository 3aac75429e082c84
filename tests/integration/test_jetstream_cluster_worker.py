"""A hub worker process on a real three-node NATS cluster (the tests' own, on loopback ports): kill a node mid-stream.

The frames stream and the lease bucket have three replicas. Two agents publish
frames throughout, each re-publishing a frame until the stream acknowledges it
(as the edge does; the message id makes a re-publish that had landed a
duplicate). Mid-stream the node leading the stream is killed with SIGKILL: the
stream elects another leader, the worker's pulls, acknowledgements and lease
renewals go through the survivors. Every sample the stream acknowledged must be
in InfluxDB exactly once, and the ward's consumer must have nothing pending.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats.errors
import pytest
from influx_support import Influxd
from jetstream_support import Publisher, unique, worker_file
from nats.aio.client import Client as NatsClient
from nats_cluster import ADMIN_USER, NatsCluster
from support import HubProcess, get_json, register_agent, seed_users, start_hub, wait_until

from ingest.jetstream_worker import consumer_name
from wire.messages import Observation, ObsFrame

pytestmark = pytest.mark.integration

WARD = "K"
AGENTS = {"edge-K1": ("K-01", "K-02", "K-03"), "edge-K2": ("K-04", "K-05", "K-06")}
FRAME_EVERY_S = 0.05
BEFORE_KILL_S, AFTER_KILL_S = 3.0, 8.0


def frame(agent: str, seq: int, t0: int) -> ObsFrame:
    t = t0 + seq * 50
    return ObsFrame(seq, tuple(Observation(bed, p, float(60 + (seq + i) % 40), t, t + 3, f"mon-{bed}")
                               for i, bed in enumerate(AGENTS[agent]) for p in ("hr", "rr", "spo2")))  # fmt: skip


async def publish_until_acknowledged(pub: Publisher, f: ObsFrame) -> int:
    """Publish until the stream acknowledges ``f``; returns how many tries failed (a node lost, an election)."""
    failed = 0
    while True:
        recorded = len(pub.acked)
        try:
            await pub.publish(f)
        except (nats.errors.Error, TimeoutError):
            failed += 1
            await asyncio.sleep(0.1)
            continue
        if len(pub.acked) == recorded:  # a duplicate: an earlier try had landed, and it is in the stream once
            pub.acked.append(f)
        return failed


async def stream_leader(nc: NatsClient, stream: str) -> str:
    info = await nc.jetstream().stream_info(stream)
    assert info.cluster is not None and info.cluster.leader, info
    return info.cluster.leader


async def publish_and_kill(cluster: NatsCluster, stream: str) -> tuple[list[Publisher], str, int]:
    """Both agents publish throughout; the stream's leader node is killed ``BEFORE_KILL_S`` in. Returns the publishers,
    the node killed and how many publishes failed and were tried again."""
    nc = await cluster.admin()
    js = nc.jetstream(timeout=2)
    t0 = int(time.time() * 1000) - 120_000
    pubs = [Publisher(js, WARD, agent, cluster.prefix) for agent in AGENTS]
    stop = time.monotonic() + BEFORE_KILL_S + AFTER_KILL_S
    failures = 0
    killed: list[str] = []

    async def agent_loop(pub: Publisher) -> None:
        nonlocal failures
        seq = 0
        while time.monotonic() < stop:
            seq += 1
            failures += await publish_until_acknowledged(pub, frame(pub.agent, seq, t0))
            await asyncio.sleep(FRAME_EVERY_S)

    async def killer() -> None:
        await asyncio.sleep(BEFORE_KILL_S)
        leader = await stream_leader(nc, stream)
        cluster.kill(next(i for i, n in enumerate(cluster.nodes) if n.name == leader))
        killed.append(leader)

    try:
        async with asyncio.TaskGroup() as tg:
            for pub in pubs:
                tg.create_task(agent_loop(pub))
            tg.create_task(killer())
    finally:
        await nc.close()
    return pubs, killed[0], failures


async def consumer_drained(cluster: NatsCluster, stream: str) -> bool:
    nc = await cluster.admin()
    try:
        js = nc.jetstream(timeout=2)
        last = (await js.stream_info(stream)).state.last_seq
        info = await js.consumer_info(stream, consumer_name(WARD))
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        return (info.num_pending or 0) == 0 and (info.num_ack_pending or 0) == 0 and floor == last
    finally:
        await nc.close()


def test_killing_the_nats_node_that_leads_the_stream_loses_and_doubles_no_sample(nats_cluster: NatsCluster, tmp_path: Path,
                                                                                  influx: Influxd) -> None:  # fmt: skip
    cluster = nats_cluster
    db, bucket = unique("jscluster"), unique("leases")
    config = worker_file(tmp_path, "w1", cluster.stream, cluster.prefix, bucket, [WARD], servers=cluster.urls, user=ADMIN_USER,
                         password=cluster.admin_password, replicas=3, lease_ttl_s=6,
                         ack_wait_s=4, max_ack_pending=500, fetch_batch=50)  # fmt: skip
    home = tmp_path / "w1"
    home.mkdir()
    state = home / "store.sqlite3"
    seed_users(state)
    for agent, beds in AGENTS.items():
        register_agent(state, agent, WARD, beds, tmp_path / f"{agent}.secret")
    worker: HubProcess = start_hub(home, db=state, extra=("--store", influx.store_url(db, state=state, flush_ms=100),
                                                          "--config", str(config), "--data-dir", str(home)))  # fmt: skip
    try:
        wait_until(lambda: get_json(worker.base + "/api/stats")["jetstream"]["wards_owned"] == [WARD], "the worker to own the ward", timeout=60)
        publishers, killed, failures = asyncio.run(publish_and_kill(cluster, cluster.stream))
        wait_until(lambda: asyncio.run(consumer_drained(cluster, cluster.stream)), "the worker to acknowledge every frame", timeout=120)
        stats = get_json(worker.base + "/api/stats")["jetstream"]
    finally:
        worker.stop()

    published = {(o.bed, o.param, o.t_dev, o.value) for p in publishers for f in p.acked for o in f.obs}
    rows = influx.rows("SELECT value, bed, param FROM vitals", db)
    stored = [(r["bed"], r["param"], r["time"], r["value"]) for r in rows]
    print(f"\nnats node {killed} (the stream's leader) killed {BEFORE_KILL_S:g} s in: {sum(len(p.acked) for p in publishers)} frames "
          f"({len(published)} samples) acknowledged by the stream, {failures} publishes tried again; worker: {stats}")  # fmt: skip
    assert len(stored) == len(set(stored)) == len(published)
    assert set(stored) == published
