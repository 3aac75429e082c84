"""Choose a store backend from a URL: ``teleicu hub --store URL``.

    sqlite:///var/teleicu.sqlite3     embedded SQLite (WAL), the default
    var/teleicu.sqlite3               a bare path means the same
    influxdb://[user:pass@]host:8086/teleicu?token=...&batch_lines=5000&flush_ms=1000&state=var/state.sqlite3
                                      InfluxDB through the v1-compatible HTTP API (1.x, 2.x, 3.x);
                                      influxdbs:// for HTTPS, influxdb2:// for the 2.x native write API.
                                      Options: ingest/influx_config.py and docs/influxdb.md.

Backends are imported only when chosen.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ingest.store import Store
from wire.config import ConfigError

INFLUX_SCHEMES = ("influxdb", "influxdbs", "influxdb2", "influxdb2s")


class StoreUrlError(ConfigError):
    """A store URL that names no usable store (its scheme, path or options)."""


def open_store(url: str, data_dir: Path = Path("var")) -> Store:
    """The store a URL names; files it keeps beside another backend (InfluxDB's state) default to ``data_dir``."""
    parts = urlsplit(url)
    if parts.scheme in ("", "sqlite"):
        path = url if not parts.scheme else url[len("sqlite://") :]
        if not path:
            raise StoreUrlError("sqlite store URL needs a path, e.g. sqlite:///var/teleicu.sqlite3")
        from ingest.sqlite_store import SQLiteStore

        return SQLiteStore(Path(path))
    if parts.scheme in INFLUX_SCHEMES:
        from ingest.influx_config import InfluxConfigError, parse_influx_url
        from ingest.influx_store import InfluxStore

        try:
            return InfluxStore(parse_influx_url(url, data_dir))
        except InfluxConfigError as exc:
            raise StoreUrlError(str(exc)) from exc
    raise StoreUrlError(f"unknown store scheme {parts.scheme!r} in {url!r}; known: sqlite, {', '.join(INFLUX_SCHEMES)}")
