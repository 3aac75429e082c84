"""Embedded time-series store: SQLite in WAL mode, one writer thread, group commit.

The default backend for ``teleicu demo`` and small sites. Numerics are keyed by
(bed, param, device time) and waveform chunks by (bed, lead, first-sample time),
so writing the same sample twice overwrites it: a replay never duplicates.

All writes go through one thread that takes whatever batches are queued,
writes them in one transaction with ``synchronous=FULL`` (the commit is on disk
when it returns), and then completes each batch's future. The per-agent
durable watermark (``Batch.mark``) is written in the same transaction as the
data, so deduplication survives a hub restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import struct
import threading
from pathlib import Path

from ingest.score_log import ScoreRecord
from ingest.store import Batch, StoreError, TrendPoint

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS numerics (
    bed TEXT NOT NULL, param TEXT NOT NULL, t INTEGER NOT NULL,
    value REAL, flags INTEGER NOT NULL, device TEXT NOT NULL, t_rx INTEGER NOT NULL,
    PRIMARY KEY (bed, param, t)
) WITHOUT ROWID;
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
CREATE TABLE IF NOT EXISTS agent_seq (
    agent TEXT NOT NULL, epoch INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    PRIMARY KEY (agent, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, state TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_audit (
    alert_id INTEGER NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, by TEXT, note TEXT, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_audit_at ON alert_audit (at);
CREATE TABLE IF NOT EXISTS data_gaps (bed TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, PRIMARY KEY (bed, start)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alert_audit_id ON alert_audit (alert_id, at);
CREATE TABLE IF NOT EXISTS agents (agent TEXT PRIMARY KEY, ward TEXT NOT NULL, beds TEXT NOT NULL) WITHOUT ROWID;
"""

_STOP = object()
MAX_SCORES_QUEUED = 100_000  # score records waiting for the writer; beyond, record_scores drops (and counts) them


