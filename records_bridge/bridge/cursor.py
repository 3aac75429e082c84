"""The bridge's durable state: each sink's cursor into the hub's outbox, and the events it parked.

One SQLite file (WAL, synchronous=FULL: a cursor that moved survives a power
cut). A sink's cursor is the id of the last event it has fully handled
(delivered, or parked); it only moves forward. A kill between a delivery and
the cursor's move means that event is delivered again, which the targets'
idempotent writes make harmless: at least once on the wire, exactly once in
effect.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, last_id INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS parked (
    sink TEXT NOT NULL, event_id INTEGER NOT NULL, at INTEGER NOT NULL, reason TEXT NOT NULL, event TEXT NOT NULL,
    PRIMARY KEY (sink, event_id)
) WITHOUT ROWID;
"""


class StateInUse(Exception):
    """Another bridge holds this state file: two would deliver the same events interleaved, old over new."""


class CursorStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(path.with_name(path.name + ".lock"), "a")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StateInUse(f"another teleicu bridge is using {path}") from None
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)

    def position(self, sink: str) -> int:
        row = self.conn.execute("SELECT last_id FROM cursors WHERE sink = ?", (sink,)).fetchone()
        return 0 if row is None else row[0]

    def advance(self, sink: str, last_id: int) -> None:
        self.conn.execute("INSERT INTO cursors VALUES (?,?) ON CONFLICT(sink) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
                          (sink, last_id))  # fmt: skip

    def park(self, sink: str, event_id: int, at: int, reason: str, event: dict) -> None:
        """Keep an event the sink cannot deliver, and move past it, in one transaction."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("INSERT OR REPLACE INTO parked VALUES (?,?,?,?,?)", (sink, event_id, at, reason[:2000], json.dumps(event)))
            self.advance(sink, event_id)

    def parked(self, sink: str | None = None) -> list[dict]:
        sql = "SELECT sink, event_id, at, reason, event FROM parked" + (" WHERE sink = ?" if sink else "") + " ORDER BY sink, event_id"
        rows = self.conn.execute(sql, (sink,) if sink else ())
        return [{"sink": s, "event_id": i, "at": at, "reason": r, "event": json.loads(e)} for s, i, at, r, e in rows]

    def close(self) -> None:
        self.conn.close()
        self._lock.close()  # and with it the lock
