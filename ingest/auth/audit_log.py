"""The tamper-evident audit log: who did what, to which bed, patient, user or agent, when, and from where.

Append-only. Each entry carries the SHA-256 of the previous entry (``prev``)
and its own ``hash`` over every field, so editing an entry, deleting one or
changing their order breaks the chain at that entry, and ``verify`` names it
(``teleicu audit verify``). An entry is appended inside the same write
transaction that reads the chain's head, so two writers (the hub and an admin
command) cannot fork it. What the chain cannot show by itself is the removal of
its newest entries; an operator who keeps the head's ``seq`` and ``hash`` (the
hub logs them at every start) can see that too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ingest.stores.portable_sql import Conn

GENESIS = "0" * 64  # the ``prev`` of the first entry

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, detail TEXT NOT NULL, source TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, at);
CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log (target, at);
"""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One thing someone did. ``target`` is what it was done to: ``bed:A-01``, ``user:meena``, ``agent:edge-A``..."""

    at: int  # ms since the epoch (UTC)
    actor: str  # a username, ``agent:<id>`` or ``cli`` / ``hub`` for the system itself
    action: str  # e.g. auth.sign_in, auth.sign_in_failed, auth.locked, bed.view, alarm.acknowledge, agent.revoke
    target: str = ""
    detail: dict | None = None
    source: str = ""  # the client address, or "cli"

    def row_fields(self) -> tuple[int, str, str, str, str, str]:
        detail = json.dumps(self.detail or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return self.at, self.actor, self.action, self.target, detail, self.source


def entry_hash(seq: int, fields: tuple[int, str, str, str, str, str], prev: str) -> str:
    """SHA-256 over the entry's position, every field and the previous hash, in one canonical JSON text."""
    text = json.dumps([seq, *fields, prev], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def append(conn: Conn, entries: Iterable[AuditEntry]) -> None:
    """Append entries after the chain's head; the caller holds the write transaction (the head cannot move)."""
    seq, prev = head(conn)
    for e in entries:
        seq += 1
        fields = e.row_fields()
        digest = entry_hash(seq, fields, prev)
        conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?)", (seq, *fields, prev, digest))
        prev = digest


@dataclass(frozen=True, slots=True)
class Break:
    """Where the chain is broken: the first entry that does not verify, and why."""

    seq: int
    reason: str


def verify(rows: Iterable[tuple]) -> tuple[int, Break | None]:
    """Check ``(seq, at, actor, action, target, detail, source, prev, hash)`` rows in stored order.

    Returns how many entries verified before the first break, and the break (None when the whole chain holds)."""
    expected_seq, prev = 1, GENESIS
    ok = 0
    for row in rows:
        seq, *fields, row_prev, digest = row
        if seq != expected_seq:
            what = "missing before it (deleted)" if seq > expected_seq else "out of order"
            return ok, Break(seq, f"expected entry {expected_seq} here, found {seq}: an entry is {what}")
        if row_prev != prev:
            return ok, Break(seq, "its link to the previous entry does not match (an entry before it was changed, removed or moved)")
        if entry_hash(seq, tuple(fields), row_prev) != digest:  # type: ignore[arg-type]
            return ok, Break(seq, "its content does not match its hash (the entry was changed)")
        ok, expected_seq, prev = ok + 1, seq + 1, digest
    return ok, None


def head(conn: Conn) -> tuple[int, str]:
    """The newest entry's ``(seq, hash)``; ``(0, GENESIS)`` for an empty log."""
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def rows(conn: Conn) -> Iterator[tuple]:
    """Every entry in stored order (by rowid: the order the chain was written in)."""
    yield from conn.execute("SELECT seq, at, actor, action, target, detail, source, prev, hash FROM audit_log ORDER BY rowid")
