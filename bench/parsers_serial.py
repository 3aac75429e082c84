"""Benchmark: throughput of the serial drivers' sans-I/O parsers (tsp, s5, nonin), in messages per second.

One command, reproducible (fixed seeds)::

    .venv/bin/python bench/parsers_serial.py [--seconds 3] [--chunk 4096] [--json]

For each protocol it encodes a stream with the simulators' encoders (a message
is one TSP/1 numerics frame, one S/5 displayed-values record, one Nonin
25-frame packet; the TSP stream also carries the five 50-sample ECG frames of
each second, counted as messages too), feeds it to a fresh parser in chunks of
``--chunk`` bytes (what one serial read returns), and reports messages/s,
MB/s, and what one bed at the protocol's real rate costs in CPU (TSP 6
messages/s, S/5 1 record/s, Nonin 3 packets/s) as a share of one core, also
for 8 beds. A second row per protocol runs the same stream through
``LineNoise`` at 1 % of frames, to show that recovering from faults does not
cost much more.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from edge_agent.drivers.nonin import NoninParser
from edge_agent.drivers.s5 import S5Parser
from edge_agent.drivers.tsp import TspParser
from edge_agent.events import ParseError
from simulators import nonin_encoder, s5_encoder, tsp_encoder
from simulators.physiology import ECG_LEAD, ECG_RATE_HZ, ECG_SCALE_MV, Physiology
from simulators.scenarios import get_scenario
from simulators.serial_monitor import LineNoise

SECONDS_OF_DATA = 600  # simulated seconds encoded per stream
REAL_RATE = {"tsp": 6.0, "s5": 1.0, "nonin": 3.0}  # messages a second from one bed


@dataclass
class Result:
    protocol: str
    noise: float
    messages: int
    bytes: int
    seconds: float
    messages_per_s: float
    mb_per_s: float
    core_share_per_bed: float
    core_share_8_beds: float
    parse_errors: int


def _readings(seed: int) -> list[dict[str, float]]:
    phys = Physiology(seed, get_scenario("sepsis").vitals, nibp_interval_s=60)
    return [phys.step() for _ in range(SECONDS_OF_DATA)]


def tsp_frames(seed: int = 1) -> list[bytes]:
    phys = Physiology(seed, get_scenario("sepsis").vitals)
    out = []
    t0 = 1_700_000_000_000
    for s, v in enumerate(_readings(seed)):
        for k in range(5):
            out.append(tsp_encoder.encode_wave(t0 + 1000 * s + 200 * k, ECG_LEAD, ECG_RATE_HZ, ECG_SCALE_MV, phys.ecg(50)))
        out.append(tsp_encoder.encode_numerics(t0 + 1000 * s, dict(v)))
    return out


def s5_frames(seed: int = 1) -> list[bytes]:
    out = []
    held: dict[str, float] = {}
    for s, v in enumerate(_readings(seed)):
        held.update({k: x for k, x in v.items() if k.startswith("nibp")})
        values = dict(v) | held
        groups = s5_encoder.basic_from_values(values, nibp_hr=v["hr"])
        out.append(s5_encoder.frame(s5_encoder.encode_record(1_700_000_000 + s, s5_encoder.encode_basic(groups), dri_level=9, r_nbr=s)))
    return out


def nonin_frames(seed: int = 1) -> list[bytes]:
    out = []
    for v in _readings(seed):
        for _ in range(3):
            out += nonin_encoder.encode_packet(int(v["hr"]), int(v["spo2"]))
    return out


def run_one(protocol: str, frames: list[bytes], make: Callable[[], object], messages: int, *, noise: float, seconds: float, chunk: int) -> Result:
    if noise:
        frames = LineNoise(noise, seed=7).apply(frames, 1 if protocol == "s5" else 0)
    data = b"".join(frames)
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    runs = 0
    errors = 0
    t_start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds or runs == 0:
        p = make()
        for c in chunks:
            events = p.feed(c)  # type: ignore[attr-defined]
            errors += sum(1 for e in events if isinstance(e, ParseError) and e.code != "unmapped")
        runs += 1
        elapsed = time.perf_counter() - t_start
    rate = runs * messages / elapsed
    share = REAL_RATE[protocol] / rate
    return Result(
        protocol=protocol,
        noise=noise,
        messages=runs * messages,
        bytes=runs * len(data),
        seconds=round(elapsed, 3),
        messages_per_s=round(rate),
        mb_per_s=round(runs * len(data) / elapsed / 1e6, 2),
        core_share_per_bed=share,
        core_share_8_beds=8 * share,
        parse_errors=errors // runs,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum wall time per measurement (default 3)")
    ap.add_argument("--chunk", type=int, default=4096, help="bytes per feed() call (default 4096)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    clock = lambda: 0
    cases = [
        ("tsp", tsp_frames(), lambda: TspParser("A-01", "d", clock_ms=clock), SECONDS_OF_DATA * 6),
        ("s5", s5_frames(), lambda: S5Parser("A-01", "d", clock_ms=clock), SECONDS_OF_DATA),
        ("nonin", nonin_frames(), lambda: NoninParser("A-01", "d", clock_ms=clock), SECONDS_OF_DATA * 3),
    ]
    results = []
    for noise in (0.0, 0.01):
        for protocol, frames, make, messages in cases:
            results.append(run_one(protocol, frames, make, messages, noise=noise, seconds=args.seconds, chunk=args.chunk))
    if args.json:
        print(json.dumps({"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
                          "numpy": np.__version__, "results": [asdict(r) for r in results]}, indent=1))  # fmt: skip
        return 0
    print(f"serial parser throughput (Python {platform.python_version()}, chunks of {args.chunk} bytes)")
    print(f"{'protocol':8} {'noise':>5} {'messages/s':>11} {'MB/s':>6} {'1 bed, % core':>14} {'8 beds, % core':>15} {'errors/run':>10}")
    for r in results:
        print(
            f"{r.protocol:8} {r.noise:5.0%} {r.messages_per_s:11,} {r.mb_per_s:6.2f} "
            f"{100 * r.core_share_per_bed:14.4f} {100 * r.core_share_8_beds:15.4f} {r.parse_errors:10}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
