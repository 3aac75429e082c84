"""One writer thread doing group commits into a SQL database: the part the SQLite and PostgreSQL state stores share.

Callers ``submit`` a list of ``(sql, rows)`` statements and get a future that
completes once those rows are committed (durable when the commit returns) or
fails with ``StoreError``. The writer takes whatever is queued, merges the rows
of identical statements (first seen first, rows in submission order, so a later
write of the same key wins) and commits them in one transaction. Statements
must therefore be order-independent between different statements: inserts and
upserts keyed by their row, never a DELETE that a later INSERT in the same
commit must follow. Work that must read before it writes (appending to the
audit chain, counting failed sign-ins) is a function given to ``call``: it runs
in the same transaction, after the merged statements, in submission order, and
its result completes the future. A call that breaks a constraint or raises is
rolled back alone (a savepoint) and its future gets the error; a constraint
comes back as ``ConstraintError``.

Readers use a connection of their own. A subclass says how to connect, how to
bring the schema up to date, how a write transaction begins (it holds the
database's write lock from its first statement: one writer at a time, as in
SQLite) and which exceptions its driver raises. The SQL the stores run is the
subset both databases accept (``ingest.stores.portable_sql``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from ingest.stores.base import ConstraintError, StoreError
from ingest.stores.portable_sql import Conn

log = logging.getLogger(__name__)

Statement = tuple[str, list[tuple]]
T = TypeVar("T")
_STOP = object()


class GroupCommitDatabase:
    Error: type[Exception] = Exception  # the driver's base exception
    IntegrityError: type[Exception] = Exception  # the driver's constraint violation

    def __init__(self, *, max_queued: int = 4096, max_per_commit: int = 2000) -> None:
        self._queue: queue.Queue[object] = queue.Queue()
        self._slots = asyncio.Semaphore(max_queued)
        self._max_per_commit = max_per_commit
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: Conn | None = None
        self._read_lock = threading.Lock()
        self._users = 0
        self.error: str | None = None  # why the last commit failed; None once commits succeed again
        self.counters = {"commits": 0, "write_errors": 0, "items_written": 0}

    # --- what a database says about itself ---------------------------------------

    @property
    def name(self) -> str:
        """How messages name this database: what it is and where (a file path, a URL without its password)."""
        raise NotImplementedError

    def _connect(self) -> Conn:
        raise NotImplementedError

    def _prepare(self, conn: Conn) -> None:
        """Create or migrate the schema (run once at start, before the writer)."""
        raise NotImplementedError

    def _begin(self, conn: Conn) -> None:
        """Begin a transaction that holds the write lock from its first statement."""
        raise NotImplementedError

    def _usable(self, conn: Conn) -> Conn:
        """The connection to go on with after a failed write (a reconnection where the old one is gone)."""
        return conn

    def _open_error(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot open the {self.name}: {exc}")

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open (or create, or migrate) the database; ``StoreError`` says why when it cannot. Counted: one start per user."""
        self._users += 1
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self._open)
        except (self.Error, OSError) as exc:
            self._users -= 1
            raise self._open_error(exc) from exc
        except BaseException:
            self._users -= 1
            raise
        self._thread = threading.Thread(target=self._writer, name="state-writer", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        conn = self._connect()
        try:
            self._prepare(conn)
        finally:
            conn.close()
        self._reader = self._connect()

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

    async def call(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn(conn)`` in the writer's transaction and return its result once committed."""
        fut = self._future()
        await self._slots.acquire()
        fut.add_done_callback(lambda _f: self._slots.release())
        self._queue.put((fn, fut))
        return await fut  # type: ignore[return-value]

    def _future(self) -> asyncio.Future[None]:
        if self._loop is None or self._thread is None:
            raise StoreError(f"{self.name} is not running")
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
                conn = self._commit(conn, items)  # type: ignore[arg-type]
                if stop:
                    return
        finally:
            conn.close()

    def _commit(self, conn: Conn, items: list[tuple[list[Statement] | Callable, asyncio.Future]]) -> Conn:
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
            self._begin(conn)
            for sql, rows in merged.items():
                conn.executemany(sql, rows)
            for fn, fut in calls:
                conn.execute("SAVEPOINT one_call")
                try:
                    results[id(fut)] = fn(conn)
                except self.IntegrityError as exc:  # the call broke a constraint: its own doing, not the store's
                    conn.execute("ROLLBACK TO SAVEPOINT one_call")
                    refused[id(fut)] = ConstraintError(str(exc))
                    refused[id(fut)].__cause__ = exc
                except self.Error:
                    raise
                except Exception as exc:  # noqa: BLE001 - the caller's own refusal (e.g. a name already taken)
                    conn.execute("ROLLBACK TO SAVEPOINT one_call")
                    refused[id(fut)] = exc
                conn.execute("RELEASE SAVEPOINT one_call")
            conn.execute("COMMIT")
            self.error = None
            self.counters["commits"] += 1
            self.counters["items_written"] += len(items)
        except self.Error as exc:
            error = exc
            self.error = f"{self.name} failed a write: {exc}"
            self.counters["write_errors"] += 1
            log.error("store write of %d items failed: %s", len(items), exc)
            try:
                conn.execute("ROLLBACK")
            except self.Error:
                pass
            conn = self._usable(conn)
        assert self._loop is not None
        for _work, fut in items:
            if error is None and id(fut) in refused:
                self._loop.call_soon_threadsafe(_set_exception, fut, refused[id(fut)])
            elif error is None:
                self._loop.call_soon_threadsafe(_set_result, fut, results.get(id(fut)))
            else:
                self._loop.call_soon_threadsafe(_set_exception, fut, StoreError(self.error or str(error)))
        return conn

    # --- reading -----------------------------------------------------------------

    def read_now(self, sql: str, args: tuple = ()) -> list[tuple]:
        """A read on the calling thread (blocking; for tools and tests)."""
        return self._read(lambda conn: conn.execute(sql, args).fetchall())

    async def read(self, sql: str, args: tuple = ()) -> list[tuple]:
        return await asyncio.to_thread(self.read_now, sql, args)

    async def read_with(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn`` on the reader connection, in a worker thread."""
        return await asyncio.to_thread(self._read, fn)

    def _read(self, fn: Callable[[Conn], T]) -> T:
        """``fn`` on the reader; once more on a new connection when the old one was lost (a server restart).
        The database's failure is a ``StoreError`` (the API answers 503)."""
        with self._read_lock:
            if self._reader is None:
                raise StoreError(f"{self.name} is not running")
            try:
                try:
                    return fn(self._reader)
                except self.Error:
                    fresh = self._usable(self._reader)
                    if fresh is self._reader:
                        raise
                    self._reader = fresh
                return fn(self._reader)
            except self.Error as exc:
                raise StoreError(f"{self.name} failed a read: {exc}") from exc

    @property
    def queued(self) -> int:
        return self._queue.qsize()


def _set_result(fut: asyncio.Future, result: object = None) -> None:
    if not fut.done():
        fut.set_result(result)


def _set_exception(fut: asyncio.Future[None], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
