"""One hub worker on the real local NATS JetStream and a real influxd: frames published as the edge publishes them.

The hub runs in this process under uvicorn (``support.serving``), with its
JetStream worker started and stopped by its own lifespan. Every sample published
is counted in InfluxDB against the publisher's record; every message is
acknowledged and the ward's durable consumer has nothing pending; frames that
lie about their sender, or come from an agent nobody registered, are refused
for good, counted, audited, and never stored. Without NATS these tests fail.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import nats.js.errors
import pytest
from nats.js.api import KeyValueConfig
import yaml
from config_support import alarm_policy, score_tables
from influx_support import Influxd
from jetstream_support import TOKEN, Publisher, connect, consumer_state, make_stream, removed, unique
from nats_cluster import listen_port, nats_server
from state_db_support import state_connection
from support import free_port, get_json, register_agent, serving, teleicu, wait_until

from alerts.lifecycle import Alert
from ingest.app import create_app
from ingest.hub import Hub
from ingest.hub_config import HubConfig, parse_hub_config
from ingest.jetstream_worker import FETCH_WAIT_S
from ingest.stores import open_stores
from wire.codec import encode_edge
from wire.jetstream_contract import FrameKey, frame_subject, status_headers, status_subject
from wire.ids import new_id
from wire.messages import Observation, ObsFrame, Status, WaveChunk

pytestmark = pytest.mark.integration

HUB_YAML = Path(__file__).resolve().parents[2] / "config" / "hub.yaml"  # this checkout's default hub file
PARAMS = {"hr": 70.0, "rr": 14.0, "spo2": 94.0}  # each plus 0..4: all valid


def worker_config(tmp: Path, stream: str, prefix: str, bucket: str, wards: list[str] | str, **more: Any) -> HubConfig:
    token = tmp / "nats.token"
    token.write_text(TOKEN)
    raw = yaml.safe_load(HUB_YAML.read_text()) | {"waveform_analysis": False}
    raw["jetstream"] = {"servers": ["nats://127.0.0.1:4222"], "token_file": str(token), "subject_prefix": prefix, "stream": {"name": stream},
                        "wards": wards, "lease_bucket": bucket, "lease_ttl_s": 6, "ack_wait_s": 5, "fetch_batch": 50} | more  # fmt: skip
    return parse_hub_config(raw, "test hub config")


def obs_frame(seq: int, beds: tuple[str, ...], t0: int) -> ObsFrame:
    t = t0 + seq * 100
    return ObsFrame(seq, tuple(Observation(bed, p, v + seq % 5, t, t + 5, f"mon-{bed}") for bed in beds for p, v in PARAMS.items()))


def wave_chunk(seq: int, bed: str, t0: int) -> WaveChunk:
    return WaveChunk(seq=seq, bed=bed, lead="ecg_ii", t_first=t0 + seq * 100, rate_hz=250, scale=0.005, samples=tuple(range(-50, 50)))


def stored_counts(influx: Influxd, db: str) -> Counter[tuple[str, str]]:
    """(bed, param) -> points in InfluxDB (one per device time: a sample written twice is one point)."""
    rows = influx.rows("SELECT count(value) FROM vitals GROUP BY bed, param", db)
    return Counter({(r["bed"], r["param"]): r["count"] for r in rows})


def published_counts(frames: list[ObsFrame | WaveChunk]) -> Counter[tuple[str, str]]:
    return Counter((o.bed, o.param) for f in frames if isinstance(f, ObsFrame) for o in f.obs)


class Scene:
    """A hub with a JetStream worker, its stream and bucket, its InfluxDB database; torn down afterwards."""

    def __init__(self, tmp: Path, influx: Influxd, wards: list[str]) -> None:
        self.tmp, self.influx = tmp, influx
        self.stream, self.prefix, self.bucket = unique("FRAMES"), unique("t.frames"), unique("leases")
        self.status_prefix = unique("t.status")
        self.db = unique("jsw")
        self.state = tmp / "state.sqlite3"
        self.cfg = worker_config(tmp, self.stream, self.prefix, self.bucket, wards, status_prefix=self.status_prefix)
        self.hub = Hub(self.cfg, open_stores(influx.store_url(self.db, state=self.state, flush_ms=100), tmp),
                       policy=alarm_policy(), tables=score_tables())  # fmt: skip

    def register(self, agent: str, ward: str, beds: tuple[str, ...]) -> None:
        register_agent(self.state, agent, ward, beds, self.tmp / f"{agent}.secret")

    def worker(self) -> dict[str, Any]:
        assert self.hub.jetstream_stats is not None
        return self.hub.jetstream_stats()


def run(coro: Any) -> Any:
    return asyncio.run(coro)



def test_every_frame_published_is_stored_once_acknowledged_and_nothing_is_left_pending(tmp_path: Path, influx: Influxd) -> None:
    scene = Scene(tmp_path, influx, ["W1"])
    beds = ("W1-01", "W1-02", "W1-03", "W1-04")
    scene.register("edge-W1", "W1", beds)
    t0 = int(time.time() * 1000) - 60_000
    frames: list[ObsFrame | WaveChunk] = [wave_chunk(s, beds[0], t0) if s % 10 == 0 else obs_frame(s, beds, t0) for s in range(1, 301)]

    async def setup() -> Publisher:
        nc = await connect()
        js = nc.jetstream()
        await make_stream(js, scene.stream, scene.prefix)
        pub = Publisher(js, "W1", "edge-W1", scene.prefix)
        for f in frames[:100]:  # a backlog waiting before the worker starts
            await pub.publish(f)
        await nc.close()
        return pub

    async def publish_rest(pub: Publisher) -> tuple[int, int]:
        nc = await connect()
        pub.js = nc.jetstream()
        seqs = [await pub.publish(f) for f in frames[100:]]
        again = await pub.publish(frames[150])  # the edge re-sends a frame: the stream's duplicate window drops it
        await nc.close()
        return seqs[-1], again

    pub = run(setup())
    try:
        with serving(create_app(scene.hub), "hub"):
            wait_until(lambda: scene.worker()["wards_owned"] == ["W1"], "the worker to own ward W1", timeout=30)
            last_seq, again = run(publish_rest(pub))
            assert again <= last_seq  # the same stream sequence as the first copy: no new message
            wait_until(lambda: scene.worker().get("frames_acked", 0) >= len(frames), "every frame to be acknowledged", timeout=60)
            wait_until(lambda: run(consumer_state(scene.stream, "W1")) == (0, 0, last_seq), "the consumer to have nothing pending", timeout=30)
            stats = scene.worker()
            counters = dict(scene.hub.counters)
        assert stats["frames_acked"] == len(frames) and stats.get("frames_refused", 0) == 0, stats
        assert counters["obs_stored"] == sum(len(f.obs) for f in frames if isinstance(f, ObsFrame)), counters
        assert counters["wave_chunks_stored"] == sum(isinstance(f, WaveChunk) for f in frames)
        assert stored_counts(influx, scene.db) == published_counts(pub.acked) == published_counts(frames)
        waves = influx.rows("SELECT count(n) FROM waveform GROUP BY bed", scene.db)
        assert [(r["bed"], r["count"]) for r in waves] == [(beds[0], 30)]
        leases = run(lease_of(scene.bucket, "W1"))
        assert leases is None, f"the stopped worker gave its ward back: {leases!r}"
    finally:
        run(removed(scene.stream, scene.bucket))


async def lease_of(bucket: str, ward: str) -> bytes | None:
    nc = await connect()
    try:
        kv = await nc.jetstream().key_value(bucket)
        try:
            return (await kv.get(ward)).value
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
    finally:
        await nc.close()




def test_frames_that_lie_about_their_sender_or_come_from_no_registered_agent_are_refused_and_never_stored(
    tmp_path: Path, influx: Influxd
) -> None:
    scene = Scene(tmp_path, influx, ["F"])
    scene.register("edge-F", "F", ("F-01",))
    scene.register("edge-G", "G", ("G-01",))  # registered, but to another ward
    t = int(time.time() * 1000) - 30_000
    t_lie, t_ghost, t_elsewhere, t_mismatch = t + 1000, t + 2000, t + 3000, t + 4000

    def frame(seq: int, bed: str, at: int) -> ObsFrame:
        return ObsFrame(seq, (Observation(bed, "hr", 80.0, at, at, "mon"),))

    async def publish() -> None:
        nc = await connect()
        js = nc.jetstream()
        await make_stream(js, scene.stream, scene.prefix)
        pub = Publisher(js, "F", "edge-F", scene.prefix)
        await pub.publish(frame(1, "F-01", t))  # good
        await pub.publish(frame(2, "F-01", t_lie), key=FrameKey("F", "edge-X", 1, 2, 0))  # headers name another agent
        ghost = Publisher(js, "F", "edge-ghost", scene.prefix)  # consistent, but nobody registered it
        await ghost.publish(frame(1, "F-01", t_ghost))
        other = Publisher(js, "F", "edge-G", scene.prefix)  # a registered agent publishing into a ward not its own
        await other.publish(frame(1, "F-01", t_elsewhere))
        await pub.publish(frame(4, "F-01", t_mismatch), key=FrameKey("F", "edge-F", 1, 9, 0))  # body seq 4, headers say 9
        mixed = ObsFrame(3, (Observation("F-01", "rr", 15.0, t, t, "mon"), Observation("F-99", "rr", 15.0, t, t, "mon")))
        await pub.publish(mixed)  # one value for a bed not registered to edge-F
        await js.publish(frame_subject("F", "edge-F", scene.prefix), b"{not json", headers={"Nats-Msg-Id": "junk"})
        await nc.close()

    run(publish())
    try:
        with serving(create_app(scene.hub), "hub"):
            wait_until(lambda: scene.worker().get("frames_acked", 0) + scene.worker().get("frames_refused", 0) >= 7,
                       "every message to be judged", timeout=60)  # fmt: skip
            wait_until(lambda: run(consumer_state(scene.stream, "F"))[:2] == (0, 0), "nothing pending", timeout=30)
            stats, counters = scene.worker(), dict(scene.hub.counters)
        assert stats["frames_refused"] == 5 and stats["frames_acked"] == 2, stats
        assert counters["values_for_unregistered_beds"] == 1 and counters["frames_rejected"] == 5, counters
        points = influx.rows("SELECT value, param, bed FROM vitals", scene.db)
        assert sorted((p["bed"], p["param"], p["time"]) for p in points) == [("F-01", "hr", t), ("F-01", "rr", t)]
        with state_connection(scene.state) as conn:
            audited = conn.execute("SELECT actor, action, target FROM audit_log WHERE action LIKE 'edge.%' ORDER BY seq").fetchall()
        assert sorted(a for a in audited if a[1] == "edge.jetstream_refused") == sorted([
            ("agent:edge-F", "edge.jetstream_refused", f"subject:{scene.prefix}.F.edge-F"),
            ("agent:edge-ghost", "edge.jetstream_refused", f"subject:{scene.prefix}.F.edge-ghost"),
            ("agent:edge-G", "edge.jetstream_refused", f"subject:{scene.prefix}.F.edge-G"),
        ]), audited  # once per subject: edge-F's lie, its mismatched seq and its junk are one entry
        assert ("agent:edge-F", "edge.unregistered_bed", "bed:F-99") in audited
    finally:
        run(removed(scene.stream, scene.bucket))


def test_a_hub_whose_nats_secret_cannot_be_read_stops_at_once_naming_the_key(tmp_path: Path) -> None:
    raw = yaml.safe_load(HUB_YAML.read_text())
    raw["jetstream"] = {"servers": ["nats://127.0.0.1:4222"], "token_file": str(tmp_path / "missing.token")}
    config = tmp_path / "hub.yaml"
    config.write_text(yaml.safe_dump(raw))
    done = teleicu("hub", "--port", str(free_port()), "--db", str(tmp_path / "s.sqlite3"), "--data-dir", str(tmp_path), "--config", str(config))
    assert done.returncode == 2, done.stderr
    assert "jetstream.token_file: cannot read" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_while_influxdb_is_down_the_ward_holds_and_afterwards_every_frame_is_stored_once(tmp_path: Path, influx: Influxd) -> None:
    """influxd killed mid-stream: frames stay unacknowledged (one probes the store, the rest are handed back to the
    stream for later) while the bed state keeps moving; once it is back every frame is stored once and acknowledged."""
    scene = Scene(tmp_path, influx, ["H"])
    beds = ("H-01", "H-02")
    scene.register("edge-H", "H", beds)
    t0 = int(time.time() * 1000) - 60_000
    frames: list[ObsFrame | WaveChunk] = [obs_frame(s, beds, t0) for s in range(1, 201)]

    async def publish(pub: Publisher, part: list[ObsFrame | WaveChunk]) -> int:
        nc = await connect()
        pub.js = nc.jetstream()
        seqs = [await pub.publish(f) for f in part]
        await nc.close()
        return seqs[-1]

    async def setup() -> Publisher:
        nc = await connect()
        await make_stream(nc.jetstream(), scene.stream, scene.prefix)
        await nc.close()
        return Publisher(None, "H", "edge-H", scene.prefix)  # type: ignore[arg-type]

    pub = run(setup())
    try:
        with serving(create_app(scene.hub), "hub"):
            run(publish(pub, frames[:50]))
            wait_until(lambda: scene.worker().get("frames_acked", 0) == 50, "the first frames to be stored", timeout=30)
            influx.kill()
            try:
                run(publish(pub, frames[50:150]))
                wait_until(lambda: scene.hub.store.error is not None and scene.worker().get("frames_held", 0) > 0,
                           "the ward to hold while the store fails", timeout=60)  # fmt: skip
                held_acked = scene.worker().get("frames_acked", 0)
                live = scene.hub.counters["frames_ingested"]
            finally:
                influx.start()
            last = run(publish(pub, frames[150:]))
            wait_until(lambda: run(consumer_state(scene.stream, "H")) == (0, 0, last), "every frame acknowledged", timeout=120)
            stats = scene.worker()
        assert held_acked == 50  # nothing acknowledged while the store was down
        assert live > 50  # but the frames kept reaching the bed state
        assert stats["frames_acked"] + stats.get("duplicates_acked", 0) >= len(frames) and stats["frames_redelivered"] > 0, stats
        assert stored_counts(influx, scene.db) == published_counts(pub.acked) == published_counts(frames)
    finally:
        run(removed(scene.stream, scene.bucket))


def test_a_worker_whose_lease_another_took_stops_consuming_at_once_and_takes_the_ward_back_once_free(
    tmp_path: Path, influx: Influxd
) -> None:
    scene = Scene(tmp_path, influx, ["L"])
    scene.register("edge-L", "L", ("L-01",))
    t0 = int(time.time() * 1000) - 60_000

    async def setup() -> Publisher:
        nc = await connect()
        await make_stream(nc.jetstream(), scene.stream, scene.prefix)
        await nc.close()
        return Publisher(None, "L", "edge-L", scene.prefix)  # type: ignore[arg-type]

    async def publish(pub: Publisher, seq: int) -> int:
        nc = await connect()
        pub.js = nc.jetstream()
        try:
            return await pub.publish(obs_frame(seq, ("L-01",), t0))
        finally:
            await nc.close()

    async def lease(op: str) -> None:
        nc = await connect()
        try:
            kv = await nc.jetstream().key_value(scene.bucket)
            if op == "steal":  # as if the lease had expired and another worker had created it
                await kv.purge("L")
                await kv.create("L", b"thief")
            else:
                await kv.delete("L")
        finally:
            await nc.close()

    pub = run(setup())
    try:
        with serving(create_app(scene.hub), "hub"):
            wait_until(lambda: scene.worker()["wards_owned"] == ["L"], "the worker to own ward L", timeout=30)
            handed = scene.worker().get("agents_handed_over", 0)  # at start: none of its wards is its own yet
            run(publish(pub, 1))
            wait_until(lambda: scene.worker().get("frames_acked", 0) == 1, "the first frame", timeout=30)
            run(lease("steal"))
            wait_until(lambda: scene.worker().get("leases_lost", 0) == 1, "the renewal to be refused", timeout=30)
            assert scene.worker()["wards_owned"] == []
            # the ward's agent is another worker's now: this one stops expecting it (no "agent offline" alarm here)
            wait_until(lambda: scene.worker().get("agents_handed_over", 0) == handed + 1, "the ward's agent handed over", timeout=10)
            assert "edge-L" not in scene.hub.agents.offline() and "edge-L" not in scene.hub.agents.known
            assert scene.hub.state.beds[scene.hub.state.index["L-01"]].agent == ""
            last = run(publish(pub, 2))
            time.sleep(2 * FETCH_WAIT_S)  # a consumer still running would have fetched it by now
            assert run(consumer_state(scene.stream, "L"))[:2] == (1, 0) and scene.worker()["frames_acked"] == 1
            run(lease("free"))  # the thief gives it back
            wait_until(lambda: run(consumer_state(scene.stream, "L")) == (0, 0, last), "the worker to take it back", timeout=30)
            stats = scene.worker()
            back = dict(scene.hub.agents.online), scene.hub.state.beds[scene.hub.state.index["L-01"]].agent
        assert stats["wards_owned"] == ["L"] and stats["leases_taken"] == 2 and stats["frames_acked"] == 2, stats
        assert back == ({"edge-L": 1}, "edge-L")  # taken back: its agent is this worker's again
        assert stored_counts(influx, scene.db) == published_counts(pub.acked)
    finally:
        run(removed(scene.stream, scene.bucket))


def test_a_nats_without_jetstream_at_start_leaves_the_hub_serving_and_the_worker_retrying(tmp_path: Path, influx: Influxd) -> None:
    """A real fault: the worker's server answers, but with no JetStream (as a cluster still electing its leader
    would refuse): the lease bucket cannot be opened. The hub must go on serving and the worker keep trying; once
    the server comes back with JetStream on the same port, the worker takes its ward."""
    port = listen_port(set())
    scene = Scene(tmp_path, influx, ["N"])
    scene.cfg = worker_config(tmp_path, scene.stream, scene.prefix, scene.bucket, ["N"], servers=[f"nats://127.0.0.1:{port}"])
    scene.hub = Hub(scene.cfg, open_stores(influx.store_url(scene.db, state=scene.state, flush_ms=100), tmp_path),
                    policy=alarm_policy(), tables=score_tables())  # fmt: skip
    scene.register("edge-N", "N", ("N-01",))
    plain = subprocess.Popen([nats_server(), "-a", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with_js: subprocess.Popen | None = None
    try:
        with serving(create_app(scene.hub), "hub") as base:
            wait_until(lambda: scene.worker().get("lease_bucket_failures", 0) >= 2, "the worker to retry the lease bucket", timeout=60)
            assert get_json(base + "/healthz", as_=None)["ok"] and scene.worker()["wards_owned"] == []
            plain.kill()
            plain.wait(10)
            store = tmp_path / "js"
            with_js = subprocess.Popen([nats_server(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            wait_until(lambda: scene.worker()["wards_owned"] == ["N"], "the worker to own ward N once JetStream answers", timeout=60)
    finally:
        for proc in (plain, with_js):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)


def alarm_states(state: Path, bed: str, kind: str) -> dict[str, str]:
    """Alarm id -> state, of every alarm of ``kind`` on ``bed`` the shared state store holds."""
    with state_connection(state) as db:
        rows = db.execute("SELECT id, state, body FROM alerts").fetchall()
    return {i: st for i, st, body in rows if json.loads(body)["bed"] == bed and json.loads(body)["kind"] == kind}


def test_an_open_alarm_of_a_ward_another_worker_owns_is_left_alone_then_carried_on_by_the_worker_that_takes_the_ward(
    tmp_path: Path, influx: Influxd
) -> None:
    """Alarm state moves with the ward: a worker neither resolves nor escalates the alarms of a ward it does not own
    (it has no data there), and the worker that takes the ward carries them on under their ids, raising no second
    alarm for the same condition. Its registered agent is expected from the take."""
    scene = Scene(tmp_path, influx, ["M"])
    scene.register("edge-M", "M", ("M-01",))
    now = int(time.time() * 1000)
    kind = "limit:spo2_low"
    raised = now - 60_000
    alarm = Alert(id=new_id(raised), subject="M-01", bed="M-01", ward="M", kind=kind, category="physiological", priority="high",
                  state="active", title="SpO2 low", detail="SpO2 85 %", raised=raised, updated=raised, tier_role="bedside_nurse",
                  tier_since=raised)  # fmt: skip
    with state_connection(scene.state) as db:  # raised by the ward's owner, another worker, before this one starts
        db.execute("INSERT INTO alerts (id, state, body) VALUES (?, ?, ?)", (alarm.id, alarm.state, json.dumps(alarm.to_json())))
        db.execute("INSERT INTO agents (agent, ward, beds, forgotten) VALUES ('edge-M', 'M', '[\"M-01\"]', 0)")  # heard there
        db.commit()

    async def setup() -> None:
        nc = await connect()
        try:
            js = nc.jetstream()
            await make_stream(js, scene.stream, scene.prefix)
            kv = await js.create_key_value(KeyValueConfig(bucket=scene.bucket, history=1, ttl=6))  # the workers' TTL
            await kv.create("M", b"the-other-worker")
        finally:
            await nc.close()

    async def give_back_and_publish() -> Publisher:
        nc = await connect()
        try:
            await (await nc.jetstream().key_value(scene.bucket)).delete("M")
            pub = Publisher(nc.jetstream(), "M", "edge-M", scene.prefix)
            for seq in range(1, 6):  # SpO2 94-98 %: the condition is gone
                await pub.publish(obs_frame(seq, ("M-01",), now))
            return pub
        finally:
            await nc.close()

    ticks = [0]  # the hub's ticks, counted: each one evaluates every alarm
    tick = scene.hub.tick

    def counted_tick() -> None:
        tick()
        ticks[0] += 1

    scene.hub.tick = counted_tick  # type: ignore[method-assign]
    run(setup())
    try:
        with serving(create_app(scene.hub), "hub"):
            wait_until(lambda: scene.worker().get("alarms_let_go", 0) == 1, "the worker to let the ward's alarm go", timeout=30)
            assert alarm.id not in scene.hub.book.by_id and scene.worker()["wards_owned"] == []
            assert scene.worker()["agents_handed_over"] == 1 and "edge-M" not in scene.hub.agents.offline()  # not expected here
            done = ticks[0]  # three ticks (clear delay 0 s): a worker that judged the ward would have resolved it by then
            wait_until(lambda: ticks[0] >= done + 3, "three ticks of the hub", timeout=10)
            assert alarm_states(scene.state, "M-01", kind) == {alarm.id: "active"}
            run(give_back_and_publish())
            wait_until(lambda: scene.worker().get("alarms_adopted", 0) == 1, "the worker to take the ward's alarm", timeout=30)
            assert scene.worker()["wards_owned"] == ["M"] and scene.worker()["agents_expected"] == 1
            wait_until(lambda: alarm_states(scene.state, "M-01", kind) == {alarm.id: "resolved"}, "the alarm resolved", timeout=30)
    finally:
        run(removed(scene.stream, scene.bucket))


def test_an_agents_status_reports_reach_the_worker_owning_its_ward_and_a_strangers_are_refused(tmp_path: Path, influx: Influxd) -> None:
    """A registered agent's report of a disconnected monitor raises the device alarm on the worker owning its ward (its
    spool floor, the stream's, is not taken as stored); a report from an agent not registered to the ward is counted,
    audited and changes nothing."""
    scene = Scene(tmp_path, influx, ["S"])
    scene.register("edge-S", "S", ("S-01",))
    run(removed(scene.stream))  # nothing left from an earlier run
    down = {"bed": "S-01", "device": "mon-S01", "status": "disconnected", "detail": "link", "t": 1_000}

    async def report(agent: str, devices: tuple[dict, ...], floor: int) -> None:
        nc = await connect()
        try:
            await make_stream(nc.jetstream(), scene.stream, scene.prefix)
            await nc.publish(status_subject("S", agent, scene.status_prefix), encode_edge(Status(devices, {"floor": floor})),
                             headers=status_headers(agent, 7))  # fmt: skip
            await nc.flush()
        finally:
            await nc.close()

    def device_alarms() -> list[Alert]:
        return [a for a in list(scene.hub.book.open.values()) if a.kind == "technical:device_disconnected"]

    try:
        with serving(create_app(scene.hub), "hub"):
            wait_until(lambda: scene.worker()["wards_owned"] == ["S"], "the worker to own ward S", timeout=30)
            # not registered; sent until heard: the lease is taken a moment before the ward's status subscription exists,
            # and a report (core NATS, not stored) sent in that moment is heard by nobody, as an agent's next one is
            wait_until(lambda: run(report("edge-X", ({**down, "bed": "S-01"},), 0)) or scene.worker().get("status_refused", 0) >= 1,
                       "the stranger's report to be refused", timeout=10)  # fmt: skip
            assert not device_alarms()
            wait_until(lambda: run(report("edge-S", (down,), 500)) or scene.worker().get("status_reports", 0) >= 1,
                       "the agent's report to be heard", timeout=10)  # fmt: skip
            alarm = wait_until(device_alarms, "the device alarm", timeout=10)[0]
            assert alarm.bed == "S-01" and alarm.ward == "S"
            assert scene.hub.seqs.last_durable("edge-S", 7) == 0  # the stream's floor is not a stored watermark
            run(report("edge-S", ({**down, "status": "ok"},), 500))
            wait_until(lambda: not device_alarms() or all(a.state == "resolved" for a in device_alarms()), "the alarm to clear", timeout=15)
            audit = run(scene.hub.state_store.audit_entries(None, f"subject:{scene.status_prefix}.S.edge-X", 0, 2**62, 10))
            assert [e["action"] for e in audit] == ["edge.jetstream_refused"]
    finally:
        run(removed(scene.stream, scene.bucket))
