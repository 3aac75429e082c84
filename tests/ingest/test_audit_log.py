"""The audit chain on a real SQLite file: it verifies as written, and an edit, a deletion or a reordering is named."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest.auth import audit_log
from ingest.auth.audit_log import AuditEntry


def chain(tmp: Path, n: int = 6) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp / "a.sqlite3", isolation_level=None)
    conn.executescript(audit_log.SCHEMA)
    conn.execute("BEGIN IMMEDIATE")
    audit_log.append(conn, [AuditEntry(1000 + i, "meena", "alarm.acknowledge", f"bed:A-0{i}", {"alert": f"id-{i}"}, "10.0.0.5")
                            for i in range(1, n + 1)])  # fmt: skip
    conn.execute("COMMIT")
    return conn


def test_a_chain_written_in_two_transactions_verifies(tmp_path: Path) -> None:
    conn = chain(tmp_path)
    conn.execute("BEGIN IMMEDIATE")
    audit_log.append(conn, [AuditEntry(2000, "cli", "user.add", "user:asha", {"role": "ward_nurse"}, "cli")])
    conn.execute("COMMIT")
    assert audit_log.verify(audit_log.rows(conn)) == (7, None)


def test_an_edited_entry_is_named(tmp_path: Path) -> None:
    conn = chain(tmp_path)
    conn.execute("UPDATE audit_log SET actor = 'someone_else' WHERE seq = 4")
    ok, brk = audit_log.verify(audit_log.rows(conn))
    assert ok == 3 and brk is not None and brk.seq == 4 and "changed" in brk.reason


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    conn = chain(tmp_path)
    seq, *fields, prev, _digest = conn.execute("SELECT * FROM audit_log WHERE seq = 3").fetchone()
    fields[1] = "forger"
    conn.execute("UPDATE audit_log SET actor = ?, hash = ? WHERE seq = 3", (fields[1], audit_log.entry_hash(seq, tuple(fields), prev)))
    ok, brk = audit_log.verify(audit_log.rows(conn))
    assert ok == 3 and brk is not None and brk.seq == 4 and "link" in brk.reason


def test_a_deleted_entry_is_named(tmp_path: Path) -> None:
    conn = chain(tmp_path)
    conn.execute("DELETE FROM audit_log WHERE seq = 2")
    ok, brk = audit_log.verify(audit_log.rows(conn))
    assert ok == 1 and brk is not None and brk.seq == 3 and "deleted" in brk.reason


@pytest.mark.parametrize("renumber", [False, True])
def test_reordered_entries_are_named(tmp_path: Path, renumber: bool) -> None:
    conn = chain(tmp_path)
    a = conn.execute("SELECT * FROM audit_log WHERE seq = 2").fetchone()
    b = conn.execute("SELECT * FROM audit_log WHERE seq = 5").fetchone()
    conn.execute("DELETE FROM audit_log WHERE seq IN (2, 5)")
    if renumber:  # swap their positions, each keeping its own hash
        conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?)", (2, *b[1:]))
        conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?)", (5, *a[1:]))
    else:  # swap their contents under the same numbers
        conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?)", (5, *a[1:]))
        conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?)", (2, *b[1:]))
    ok, brk = audit_log.verify(audit_log.rows(conn))
    assert ok == 1 and brk is not None and brk.seq == 2
