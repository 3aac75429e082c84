"""The hub's outbox: typed events for the records services, appended in the transaction of the change they record.

Each call of ``append`` runs inside a state-store write (``SQLiteDatabase.call``
or a statement list), beside the rows of the change itself, so an admission is
never stored without its event, nor an event without its admission. Ids come
from SQLite's AUTOINCREMENT: increasing, never reused, and without gaps, since
a rolled-back insert does not consume one and nothing is ever deleted. Readers
follow with a cursor: every event after the last id they handled
(``GET /api/events?after=<id>``), in order. The event types are
``wire.outbox_events``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from pydantic import TypeAdapter

from wire.outbox_events import MAX_EVENT_BYTES, Event, EventData

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL
);
"""

_DATA = TypeAdapter(EventData)
INSERT_SQL = "INSERT INTO outbox (at, type, body) VALUES (?,?,?)"


class OutboxError(ValueError):
    """An event that cannot be written (too big for a reader to take)."""


def row(data: EventData, at: int) -> tuple[int, str, str]:
    """The ``INSERT_SQL`` parameters of one event (for a statement list); raises ``OutboxError`` when too big."""
    body = _DATA.dump_json(data).decode()
    if len(body) > MAX_EVENT_BYTES:
        raise OutboxError(f"a {data.type} event of {len(body)} bytes exceeds {MAX_EVENT_BYTES}")
    return at, data.type, body


def append(conn: sqlite3.Connection, data: EventData, at: int) -> int:
    """Append one event inside the caller's transaction; returns its id."""
    cur = conn.execute(INSERT_SQL, row(data, at))
    assert cur.lastrowid is not None
    return cur.lastrowid


def read(conn: sqlite3.Connection, after: int, limit: int) -> list[Event]:
    """Up to ``limit`` events with an id above ``after``, oldest first, validated."""
    return [Event.model_validate(e) for e in read_raw(conn, after, limit)]


def read_raw(conn: sqlite3.Connection, after: int, limit: int) -> list[dict[str, Any]]:
    """As stored, unvalidated: what the events API serves, so one damaged row reaches the reader (which parks it)
    instead of stopping every reader at it."""
    rows = conn.execute("SELECT id, at, body FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after, limit)).fetchall()
    out = []
    for i, at, body in rows:
        try:
            data = json.loads(body)
        except ValueError:
            data = {"unreadable": body[:1000]}
        out.append({"id": i, "at": at, "data": data})
    return out


def last_id(conn: sqlite3.Connection) -> int:
    (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()
    return top
