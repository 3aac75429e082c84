"""The hub's state for tests: the SQLite file beside the samples, or a fresh schema in the local PostgreSQL.

PostgreSQL is not optional: when it cannot be reached the test fails, it does
not skip. ``TELEICU_TEST_PG_URL`` names another server (as for the records
services' tests, ``records_db_support``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from records_db_support import PG_URL

from ingest.stores.postgres_db import libpq_url

KINDS = ("sqlite", "postgresql")


@contextmanager
def hub_state(kind: str, tmp_path: Path) -> Iterator[str | None]:
    """The ``--state`` to give a hub: None (the SQLite store file keeps it), or a PostgreSQL URL with a schema of its own,
    dropped afterwards."""
    if kind == "sqlite":
        yield None
        return
    schema = f"hub_test_{secrets.token_hex(6)}"
    with psycopg.connect(libpq_url(PG_URL), autocommit=True) as admin:  # raises (and so fails the test) without PostgreSQL
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"{libpq_url(PG_URL)}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@contextmanager
def state_connection(location: str | Path) -> Iterator[Any]:
    """A connection to a hub's state (a SQLite file or a PostgreSQL URL), for reading what it holds."""
    from teleicu.admin import open_state

    with closing(open_state(location)) as conn:
        yield conn
