"""Two real hub worker processes on one JetStream stream, one InfluxDB and one PostgreSQL state: kill -9 the owner.

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
import time
from pathlib import Path

import pytest
import yaml
from influx_support import Influxd
from jetstream_support import TOKEN, Publisher, connect, consumer_state, make_stream, removed, unique
from state_db_support import hub_state
from support import HubProcess, get_json, register_agent, seed_users, start_hub, wait_until

from wire.messages import Observation, ObsFrame

pytestmark = pytest.mark.integration

HUB_YAML = Path(__file__).resolve().parents[2] / "config" / "hub.yaml"  # this checkout's default hub file
WARD = "K"
AGENTS = {"edge-K1": tuple(f"K-{i:02d}" for i in range(1, 6)), "edge-K2": tuple(f"K-{i:02d}" for i in range(6, 11))}
PARAMS = ("hr", "rr", "spo2")
LEASE_TTL_S, ACK_WAIT_S = 6, 4
FRAME_EVERY_S = 0.05  # per agent: 20 frames/s, 15 values each
BEFORE_KILL_S, AFTER_KILL_S = 4.0, 14.0


def worker_file(tmp: Path, worker: str, stream: str, prefix: str, bucket: str) -> Path:
    token = tmp / "nats.token"
    token.write_text(TOKEN)
    raw = yaml.safe_load(HUB_YAML.read_text()) | {"waveform_analysis": False}
    raw["jetstream"] = {"servers": ["nats://127.0.0.1:4222"], "token_file": str(token), "subject_prefix": prefix, "stream": {"name": stream},
                        "wards": [WARD], "worker_id": worker, "lease_bucket": bucket, "lease_ttl_s": LEASE_TTL_S,
                        "ack_wait_s": ACK_WAIT_S, "max_ack_pending": 500, "fetch_batch": 50}  # fmt: skip
    path = tmp / f"hub-{worker}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


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



def test_killing_the_worker_that_owns_a_ward_loses_and_doubles_no_sample(tmp_path: Path, influx: Influxd) -> None:
    stream, prefix, bucket, db = unique("FRAMES"), unique("t.frames"), unique("leases"), unique("jsfail")
    store_url = influx.store_url(db, flush_ms=100)
    with hub_state("postgresql", tmp_path) as state:
        assert state is not None
        seed_users(state)
        for agent, beds in AGENTS.items():
            register_agent(state, agent, WARD, beds, tmp_path / f"{agent}.secret")

        async def stream_up() -> None:
            nc = await connect()
            await make_stream(nc.jetstream(), stream, prefix)
            await nc.close()

        asyncio.run(stream_up())
        w1 = start_worker(tmp_path, "w1", store_url, state, worker_file(tmp_path, "w1", stream, prefix, bucket))
        w2: HubProcess | None = None
        try:
            wait_until(lambda: worker_stats(w1)["wards_owned"] == [WARD], "w1 to own the ward", timeout=30)
            w2 = start_worker(tmp_path, "w2", store_url, state, worker_file(tmp_path, "w2", stream, prefix, bucket))
            assert worker_stats(w2)["wards_owned"] == []
            survivor = w2
            publishers, marks = asyncio.run(publish_and_kill(prefix, w1, survivor))
            t_kill, t_owned, t_stored = marks
            last = max(p.last_stream_seq for p in publishers)
            wait_until(lambda: asyncio.run(consumer_state(stream, WARD)) == (0, 0, last), "w2 to acknowledge every frame", timeout=120)
            stats = worker_stats(survivor)
            counters = get_json(survivor.base + "/api/stats")["counters"]
        finally:
            w1.stop()
            if w2 is not None:
                w2.stop()
            asyncio.run(removed(stream, bucket))

    published = {(o.bed, o.param, o.t_dev, o.value) for p in publishers for f in p.acked for o in f.obs}
    rows = influx.rows("SELECT value, bed, param FROM vitals", db)
    stored = [(r["bed"], r["param"], r["time"], r["value"]) for r in rows]
    frames = sum(len(p.acked) for p in publishers)
    print(f"\nfailover: {frames} frames ({len(published)} samples) published; w1 killed {BEFORE_KILL_S:g} s in; "
          f"w2 owned the ward {t_owned - t_kill:.2f} s after the kill and stored its first frame {t_stored - t_kill:.2f} s after it "
          f"(lease TTL {LEASE_TTL_S} s, ack wait {ACK_WAIT_S} s); w2: {stats}; w2 obs_stored {counters.get('obs_stored')}")  # fmt: skip
    assert len(stored) == len(set(stored)) == len(published)
    assert set(stored) == published
    assert stats["frames_acked"] + stats.get("duplicates_acked", 0) >= 1 and stats.get("frames_refused", 0) == 0


async def publish_and_kill(prefix: str, owner: HubProcess, survivor: HubProcess) -> tuple[list[Publisher], tuple[float, float, float]]:
    """Both agents publish throughout; the owner is killed ``BEFORE_KILL_S`` in; the survivor is watched until it has
    taken the ward and stored a frame. Returns the publishers (their record) and (kill, owned, first stored) times."""
    nc = await connect()
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
            for pub in pubs:
                tg.create_task(agent_loop(pub))
            tg.create_task(killer())
    finally:
        await nc.close()
    return pubs, (times["kill"], times["owned"], times["stored"])


