"""The hub's stores, chosen by a URL (``teleicu hub --store URL``); interfaces in ``ingest.stores.base``.

    sqlite:///var/teleicu.sqlite3     embedded SQLite (WAL): samples and state in one file, the default
    var/teleicu.sqlite3               a bare path means the same
    influxdb://[user:pass@]host:8086/teleicu?token=...&batch_lines=5000&flush_ms=1000&state=var/state.sqlite3
                                      samples in InfluxDB through the v1-compatible HTTP API (1.x, 2.x, 3.x);
                                      influxdbs:// for HTTPS, influxdb2:// for the 2.x native write API;
                                      state in SQLite (``state=``, default in the hub's data directory).
                                      Options: ingest/influx_config.py and docs/influxdb.md.

The hub's state (users, sessions, agents, alarms, the audit log, patients,
the outbox) lives with the store (the SQLite file, or InfluxDB's ``state=``
file) unless a state URL says otherwise (``teleicu hub --state URL``):

    postgresql://user@host:5432/db[?options=-csearch_path%3Dschema]
                                      the state in PostgreSQL (ingest/stores/postgres_db.py)

Backends are imported only when chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from wire.config import ConfigError

if TYPE_CHECKING:  # imported when used: the state modules import ingest.stores.portable_sql, and base imports them
    from ingest.stores.base import StateStore, Stores

INFLUX_SCHEMES = ("influxdb", "influxdbs", "influxdb2", "influxdb2s")


class StoreUrlError(ConfigError):
    """A store URL that names no usable store (its scheme, path or options)."""


def sqlite_stores(path: Path | str) -> Stores:
    """Samples and state in one embedded SQLite file, through one writer."""
    return open_stores(str(path))


def _checked_state_url(state_url: str) -> str:
    if not is_postgres_url(state_url) and "://" in state_url:
        raise StoreUrlError(f"unknown state URL {state_url!r}: give postgresql://... or a SQLite file's path")
    return state_url


def state_location(url: str, data_dir: Path = Path("var"), state_url: str | None = None) -> str:
    """Where the hub's state is for these options: a PostgreSQL URL, or the SQLite file's path."""
    if state_url:
        return _checked_state_url(state_url)
    parts = urlsplit(url)
    if parts.scheme in ("", "sqlite"):
        return _sqlite_path(url)
    if parts.scheme in INFLUX_SCHEMES:
        from ingest.influx_config import InfluxConfigError, parse_influx_url

        try:
            return str(parse_influx_url(url, data_dir).state)
        except InfluxConfigError as exc:
            raise StoreUrlError(str(exc)) from exc
    raise StoreUrlError(f"unknown store scheme {parts.scheme!r} in {url!r}; known: sqlite, {', '.join(INFLUX_SCHEMES)}")


def state_schema() -> list[str]:
    """Every table the hub's state holds (the embedded sample tables are added where samples live there too)."""
    from ingest.stores.sql_state import STATE_SCHEMAS

    return STATE_SCHEMAS


def is_postgres_url(text: str) -> bool:
    return urlsplit(text).scheme in ("postgresql", "postgres", "postgresql+psycopg")


def _sqlite_path(url: str) -> str:
    path = url[len("sqlite://") :] if url.startswith("sqlite://") else url
    if not path:
        raise StoreUrlError("sqlite store URL needs a path, e.g. sqlite:///var/teleicu.sqlite3")
    return path


def _state_store(location: str) -> StateStore:
    from ingest.stores.sql_state import STATE_SCHEMAS, SQLStateStore

    if is_postgres_url(location):
        from ingest.stores.postgres_db import PostgresDatabase

        return SQLStateStore(PostgresDatabase(location, STATE_SCHEMAS))
    from ingest.stores.sqlite_db import SQLiteDatabase

    return SQLStateStore(SQLiteDatabase(location, STATE_SCHEMAS))


def open_stores(url: str, data_dir: Path = Path("var"), state_url: str | None = None) -> Stores:
    """The stores a URL names, and the state where ``state_url`` says (default: beside the samples, as above)."""
    from ingest.stores.base import Stores

    parts = urlsplit(url)
    if parts.scheme in ("", "sqlite"):
        from ingest.stores.sql_state import AGENT_SEQ_SCHEMA, STATE_SCHEMAS, SQLStateStore
        from ingest.stores.sqlite_db import SQLiteDatabase
        from ingest.stores.sqlite_samples import SCHEMA as SAMPLES
        from ingest.stores.sqlite_samples import SQLiteSampleStore

        path = _sqlite_path(url)
        if not state_url:  # samples and state in one file, through one writer: a batch and its watermark commit together
            db = SQLiteDatabase(path, [*STATE_SCHEMAS, SAMPLES])
            return Stores(SQLiteSampleStore(db), SQLStateStore(db))
        state = _state_store(_checked_state_url(state_url))
        return Stores(SQLiteSampleStore(SQLiteDatabase(path, [AGENT_SEQ_SCHEMA, SAMPLES])), state)
    if parts.scheme in INFLUX_SCHEMES:
        from ingest.influx_config import InfluxConfigError, parse_influx_url
        from ingest.stores.influx_samples import InfluxSampleStore

        try:
            cfg = parse_influx_url(url, data_dir)
        except InfluxConfigError as exc:
            raise StoreUrlError(str(exc)) from exc
        state = _state_store(_checked_state_url(state_url) if state_url else str(cfg.state))
        return Stores(InfluxSampleStore(cfg, state), state)
    raise StoreUrlError(f"unknown store scheme {parts.scheme!r} in {url!r}; known: sqlite, {', '.join(INFLUX_SCHEMES)}")
