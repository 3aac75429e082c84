"""Benchmark: what a vital-sign sample costs the embedded store as its file grows, by row layout.

Writes ``--beds`` beds × 10 parameters at 1 Hz of device time, as fast as it
can, in commits of a quarter of the beds (the group-commit writer's batches at
that load), on a real WAL file with ``synchronous=FULL`` as the hub opens it
(``ingest.stores.sqlite_db.connect``). Two layouts, one after the other:

* ``per-sample``: the layout before ``ingest.stores.numeric_seconds``, one row
  per sample keyed (bed, param, t), ``INSERT OR REPLACE``;
* ``bed-second``: ``numeric_seconds`` as the store writes it (its ``rows`` and
  ``UPSERT_SQL``), packing included in the time.

Prints µs per sample for each ``--every`` seconds of data, then a trend read
(one parameter of one bed over the whole run) and the file size.

    .venv/bin/python bench/sqlite_numerics.py [--beds 4000] [--seconds 150] [--every 15]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from ingest.stores import numeric_seconds
from ingest.stores.sqlite_db import connect
from wire.messages import Observation

PARAMS = ("hr", "pr", "spo2", "rr", "nibp_sys", "nibp_dia", "nibp_mean", "temp", "etco2", "fio2")
PER_SAMPLE_DDL = ("CREATE TABLE numerics (bed TEXT NOT NULL, param TEXT NOT NULL, t INTEGER NOT NULL, value REAL, "
                  "flags INTEGER NOT NULL, device TEXT NOT NULL, t_rx INTEGER NOT NULL, PRIMARY KEY (bed, param, t)) WITHOUT ROWID")  # fmt: skip
PER_SAMPLE_SQL = "INSERT OR REPLACE INTO numerics VALUES (?,?,?,?,?,?,?)"
PER_SAMPLE_READ = "SELECT t, value, flags FROM numerics WHERE bed=? AND param=? AND t>=? AND t<=? ORDER BY t LIMIT ?"
T0 = 1_780_000_000_000


def run(layout: str, path: Path, beds: int, seconds: int, every: int) -> None:
    conn = connect(path)
    conn.execute(PER_SAMPLE_DDL if layout == "per-sample" else numeric_seconds.TABLE_SQL)
    names = [f"H{b // 25:03d}-ICU-{b % 25:02d}" for b in range(beds)]
    order = list(range(beds))
    rnd = random.Random(1)
    spent = 0.0
    done = 0
    for s in range(seconds):
        rnd.shuffle(order)
        t = T0 + s * 1000 + 7
        for q in range(4):
            part = order[q * beds // 4 : (q + 1) * beds // 4]
            obs = [Observation(names[b], p, 60.0 + i + b % 7, t, t + 40, "mon-1") for b in part for i, p in enumerate(PARAMS)]
            start = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            if layout == "per-sample":
                conn.executemany(PER_SAMPLE_SQL, [(o.bed, o.param, o.t_dev, o.value, o.flags, o.device, o.t_rx) for o in obs])
            else:
                conn.executemany(numeric_seconds.UPSERT_SQL, numeric_seconds.rows(obs))
            conn.execute("COMMIT")
            spent += time.perf_counter() - start
            done += len(obs)
        if (s + 1) % every == 0:
            print(f"{layout:>10}  {(s + 1) * beds * len(PARAMS):>10,} samples  {spent / done * 1e6:6.2f} µs/sample", flush=True)
            spent, done = 0.0, 0
    start = time.perf_counter()
    if layout == "per-sample":
        n = len(conn.execute(PER_SAMPLE_READ, (names[10], "hr", T0, T0 + seconds * 1000, 100_000)).fetchall())
    else:
        sql = numeric_seconds.read_sql(1)
        n = len(conn.execute(sql, numeric_seconds.read_args(names[10], ["hr"], T0, T0 + seconds * 1000, 100_000)).fetchall())
    read_ms = (time.perf_counter() - start) * 1000
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"{layout:>10}  trend of {n} points: {read_ms:.2f} ms; file {path.stat().st_size / 2**20:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beds", type=int, default=4000)
    ap.add_argument("--seconds", type=int, default=150)
    ap.add_argument("--every", type=int, default=15)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("per-sample", "bed-second"):
            run(layout, Path(tmp) / f"{layout}.sqlite3", a.beds, a.seconds, a.every)


if __name__ == "__main__":
    main()
