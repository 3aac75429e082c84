"""Choose a store backend from a URL: ``teleicu hub --store URL``.

    sqlite:///var/teleicu.sqlite3     embedded SQLite (WAL), the default
    var/teleicu.sqlite3               a bare path means the same

Backends are imported only when chosen.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ingest.store import Store


class StoreUrlError(ValueError):
    pass


def open_store(url: str) -> Store:
    parts = urlsplit(url)
    if parts.scheme in ("", "sqlite"):
        path = url if not parts.scheme else url[len("sqlite://") :]
        if not path:
            raise StoreUrlError("sqlite store URL needs a path, e.g. sqlite:///var/teleicu.sqlite3")
        from ingest.sqlite_store import SQLiteStore

        return SQLiteStore(Path(path))
    raise StoreUrlError(f"unknown store scheme {parts.scheme!r} in {url!r}; known: sqlite")
