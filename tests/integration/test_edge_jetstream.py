"""The whole edge path onto JetStream, with real processes: simulator (ptys) -> ``teleicu edge`` -> NATS with authorisation.

``teleicu sim`` speaks TSP/1 on real pty pairs and writes the edge config; the
test switches it to ``uplink.transport: jetstream`` with a password file and
runs ``teleicu edge --record``. After SIGTERM (the agent flushes and waits for
its acknowledgements), the stream must hold exactly the frames the agent
numbered, once each by ``Nats-Msg-Id``, and their samples must be exactly the
samples the agent recorded as spooled.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from nats_cluster import NatsCluster, connected, stream_messages
from support import wait_until

from wire.codec import decode_edge
from wire.jetstream_contract import parse_frame_headers
from wire.messages import ObsFrame, WaveChunk
from wire.sample_record import read_record, samples_digest

pytestmark = pytest.mark.integration


def spawn(tmp: Path, name: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "teleicu", *args], stdout=(tmp / f"{name}.log").open("wb"), stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))  # fmt: skip


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{proc.args[3]} did not stop within 20 s of SIGTERM") from None
    return proc.returncode


def stream_count(server: NatsCluster) -> int:
    async def count() -> int:
        async with connected(server.urls, user="admin", password=server.admin_password) as nc:
            try:
                return (await nc.jetstream().stream_info("TELEICU_FRAMES")).state.messages
            except Exception:  # noqa: BLE001 - not created yet
                return 0

    return asyncio.run(count())


def test_a_simulated_ward_streams_into_jetstream_exactly_once(nats_single: NatsCluster, tmp_path: Path) -> None:
    server = nats_single
    server.start()
    server.wait_ready()
    cfg = tmp_path / "edge-A.yaml"
    sim = spawn(tmp_path, "sim", "sim", "--ward", "A", "--beds", "4", "--seed", "5", "--edge-config", str(cfg),
                "--hub", "ws://127.0.0.1:9/ws/edge", "--waveforms", "1", "--nibp-interval", "10")  # fmt: skip
    edge = None
    try:
        wait_until(lambda: sim.poll() is not None or cfg.exists(), "the simulator to write the edge config")
        assert sim.poll() is None, (tmp_path / "sim.log").read_text()
        raw = yaml.safe_load(cfg.read_text())
        del raw["hub"]
        raw["uplink"] = {"transport": "jetstream", "flush_ms": 100}
        raw["jetstream"] = {"servers": server.urls, "user": "edge", "password_file": "edge-A.nats", "stream": {"replicas": 1}}
        cfg.write_text(yaml.safe_dump(raw))
        (tmp_path / "edge-A.nats").write_text(server.edge_password + "\n")
        record, stats = tmp_path / "edge.record.jsonl", tmp_path / "edge.stats.json"
        edge = spawn(tmp_path, "edge", "edge", "--config", str(cfg), "--record", str(record), "--stats-file", str(stats))
        wait_until(lambda: edge.poll() is not None or stream_count(server) >= 150, "150 frames in the stream", timeout=60, interval=0.5)
        assert edge.poll() is None, (tmp_path / "edge.log").read_text()[-3000:]
        assert stop(sim) == 0, (tmp_path / "sim.log").read_text()[-3000:]
        assert stop(edge) == 0, (tmp_path / "edge.log").read_text()[-3000:]
    finally:
        for p in (edge, sim):
            if p is not None and p.poll() is None:
                p.kill()

    edge_stats = json.loads(stats.read_text())
    with sqlite3.connect(tmp_path / "edge-A.spool.sqlite3") as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
    numbered = meta["next_seq"] - 1
    assert edge_stats["spool"]["frames"] == 0 and edge_stats["spool"]["dropped_frames"] == 0, edge_stats
    assert edge_stats["acked_seq"] == numbered and edge_stats["uplink"]["frames_acked"] == numbered

    async def read() -> list:
        async with connected(server.urls, user="admin", password=server.admin_password) as nc:
            return await stream_messages(nc, "TELEICU_FRAMES", "teleicu.frames.>")

    msgs = asyncio.run(read())
    ids = Counter(m.headers["Nats-Msg-Id"] for m in msgs)
    assert set(ids.values()) == {1}, [i for i, n in ids.items() if n > 1][:10]
    assert set(ids) == {f"edge-A:{meta['epoch']}:{seq}" for seq in range(1, numbered + 1)}

    numerics: dict[tuple[str, str, int], float | None] = {}
    waves: dict[tuple[str, str, int], tuple[int, str]] = {}
    for m in msgs:
        key = parse_frame_headers(m.subject, m.headers)
        assert (key.ward, key.agent, m.subject) == ("A", "edge-A", "teleicu.frames.A.edge-A")
        frame = decode_edge(m.data)
        assert frame.seq == key.seq
        if isinstance(frame, ObsFrame):
            for o in frame.obs:
                numerics[(o.bed, o.param, o.t_dev)] = o.value
        else:
            assert isinstance(frame, WaveChunk)
            waves[(frame.bed, frame.lead, frame.t_first)] = (len(frame.samples), samples_digest(frame.samples))
    rec = read_record(record)
    assert len(rec.numerics) > 50 and len(rec.waves) > 10
    assert numerics == rec.numerics
    assert waves == rec.waves
