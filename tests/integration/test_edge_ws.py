"""The hub's edge WebSocket on a real socket: validation, error replies, dedup, acks, storage."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from websockets.sync.client import connect

from support import HubProcess, get_json, wait_until
from wire.codec import MAX_TEXT_FRAME, decode_hub, encode_edge
from wire.messages import Ack, ErrorReport, Hello, ObsFrame, Observation, WaveChunk, Welcome

pytestmark = pytest.mark.integration


def now_ms() -> int:
    return time.time_ns() // 1_000_000


AGENT = ("edge-T", "T", ("T-01", "T-02"))  # the agent registered for these beds (its secret issued per hub)


def hello(epoch: int = 1) -> Hello:
    return Hello(agent="edge-T", epoch=epoch, ward="T", beds=("T-01", "T-02"))


def obs(param: str, value: float | None, t: int, bed: str = "T-01", flags: int = 0) -> Observation:
    return Observation(bed, param, value, t, t, "mon-T", flags)


def recv_until_ack(ws, seq: int, timeout: float = 10) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = decode_hub(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        got.append(msg)
        if isinstance(msg, Ack) and msg.seq >= seq:
            return got
    raise AssertionError(f"no ack for seq {seq}; got {got}")


def count_numerics(hub: HubProcess) -> int:
    with sqlite3.connect(hub.db) as db:
        return db.execute("SELECT count(*) FROM numerics WHERE bed LIKE 'T-%'").fetchone()[0]


def test_bad_frames_are_rejected_without_losing_good_ones(hub: HubProcess) -> None:
    t = now_ms()
    with connect(hub.edge_url, additional_headers=hub.agent_auth(*AGENT)) as ws:
        ws.send(encode_edge(hello()).decode())
        assert decode_hub(ws.recv(timeout=5)) == Welcome(0)

        ws.send(encode_edge(ObsFrame(1, (obs("hr", 80, t), obs("spo2", 97, t)))).decode())
        ws.send("{this is not json")
        ws.send(json.dumps({"type": "obs", "seq": 2, "obs": [{"bed": "T-01"}]}))  # schema error, seq known
        ws.send("x" * (MAX_TEXT_FRAME + 10))  # oversized, below the transport's hard limit
        ws.send(json.dumps({"type": "mystery", "seq": 3}))  # rejected: seq 3 is used up
        # one frame mixing good values with implausible, unknown and foreign-bed ones
        ws.send(
            encode_edge(
                ObsFrame(
                    4,
                    (
                        obs("hr", 81, t + 1000),
                        obs("spo2", 140, t + 1000),
                        obs("heart", 80, t + 1000),
                        obs("hr", 80, t + 1000, bed="Z-99"),
                        obs("rr", 18, t + 1000),
                    ),
                )
            ).decode()
        )
        ws.send(encode_edge(WaveChunk(5, "T-01", "ecg_ii", t, 250, 0.005, tuple(range(50)))))
        ws.send(encode_edge(WaveChunk(6, "T-01", "no_such_lead", t, 250, 0.005, (1, 2))))
        replies = recv_until_ack(ws, 6)

        errors = [m for m in replies if isinstance(m, ErrorReport)]
        codes = [e.code for e in errors]
        assert codes.count("malformed") == 1
        assert codes.count("schema") == 1 and next(e for e in errors if e.code == "schema").seq == 2
        assert codes.count("oversized") == 1
        assert codes.count("unknown_type") == 1
        rejected = [e for e in errors if e.code == "rejected"]
        assert len(rejected) == 2
        reasons = {r["param"]: r["reason"] for r in rejected[0].rejected}
        assert set(reasons) == {"spo2", "heart", "hr"}
        assert "plausible range" in reasons["spo2"] and "unknown parameter" in reasons["heart"]
        assert "not among the beds" in reasons["hr"]
        assert rejected[1].rejected[0]["lead"] == "no_such_lead"

        # the connection survived every bad frame: it still takes data
        ws.send(encode_edge(ObsFrame(7, (obs("temp", 37.1, t),))).decode())
        recv_until_ack(ws, 7)

    bed = get_json(f"{hub.base}/api/beds/T-01")
    assert bed["vitals"]["hr"]["value"] == 81
    assert bed["vitals"]["spo2"]["value"] == 97  # the implausible 140 never replaced it
    assert bed["vitals"]["rr"]["value"] == 18 and bed["vitals"]["temp"]["value"] == 37.1
    assert count_numerics(hub) == 5  # hr, spo2, hr, rr, temp — the good values, all of them
    stats = get_json(f"{hub.base}/api/stats")
    assert stats["counters"]["frames_rejected"] == 4
    assert stats["counters"]["obs_rejected"] == 4
    assert stats["store"]["wave_chunks_written"] == 1


def test_duplicates_are_dropped_and_acknowledged(hub: HubProcess) -> None:
    t = now_ms()
    frames = [ObsFrame(s, (obs("hr", 70 + s, t + s * 1000),)) for s in range(1, 6)]
    with connect(hub.edge_url, additional_headers=hub.agent_auth(*AGENT)) as ws:
        ws.send(encode_edge(hello(epoch=77)).decode())
        assert decode_hub(ws.recv(timeout=5)) == Welcome(0)
        for f in frames:
            ws.send(encode_edge(f).decode())
        recv_until_ack(ws, 5)
    # reconnect: the hub says what it holds; a replay of everything stores nothing twice
    with connect(hub.edge_url, additional_headers=hub.agent_auth(*AGENT)) as ws:
        ws.send(encode_edge(hello(epoch=77)).decode())
        assert decode_hub(ws.recv(timeout=5)) == Welcome(5)
        for f in frames:
            ws.send(encode_edge(f).decode())
        recv_until_ack(ws, 5)
    assert count_numerics(hub) == 5
    stats = get_json(f"{hub.base}/api/stats")
    assert stats["counters"]["frames_duplicate"] == 5
    assert stats["counters"]["frames_ingested"] == 5


def test_dedup_survives_a_hub_restart(tmp_path) -> None:
    from support import start_hub

    t = now_ms()
    first = start_hub(tmp_path)
    try:
        with connect(first.edge_url, additional_headers=first.agent_auth(*AGENT)) as ws:
            ws.send(encode_edge(hello(epoch=5)).decode())
            decode_hub(ws.recv(timeout=5))
            for s in (1, 2, 3):
                ws.send(encode_edge(ObsFrame(s, (obs("hr", 60 + s, t + s),))).decode())
            recv_until_ack(ws, 3)
    finally:
        first.stop()
    second = start_hub(tmp_path, db=first.db)
    try:
        with connect(second.edge_url, additional_headers=second.agent_auth(*AGENT)) as ws:
            ws.send(encode_edge(hello(epoch=5)).decode())
            assert decode_hub(ws.recv(timeout=5)) == Welcome(3)
    finally:
        second.stop()


def test_data_before_hello_is_a_protocol_error(hub: HubProcess) -> None:
    with connect(hub.edge_url, additional_headers=hub.agent_auth(*AGENT)) as ws:
        ws.send(encode_edge(ObsFrame(1, (obs("hr", 80, now_ms()),))).decode())
        msg = decode_hub(ws.recv(timeout=5))
        assert isinstance(msg, ErrorReport) and msg.code == "protocol"
        ws.send(encode_edge(hello()).decode())
        assert isinstance(decode_hub(ws.recv(timeout=5)), Welcome)


def test_trend_api_returns_stored_points(hub: HubProcess) -> None:
    t = now_ms() - 10_000
    with connect(hub.edge_url, additional_headers=hub.agent_auth(*AGENT)) as ws:
        ws.send(encode_edge(hello(epoch=9)).decode())
        decode_hub(ws.recv(timeout=5))
        ws.send(encode_edge(ObsFrame(1, tuple(obs("hr", 60 + i, t + i * 1000) for i in range(10)))).decode())
        recv_until_ack(ws, 1)
    body = wait_until(lambda: get_json(f"{hub.base}/api/beds/T-01/trend?param=hr&since={t}"), "trend")
    assert [p["value"] for p in body["points"]] == [60 + i for i in range(10)]
    assert [p["t"] for p in body["points"]] == [t + i * 1000 for i in range(10)]
