"""Benchmark: the hub's HL7 ADT parser (messages/s), and the ADT listener on loopback.

Parser (sans-I/O, in process), each workload fed for ``--duration`` seconds, best of ``--repeat``,
one message per ``feed`` and the event accepted at once (as the listener does):

* ``simulator``: the six triggers as ``simulators.his_adt`` writes them for 50 synthetic patients
  (with ABHA numbers, attending, diagnoses);
* ``errors``: messages that take the AE/AR paths (unknown bed, no MRN, unmapped disposition,
  unsupported trigger).

Listener (``--tcp``): an ``AdtListener`` whose ``apply`` stores nothing, and the simulator's
``HisClient`` sending ``--count`` messages one at a time, each waiting for its ACK (HL7
original mode, as a HIS does). Reports messages/s from the first send to the last ACK.

    .venv/bin/python bench/parsers_adt.py [--duration 2] [--repeat 3] [--tcp --count 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time

from ingest.adt.events import AdtError
from ingest.adt.listener import AdtListener
from ingest.adt.parser import AdtParser
from simulators.his_adt import DIAGNOSES, HisClient, encode_adt, mllp, synthetic_patients

T0 = 1_800_000_000_000
BEDS = {f"MICU^^{i:02d}": f"ICU1-{i:02d}" for i in range(1, 13)}
DOC = ("D1047", "Rao", "Vivek")


def simulator_frames() -> list[bytes]:
    frames = []
    for i, p in enumerate(synthetic_patients(50, seed=9)):
        loc, other = f"MICU^^{i % 12 + 1:02d}", f"MICU^^{(i + 1) % 12 + 1:02d}"
        t = T0 + i * 60_000
        frames += [
            mllp(encode_adt("A01", p, control_id=f"A{i}", t_ms=t, location=loc, attending=DOC, diagnosis=DIAGNOSES[i % len(DIAGNOSES)])),
            mllp(encode_adt("A02", p, control_id=f"B{i}", t_ms=t, location=other, prior_location=loc)),
            mllp(encode_adt("A08", p, control_id=f"C{i}", t_ms=t, location=other, diagnosis=DIAGNOSES[0])),
            mllp(encode_adt("A03", p, control_id=f"D{i}", t_ms=t, location=other, disposition="01")),
            mllp(encode_adt("A13", p, control_id=f"E{i}", t_ms=t, location=other)),
            mllp(encode_adt("A11", p, control_id=f"F{i}", t_ms=t, location=other)),
        ]
    return frames


def error_frames() -> list[bytes]:
    p = synthetic_patients(1, seed=9)[0]
    good = encode_adt("A01", p, control_id="X1", t_ms=T0, location="MICU^^01")
    return [
        mllp(good.replace(b"MICU^^01", b"WARD^^99")),  # unknown location: AE
        mllp(good.replace(p.mrn.encode() + b"^^^SMS^MR", b"")),  # no MRN: AE
        mllp(encode_adt("A03", p, control_id="X2", t_ms=T0, location="MICU^^01", disposition="99")),  # unmapped: AE
        mllp(good.replace(b"ADT^A01", b"ADT^A04")),  # unsupported: AR
    ]


def bench_feed(frames: list[bytes], duration: float) -> float:
    parser = AdtParser(beds=BEDS)
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + duration
    while time.perf_counter() < deadline:
        for f in frames:
            for e in parser.feed(f):
                if not isinstance(e, AdtError):
                    parser.accepted(e.event_id)
            parser.bytes_to_send()
        n += len(frames)
    return n / (time.perf_counter() - t0)


async def bench_tcp(count: int) -> float:
    async def apply(event: object) -> None:
        return None

    listener = AdtListener(apply, BEDS, host="127.0.0.1", port=0, remembered=0)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        assert listener.port is not None
        his = HisClient("127.0.0.1", listener.port)
        patients = synthetic_patients(count, seed=9)
        t0 = time.perf_counter()
        for i, p in enumerate(patients):
            ack = await his.update(p, f"MICU^^{i % 12 + 1:02d}", diagnosis=DIAGNOSES[0])
            assert ack.code == "AA", ack
        elapsed = time.perf_counter() - t0
        await his.close()
        return count / elapsed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per parser workload and run (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per workload; the best is reported (default 3)")
    ap.add_argument("--tcp", action="store_true", help="also measure the listener on loopback")
    ap.add_argument("--count", type=int, default=2000, help="messages per TCP run (default 2000)")
    args = ap.parse_args()
    sim = simulator_frames()
    print(f"# HL7 ADT parser on {platform.python_implementation()} {platform.python_version()}, {platform.machine()}; best of {args.repeat}")
    print("| workload | messages/s | MB/s |")
    print("|---|---|---|")
    for name, frames in (("simulator (6 triggers, 1 msg/feed)", sim), ("errors (AE/AR, 1 msg/feed)", error_frames())):
        rate = max(bench_feed(frames, args.duration) for _ in range(args.repeat))
        mb = rate * sum(len(f) for f in frames) / len(frames) / 1e6
        print(f"| {name} | {rate:,.0f} | {mb:.1f} |", flush=True)
    if args.tcp:
        rate = max(asyncio.run(bench_tcp(args.count)) for _ in range(args.repeat))
        print()
        print("| ADT listener on loopback | messages/s |")
        print("|---|---|")
        print(f"| one at a time, waiting for each ACK | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
