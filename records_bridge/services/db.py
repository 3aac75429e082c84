"""The records services' database layer: an engine from a URL, SQLite's pragmas, write transactions, migrate-to-head.

Written for every service, not the EHR alone: each service ships its Alembic
scripts inside its package and keeps its own version table
(``<service>_alembic_version``), so several services can share one database.

SQLite (the default) is a file in WAL mode; the driver's own transaction
handling is switched off and SQLAlchemy's ``begin`` emits ``BEGIN`` itself, so
that a write transaction can take the write lock up front (``BEGIN IMMEDIATE``)
instead of failing with "database is locked" when two readers both try to
write. PostgreSQL is reached by URL; a ``search_path`` given in the URL
(``?options=-csearch_path%3Dmyschema``) holds for the tables and the version table alike.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_S = 30.0
_WRITE = "teleicu_write"  # execution option: this connection's transaction will write
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def database_url(text: str) -> str:
    """A SQLAlchemy URL; a bare path (no ``://``) is taken as a SQLite file."""
    if "://" in text:
        return text
    return f"sqlite+pysqlite:///{Path(text).expanduser().resolve()}"


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, foreign keys and explicit ``BEGIN``."""
    u = make_url(database_url(url))
    if u.get_backend_name() != "sqlite":
        return create_engine(u, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    if u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(u, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}, pool_size=pool_size,
                           max_overflow=pool_size)  # fmt: skip

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver issues no BEGIN of its own: _on_begin does
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # an answered write survives a power cut: the bridge's cursor has moved past it
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that will write: on SQLite it holds the write lock from its first statement.

    On SQLite the threads of this process also queue on a lock of their own first: SQLite's busy
    handler polls with growing sleeps, which made the slowest writes wait hundreds of milliseconds.
    """
    if is_sqlite(engine):
        lock = _SQLITE_WRITERS.setdefault(engine, threading.Lock())
        with lock, _write_connection(engine) as conn:
            yield conn
    else:
        with _write_connection(engine) as conn:
            yield conn


@contextlib.contextmanager
def _write_connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


def alembic_config(script_location: str | Path, version_table: str) -> Config:
    """An Alembic ``Config`` built in code (no alembic.ini): the scripts shipped in a package, that service's version table."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["version_table"] = version_table
    return cfg


def migrate_to_head(engine: Engine, script_location: str | Path, version_table: str) -> None:
    """Bring the schema to the newest revision; a no-op when it is there already.

    The scripts' ``env.py`` runs on the connection given in ``config.attributes["connection"]``
    (see ``configure_migration_context``).
    """
    cfg = alembic_config(script_location, version_table)
    with write_transaction(engine) as conn:  # two processes starting at once: one migrates, the other then finds it done
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%(t)s))", {"t": version_table})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revision(engine: Engine, version_table: str) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": version_table}).get_current_revision()


def run_migrations(config: Config) -> None:
    """The body of every service's ``env.py``: online migrations on the connection ``migrate_to_head`` handed over."""
    from alembic import context

    conn = config.attributes.get("connection")
    if conn is None:
        raise RuntimeError("run these migrations through records_bridge.services.db.migrate_to_head, not the alembic command")
    context.configure(connection=conn, target_metadata=None, version_table=config.attributes["version_table"],
                      render_as_batch=is_sqlite(conn))  # fmt: skip
    with context.begin_transaction():
        context.run_migrations()
