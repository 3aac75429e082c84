"""A small ward of real processes for fault tests: simulated monitors on ptys and an edge agent that records.

``Ward(tmp, hub)`` starts ``teleicu sim`` (BEDS beds, waveforms on, writing the
edge config) and ``teleicu edge --record``: the agent writes every observation
to ``record.jsonl`` once it is in its spool, so a test can compare what the
edge took in with what the hub stored, sample by sample.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from support import HubProcess, wait_until

BEDS = 6


def read_samples(path: Path) -> dict[tuple[str, str, int], float | None]:
    """A JSON-lines sample record (``[bed, param, t, value, flags]`` per line) as {(bed, param, t): value}."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        bed, param, t, value, _flags = json.loads(line)
        out[(bed, param, t)] = value
    return out


class Ward:
    def __init__(self, tmp: Path, hub: HubProcess) -> None:
        self.tmp, self.hub = tmp, hub
        self.cfg = tmp / "edge.yaml"
        self.record = tmp / "record.jsonl"
        self.sim = self.spawn("sim", "sim", "--ward", "A", "--beds", str(BEDS), "--seed", "9", "--edge-config", str(self.cfg),
                              "--hub", hub.edge_url, "--waveforms", "2", "--nibp-interval", "20")  # fmt: skip
        wait_until(self.cfg.exists, "the simulator's edge config")
        self.edge = self.start_edge()

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        with (self.tmp / f"{name}.log").open("ab") as out:
            return subprocess.Popen([sys.executable, "-m", "teleicu", *args], stdout=out, stderr=subprocess.STDOUT,
                                    env=dict(os.environ, PYTHONUNBUFFERED="1"))  # fmt: skip

    def start_edge(self) -> subprocess.Popen:
        return self.spawn("edge", "edge", "--config", str(self.cfg), "--record", str(self.record),
                          "--stats-file", str(self.tmp / "edge.stats.json"))  # fmt: skip

    def recorded(self) -> dict[tuple[str, str, int], float | None]:
        return read_samples(self.record)

    def stored(self) -> dict[tuple[str, str, int], float | None]:
        with sqlite3.connect(self.hub.db) as db:
            return {(b, p, t): v for b, p, t, v in db.execute("SELECT bed, param, t, value FROM numerics")}

    def stop(self, proc: subprocess.Popen, within: float = 10) -> int:
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = proc.wait(within)  # raises if it does not stop in time
        assert time.monotonic() - t0 < within
        return rc

    def all_stored_exactly_once(self) -> None:
        """Stop the monitors, let the edge drain, stop it, then compare sample by sample."""
        assert self.stop(self.sim) == 0
        recorded = wait_until(lambda: (r := self.recorded()) and set(r) <= set(self.stored()) and r,
                              "every recorded sample to reach the store", timeout=90, interval=0.5)  # fmt: skip
        assert self.stop(self.edge) == 0, (self.tmp / "edge.log").read_text()[-3000:]
        recorded = self.recorded()  # the final flush on SIGTERM may have added a few
        stored = wait_until(lambda: (s := self.stored()) and set(recorded) <= set(s) and s, "the final flush to be stored", 30, 0.5)
        assert set(stored) == set(recorded), f"missing {len(set(recorded) - set(stored))}, unexpected {len(set(stored) - set(recorded))}"
        diff = [k for k in recorded if recorded[k] != stored[k]]
        assert not diff, f"values differ for {diff[:5]}"
        # "exactly once": the table's key is (bed, param, device time), so a sample cannot be stored twice;
        # what is checked above is that none is missing, none is extra, and each has its value

    def cleanup(self) -> None:
        for p in (self.edge, self.sim):
            if p.poll() is None:
                p.kill()
                p.wait()
