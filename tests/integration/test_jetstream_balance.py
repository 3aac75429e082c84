"""Two hub worker processes with ``balance: true`` on the local NATS: wards spread over them, and come back to one.

w1 starts alone and takes all six wards; w2 joins, and each ward moves to the
worker rendezvous hashing prefers (``ingest.ward_leases.preferred``), the same
answer on both. When w2 stops, w1 takes its wards back. An agent per ward
publishes throughout; every sample the stream acknowledged must be in InfluxDB
once (a ward moving hands its unacknowledged frames to the next owner).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from influx_support import Influxd
from jetstream_support import Publisher, connect, consumer_state, make_stream, removed, unique, worker_file
from state_db_support import hub_state
from support import HubProcess, get_json, register_agent, seed_users, start_hub, wait_until

from ingest.ward_leases import preferred
from wire.messages import Observation, ObsFrame

pytestmark = pytest.mark.integration

WARDS = ["BA", "BB", "BC", "BD", "BE", "BF"]
LEASE_TTL_S = 3


def owned(hub: HubProcess) -> list[str]:
    return get_json(hub.base + "/api/stats")["jetstream"]["wards_owned"]


def start_worker(tmp: Path, worker: str, store_url: str, state: str, config: Path) -> HubProcess:
    home = tmp / worker
    home.mkdir()
    return start_hub(home, extra=("--store", store_url, "--config", str(config), "--data-dir", str(home)), state=state)


async def publish(prefix: str, stop: asyncio.Event) -> list[Publisher]:
    """One agent per ward, a frame of three values every 100 ms each, until ``stop``."""
    nc = await connect()
    js = nc.jetstream()
    pubs = [Publisher(js, w, f"edge-{w}", prefix) for w in WARDS]
    t0 = int(time.time() * 1000) - 300_000

    async def agent(pub: Publisher) -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            t = t0 + seq * 100
            await pub.publish(ObsFrame(seq, tuple(Observation(f"{pub.ward}-01", p, float(60 + seq % 30), t, t, "m") for p in ("hr", "rr", "spo2"))))
            await asyncio.sleep(0.1)

    try:
        async with asyncio.TaskGroup() as tg:
            for pub in pubs:
                tg.create_task(agent(pub))
    finally:
        await nc.close()
    return pubs


def test_wards_spread_over_live_workers_as_rendezvous_hashing_says_and_come_back_when_one_stops(tmp_path: Path, influx: Influxd) -> None:
    stream, prefix, bucket, db = unique("FRAMES"), unique("t.frames"), unique("leases"), unique("jsbal")
    mine = {w: sorted(x for x in WARDS if preferred(x, ["w1", "w2"]) == w) for w in ("w1", "w2")}
    assert mine["w1"] and mine["w2"]
    store_url = influx.store_url(db, flush_ms=100)
    with hub_state("postgresql", tmp_path) as state:
        assert state is not None
        seed_users(state)
        for w in WARDS:
            register_agent(state, f"edge-{w}", w, (f"{w}-01",), tmp_path / f"edge-{w}.secret")

        async def stream_up() -> None:
            nc = await connect()
            await make_stream(nc.jetstream(), stream, prefix)
            await nc.close()

        asyncio.run(stream_up())
        files = {w: worker_file(tmp_path, w, stream, prefix, bucket, WARDS, balance=True, lease_ttl_s=LEASE_TTL_S, ack_wait_s=3)
                 for w in ("w1", "w2")}  # fmt: skip
        w1 = start_worker(tmp_path, "w1", store_url, state, files["w1"])
        w2: HubProcess | None = None
        try:
            wait_until(lambda: owned(w1) == WARDS, "w1, alone, to own every ward", timeout=30)

            async def scenario() -> list[Publisher]:
                nonlocal w2
                stop = asyncio.Event()
                publishing = asyncio.create_task(publish(prefix, stop))
                await asyncio.sleep(1)
                w2 = await asyncio.to_thread(start_worker, tmp_path, "w2", store_url, state, files["w2"])
                await asyncio.to_thread(wait_until, lambda: owned(w1) == mine["w1"] and owned(w2) == mine["w2"],
                                        "each ward on the worker that prefers it", 30)  # fmt: skip
                await asyncio.sleep(1)
                await asyncio.to_thread(w2.stop)  # given back at once, and its presence with it
                await asyncio.to_thread(wait_until, lambda: owned(w1) == WARDS, "w1 to take every ward back", 30)
                await asyncio.sleep(1)
                stop.set()
                return await publishing

            publishers = asyncio.run(scenario())
            for pub in publishers:
                wait_until(lambda p=pub: asyncio.run(consumer_state(stream, p.ward))[:2] == (0, 0), f"ward {pub.ward} acknowledged", timeout=60)
            stats = get_json(w1.base + "/api/stats")["jetstream"]
        finally:
            w1.stop()
            if w2 is not None:
                w2.stop()
            asyncio.run(removed(stream, bucket))

    published = {(o.bed, o.param, o.t_dev, o.value) for p in publishers for f in p.acked for o in f.obs}
    rows = influx.rows("SELECT value, bed, param FROM vitals", db)
    stored = [(r["bed"], r["param"], r["time"], r["value"]) for r in rows]
    print(f"\nbalance: w2 preferred {mine['w2']}; {len(published)} samples published, {len(stored)} stored; w1: {stats}")
    assert len(stored) == len(set(stored)) == len(published)
    assert set(stored) == published
