"""Benchmark: the hub's two hottest codecs, each side by side with the code it replaced, in one run.

- Edge frames: a numerics frame of 25 beds x 7 parameters (175 observations, what
  one ward's agent sends each second) decoded by the reference decoder
  (``wire.codec.decode_edge``: ``json.loads`` and a Python check per field) and by
  the hub's path (``wire.obs_frame_fast.decode_edge``: msgspec typed decoding,
  the reference for anything else).
- Console pushes: a ``beds`` message of ``--beds`` bed rows shaped as
  ``Hub.bed_json`` makes them (vitals, NEWS2, MEWS, qSOFA, patient), encoded with
  ``json.dumps`` (the previous code) and with ``ingest.console_feed.encode`` (orjson).

Reports the median of ``--repeat`` timings of each, and the ratio.

    .venv/bin/python bench/hub_codecs.py [--beds 500] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from ingest.console_feed import encode
from wire import codec, obs_frame_fast
from wire.messages import ObsFrame, Observation

PARAMS = ("hr", "spo2", "rr", "nibp_sys", "nibp_dia", "nibp_mean", "temp")
T0 = 1_764_480_000_000


def ward_frame(beds: int = 25) -> bytes:
    obs = tuple(Observation(f"A-{b:02d}", p, 60.0 + b + k / 10, T0 + b, T0 + b + 3, f"mon-A-{b:02d}")
                for b in range(beds) for k, p in enumerate(PARAMS))  # fmt: skip
    return codec.encode_edge(ObsFrame(seq=123_456, obs=obs))


def bed_row(i: int) -> dict:
    vitals = {p: {"value": 60.0 + i % 40 + k, "t": T0 + i, "age_s": 0.4, "flags": []} for k, p in enumerate(PARAMS)}
    score = {"total": 5, "partial": False, "complete": True, "missing": [], "parts": {p: 1 for p in PARAMS[:6]}}
    return {
        "bed": f"W{i // 25:02d}-{i % 25:02d}", "ward": f"W{i // 25:02d}", "agent": f"edge-W{i // 25:02d}", "online": True,
        "last_rx": T0 + i, "settings": {"spo2_scale": 1},
        "patient": {"patient_id": f"p{i}", "mrn": f"MRN{i:06d}", "name": "Asha Devi", "sex": "female", "birth_date": "1961-04-02",
                    "encounter_id": f"e{i}", "admitted": T0, "diagnosis": "Community-acquired pneumonia", "attending": "Dr Rao"},
        "vitals": vitals, "news2": score | {"band": "medium", "any_three": False}, "mews": score | {"triggered": False},
        "qsofa": score, "rx_hub": T0 + i,
    }  # fmt: skip


def timed(fn: Callable[[], object], repeat: int, inner: int) -> float:
    """Median seconds per call."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        runs.append((time.perf_counter() - t) / inner)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--beds", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    frame = ward_frame()
    assert obs_frame_fast.decode(frame) == codec.decode_edge(frame), "the two decoders disagree"
    ref = timed(lambda: codec.decode_edge(frame), args.repeat, 400)
    fast = timed(lambda: obs_frame_fast.decode_edge(frame), args.repeat, 400)
    print(f"edge frame of 175 observations ({len(frame)} bytes): reference {ref * 1e6:.0f} us, msgspec path {fast * 1e6:.0f} us, "
          f"{ref / fast:.1f}x")  # fmt: skip
    msg = {"type": "beds", "now": T0, "beds": [bed_row(i) for i in range(args.beds)]}
    assert json.loads(encode(msg)) == msg
    old = timed(lambda: json.dumps(msg, separators=(",", ":")), args.repeat, 10)
    new = timed(lambda: encode(msg), args.repeat, 10)
    print(f"console push of {args.beds} beds ({len(encode(msg)) // 1024} KiB): json.dumps {old * 1e3:.2f} ms, orjson {new * 1e3:.2f} ms, "
          f"{old / new:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
