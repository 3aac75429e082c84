"""Embedded sample store: vitals, waveform chunks, unmapped observations and scores in SQLite (WAL).

The default for ``teleicu demo`` and small sites. Numerics are keyed by (bed,
param, device time), kept one row per bed and second (``ingest.stores.numeric_seconds``;
the ``numerics`` view reads them one row per sample), waveform chunks by (bed, lead, first-sample time) and
unmapped observations by (device, system, code, bed, device time), so writing
the same sample twice overwrites it: a replay never duplicates. Each batch's
durable watermark (``Batch.mark``) goes into the state store's ``agent_seq``
table in the same transaction as the batch's rows (one ``SQLiteDatabase``), so
deduplication survives a hub restart.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections import Counter

from ingest.score_log import ScoreRecord
from ingest.stores import numeric_seconds
from ingest.stores.base import Batch, TrendPoint
from ingest.stores.sql_state import MARK_SQL
from ingest.stores.sqlite_db import SQLiteDatabase, Statement

SCHEMA = numeric_seconds.SCHEMA + """
CREATE TABLE IF NOT EXISTS waves (
    bed TEXT NOT NULL, lead TEXT NOT NULL, t INTEGER NOT NULL,
    rate INTEGER NOT NULL, scale REAL NOT NULL, n INTEGER NOT NULL, samples BLOB NOT NULL,
    PRIMARY KEY (bed, lead, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unmapped (
    device TEXT NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL, bed TEXT NOT NULL, t INTEGER NOT NULL,
    name TEXT NOT NULL, value TEXT NOT NULL, unit TEXT NOT NULL, status TEXT NOT NULL, t_rx INTEGER NOT NULL,
    PRIMARY KEY (device, system, code, bed, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scores (
    bed TEXT NOT NULL, score TEXT NOT NULL, t INTEGER NOT NULL,
    total INTEGER, partial INTEGER NOT NULL, incomplete INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (bed, score, t)
) WITHOUT ROWID;
"""

WAVES_SQL = "INSERT OR REPLACE INTO waves VALUES (?,?,?,?,?,?,?)"
UNMAPPED_SQL = "INSERT OR REPLACE INTO unmapped VALUES (?,?,?,?,?,?,?,?,?,?)"
SCORES_SQL = "INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?,?)"
MAX_SCORES_QUEUED = 100_000  # score records waiting for the writer; beyond, record_scores drops (and counts) them


def batch_statements(b: Batch) -> list[Statement]:
    """The rows of one batch, and its watermark, for one transaction."""
    return [
        (numeric_seconds.UPSERT_SQL, numeric_seconds.rows(b.obs)),
        (WAVES_SQL, [(w.bed, w.lead, w.t_first, w.rate_hz, w.scale, len(w.samples), pack_samples(w.samples)) for w in b.waves]),
        (UNMAPPED_SQL, [(u.device, u.system, u.code, u.bed, u.t_dev, u.name, u.value, u.unit, u.status, u.t_rx) for u in b.unmapped]),
        (MARK_SQL, [(b.agent, b.epoch, b.mark)]),
    ]


def pack_samples(samples: tuple[int, ...]) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


class SQLiteSampleStore:
    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db
        self.counters: Counter[str] = Counter()
        self._scores_queued = 0

    @property
    def error(self) -> str | None:
        return self.db.error

    async def start(self) -> None:
        await self.db.start()

    async def stop(self) -> None:
        await self.db.stop()

    # --- writing -----------------------------------------------------------------

    async def submit(self, batch: Batch) -> asyncio.Future[None]:
        fut = await self.db.submit(batch_statements(batch))
        fut.add_done_callback(lambda f: self._written(f, batch))
        return fut

    async def write(self, batch: Batch) -> None:
        await (await self.submit(batch))

    def _written(self, fut: asyncio.Future[None], b: Batch) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        self.counters["batches_written"] += 1
        self.counters["numerics_written"] += len(b.obs)  # rows written (a re-sent sample overwrites its row)
        self.counters["wave_chunks_written"] += len(b.waves)
        self.counters["unmapped_written"] += len(b.unmapped)

    def record_scores(self, records: list[ScoreRecord]) -> None:
        n = len(records)
        if self._scores_queued + n > MAX_SCORES_QUEUED or self.db.error is not None:
            self.counters["scores_dropped"] += n
            return
        rows = [(r.bed, r.score, r.t, r.row["total"], r.row["partial"], int(r.row["incomplete"]),
                 json.dumps(r.row | ({"scale": r.scale} if r.scale is not None else {}))) for r in records]  # fmt: skip
        self._scores_queued += n
        self.db.submit_nowait([(SCORES_SQL, rows)]).add_done_callback(lambda f: self._scores_done(f, n))

    def _scores_done(self, fut: asyncio.Future[None], n: int) -> None:
        self._scores_queued -= n
        if fut.cancelled() or fut.exception() is not None:  # derived data: the next minute repeats it
            self.counters["scores_dropped"] += n
        else:
            self.counters["scores_written"] += n

    def record_alarm_event(self, alert: dict, event: str, by: str | None, at: int) -> None:
        """Nothing more to do: the state store's audit trail, in this same database, is the alarm's history."""

    def set_bed_tags(self, bed: str, *, ward: str | None = None, hospital: str | None = None) -> None:
        """SQLite rows are not tagged by ward: nothing to remember."""

    # --- reading -----------------------------------------------------------------

    async def trend(self, bed: str, param: str, since: int, until: int, limit: int) -> list[TrendPoint]:
        return (await self.trends(bed, [param], since, until, limit))[param]

    async def trends(self, bed: str, params: list[str], since: int, until: int, limit: int) -> dict[str, list[TrendPoint]]:
        """One read of the bed's rows for several parameters: each bed-second is parsed once, not once per parameter."""
        out: dict[str, list[TrendPoint]] = {p: [] for p in params}
        if params and since <= until:
            sql = numeric_seconds.read_sql(len(params))
            for param, t, v, f in await self.db.read(sql, numeric_seconds.read_args(bed, params, since, until, limit)):
                points = out[param]
                if len(points) < limit:
                    points.append(TrendPoint(t, v, f))
        return out

    async def unmapped_codes(self, device: str | None, limit: int) -> list[dict]:
        # SQLite takes the bare columns of a group from the row holding its max(t): the last sample
        sql = (
            "SELECT device, system, code, count(*), max(t), name, value, unit, status, bed FROM unmapped"
            + (" WHERE device = ?" if device is not None else "")
            + " GROUP BY device, system, code ORDER BY device, system, code LIMIT ?"
        )
        rows = await self.db.read(sql, (device, limit) if device is not None else (limit,))
        return [
            {"device": d, "system": s, "code": c, "count": n,
             "last": {"t": t, "name": name, "value": v, "unit": unit, "status": st, "bed": bed}}
            for d, s, c, n, t, name, v, unit, st, bed in rows
        ]  # fmt: skip

    async def count(self, table: str) -> int:
        if table not in ("numerics", "waves", "unmapped", "scores"):
            raise ValueError(table)
        rows = await self.db.read(f"SELECT count(*) FROM {table}")
        return int(rows[0][0])

    def stats(self) -> dict[str, int]:
        out = {"batches_written": 0, "numerics_written": 0, "wave_chunks_written": 0, "unmapped_written": 0,
               "scores_written": 0, "scores_dropped": 0}  # fmt: skip
        out.update(self.counters)
        return out | self.db.counters | {"queued": self.db.queued}
