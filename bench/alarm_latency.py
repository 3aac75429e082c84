"""Benchmark: alarm latency at 500 beds, from a sample reaching the hub to the alarm reaching a console.

Starts a real hub process, then 10 simulated edge agents (50 beds each, all
numerics at 1 Hz over real WebSockets) and a console client that confirms
deliveries. Every second a few beds that were normal start sending vitals
that score NEWS2 11; the latency of each is the console's receipt of the
"raised" alarm minus the time the triggering frame was sent (loopback, one
clock). NEWS2 alarms have no persistence delay, so this is the hub's own cost.

    .venv/bin/python bench/alarm_latency.py [--beds 500] [--duration 90] [--per-second 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from access import agent_secret, basic_auth, bearer, signed_in_console
from websockets.asyncio.client import connect

from wire.codec import encode_edge
from wire.messages import Hello, ObsFrame, Observation

NORMAL = {"rr": 16, "spo2": 98, "o2": 0, "nibp_sys": 120, "hr": 80, "acvpu": 0, "temp": 37.0}
SICK = {"rr": 18, "spo2": 90, "o2": 1, "nibp_sys": 100, "hr": 100, "acvpu": 2, "temp": 36.5}  # NEWS2 11


def now_ms() -> float:
    return time.time_ns() / 1e6


async def agent(url: str, name: str, secret: str, beds: list[str], sick_at: dict[str, float], stop: asyncio.Event) -> None:
    async with connect(url, additional_headers=basic_auth(name, secret)) as ws:
        await ws.send(encode_edge(Hello(agent=name, epoch=1, ward=name, beds=tuple(beds))).decode())
        await ws.recv()

        async def drain() -> None:
            async for _ in ws:
                pass

        reader = asyncio.create_task(drain())
        seq = 0
        while not stop.is_set():
            t = int(now_ms())
            obs = []
            for bed in beds:
                vitals = SICK if bed in sick_at else NORMAL
                obs += [Observation(bed, k, v, t, t, "bench") for k, v in vitals.items()]
            seq += 1
            await ws.send(encode_edge(ObsFrame(seq, tuple(obs))).decode())
            for bed in beds:  # the frame that carries a bed's first sick values stamps its send time
                if sick_at.get(bed) == 0:
                    sick_at[bed] = now_ms()
            await asyncio.sleep(1.0)
        reader.cancel()


async def console(url: str, headers: dict[str, str], raised_at: dict[str, float], stop: asyncio.Event) -> None:
    async with connect(url, max_size=2**26, additional_headers=headers) as ws:
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            t = now_ms()
            msg = json.loads(raw)
            if msg["type"] == "alert":
                await ws.send(json.dumps({"type": "delivered", "alerts": [msg["alert"]["id"]]}))
                if msg["event"] == "raised" and msg["alert"]["kind"] == "news2":
                    raised_at.setdefault(msg["alert"]["bed"], t)


async def run(args: argparse.Namespace, port: int, state: Path, tmp: Path) -> tuple[list[float], int]:
    stop = asyncio.Event()
    n_agents = max(1, args.beds // 50)
    beds = [[f"W{a}-{b:02d}" for b in range(50)] for a in range(n_agents)]
    secrets = [agent_secret(state, f"W{a}", f"W{a}", tuple(beds[a]), tmp) for a in range(n_agents)]
    client = signed_in_console(state, f"http://127.0.0.1:{port}", tmp)
    sick_at: dict[str, float] = {}
    raised_at: dict[str, float] = {}
    url = f"ws://127.0.0.1:{port}"
    tasks = [asyncio.create_task(console(url + "/ws/console", bearer(client), raised_at, stop))]
    tasks += [asyncio.create_task(agent(url + "/ws/edge", f"W{a}", secrets[a], beds[a], sick_at, stop)) for a in range(n_agents)]
    pool = [b for group in beds for b in group]
    random.Random(1).shuffle(pool)
    await asyncio.sleep(5)  # every bed registered and scored normal
    t_end = time.monotonic() + args.duration
    while time.monotonic() < t_end and pool:
        for _ in range(args.per_second):
            if pool:
                sick_at[pool.pop()] = 0  # the next frame of its agent carries the sick values
        await asyncio.sleep(1.0)
    await asyncio.sleep(3)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return [raised_at[b] - t for b, t in sick_at.items() if t and b in raised_at], len(sick_at)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beds", type=int, default=500)
    ap.add_argument("--duration", type=float, default=90)
    ap.add_argument("--per-second", type=int, default=4)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="teleicu-bench-"))
    hub = subprocess.Popen([sys.executable, "-m", "teleicu", "hub", "--port", str(port), "--db", str(tmp / "s.sqlite3")])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        lat, triggered = asyncio.run(run(args, port, tmp / "s.sqlite3", tmp))
    finally:
        hub.terminate()
        hub.wait(10)
    a = np.array(lat)
    print(f"beds {args.beds}, alarms triggered {triggered}, received {len(a)}")
    print(f"alarm latency (frame sent -> console receipt): p50 {np.percentile(a, 50):.1f} ms, "
          f"p90 {np.percentile(a, 90):.1f} ms, p99 {np.percentile(a, 99):.1f} ms, max {a.max():.1f} ms")  # fmt: skip
    return 0 if len(a) == triggered else 1


if __name__ == "__main__":
    sys.exit(main())
