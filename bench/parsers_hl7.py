"""Benchmark: hl7_pcd01 parser throughput (messages/s), and the tcp_listen transport's on loopback.

Parser (sans-I/O, in process), each workload fed for ``--duration`` seconds, best of ``--repeat``:

* ``sample``: the shared sample ORU^R01 (``shared/samples/pcd01_oru_r01.hl7``, 8 values,
  segments ended by ``\\r`` as on the wire), MLLP-framed, 1,000 messages per 64 KiB-ish feed;
* ``sample, 1 msg/feed``: the same, one ``feed`` call (and one ``bytes_to_send``) per message,
  as the transport does when a gateway waits for each ACK;
* ``simulator``: the messages 8 simulated beds send (``simulators.hl7_sim``: 9 values each,
  NIBP cuff codes and the Philips pulse-rate code on some beds);
* ``errors``: messages that take the error paths (unknown bed, bad values and units, AR).

Transport (``--tcp``): a ``TcpListener`` in this process and one client on loopback that sends
``--count`` messages, either waiting for each ACK (HL7 original mode, as gateways do) or all
at once (pipelined). Reports messages/s from the first byte sent to the last ACK read.

    .venv/bin/python bench/parsers_hl7.py [--duration 2] [--repeat 3] [--sample PATH] [--tcp --count 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
from pathlib import Path

from edge_agent.config import DeviceConfig
from edge_agent.drivers import get_driver
from edge_agent.drivers.hl7_pcd01 import Pcd01Parser
from edge_agent.transports.tcp_listen import TcpListener
from simulators.hl7_sim import BedFeed, Hl7Bed, encode_oru, mllp
from simulators.scenarios import assign_scenarios, get_scenario
from wire.messages import Observation

DEFAULT_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "samples" / "pcd01_oru_r01.hl7"
SAMPLE_BEDS = {"ICU^^BED04": "A-04"}
T0 = 1_800_000_000_000


def sample_frame(path: Path) -> bytes:
    if not path.exists():
        raise SystemExit(f"sample message not found at {path}; pass --sample PATH")
    return mllp(path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r"))


def simulator_frames(seconds: int = 10) -> tuple[dict[str, str], list[bytes]]:
    scenarios = assign_scenarios(8, 1)
    specs = [
        Hl7Bed(f"B-{i + 1:02d}", f"ICU-B^^BED{i + 1:02d}", get_scenario(s), i, 30.0, cuff=i % 2 == 1, philips_pr=(i // 2) % 2 == 1)
        for i, s in enumerate(scenarios)
    ]
    feeds = [BedFeed(s) for s in specs]
    frames = []
    for k in range(seconds):
        for f in feeds:
            rows = f.rows(k, T0 + 1000 * k)
            if rows is not None:
                frames.append(mllp(encode_oru(control_id=f"M{len(frames)}", t_ms=T0 + 1000 * k, gateway="GW", eui64="00155DFFFE000001",
                                              patient_id=f"P{f.spec.bed}", location=f.spec.location, rows=rows,
                                              cuff=f.spec.cuff, philips_pr=f.spec.philips_pr)))  # fmt: skip
    return {s.location: s.bed for s in specs}, frames


def error_frames(sample: bytes) -> list[bytes]:
    return [
        sample.replace(b"ICU^^BED04", b"ICU^^BED99"),  # unknown location: AE
        sample.replace(b"|88|", b"|8x8|").replace(b"|266016^MDC_DIM_MMHG^MDC|||||R\r", b"|999^X^MDC|||||R\r", 1),  # AE
        sample.replace(b"ORU^R01", b"ADT^A01"),  # AR
        sample.replace(b"150456^", b"150457^"),  # unknown code: AA, reported
    ]


def bench_feed(beds: dict[str, str], frames: list[bytes], duration: float, batch: int) -> tuple[float, float, float]:
    """Feed ``frames`` round-robin, ``batch`` messages per feed; -> (messages/s, observations/s, MB/s)."""
    parser = Pcd01Parser(beds=beds, device="bench")
    chunks = [b"".join(frames[i : i + batch]) for i in range(0, len(frames), batch)]
    per_round = len(frames)
    round_bytes = sum(len(c) for c in chunks)
    n_msgs = n_obs = n_bytes = 0
    t0 = time.perf_counter()
    deadline = t0 + duration
    while time.perf_counter() < deadline:
        for c in chunks:
            n_obs += sum(isinstance(e, Observation) for e in parser.feed(c))
            parser.bytes_to_send()
        n_msgs += per_round
        n_bytes += round_bytes
    elapsed = time.perf_counter() - t0
    return n_msgs / elapsed, n_obs / elapsed, n_bytes / elapsed / 1e6


async def bench_tcp(frame: bytes, count: int, pipelined: bool) -> float:
    dev = DeviceConfig(id="bench", driver="hl7_pcd01", bed=None, beds=SAMPLE_BEDS, settings={"listen": "127.0.0.1:0"})
    received = 0

    def route(events: list) -> None:
        nonlocal received
        received += len(events)

    listener = TcpListener(dev, get_driver("hl7_pcd01"), route)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        assert listener.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        t0 = time.perf_counter()
        if pipelined:
            writer.write(frame * count)
            for _ in range(count):
                await reader.readuntil(b"\x1c\r")
        else:
            for _ in range(count):
                writer.write(frame)
                await reader.readuntil(b"\x1c\r")
        elapsed = time.perf_counter() - t0
        writer.close()
        return count / elapsed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per parser workload and run (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per workload; the best is reported (default 3)")
    ap.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help=f"sample message (default {DEFAULT_SAMPLE})")
    ap.add_argument("--tcp", action="store_true", help="also measure the tcp_listen transport on loopback")
    ap.add_argument("--count", type=int, default=5000, help="messages per TCP run (default 5000)")
    args = ap.parse_args()

    sample = sample_frame(args.sample)
    sim_beds, sim = simulator_frames()
    workloads = [
        ("sample, 1000 msgs/feed", SAMPLE_BEDS, [sample] * 1000, 1000),
        ("sample, 1 msg/feed", SAMPLE_BEDS, [sample] * 1000, 1),
        ("simulator (8 beds), 1 msg/feed", sim_beds, sim, 1),
        ("errors (AE/AR/unknown code), 1 msg/feed", SAMPLE_BEDS, error_frames(sample), 1),
    ]
    print(f"# hl7_pcd01 on {platform.python_implementation()} {platform.python_version()}, {platform.machine()}; best of {args.repeat}")
    print("| workload | messages/s | observations/s | MB/s |")
    print("|---|---|---|---|")
    for name, beds, frames, batch in workloads:
        best = max((bench_feed(beds, frames, args.duration, batch) for _ in range(args.repeat)), key=lambda r: r[0])
        print(f"| {name} | {best[0]:,.0f} | {best[1]:,.0f} | {best[2]:.1f} |", flush=True)
    if args.tcp:
        print()
        print("| tcp_listen on loopback (sample message) | messages/s |")
        print("|---|---|")
        for pipelined in (False, True):
            rate = max(asyncio.run(bench_tcp(sample, args.count, pipelined)) for _ in range(args.repeat))
            print(f"| {'pipelined' if pipelined else 'one at a time, waiting for each ACK'} | {rate:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
