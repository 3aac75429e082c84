"""The embedded SQLite file: its connection settings, its migrations, and its group-commit writer.

SQLite allows one writer at a time, so the embedded sample store and the state
store (and the InfluxDB store's state) write through one ``SQLiteDatabase``,
whose writer thread commits what is queued in one transaction
(``ingest.stores.group_commit``; ``synchronous=FULL``: on disk when the commit
returns). Readers use their own connection (WAL: they never block the writer).
The file carries ``PRAGMA user_version``; ``MIGRATIONS`` bring an older file up
to date at start, in one transaction each.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from ingest.stores.base import StoreError
from ingest.stores.numeric_seconds import migrate_sample_rows
from ingest.stores.group_commit import GroupCommitDatabase, Statement

__all__ = ["MIGRATIONS", "SQLiteDatabase", "Statement", "connect", "prepare"]

log = logging.getLogger(__name__)


def _alerts_text_ids(conn: sqlite3.Connection) -> None:
    """v1: alarm ids become UUIDv7 text (older integer ids are kept, as text); agents get a tombstone flag."""
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "alerts" in tables:
        conn.execute("ALTER TABLE alerts RENAME TO alerts_v0")
        conn.execute("CREATE TABLE alerts (id TEXT PRIMARY KEY, state TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID")
        conn.execute("INSERT INTO alerts SELECT CAST(id AS TEXT), state, json_set(body, '$.id', CAST(id AS TEXT)) FROM alerts_v0")
        conn.execute("DROP TABLE alerts_v0")
    if "alert_audit" in tables:
        conn.execute("ALTER TABLE alert_audit RENAME TO alert_audit_v0")
        conn.execute("CREATE TABLE alert_audit (alert_id TEXT NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, by TEXT, note TEXT, body TEXT NOT NULL)")
        conn.execute("INSERT INTO alert_audit SELECT CAST(alert_id AS TEXT), at, event, by, note, json_set(body, '$.id', CAST(alert_id AS TEXT)) "
                     "FROM alert_audit_v0 ORDER BY rowid")  # fmt: skip
        conn.execute("DROP TABLE alert_audit_v0")
    if "agents" in tables:
        conn.execute("ALTER TABLE agents ADD COLUMN forgotten INTEGER NOT NULL DEFAULT 0")


#: user_version n -> the step from n to n + 1 (a new file is created at the latest version directly)
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_alerts_text_ids, migrate_sample_rows)


def prepare(conn: sqlite3.Connection, schema: Sequence[str], name: str) -> None:
    """Bring a database up to date: migrations from its ``user_version``, then the schema (idempotent)."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    fresh = not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
    if fresh:
        version = len(MIGRATIONS)
    for step in range(version, len(MIGRATIONS)):
        conn.execute("BEGIN")
        MIGRATIONS[step](conn)
        conn.execute(f"PRAGMA user_version = {step + 1}")
        conn.execute("COMMIT")
        log.warning("embedded store %s: migrated to schema version %d", name, step + 1)
    conn.executescript("".join(schema))
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection as every user of the file needs it: WAL, durable commits, waiting for the other writer."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class SQLiteDatabase(GroupCommitDatabase):
    """The embedded store's file: samples and state, or InfluxDB's state beside it."""

    Error = sqlite3.Error
    IntegrityError = sqlite3.IntegrityError

    def __init__(self, path: Path | str, schema: Sequence[str], *, max_queued: int = 4096, max_per_commit: int = 2000) -> None:
        super().__init__(max_queued=max_queued, max_per_commit=max_per_commit)
        self.path = Path(path)
        self._schema = list(schema)

    @property
    def name(self) -> str:
        return f"embedded store {self.path}"

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super()._open()

    def _open_error(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot open the embedded store {self.path}: {exc} (is the directory writable, the disk not full?)")

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        prepare(conn, self._schema, str(self.path))

    def _begin(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
