"""The hub's waveform-analysis worker never outlives the hub, whether it is stopped (SIGTERM) or killed (SIGKILL).

A real hub is sent 12 s of ECG by a real agent, so its worker process is
spawned and judging; then the hub is stopped, and every process it started
(the worker, multiprocessing's resource tracker) must be gone within seconds.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from support import get_json, start_hub, wait_until

from simulators.episodes import generate_episode
from wire.codec import decode_hub, encode_edge, encode_wave_chunk
from wire.messages import Ack, Hello, WaveChunk

pytestmark = pytest.mark.integration

BED, WARD, AGENT = "WX-01", "WX", "edge-WX"


def children_of(pid: int) -> list[int]:
    """Every live process whose parent is ``pid``, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def feed_ecg(hub) -> None:  # type: ignore[no-untyped-def]
    from websockets.sync.client import connect

    ep = generate_episode("normal", 5, duration_s=60)
    counts = np.round(ep.ecg[: 12 * ep.ecg_fs] / 0.001).astype(int)
    t0 = time.time_ns() // 1_000_000 - 12_000
    with connect(hub.edge_url, additional_headers=hub.agent_auth(AGENT, WARD, (BED,))) as ws:
        ws.send(encode_edge(Hello(AGENT, 1, WARD, (BED,))).decode())
        decode_hub(ws.recv(timeout=10))
        per = ep.ecg_fs // 5
        seq = 0
        for i in range(0, len(counts), per):
            seq += 1
            ws.send(encode_wave_chunk(WaveChunk(seq, BED, "ecg_ii", t0 + i * 1000 // ep.ecg_fs, ep.ecg_fs, 0.001,
                                                tuple(int(c) for c in counts[i : i + per]))))  # fmt: skip
        while True:
            msg = decode_hub(ws.recv(timeout=10))
            if isinstance(msg, Ack) and msg.seq == seq:
                break


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_the_analysis_worker_ends_with_the_hub(tmp_path: Path, stop: signal.Signals) -> None:
    hub = start_hub(tmp_path)
    try:
        feed_ecg(hub)
        wait_until(lambda: get_json(hub.base + "/api/stats")["waveform_analysis"].get("rounds", 0) >= 1,
                   "the worker's first round", timeout=20)  # fmt: skip
        started = children_of(hub.proc.pid)
        assert started, "the hub started no worker process"
        os.kill(hub.proc.pid, stop)
        hub.proc.wait(15)
        wait_until(lambda: not any(alive(p) for p in started), f"the hub's children {started} to end", timeout=10)
    finally:
        hub.stop()
