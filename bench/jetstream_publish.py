"""Benchmark: the edge agent's JetStream uplink publishing to the local NATS server (127.0.0.1:4222).

Two measurements with the real uplink (``edge_agent.jetstream_uplink``), its
real spool (SQLite, fsynced) and a fresh R1 stream on the local server, deleted
afterwards:

* **backlog**: ``--frames`` numerics frames spooled before the connection (an
  outage's backlog), then drained: frames/s from connection to an empty spool,
  the publish-to-acknowledgement p50/p99 while the window is full, and the
  uplink process's CPU time per frame;
* **live**: a ward producing ``--rate`` frames/s for ``--seconds``, spooled
  every 250 ms (the default ``flush_ms``): the publish-to-acknowledgement
  p50/p99 at that load, and the CPU per frame and in cores (this process:
  producing, encoding, the fsynced spool, publishing; nats-server not included).

One frame is a 10-observation numerics frame (~1.15 KB as ``edge_agent``
encodes it).

    .venv/bin/python bench/jetstream_publish.py [--frames 20000] [--window 64] [--rate 2000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats
from pydantic import SecretStr

from edge_agent.config import JetStreamSection, UplinkSettings
from edge_agent.jetstream_uplink import ACK_LATENCIES, JetStreamUplink
from wire.jetstream_stream import StreamSettings
from wire.messages import Observation
from wire.nats_connection import NatsCredentials

URL = "nats://127.0.0.1:4222"
PARAMS = ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "nibp_map", "etco2", "pr", "ibp_sys")


def add_frame(up: JetStreamUplink, i: int) -> None:
    t = 1_700_000_000_000 + i * 250
    for k, param in enumerate(PARAMS):
        up.add_observation(Observation(f"B-{i % 25:02d}", param, 60.0 + (i + k) % 40, t, t, "mon"))
    up.flush_observations()


def quantile(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q * 100) - 1] if len(xs) > 1 else (xs[0] if xs else float("nan"))


async def wait(pred, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        await asyncio.sleep(0.002)


async def run_uplink(up: JetStreamUplink):  # type: ignore[no-untyped-def]
    task = asyncio.create_task(up.run())
    await wait(up.connected.is_set, 30)
    return task


async def backlog(tmp: Path, section: JetStreamSection, frames: int) -> None:
    creds = NatsCredentials(user="bench", password=SecretStr("x" * 24))
    up = JetStreamUplink(UplinkSettings(flush_ms=250), section, creds, "bench-B", "B", tmp / "backlog.sqlite3")
    up.ack_latencies = type(up.ack_latencies)(maxlen=frames)
    for i in range(frames):
        add_frame(up, i)
        if i % 1000 == 999:
            up.commit()
    up.commit()
    size = up.spool.stats.bytes / up.spool.stats.frames
    cpu0, t0 = time.process_time(), time.monotonic()
    task = await run_uplink(up)
    await wait(lambda: up.spool.stats.frames == 0, 600)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    lat = [x * 1000 for x in up.ack_latencies]
    print(f"backlog  {frames} frames of {size:.0f} B, window {section.max_in_flight}: {frames / wall:,.0f} frames/s, "
          f"publish->ack p50 {quantile(lat, 0.5):.2f} ms p99 {quantile(lat, 0.99):.2f} ms, "
          f"CPU {cpu / frames * 1e6:.0f} us/frame (publish, ack, spool read and delete)")  # fmt: skip
    up.close()


async def live(tmp: Path, section: JetStreamSection, rate: int, seconds: float) -> None:
    creds = NatsCredentials(user="bench", password=SecretStr("x" * 24))
    up = JetStreamUplink(UplinkSettings(), section, creds, "bench-L", "L", tmp / "live.sqlite3")  # flush_ms 250, the default
    task = await run_uplink(up)
    up.ack_latencies.clear()
    n, t0, cpu0 = 0, time.monotonic(), time.process_time()
    while (elapsed := time.monotonic() - t0) < seconds:
        due = int(elapsed * rate)
        while n < due:
            add_frame(up, n)
            n += 1
        await asyncio.sleep(0.05)  # a driver's pace: frames arrive in bursts between flushes
    await wait(lambda: up.outbox_size == 0, 60)
    cpu = time.process_time() - cpu0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    lat = [x * 1000 for x in up.ack_latencies]
    print(f"live     {rate} frames/s for {seconds:g} s (spooled every 250 ms): publish->ack p50 {quantile(lat, 0.5):.2f} ms "
          f"p99 {quantile(lat, 0.99):.2f} ms (last {min(n, ACK_LATENCIES)} frames), CPU {cpu / n * 1e6:.0f} us/frame "
          f"including encoding and the fsynced spool writes, {cpu / seconds:.2f} cores")  # fmt: skip
    up.close()


async def amain(args: argparse.Namespace) -> None:
    stream = f"BENCH_{uuid.uuid4().hex[:8]}"
    prefix = f"bench_{uuid.uuid4().hex[:8]}.frames"
    section = JetStreamSection(servers=[URL], user="bench", password_file="unused", subject_prefix=prefix,
                               max_in_flight=args.window, stream=StreamSettings(name=stream))  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="teleicu-js-bench-") as tmp:
            await backlog(Path(tmp), section, args.frames)
            await live(Path(tmp), section, args.rate, args.seconds)
    finally:
        nc = await nats.connect(URL)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=20_000, help="backlog frames to drain")
    ap.add_argument("--window", type=int, default=64, help="publishes in flight (jetstream.max_in_flight)")
    ap.add_argument("--rate", type=int, default=2_000, help="live frames per second")
    ap.add_argument("--seconds", type=float, default=10.0, help="live run length")
    asyncio.run(amain(ap.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
