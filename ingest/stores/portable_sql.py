"""The SQL the hub's state runs on both SQLite and PostgreSQL, and the few places where the two differ.

The state's queries are written once, with ``?`` placeholders, in the subset
both databases accept: upserts as ``INSERT ... ON CONFLICT``, never SQLite's
``INSERT OR REPLACE``; ``"end"`` and ``"by"`` quoted (reserved words in
PostgreSQL); ``ORDER BY rowid`` only on tables that have one (on PostgreSQL
``postgres_db`` gives such tables an explicit ``rowid`` column). What cannot
be shared (reading a field of a JSON text, starting a write transaction) is
asked of the connection's dialect here.
"""

from __future__ import annotations

from typing import Any

#: a connection that runs this SQL: ``sqlite3.Connection``, or ``postgres_db.PgConnection`` (``execute``, ``executemany``)
Conn = Any
SQLITE = "sqlite"
POSTGRESQL = "postgresql"


def dialect(conn: Any) -> str:
    """``postgresql`` for ``postgres_db.PgConnection``, ``sqlite`` for a ``sqlite3`` connection."""
    return getattr(conn, "dialect", SQLITE)


def upsert(table: str, columns: str, key: str) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...)``, replacing every non-key column of a row whose ``key`` exists."""
    cols = [c.strip() for c in columns.split(",")]
    keys = {k.strip() for k in key.split(",")}
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in keys)
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) ON CONFLICT ({key}) DO UPDATE SET {sets}"


def insert_new(table: str, columns: str) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...)`` that keeps an existing row with the same key (rowcount 0)."""
    cols = [c.strip() for c in columns.split(",")]
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) ON CONFLICT DO NOTHING"


def json_text(conn: Any, column: str, key: str) -> str:
    """An SQL expression: the text of top-level ``key`` of the JSON text in ``column`` (``key`` is code, not input)."""
    if not key.isidentifier():
        raise ValueError(f"not a plain JSON key: {key!r}")
    if dialect(conn) == POSTGRESQL:
        return f"({column}::jsonb ->> '{key}')"
    return f"json_extract({column}, '$.{key}')"


def begin_write(conn: Any) -> None:
    """Begin a transaction holding the database's write lock (one writer at a time, on either database)."""
    begin = getattr(conn, "begin_write", None)
    if begin is not None:
        begin()
    else:
        conn.execute("BEGIN IMMEDIATE")
