"""A small ward of real processes for fault tests: simulated monitors on ptys and an edge agent that records.

``Ward(tmp, hub)`` starts ``teleicu sim`` (BEDS beds, ECG on two of them,
writing the edge config) and ``teleicu edge --record``: the agent writes every
observation and waveform chunk to ``record.jsonl`` once it is in its spool, so
a test can compare what the edge took in with what the hub stored, sample by
sample and chunk by chunk. The agent sends a status report (with its floor)
every ``STATUS_S``, far more often than its default, so a floor that ran ahead
of the spool would cost data in every test.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from support import HubProcess, wait_until

from teleicu.demo_accounts import register_simulated_ward
from wire.sample_record import read_record, samples_digest

BEDS = 6
STATUS_S = 0.1


def read_samples(path: Path) -> dict[tuple[str, str, int], float | None]:
    """The numerics of a JSON-lines sample record (``wire.sample_record``) as {(bed, param, t): value}."""
    return read_record(path).numerics


def stored_waves(db: Path) -> dict[tuple[str, str, int], tuple[int, str]]:
    """Waveform chunks in the embedded store as {(bed, lead, t_first): (samples, digest)}, as the record has them."""
    with sqlite3.connect(db) as conn:
        return {(b, lead, t): (n, samples_digest(blob)) for b, lead, t, n, blob in conn.execute("SELECT bed, lead, t, n, samples FROM waves")}


class Ward:
    streams_ecg = True  # the simulated monitors send ECG: the record must hold waveform chunks

    def __init__(self, tmp: Path, hub: HubProcess) -> None:
        self.tmp, self.hub = tmp, hub
        self.cfg = tmp / "edge.yaml"
        self.record = tmp / "record.jsonl"
        self.sim = self.spawn("sim", "sim", "--ward", "A", "--beds", str(BEDS), "--seed", "9", "--edge-config", str(self.cfg),
                              "--hub", hub.edge_url, "--waveforms", "2", "--nibp-interval", "20")  # fmt: skip
        wait_until(self.cfg.exists, "the simulator's edge config")
        self.configure()
        self.register()
        self.edge = self.start_edge()

    def configure(self) -> None:
        """Adjust the edge config the simulator wrote, before the agent starts."""
        self.cfg.write_text(self.cfg.read_text() + f"uplink: {{status_s: {STATUS_S}}}\n")

    def register(self) -> None:
        """Issue the agent its secret for the simulated beds, as hospital IT would (``teleicu agents add``)."""
        register_simulated_ward(self.hub.db, self.cfg)

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        with (self.tmp / f"{name}.log").open("ab") as out:
            return subprocess.Popen([sys.executable, "-m", "teleicu", *args], stdout=out, stderr=subprocess.STDOUT,
                                    env=dict(os.environ, PYTHONUNBUFFERED="1"))  # fmt: skip

    def start_edge(self) -> subprocess.Popen:
        return self.spawn("edge", "edge", "--config", str(self.cfg), "--record", str(self.record),
                          "--stats-file", str(self.tmp / "edge.stats.json"))  # fmt: skip

    def recorded(self) -> dict[tuple[str, str, int], float | None]:
        return read_samples(self.record)

    def recorded_waves(self) -> dict[tuple[str, str, int], tuple[int, str]]:
        return read_record(self.record).waves

    def stored_waves(self) -> dict[tuple[str, str, int], tuple[int, str]]:
        return stored_waves(self.hub.db)

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
        """Stop the monitors, let the edge drain, stop it, then compare sample by sample and chunk by chunk."""
        assert self.stop(self.sim) == 0
        wait_until(lambda: (r := self.recorded()) and set(r) <= set(self.stored()) and set(self.recorded_waves()) <= set(self.stored_waves()),
                   "every recorded sample and waveform chunk to reach the store", timeout=90, interval=0.5)  # fmt: skip
        assert self.stop(self.edge) == 0, (self.tmp / "edge.log").read_text()[-3000:]
        recorded, recorded_waves = self.recorded(), self.recorded_waves()  # the final flush on SIGTERM may have added a few
        stored = wait_until(lambda: (s := self.stored()) and set(recorded) <= set(s) and s, "the final flush to be stored", 30, 0.5)
        stored_waves = wait_until(lambda: set(recorded_waves) <= set(w := self.stored_waves()) and (w,),
                                  "the final waveform chunks to be stored", 30, 0.5)[0]  # fmt: skip
        assert set(stored) == set(recorded), f"missing {len(set(recorded) - set(stored))}, unexpected {len(set(stored) - set(recorded))}"
        diff = [k for k in recorded if recorded[k] != stored[k]]
        assert not diff, f"values differ for {diff[:5]}"
        if self.streams_ecg:
            assert recorded_waves, "the ward streams ECG: the record must hold waveform chunks"
        missing = sorted(set(recorded_waves) - set(stored_waves))
        assert not missing, f"{len(missing)} of {len(recorded_waves)} recorded waveform chunks not stored, e.g. {missing[:3]}"
        extra = sorted(set(stored_waves) - set(recorded_waves))
        assert not extra, f"{len(extra)} stored waveform chunks were never recorded, e.g. {extra[:3]}"
        bad = [k for k in recorded_waves if recorded_waves[k] != stored_waves[k]]
        assert not bad, f"samples differ for {len(bad)} chunks, e.g. {bad[:3]}"
        # "exactly once": the tables are keyed by (bed, param, device time) and (bed, lead, first-sample time), so
        # nothing can be stored twice; what is checked above is that none is missing, none is extra, and each
        # sample has its value and each chunk its samples

    def cleanup(self) -> None:
        for p in (self.edge, self.sim):
            if p.poll() is None:
                p.kill()
                p.wait()
