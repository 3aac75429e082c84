"""The hub's outbox: typed events for the records services, appended in the transaction of the change they record.

Each call of ``append`` runs inside a state-store write (``GroupCommitDatabase.call``
or a statement list), beside the rows of the change itself, so an admission is
never stored without its event, nor an event without its admission. Ids come
from SQLite's AUTOINCREMENT (PostgreSQL: an identity column): increasing and
never reused; nothing is ever deleted. On SQLite there are no gaps (a
rolled-back insert does not consume an id); on PostgreSQL a refused change can
leave one, and writers take turns (``postgres_db``), so ids are committed in
order. Readers follow with a cursor: every event after the last id they handled
(``GET /api/events?after=<id>``), in order. The event types are
``wire.outbox_events``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from ingest.stores.portable_sql import Conn
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


def append(conn: Conn, data: EventData, at: int) -> int:
    """Append one event inside the caller's transaction; returns its id."""
    (event_id,) = conn.execute(INSERT_SQL + " RETURNING id", row(data, at)).fetchone()
    return event_id


def read(conn: Conn, after: int, limit: int) -> list[Event]:
    """Up to ``limit`` events with an id above ``after``, oldest first, validated."""
    return [Event.model_validate(e) for e in read_raw(conn, after, limit)]


def read_raw(conn: Conn, after: int, limit: int) -> list[dict[str, Any]]:
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


def last_id(conn: Conn) -> int:
    (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()
    return top