class SQLiteStore:
    def __init__(self, path: Path | str, *, max_queued_batches: int = 4096, max_batches_per_commit: int = 2000) -> None:
        self.path = Path(path)
        self._queue: queue.Queue[object] = queue.Queue()
        self._slots = asyncio.Semaphore(max_queued_batches)
        self._max_per_commit = max_batches_per_commit
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self.error: str | None = None  # why the last write failed; None once writes succeed again
        self._counters = {"batches_written": 0, "numerics_written": 0, "wave_chunks_written": 0, "unmapped_written": 0,
                          "scores_written": 0, "scores_dropped": 0, "commits": 0, "write_errors": 0}  # fmt: skip
        self._scores_queued = 0

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open (or create) the database; ``StoreError`` says why when the path cannot be written."""
        self._loop = asyncio.get_running_loop()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            conn.executescript(_SCHEMA)
            conn.commit()
            conn.close()
            self._reader = self._connect()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the embedded store {self.path}: {exc} (is the directory writable, the disk not full?)") from exc
        self._thread = threading.Thread(target=self._writer, name="sqlite-writer", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    # --- writing -----------------------------------------------------------------

    async def submit(self, batch: Batch) -> asyncio.Future[None]:
        return await self._enqueue(("batch", batch))

    async def write(self, batch: Batch) -> None:
        await (await self.submit(batch))

    async def save_alert(self, alert: dict, event: str, by: str | None, at: int, note: str | None = None) -> None:
        await (await self._enqueue(("alert", (alert, event, by, at, note))))

    async def save_gap(self, bed: str, start: int, end: int) -> None:
        await (await self._enqueue(("gap", (bed, start, end))))

    async def save_agent(self, agent: str, ward: str, beds: list[str]) -> None:
        await (await self._enqueue(("agent", (agent, ward, json.dumps(beds)))))

    async def forget_agent(self, agent: str) -> None:
        await (await self._enqueue(("forget", agent)))

    def record_scores(self, records: list[ScoreRecord]) -> None:
        if self._loop is None or self._scores_queued + len(records) > MAX_SCORES_QUEUED:
            self._counters["scores_dropped"] += len(records)
            return
        self._scores_queued += len(records)
        fut: asyncio.Future[None] = self._loop.create_future()
        fut.add_done_callback(lambda f, n=len(records): self._scores_done(f, n))
        self._queue.put((("scores", records), fut))

    def _scores_done(self, fut: asyncio.Future[None], n: int) -> None:
        self._scores_queued -= n
        if fut.exception() is not None:  # the write failed: derived data, the next minute repeats it
            self._counters["scores_dropped"] += n

    async def _enqueue(self, item: tuple[str, object]) -> asyncio.Future[None]:
        """Wait for a queue slot (backpressure), queue the item, return its durability future."""
        assert self._loop is not None, "store not started"
        await self._slots.acquire()
        fut: asyncio.Future[None] = self._loop.create_future()
        fut.add_done_callback(lambda _f: self._slots.release())
        self._queue.put((item, fut))
        return fut

    def _writer(self) -> None:
        conn = self._connect()
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                items = [first]
                stop = False
                while len(items) < self._max_per_commit:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    items.append(nxt)
                self._commit(conn, items)  # type: ignore[arg-type]
                if stop:
                    return
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, items: list[tuple[tuple[str, object], asyncio.Future[None]]]) -> None:
        numerics: list[tuple] = []
        waves: list[tuple] = []
        unmapped: list[tuple] = []
        scores: list[tuple] = []
        seqs: dict[tuple[str, int], int] = {}
        alerts: list[tuple] = []
        audit: list[tuple] = []
        gaps: list[tuple] = []
        agents: list[tuple[str, tuple | None]] = []  # in order: (agent, row) to save, (agent, None) to forget
        for (kind, payload), _fut in items:
            if kind == "batch":
                b: Batch = payload  # type: ignore[assignment]
                numerics.extend((o.bed, o.param, o.t_dev, o.value, o.flags, o.device, o.t_rx) for o in b.obs)
                waves.extend(
                    (w.bed, w.lead, w.t_first, w.rate_hz, w.scale, len(w.samples), _pack_samples(w.samples)) for w in b.waves
                )
                unmapped.extend((u.device, u.system, u.code, u.bed, u.t_dev, u.name, u.value, u.unit, u.status, u.t_rx) for u in b.unmapped)
                key = (b.agent, b.epoch)
                seqs[key] = max(seqs.get(key, 0), b.mark)
            elif kind == "scores":
                scores.extend((r.bed, r.score, r.t, r.row["total"], r.row["partial"], int(r.row["incomplete"]),
                               json.dumps(r.row | ({"scale": r.scale} if r.scale is not None else {})))
                              for r in payload)  # type: ignore[attr-defined]  # fmt: skip
            elif kind == "gap":
                gaps.append(payload)
            elif kind == "agent":
                agents.append((payload[0], payload))  # type: ignore[index]
            elif kind == "forget":
                agents.append((payload, None))  # type: ignore[arg-type]
            else:
                alert, event, by, at, note = payload  # type: ignore[misc]
                body = json.dumps(alert)
                alerts.append((alert["id"], alert["state"], body))
                audit.append((alert["id"], at, event, by, note, body))
        error: BaseException | None = None
        try:
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO numerics VALUES (?,?,?,?,?,?,?)", numerics)
            conn.executemany("INSERT OR REPLACE INTO waves VALUES (?,?,?,?,?,?,?)", waves)
            conn.executemany("INSERT OR REPLACE INTO unmapped VALUES (?,?,?,?,?,?,?,?,?,?)", unmapped)
            conn.executemany("INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?,?)", scores)
            conn.executemany(
                "INSERT INTO agent_seq VALUES (?,?,?) ON CONFLICT(agent, epoch) DO UPDATE SET last_seq=max(last_seq, excluded.last_seq)",
                [(a, e, s) for (a, e), s in seqs.items()],
            )
            conn.executemany("INSERT OR REPLACE INTO alerts VALUES (?,?,?)", alerts)
            conn.executemany("INSERT INTO alert_audit VALUES (?,?,?,?,?,?)", audit)
            conn.executemany("INSERT OR REPLACE INTO data_gaps VALUES (?,?,?)", gaps)
            for agent, row in agents:
                if row is None:
                    conn.execute("DELETE FROM agents WHERE agent=?", (agent,))
                else:
                    conn.execute("INSERT OR REPLACE INTO agents VALUES (?,?,?)", row)
            conn.execute("COMMIT")
            self.error = None
            self._counters["commits"] += 1
            self._counters["batches_written"] += len(items)
            self._counters["numerics_written"] += len(numerics)  # rows written (a re-sent sample overwrites its row)
            self._counters["wave_chunks_written"] += len(waves)
            self._counters["unmapped_written"] += len(unmapped)
            self._counters["scores_written"] += len(scores)
        except sqlite3.Error as exc:
            error = exc
            self.error = f"embedded store {self.path} failed a write: {exc}"
            self._counters["write_errors"] += 1
            log.error("store write of %d batches failed: %s", len(items), exc)
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        assert self._loop is not None
        for _item, fut in items:
            if error is None:
                self._loop.call_soon_threadsafe(_set_result, fut)
            else:
                self._loop.call_soon_threadsafe(_set_exception, fut, StoreError(str(error)))

    # --- reading -----------------------------------------------------------------

    def _read(self, sql: str, args: tuple) -> list[tuple]:
        assert self._reader is not None, "store not started"
        with self._read_lock:
            return self._reader.execute(sql, args).fetchall()

    async def last_seqs(self) -> dict[tuple[str, int], int]:
        rows = await asyncio.to_thread(self._read, "SELECT agent, epoch, last_seq FROM agent_seq", ())
        return {(a, e): s for a, e, s in rows}

    async def trend(self, bed: str, param: str, since: int, until: int, limit: int) -> list[TrendPoint]:
        rows = await asyncio.to_thread(
            self._read,
            "SELECT t, value, flags FROM numerics WHERE bed=? AND param=? AND t>=? AND t<=? ORDER BY t LIMIT ?",
            (bed, param, since, until, limit),
        )
        return [TrendPoint(t, v, f) for t, v, f in rows]

    async def unmapped_codes(self, device: str | None, limit: int) -> list[dict]:
        # SQLite takes the bare columns of a group from the row holding its max(t): the last sample
        sql = (
            "SELECT device, system, code, count(*), max(t), name, value, unit, status, bed FROM unmapped"
            + (" WHERE device = ?" if device is not None else "")
            + " GROUP BY device, system, code ORDER BY device, system, code LIMIT ?"
        )
        rows = await asyncio.to_thread(self._read, sql, (device, limit) if device is not None else (limit,))
        return [
            {"device": d, "system": s, "code": c, "count": n,
             "last": {"t": t, "name": name, "value": v, "unit": unit, "status": st, "bed": bed}}
            for d, s, c, n, t, name, v, unit, st, bed in rows
        ]  # fmt: skip

    async def open_alerts(self) -> list[dict]:
        rows = await asyncio.to_thread(self._read, "SELECT body FROM alerts WHERE state != 'resolved' ORDER BY id", ())
        return [json.loads(body) for (body,) in rows]

    async def alert_history(self, alert_id: int) -> list[dict]:
        rows = await asyncio.to_thread(
            self._read, "SELECT at, event, by, note, body FROM alert_audit WHERE alert_id=? ORDER BY rowid", (alert_id,)
        )
        return [{"at": at, "event": ev, "by": by, "note": note, "alert": json.loads(body)} for at, ev, by, note, body in rows]

    async def alerts(self, state: str | None, limit: int) -> list[dict]:
        """Alarms in any state (resolved included), newest first."""
        sql = "SELECT body FROM alerts" + (" WHERE state=?" if state else "") + " ORDER BY id DESC LIMIT ?"
        rows = await asyncio.to_thread(self._read, sql, ((state, limit) if state else (limit,)))
        return [json.loads(body) for (body,) in rows]

    async def audit_between(self, since: int, until: int) -> list[tuple[int, int, str, str]]:
        """(alert id, time, event, body JSON) of every audited event in [since, until], in order."""
        return await asyncio.to_thread(
            self._read, "SELECT alert_id, at, event, body FROM alert_audit WHERE at>=? AND at<=? ORDER BY at, rowid", (since, until)
        )

    async def gaps(self, since: int, until: int, bed: str | None = None) -> list[dict]:
        sql = "SELECT bed, start, end FROM data_gaps WHERE end >= ? AND start <= ?" + (" AND bed = ?" if bed else "") + " ORDER BY start"
        rows = await asyncio.to_thread(self._read, sql, (since, until, bed) if bed else (since, until))
        return [{"bed": b, "start": st, "end": en} for b, st, en in rows]

    async def known_agents(self) -> list[tuple[str, str, list[str]]]:
        rows = await asyncio.to_thread(self._read, "SELECT agent, ward, beds FROM agents ORDER BY agent", ())
        return [(a, w, json.loads(b)) for a, w, b in rows]

    async def max_alert_id(self) -> int:
        rows = await asyncio.to_thread(self._read, "SELECT coalesce(max(id), 0) FROM alerts", ())
        return int(rows[0][0])

    async def count(self, table: str) -> int:
        if table not in ("numerics", "waves", "unmapped", "scores", "alerts", "alert_audit"):
            raise ValueError(table)
        rows = await asyncio.to_thread(self._read, f"SELECT count(*) FROM {table}", ())
        return int(rows[0][0])

    def stats(self) -> dict[str, int]:
        return dict(self._counters, queued=self._queue.qsize())


def _pack_samples(samples: tuple[int, ...]) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def _set_result(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _set_exception(fut: asyncio.Future[None], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
