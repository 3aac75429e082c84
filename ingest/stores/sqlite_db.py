"""One SQLite database file with one writer thread doing group commits; shared by the embedded stores.

SQLite allows one writer at a time, so the embedded sample store and the state
store (and the InfluxDB store's state) write through one ``SQLiteDatabase``:
callers ``submit`` a list of ``(sql, rows)`` statements and get a future that
completes once those rows are committed (``synchronous=FULL``: on disk when the
commit returns) or fails with ``StoreError``. The writer takes whatever is
queued, merges the rows of identical statements (first seen first, rows in
submission order, so a later write of the same key wins) and commits them in
one transaction. Statements must therefore be order-independent between
different statements: inserts and upserts keyed by their row, never a DELETE
that a later INSERT in the same commit must follow. Work that must read
before it writes (appending to the audit chain, counting failed sign-ins) is a
function given to ``call``: it runs in the same transaction, after the merged
statements, in submission order, and its result completes the future.

Readers use their own connection (WAL: they never block the writer). The file
carries ``PRAGMA user_version``; ``MIGRATIONS`` bring an older file up to date
at start, in one transaction each.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ingest.stores.base import StoreError

log = logging.getLogger(__name__)

Statement = tuple[str, list[tuple]]
T = TypeVar("T")
_STOP = object()


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
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_alerts_text_ids,)


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


class SQLiteDatabase:
    def __init__(self, path: Path | str, schema: Sequence[str], *, max_queued: int = 4096, max_per_commit: int = 2000) -> None:
        self.path = Path(path)
        self._schema = list(schema)
        self._queue: queue.Queue[object] = queue.Queue()
        self._slots = asyncio.Semaphore(max_queued)
        self._max_per_commit = max_per_commit
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._users = 0
        self.error: str | None = None  # why the last commit failed; None once commits succeed again
        self.counters = {"commits": 0, "write_errors": 0, "items_written": 0}

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open (or create, or migrate) the file; ``StoreError`` says why when it cannot. Counted: one start per user."""
        self._users += 1
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            self._prepare(conn)
            conn.close()
            self._reader = self._connect()
        except (sqlite3.Error, OSError) as exc:
            self._users -= 1
            raise StoreError(f"cannot open the embedded store {self.path}: {exc} (is the directory writable, the disk not full?)") from exc
        self._thread = threading.Thread(target=self._writer, name="sqlite-writer", daemon=True)
        self._thread.start()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        prepare(conn, self._schema, str(self.path))

    async def stop(self) -> None:
        """Commit what is queued and close (when the last user stops)."""
        self._users = max(0, self._users - 1)
        if self._users or self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path)

    # --- writing -----------------------------------------------------------------

    async def submit(self, statements: list[Statement]) -> asyncio.Future[None]:
        """Wait for a queue slot (backpressure), queue the statements, return their durability future."""
        fut = self._future()
        await self._slots.acquire()
        fut.add_done_callback(lambda _f: self._slots.release())
        self._queue.put((statements, fut))
        return fut

    def submit_nowait(self, statements: list[Statement]) -> asyncio.Future[None]:
        """Queue without waiting for a slot (derived data the caller bounds itself)."""
        fut = self._future()
        self._queue.put((statements, fut))
        return fut

    async def write(self, statements: list[Statement]) -> None:
        await (await self.submit(statements))

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in the writer's transaction and return its result once committed."""
        fut = self._future()
        await self._slots.acquire()
        fut.add_done_callback(lambda _f: self._slots.release())
        self._queue.put((fn, fut))
        return await fut  # type: ignore[return-value]

    async def read_with(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the reader connection, in a worker thread."""
        def run() -> T:
            if self._reader is None:
                raise StoreError(f"embedded store {self.path} is not running")
            with self._read_lock:
                return fn(self._reader)

        return await asyncio.to_thread(run)

    def _future(self) -> asyncio.Future[None]:
        if self._loop is None or self._thread is None:
            raise StoreError(f"embedded store {self.path} is not running")
        return self._loop.create_future()

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

    def _commit(self, conn: sqlite3.Connection, items: list[tuple[list[Statement] | Callable, asyncio.Future]]) -> None:
        merged: dict[str, list[tuple]] = {}
        calls: list[tuple[Callable, asyncio.Future]] = []
        for work, fut in items:
            if callable(work):
                calls.append((work, fut))
                continue
            for sql, rows in work:
                merged.setdefault(sql, []).extend(rows)
        error: BaseException | None = None
        results: dict[int, object] = {}
        refused: dict[int, BaseException] = {}  # a call that raised: its own writes are rolled back, the others commit
        try:
            conn.execute("BEGIN IMMEDIATE")
            for sql, rows in merged.items():
                conn.executemany(sql, rows)
            for fn, fut in calls:
                conn.execute("SAVEPOINT call")
                try:
                    results[id(fut)] = fn(conn)
                except sqlite3.IntegrityError as exc:  # the call broke a constraint: its own doing, not the store's
                    conn.execute("ROLLBACK TO call")
                    refused[id(fut)] = exc
                except sqlite3.Error:
                    raise
                except Exception as exc:  # noqa: BLE001 - the caller's own refusal (e.g. a name already taken)
                    conn.execute("ROLLBACK TO call")
                    refused[id(fut)] = exc
                conn.execute("RELEASE call")
            conn.execute("COMMIT")
            self.error = None
            self.counters["commits"] += 1
            self.counters["items_written"] += len(items)
        except sqlite3.Error as exc:
            error = exc
            self.error = f"embedded store {self.path} failed a write: {exc}"
            self.counters["write_errors"] += 1
            log.error("store write of %d items failed: %s", len(items), exc)
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        assert self._loop is not None
        for _work, fut in items:
            if error is None and id(fut) in refused:
                self._loop.call_soon_threadsafe(_set_exception, fut, refused[id(fut)])
            elif error is None:
                self._loop.call_soon_threadsafe(_set_result, fut, results.get(id(fut)))
            else:
                self._loop.call_soon_threadsafe(_set_exception, fut, StoreError(str(error)))

    # --- reading -----------------------------------------------------------------

    def read_now(self, sql: str, args: tuple = ()) -> list[tuple]:
        """A read on the calling thread (blocking; for tools and tests)."""
        if self._reader is None:
            raise StoreError(f"embedded store {self.path} is not running")
        with self._read_lock:
            return self._reader.execute(sql, args).fetchall()

    async def read(self, sql: str, args: tuple = ()) -> list[tuple]:
        return await asyncio.to_thread(self.read_now, sql, args)

    @property
    def queued(self) -> int:
        return self._queue.qsize()


def _set_result(fut: asyncio.Future, result: object = None) -> None:
    if not fut.done():
        fut.set_result(result)


def _set_exception(fut: asyncio.Future[None], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
