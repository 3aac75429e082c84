"""The hub under hostile or broken input, on real sockets: rate limits, data gaps, fuzzed frames (agents' own
authentication is tested in test_agent_auth.py)."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pytest
import yaml
from config_support import default_raw
from support import HubProcess, console_connect, get_json, start_hub, wait_until
from websockets.sync.client import connect

from wire.codec import decode_hub, encode_edge
from wire.messages import Ack, ErrorReport, Hello, ObsFrame, Observation, WaveChunk

pytestmark = pytest.mark.integration


def hub_with(tmp: Path, **overrides) -> HubProcess:
    cfg = default_raw("hub.yaml") | overrides
    path = tmp / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return start_hub(tmp, extra=("--config", str(path)))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def frame(seq: int, bed: str, t: int, hr: float = 80) -> str:
    return encode_edge(ObsFrame(seq, (Observation(bed, "hr", hr, t, t, "m"),))).decode()


def agent_ws(hub: HubProcess, agent: str, beds: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """An edge connection of ``agent``, registered (with its secret) for ``beds``."""
    return connect(hub.edge_url, additional_headers=hub.agent_auth(agent, "W", beds))


def hello(ws, agent: str, beds: tuple[str, ...], epoch: int = 1) -> None:
    ws.send(encode_edge(Hello(agent=agent, epoch=epoch, ward="W", beds=beds)).decode())
    decode_hub(ws.recv(timeout=5))


def acked_upto(ws, seq: int, timeout: float) -> list:
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = decode_hub(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        got.append(msg)
        if isinstance(msg, Ack) and msg.seq >= seq:
            return got
    raise AssertionError(f"seq {seq} not acknowledged; got {got[-3:]}")


def test_a_flooding_agent_is_slowed_not_dropped_and_does_not_starve_others(tmp_path: Path) -> None:
    hub = hub_with(tmp_path, max_frames_per_s=20)
    try:
        with agent_ws(hub, "flood", ("F-01",)) as flood, agent_ws(hub, "calm", ("C-01",)) as calm:
            hello(flood, "flood", ("F-01",))
            hello(calm, "calm", ("C-01",))
            t = now_ms() - 60_000
            t0 = time.monotonic()
            for s in range(1, 101):
                flood.send(frame(s, "F-01", t + s))
            calm.send(frame(1, "C-01", t))
            acked_upto(calm, 1, timeout=5)  # the calm agent is served while the flood is throttled
            calm_latency = time.monotonic() - t0
            replies = acked_upto(flood, 100, timeout=30)
            flood_time = time.monotonic() - t0
        assert calm_latency < 2.0
        assert flood_time >= 3.0  # 100 frames at 20/s (after a 20-frame burst) take about 4 s
        notices = [m for m in replies if isinstance(m, ErrorReport) and m.code == "rate_limited"]
        assert notices and "nothing dropped" in notices[0].detail
        trend = get_json(f"{hub.base}/api/beds/F-01/trend?param=hr&since={t}&until={t + 1000}")
        assert len(trend["points"]) == 100  # every frame was stored
        assert get_json(f"{hub.base}/api/stats")["counters"]["rate_limited_waits"] > 0
    finally:
        hub.stop()


def test_a_bed_silent_longer_than_gap_s_gets_a_data_gap_event(tmp_path: Path) -> None:
    hub = hub_with(tmp_path, gap_s=1)
    try:
        with agent_ws(hub, "edge-G", ("G-01",)) as ws, console_connect(hub) as console:
            json.loads(console.recv(timeout=5))
            hello(ws, "edge-G", ("G-01",))
            ws.send(frame(1, "G-01", now_ms()))
            acked_upto(ws, 1, timeout=5)
            first = time.monotonic()
            wait_until(lambda: time.monotonic() - first > 1.5, "the bed to be silent for longer than gap_s", timeout=5)
            ws.send(frame(2, "G-01", now_ms()))
            acked_upto(ws, 2, timeout=5)
            gap_msg = None
            deadline = time.monotonic() + 5
            while gap_msg is None and time.monotonic() < deadline:
                msg = json.loads(console.recv(timeout=5))
                gap_msg = msg if msg["type"] == "gap" else None
        assert gap_msg is not None and gap_msg["bed"] == "G-01" and gap_msg["end"] - gap_msg["start"] >= 1500
        gaps = wait_until(lambda: get_json(f"{hub.base}/api/gaps?bed=G-01")["gaps"], "the gap to be stored", timeout=5)
        assert gaps[0]["start"] == gap_msg["start"] and gaps[0]["end"] == gap_msg["end"]
    finally:
        hub.stop()


def test_fuzzed_frames_do_not_disturb_good_agents(hub: HubProcess) -> None:
    rng = random.Random(2026)
    good = [encode_edge(ObsFrame(3, (Observation("A-01", "hr", 80.0, 1, 1, "m"),))),
            encode_edge(WaveChunk(4, "A-01", "ecg_ii", 1, 250, 0.005, tuple(range(40))))]  # fmt: skip
    stop = threading.Event()
    bad_sent = 0

    fuzz = hub.agent_auth("fuzz", "W", ("Z-01",))  # a registered agent gone wrong (a stranger is refused at the door)

    def attacker() -> None:
        nonlocal bad_sent
        while not stop.is_set():
            try:
                with connect(hub.edge_url, additional_headers=fuzz) as ws:
                    if rng.random() < 0.5:
                        hello(ws, rng.choice(("fuzz", "fuzz", "someone-else")), ("Z-01",))
                    for _ in range(200):
                        base = bytearray(rng.choice(good))
                        for _ in range(rng.randrange(1, 6)):
                            base[rng.randrange(len(base))] = rng.randrange(256)
                        payload = bytes(base) if rng.random() < 0.7 else rng.randbytes(rng.randrange(1, 3000))
                        if payload[:2] == b"TW" or rng.random() < 0.5:
                            ws.send(payload)
                        else:
                            ws.send(payload.decode("utf-8", "replace"))
                        bad_sent += 1
            except Exception:  # noqa: BLE001 - the hub may close a hostile connection; keep attacking
                continue

    thread = threading.Thread(target=attacker, daemon=True)
    thread.start()
    try:
        wait_until(lambda: bad_sent > 300, "the attack to be under way", timeout=30)
        t = now_ms() - 30_000
        with agent_ws(hub, "good", ("A-01",)) as ws:
            hello(ws, "good", ("A-01",), epoch=7)
            for s in range(1, 301):
                ws.send(frame(s, "A-01", t + s * 10, hr=60 + s % 50))
            acked_upto(ws, 300, timeout=60)
    finally:
        stop.set()
        thread.join(10)
    assert bad_sent > 300
    points = get_json(f"{hub.base}/api/beds/A-01/trend?param=hr&since={t}&until={t + 4000}")["points"]
    assert len(points) == 300
    assert get_json(f"{hub.base}/healthz", as_=None)["ok"]
    assert get_json(f"{hub.base}/api/stats")["counters"]["frames_rejected"] > 100
