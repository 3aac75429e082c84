"""The hub's stores, chosen by a URL (``teleicu hub --store URL``); interfaces in ``ingest.stores.base``.

    sqlite:///var/teleicu.sqlite3     embedded SQLite (WAL): samples and state in one file, the default
    var/teleicu.sqlite3               a bare path means the same
    influxdb://[user:pass@]host:8086/teleicu?token=...&batch_lines=5000&flush_ms=1000&state=var/state.sqlite3
                                      samples in InfluxDB through the v1-compatible HTTP API (1.x, 2.x, 3.x);
                                      influxdbs:// for HTTPS, influxdb2:// for the 2.x native write API;
                                      state in SQLite (``state=``, default in the hub's data directory).
                                      Options: ingest/influx_config.py and docs/influxdb.md.

Backends are imported only when chosen.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ingest.stores.base import Stores
from wire.config import ConfigError

INFLUX_SCHEMES = ("influxdb", "influxdbs", "influxdb2", "influxdb2s")


class StoreUrlError(ConfigError):
    """A store URL that names no usable store (its scheme, path or options)."""


def sqlite_stores(path: Path | str) -> Stores:
    """Samples and state in one embedded SQLite file, through one writer."""
    from ingest.stores.sqlite_db import SQLiteDatabase
    from ingest.stores.sqlite_samples import SCHEMA as SAMPLES
    from ingest.stores.sqlite_samples import SQLiteSampleStore
    from ingest.stores.sqlite_state import STATE_SCHEMAS, SQLiteStateStore

    db = SQLiteDatabase(path, [*STATE_SCHEMAS, SAMPLES])
    return Stores(SQLiteSampleStore(db), SQLiteStateStore(db))


def state_path(url: str, data_dir: Path = Path("var")) -> Path:
    """The SQLite file holding the hub's state (users, agents, alarms, the audit log) for a store URL."""
    parts = urlsplit(url)
    if parts.scheme in ("", "sqlite"):
        return Path(url if not parts.scheme else url[len("sqlite://") :])
    if parts.scheme in INFLUX_SCHEMES:
        from ingest.influx_config import InfluxConfigError, parse_influx_url

        try:
            return parse_influx_url(url, data_dir).state
        except InfluxConfigError as exc:
            raise StoreUrlError(str(exc)) from exc
    raise StoreUrlError(f"unknown store scheme {parts.scheme!r} in {url!r}; known: sqlite, {', '.join(INFLUX_SCHEMES)}")


def state_schema() -> list[str]:
    """Every table the state file holds (the embedded sample tables are added where samples live there too)."""
    from ingest.stores.sqlite_state import STATE_SCHEMAS

    return STATE_SCHEMAS


def open_stores(url: str, data_dir: Path = Path("var")) -> Stores:
    """The stores a URL names; files kept beside another backend (InfluxDB's state) default to ``data_dir``."""
    parts = urlsplit(url)
    if parts.scheme in ("", "sqlite"):
        path = url if not parts.scheme else url[len("sqlite://") :]
        if not path:
            raise StoreUrlError("sqlite store URL needs a path, e.g. sqlite:///var/teleicu.sqlite3")
        return sqlite_stores(Path(path))
    if parts.scheme in INFLUX_SCHEMES:
        from ingest.influx_config import InfluxConfigError, parse_influx_url
        from ingest.stores.influx_samples import InfluxSampleStore
        from ingest.stores.sqlite_db import SQLiteDatabase
        from ingest.stores.sqlite_state import STATE_SCHEMAS, SQLiteStateStore

        try:
            cfg = parse_influx_url(url, data_dir)
        except InfluxConfigError as exc:
            raise StoreUrlError(str(exc)) from exc
        state = SQLiteStateStore(SQLiteDatabase(cfg.state, STATE_SCHEMAS))
        return Stores(InfluxSampleStore(cfg, state), state)
    raise StoreUrlError(f"unknown store scheme {parts.scheme!r} in {url!r}; known: sqlite, {', '.join(INFLUX_SCHEMES)}")
